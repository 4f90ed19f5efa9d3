"""The documentation stays true: generated references cover every key and command, the
worked examples run, the README is short and its links resolve."""

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fedcmi.cli import build_parser
from fedcmi.config import config_from_dict, tomllib
from fedcmi.tools.reference import (
    cli_reference,
    config_reference,
    field_docs,
    sections,
    undocumented_keys,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_config_key_has_a_docstring():
    assert undocumented_keys() == []


def test_the_config_reference_lists_every_key_of_every_section():
    page = config_reference()
    for where, cls in sections():
        for key in field_docs(cls):
            assert f"| `{key}` |" in page, f"{where}.{key}"
    for heading in ("## `[federation]`", "## `[logging]`", '### `algorithm.name = "fedcmi"`'):
        assert heading in page
    assert '### `data.name = "crema-d"`' in page


def test_a_dataclass_field_without_a_docstring_is_reported(monkeypatch):
    from dataclasses import dataclass

    import fedcmi.tools.reference as reference

    @dataclass
    class Knobs:
        documented: int = 1
        """Has a docstring."""
        bare: float = 0.5

    assert field_docs(Knobs) == {"documented": "Has a docstring."}
    monkeypatch.setattr(reference, "sections", lambda: iter([("algorithm:x", Knobs)]))
    assert reference.undocumented_keys() == ["algorithm:x.bare"]


def test_the_committed_reference_pages_are_current():
    # docs/gen_reference.py (make reference) writes them; rerun it after changing a
    # config dataclass or the CLI.
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for path, text in generator.pages().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: make reference"


def load_docs_script(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_measured_tables_and_figures_match_their_data():
    # docs/gen_data.py (make reference) fills every data block and inline value from the
    # committed data under docs/data; rerun it after changing the data or a page's marks.
    generator = load_docs_script("gen_data")
    for path, text in generator.pages().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: make reference"


def test_a_data_block_is_refilled_and_an_unknown_one_is_named(tmp_path):
    generator = load_docs_script("gen_data")
    tables = {"t": lambda: "| a |\n|---|\n| 1 |"}
    page = "x\n<!-- data: t -->\nold table\n<!-- /data -->\ny\n"
    assert (
        generator.fill(page, tables)
        == "x\n<!-- data: t -->\n| a |\n|---|\n| 1 |\n<!-- /data -->\ny\n"
    )
    with pytest.raises(KeyError, match="page.md: data block 'u'"):
        generator.fill("<!-- data: u -->\n<!-- /data -->", tables, "page.md")


def test_an_inline_figure_is_read_from_its_data():
    generator = load_docs_script("gen_data")
    rows = generator.read_csv(generator.DATA / "skew-trace" / "faithful.csv")
    expected = generator.number(rows[3]["cmi"])
    text = "cmi <!-- value: trace:faithful:4:cmi -->0<!-- /value --> at step 4"
    assert (
        generator.fill(text, {})
        == f"cmi <!-- value: trace:faithful:4:cmi -->{expected}<!-- /value --> at step 4"
    )
    assert generator.number("inf") == "inf" and generator.number("1234.5") == "1.23e+03"


def test_the_cli_reference_lists_every_command_and_option():
    page = cli_reference(build_parser())
    for command in ("run", "data", "sweep", "table", "report", "bench speed", "flower certs"):
        assert f"`fedcmi {command}`" in page, command
    for option in ("`--resume`", "`--baseline`", "`--engine`", "`--workers`"):
        assert option in page, option


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links into the docs"
    for target in local:
        assert (ROOT / target).exists(), target


def test_the_docs_never_point_outside_the_repository():
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        text = path.read_text()
        for needle in ("shared/spec", "ALGORITHM.md", "DATASETS.md"):
            assert needle not in text, f"{path.name}: {needle}"


def test_config_examples_in_the_docs_are_valid_configs():
    blocks = 0
    for path in DOCS.rglob("*.md"):
        for block in re.findall(r"```toml\n(.*?)```", path.read_text(), flags=re.S):
            config_from_dict(tomllib.loads(block))
            blocks += 1
    assert blocks >= 1


EXAMPLES = [
    "fedavg_ls", "csv_pair", "gru_audio", "fedavgm", "unweighted_mean", "free_rider",
    "size_proportional", "label_sorted",
]  # fmt: skip

# Hand-computed checks of the four extension examples, run after they are registered:
# FedAvgM (lr 1, beta1 0.9): w 1 -> aggregate 3 gives m 2, w 3; aggregate 4 gives
# m 0.9 * 2 + 1 = 2.8, w 5.8. The unweighted mean of 1 (1 sample) and 3 (9 samples) is
# 2 (the weighted mean, 2.8). A free rider sends the global state back. Labels
# 2, 0, 1, 0, 2, 1 sorted and cut in 3 give the clients {1, 3}, {2, 5}, {0, 4}.
EXTENSION_CHECKS = """
import torch
from fedcmi.config import FaultsConfig, RobustnessConfig, ServerConfig
from fedcmi.core.aggregation import ClientUpdate, aggregate
from fedcmi.core.server_opt import server_step
from fedcmi.engine.faults import poison
from fedcmi.registry import SELECTIONS
cfg = ServerConfig("fedavgm", lr=1.0, beta1=0.9)
w, m = server_step({"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}, {}, cfg, ["w"])
assert w["w"].item() == 3.0 and m["m.w"].item() == 2.0, (w, m)
w, m = server_step(w, {"w": torch.tensor([4.0])}, m, cfg, ["w"])
assert abs(w["w"].item() - 5.8) < 1e-6 and abs(m["m.w"].item() - 2.8) < 1e-6, (w, m)
ups = [ClientUpdate(0, "av", 1, {"w": torch.tensor([1.0])}),
       ClientUpdate(1, "av", 9, {"w": torch.tensor([3.0])})]
rule = RobustnessConfig(rule="unweighted-mean")
assert aggregate({"w": torch.tensor([0.0])}, ups, lambda k: None, False, rule)["w"].item() == 2.0
rider = poison(ups[0], {"w": torch.tensor([7.0])}, FaultsConfig(attack="free-rider"), None)
assert rider.state["w"].item() == 7.0 and rider.num_samples == 1
chosen = SELECTIONS.get("size-proportional")()
assert chosen.equal_weights and chosen.draw_weights([1.0, 3.0]) == [1.0, 3.0]
import numpy as np
from fedcmi.config import FederationConfig
from fedcmi.registry import PARTITIONERS
sorter = PARTITIONERS.get("label-sorted")()
parts = sorter.split(np.array([2, 0, 1, 0, 2, 1]), None, FederationConfig(num_clients=3,
                     clients_per_round=1), np.random.default_rng(0))
assert [p.tolist() for p in parts] == [[1, 3], [2, 5], [0, 4]], parts
"""


@pytest.mark.slow
def test_the_worked_examples_train(tmp_path):
    # Two feature tables, 3 classes, 60 samples: what a user's CSV files would hold.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    for name, dim in (("a", 5), ("v", 3)):
        x = rng.normal(size=(60, dim)) + y[:, None]
        np.savetxt(tmp_path / f"{name}.csv", np.column_stack([x, y]), delimiter=",")
    common = [
        "rounds=2", "federation.num_clients=3", "federation.clients_per_round=2",
        "federation.min_client_size=2", "train.local_epochs=1", "model.feature_dim=8",
    ]  # fmt: skip
    runs = {
        "csv": ["data.name=csv-pair", f"data.folder='{tmp_path}'", "algorithm.name=fedavg-ls",
                "algorithm.eps=0.2", *common],
        "gru": ["data.per_class=12", "model.encoder_a=gru-audio", "model.options_a.hidden=8",
                *common],
        "typo": ["algorithm.name=fedavg-ls", "algorithm.epz=0.2"],
        "extensions": ["data.name=csv-pair", f"data.folder='{tmp_path}'",
                       "server.optimizer=fedavgm", "server.lr=0.5",
                       "robustness.rule=unweighted-mean", "faults.malicious_clients=1",
                       "faults.attack=free-rider", "federation.selection=size-proportional",
                       "federation.partitioner=label-sorted",
                       *common],
    }  # fmt: skip
    # A fresh interpreter: registering the examples must not leak into other tests.
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        for name in {EXAMPLES!r}:
            path = {str(DOCS / "examples")!r} + f"/{{name}}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        exec({EXTENSION_CHECKS!r})
        from fedcmi.cli import main
        codes = {{}}
        for label, sets in {runs!r}.items():
            argv = ["run", "--quiet", "--out", {str(tmp_path)!r} + "/" + label]
            codes[label] = main(argv + [x for s in sets for x in ("--set", s)])
        print(json.dumps(codes))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == {"csv": 0, "gru": 0, "typo": 2, "extensions": 0}
    assert "unknown key 'algorithm.epz' (did you mean 'eps'?)" in done.stderr
    for label in ("csv", "gru"):
        summary = json.loads((tmp_path / label / "summary.json").read_text())
        assert summary["rounds"] == 2
    config = (tmp_path / "csv" / "config.toml").read_text()
    assert 'name = "fedavg-ls"' in config and "eps = 0.2" in config
    assert 'encoder_a = "gru-audio"' in (tmp_path / "gru" / "config.toml").read_text()
