"""The package works installed, away from the source tree: presets and grids are package
data and nothing looks for files relative to the checkout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds and installs a wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --no-deps`` of a freshly built wheel into a private folder."""
    work = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist")]
    subprocess.run([*build, str(ROOT)], check=True, cwd=work)
    wheel = next((work / "dist").glob("fedcmi-*.whl"))
    target = work / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def fedcmi(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    code = "import sys, fedcmi.cli; print(fedcmi.cli.__file__, file=sys.stderr); "
    code += "sys.exit(fedcmi.cli.main(sys.argv[1:]))"
    env = {"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"}
    env.update({k: os.environ[k] for k in ("FEDCMI_CACHE", "HOME") if k in os.environ})
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_wheel_ships_every_preset_and_grid(installed):
    shipped = installed / "fedcmi" / "configs"
    source = ROOT / "src" / "fedcmi" / "configs"
    names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.toml"))
    assert names and names == sorted(
        p.relative_to(shipped).as_posix() for p in shipped.rglob("*.toml")
    )


def test_configs_lists_the_installed_presets_from_an_empty_folder(installed, tmp_path):
    result = fedcmi(installed, tmp_path, "configs")
    assert result.returncode == 0, result.stderr
    assert str(installed) in result.stderr  # the installed copy ran, not the checkout
    assert "av-digits-fedcmi" in result.stdout and str(installed) in result.stdout


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_run_a_preset_by_name_from_an_empty_folder(installed, tmp_path):
    # A small av-digits build keeps the test short; the preset is found by name only.
    result = fedcmi(
        installed,
        tmp_path,
        "run",
        "--config",
        "av-digits-fedcmi",
        "--set",
        "rounds=1",
        "--set",
        "data.per_class=30",
        "--set",
        "federation.min_client_size=5",
        "--quiet",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "summary.json").is_file()
