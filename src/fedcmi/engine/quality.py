"""Central training on one split, and the description of a dataset's per-client quality
profiles that a run records (and the CLI prints) at its start: on each profile's data,
which modality dominates joint training.

A profile's dominant modality is read as ``fedcmi calibrate`` reads it: a late-fusion
model (``fedavg``'s model and loss) trained centrally on the profile's whole training
split for ``eval.quality_epochs`` epochs, then each modality alone (the other input
zero-filled) on the profile's val split; the modality with the higher accuracy
dominates. FedCMI decides per batch on its own (``a_dominant_frac`` in the client logs);
this description says what to expect before any federated round.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from fedcmi.algorithms import ALGORITHMS
from fedcmi.config import NamedConfig
from fedcmi.data.base import Split
from fedcmi.engine.embedded import ClientTrainer, make_client_data
from fedcmi.engine.evaluation import evaluate
from fedcmi.engine.setup import RunSetup
from fedcmi.models.base import MultimodalModel


def train_central(
    run: RunSetup, method: str, epochs: int, train: Split | None = None
) -> MultimodalModel:
    """``method``'s model trained on ``train`` (default: the whole training pool) as one
    client, ``epochs`` epochs of the config's SGD at a constant learning rate (one
    optimizer throughout)."""
    cfg, data, device = run.cfg, run.data, run.device
    split = data.train if train is None else train
    central = dataclasses.replace(
        cfg,
        algorithm=NamedConfig(method, ALGORITHMS.get(method).Params()),
        train=dataclasses.replace(cfg.train, local_epochs=epochs, lr_decay_start=None),
    )
    trainer = ClientTrainer(central, data, device, run.precision.name)
    client = make_client_data(split, np.arange(len(split)), "av", 0, device)
    update, _ = trainer.train(client, trainer.initial_state(), round_idx=0)
    trainer.model.load_state_dict(update.state)
    return trainer.model


def describe_quality(run: RunSetup) -> list[dict[str, Any]]:
    """One entry per quality profile of the run's dataset (none without profiles): its
    ``levels``, its clients and, with ``eval.quality_epochs`` above 0, the val accuracy of
    each modality in a central joint model and the ``dominant`` one ("a" or "v"). The
    torch random state is restored afterwards, so the run itself is unchanged."""
    data, cfg = run.data, run.cfg
    clients = range(cfg.federation.num_clients)
    entries = []
    for p, profile in enumerate(data.quality):
        entry: dict[str, Any] = {
            "profile": p,
            "levels": profile.settings,
            "clients": [cid for cid in clients if data.client_profile(cid) == p],
        }
        epochs = cfg.eval.quality_epochs
        if epochs:
            forked = [run.device] if run.device.type == "cuda" else []
            with torch.random.fork_rng(devices=forked):
                model = train_central(run, "fedavg", epochs, profile.train)
            val = evaluate(model, profile.val.to(run.device), cfg.eval.batch_size, data.num_classes)
            entry.update(
                epochs=epochs,
                val_acc=val["acc"],
                val_acc_a=val["acc_a"],
                val_acc_v=val["acc_v"],
                dominant="a" if val["acc_a"] > val["acc_v"] else "v",
            )
            entry["dominant_name"] = data.modality_names["av".index(entry["dominant"])]
        entries.append(entry)
    return entries


def quality_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The description as lines for the terminal."""
    if not entries:
        return []
    lines = [
        f"client quality: {len(entries)} profiles (client k trains on profile k mod {len(entries)})"
    ]
    for e in entries:
        levels = ", ".join(f"{k} {v}" for k, v in e["levels"].items() if v is not None)
        text = f"  profile {e['profile']} ({levels}): {len(e['clients'])} clients"
        if "dominant" in e:
            text += (
                f"; central joint model ({e['epochs']} epochs), val accuracy of a alone "
                f"{e['val_acc_a']:.3f}, v alone {e['val_acc_v']:.3f}: "
                f"{e['dominant_name']} dominates"
            )
        lines.append(text)
    return lines
