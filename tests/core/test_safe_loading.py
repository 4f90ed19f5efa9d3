"""Loading a run folder or a model file someone sent cannot run code."""

import hashlib
import io
from pathlib import Path

import pytest
import torch

from fedcmi.core.files import load_tensors
from fedcmi.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fedcmi.errors import InputError
from fedcmi.models.resnet import ResNet18Trunk, load_pretrained


class Payload:
    """Unpickling this object would create ``marker``: the attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted_checkpoint(folder: Path, marker: Path) -> None:
    buf = io.BytesIO()
    torch.save({"rounds_done": 1, "global_state": {}, "rng": Payload(marker)}, buf)
    data = buf.getvalue()  # a valid checksum: the file is intact, only malicious
    folder.mkdir(parents=True)
    (folder / "latest.pt").write_bytes(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def test_a_checkpoint_carrying_a_callable_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    crafted_checkpoint(tmp_path / "checkpoints", marker)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "checkpoints")
    assert not marker.exists()


def test_checkpoints_round_trip_through_the_safe_loader(tmp_path):
    torch.manual_seed(3)
    state = {"w": torch.randn(2, 3)}
    save_checkpoint(tmp_path, {"rounds_done": 2, "global_state": state})
    payload = load_checkpoint(tmp_path)
    assert payload["rounds_done"] == 2 and torch.equal(payload["global_state"]["w"], state["w"])
    assert isinstance(payload["rng"]["numpy"]["keys"], torch.Tensor)


def test_a_pretrained_file_carrying_a_callable_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(1), "hook": Payload(marker)}, path)
    with pytest.raises(InputError, match="refused"):
        load_pretrained(ResNet18Trunk(width=4), path)
    with pytest.raises(InputError, match="refused"):
        load_tensors(path)
    assert not marker.exists()
