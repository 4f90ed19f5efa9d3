"""One extension mechanism: a registered entry is found without editing anything else."""

import subprocess
import sys
from dataclasses import dataclass

import pytest

from fedcmi.algorithms.fedavg import FedAvg
from fedcmi.config import ConfigError
from fedcmi.engine.runner import run_experiment
from fedcmi.registry import ALGORITHMS, Registry


@pytest.mark.slow
def test_registries_find_their_package_modules_on_first_lookup():
    # A fresh interpreter that imports only the config resolves every kind of name.
    code = (
        "from fedcmi.config import load_config; "
        "from fedcmi.registry import ENCODERS, PREPARERS; "
        "cfg = load_config(None, ['algorithm.name=fedprox', 'data.name=mfeat']); "
        "print(cfg.algorithm.params.prox_mu, 'mlp' in ENCODERS, PREPARERS.names())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.01", "True", "['ave',", "'crema-d',", "'crisismmd']"]


def test_a_registered_method_runs_with_typed_params(make_config, tmp_path, monkeypatch):
    @dataclass
    class Params(FedAvg.Params):
        eps: float = 0.1

    class Smoothed(FedAvg):
        pass

    Smoothed.Params = Params
    ALGORITHMS.names()  # discover the package first; the entry is removed after the test
    monkeypatch.setitem(ALGORITHMS._items, "test-fedavg-smoothed", Smoothed)
    cfg = make_config("algorithm.name=test-fedavg-smoothed", "algorithm.eps=0.2")
    assert cfg.algorithm.params == Params(eps=0.2)
    with pytest.raises(ConfigError, match="algorithm.epz"):
        make_config("algorithm.name=test-fedavg-smoothed", "algorithm.epz=0.2")
    assert run_experiment(cfg, tmp_path / "run").algorithm == "test-fedavg-smoothed"


def test_a_name_registered_twice_is_refused():
    registry: Registry[object] = Registry("thing")
    registry.register("alpha")(1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("alpha")(2)
    with pytest.raises(KeyError, match="did you mean 'alpha'"):
        registry.get("alpah")


def test_a_module_that_fails_to_import_leaves_the_others_usable(tmp_path, monkeypatch):
    package = tmp_path / "plugins_under_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from tests.test_registry import PLUGINS\nPLUGINS.register('good')(object)\n"
    )
    (package / "broken.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "PLUGINS", Registry("plugin", package.name))
    assert PLUGINS.get("good") is object
    with pytest.raises(KeyError) as err:
        PLUGINS.get("other")
    message = str(err.value)
    assert "registered: good" in message
    assert "plugins_under_test.broken failed to import (ModuleNotFoundError" in message


def test_the_four_new_kinds_refuse_an_unknown_name_listing_the_registered_ones(make_config):
    for key, value, listed in (
        ("server.optimizer", "adamw", "'adagrad', 'adam', 'sgd', 'yogi'"),
        ("robustness.rule", "krum", "'mean', 'median', 'trimmed-mean'"),
        ("faults.attack", "flip", "'label-flip', 'noise', 'scale', 'sign-flip'"),
        ("federation.selection", "random", "'power-of-choice', 'uniform'"),
    ):
        with pytest.raises(ConfigError) as err:
            make_config(f"{key}={value!r}".replace("'", '"'))
        assert str(err.value) == f"{key} = {value!r} is not allowed: expected one of {listed}"


PLUGINS: Registry = Registry("plugin")
