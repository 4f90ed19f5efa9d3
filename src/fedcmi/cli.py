"""The ``fedcmi`` command line: ``run``, ``data build|info`` and ``configs``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fedcmi.config import ConfigError, build_dataclass, load_config, parse_override

PRESET_DIRS = (Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs")
SHOWN_METRICS = ("acc", "acc_a", "acc_v", "acc_av", "acc_va", "acc_a_head", "acc_v_head")


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def resolve_config(name: str | None) -> Path | None:
    """A config path, or a preset name looked up in ./configs and the source tree's configs."""
    if name is None:
        return None
    path = Path(name)
    if path.is_file():
        return path
    for folder in PRESET_DIRS:
        for candidate in (folder / name, folder / f"{name}.toml"):
            if candidate.is_file():
                return candidate
    raise CLIError(f"config {name!r} not found (a TOML path, or a preset from `fedcmi configs`)")


def default_out_dir(cfg_path: Path | None, algorithm: str, seed: int) -> Path:
    stem = cfg_path.stem if cfg_path else f"default-{algorithm}"
    return Path("runs") / f"{stem}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_run(args: argparse.Namespace) -> int:
    from fedcmi.runner import run_experiment

    cfg_path = resolve_config(args.config)
    cfg = load_config(cfg_path, args.set)
    out = Path(args.out) if args.out else default_out_dir(cfg_path, cfg.algorithm.name, cfg.seed)
    print(f"fedcmi run: {cfg.algorithm.name} on {cfg.data.name}, {cfg.rounds} rounds -> {out}")
    bar = None if args.quiet else _progress(cfg.rounds)
    try:
        summary = run_experiment(cfg, out, on_round=None if bar is None else bar.update_round)
    finally:
        if bar is not None:
            bar.close()
    print_summary(summary, out)
    return 0


class _progress:
    """A tqdm bar over rounds whose postfix shows the latest val/test metrics."""

    def __init__(self, rounds: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=rounds, unit="round", dynamic_ncols=True)

    def update_round(self, record: dict[str, Any]) -> None:
        test = record["test"]
        loss = record["train_loss"]
        post = {"loss": "-" if loss is None else f"{loss:.3f}", "val": f"{record['val']['acc']:.3f}"}
        post.update({k: f"{test[k]:.3f}" for k in ("acc", "acc_a", "acc_v", "acc_va") if k in test})
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def print_summary(summary: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{summary['algorithm']} on {summary['dataset']} (seed {summary['seed']}): "
        f"test accuracy, best round {summary['best_round']} chosen on val"
    )
    table.add_column("round")
    keys = [k for k in SHOWN_METRICS if k in summary["best"]["test"]] + ["imbalance_ratio"]
    for key in keys:
        table.add_column(key, justify="right")
    for label, part in (("best (val)", "best"), ("last", "last")):
        table.add_row(label, *(f"{summary[part]['test'][k]:.4f}" for k in keys))
    console = Console(width=max(Console().width, 132))
    console.print(table)
    console.print(
        f"{summary['train_seconds']:.1f} s training ({summary['seconds_per_round']:.2f} s/round) "
        f"on {summary['device']}; run folder: {out}"
    )


def _dataset_params(name: str, overrides: list[str]) -> Any:
    from fedcmi.data import DATASETS

    try:
        entry = DATASETS.get(name)
    except KeyError as exc:
        raise CLIError(exc.args[0]) from None
    raw: dict[str, Any] = {}
    for text in overrides:
        parts, value = parse_override(text)
        raw[parts[-1]] = value
    return build_dataclass(entry.Params, raw, "data")


def cmd_data(args: argparse.Namespace) -> int:
    from fedcmi.data import load_dataset

    params = _dataset_params(args.name, args.set)
    started = time.perf_counter()
    data = load_dataset(args.name, params)
    info = {
        "params": asdict(params),
        **data.info(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.action == "build":
        print(f"built {args.name}: {info['sizes']} in {info['seconds']} s")
    print(json.dumps(info, indent=2))
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    seen = set()
    for folder in PRESET_DIRS:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.name in seen:
                continue
            seen.add(path.name)
            cfg = load_config(path)
            print(
                f"{path.stem:28s} {cfg.algorithm.name:8s} {cfg.data.name:10s} "
                f"{cfg.rounds:4d} rounds  {path}"
            )
    if not seen:
        print("no presets found (looked in ./configs and the source tree's configs/)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedcmi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment on the embedded engine")
    run.add_argument("--config", help="TOML file or preset name (see `fedcmi configs`)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, value parsed as TOML (repeatable)",
    )
    run.add_argument("--out", help="run folder (default: runs/<preset>-seed<seed>-<time>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)
    data = sub.add_parser("data", help="build or describe a dataset")
    data.add_argument("action", choices=["build", "info"])
    data.add_argument("name")
    data.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset knob, e.g. --set per_class=100",
    )
    data.set_defaults(func=cmd_data)
    configs = sub.add_parser("configs", help="list the presets")
    configs.set_defaults(func=cmd_configs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ConfigError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"fedcmi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
