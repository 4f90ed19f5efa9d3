"""The ``fedcmi`` command line: run, sweep, table, plot, report, data and configs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedcmi.config import (
    DEFAULT_NAMES,
    Config,
    build_dataclass,
    find_preset,
    load_config,
    parse_override,
    preset_dirs,
    read_toml,
)
from fedcmi.core.protocol import ACCURACIES, HEAD_ACCURACIES
from fedcmi.errors import RunInterrupted, UserError

if TYPE_CHECKING:  # the run machinery (and torch) load only for commands that need them
    from fedcmi.engine.run_folder import RoundRecord, Summary

SHOWN_METRICS = (*ACCURACIES, *HEAD_ACCURACIES, "imbalance_ratio")


class CLIError(UserError):
    """A user-facing error: printed without a traceback, exit code 2."""


def resolve_config(name: str | None) -> Path | None:
    """A config path, or a preset name looked up in ./configs and the source tree's configs."""
    if name is None:
        return None
    return find_preset(name)


def default_out_dir(cfg_path: Path | None, algorithm: str, seed: int) -> Path:
    stem = cfg_path.stem if cfg_path else f"default-{algorithm}"
    return Path("runs") / f"{stem}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_run(args: argparse.Namespace) -> int:
    from fedcmi.engine.run_folder import RunFolder
    from fedcmi.engine.runner import run_experiment

    if args.engine == "flower":
        try:
            from fedcmi.flower.simulation import run_flower_simulation
        except ImportError:
            raise CLIError("--engine flower needs Flower: pip install 'fedcmi[flower]'") from None
    if args.resume:
        if args.config or args.set or args.out:
            raise CLIError("--resume takes the run folder only (its config.toml is used)")
        out = Path(args.resume)
        cfg = load_config(RunFolder(out).config_file)
    else:
        cfg_path = resolve_config(args.config)
        cfg = load_config(cfg_path, args.set)
        out = (
            Path(args.out) if args.out else default_out_dir(cfg_path, cfg.algorithm.name, cfg.seed)
        )
    from fedcmi.engine.setup import select_device
    from fedcmi.engine.speed import resolve_precision

    verb = "resuming" if args.resume else "run"
    print(f"fedcmi {verb}: {cfg.algorithm.name} on {cfg.data.name}, {cfg.rounds} rounds -> {out}")
    device = select_device(cfg.engine.device)
    chosen = resolve_precision(cfg.engine.precision, device)
    print(f"precision on {device}: {chosen.name} ({chosen.reason})")
    bar = None if args.quiet else _progress(cfg.rounds)
    on_round = None if bar is None else bar.update_round

    def on_start(quality: list[dict[str, Any]]) -> None:
        from fedcmi.engine.quality import quality_lines

        print("\n".join(quality_lines(quality)), flush=True)

    try:
        if args.engine == "flower":
            summary = run_flower_simulation(
                cfg, out, on_round, resume=bool(args.resume), on_start=on_start
            )
        else:
            summary = run_experiment(
                cfg, out, on_round, resume=bool(args.resume), on_start=on_start
            )
    except RunInterrupted as exc:
        print(f"fedcmi: {exc}", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    print_summary(summary, out)
    return 0


class _progress:
    """A tqdm bar over rounds whose postfix shows the latest val/test metrics."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.bar: Any = None  # opened at the first round, so set-up time does not skew the rate

    def update_round(self, record: RoundRecord) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.rounds, unit="round", dynamic_ncols=True)
        test, loss = record.test, record.train_loss
        post = {
            "loss": "-" if loss is None else f"{loss:.3f}",
            "val": f"{record.val['acc']:.3f}",
        }
        post.update({k: f"{test[k]:.3f}" for k in ("acc", "acc_a", "acc_v", "acc_va") if k in test})
        terms = record.loss_terms()
        if terms:  # the round's loss by term (client means) and its largest gradient norm
            post["terms"] = " ".join(f"{t} {v:.3g}" for t, v in terms.items() if v)
        grad = record.max_grad_norm()
        if grad is not None:
            post["|g|max"] = f"{grad:.3g}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def print_summary(summary: Summary, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{summary.algorithm} on {summary.dataset} (seed {summary.seed}): test accuracy"
    )
    table.add_column("rounds")
    keys, rows = summary.rows(SHOWN_METRICS)
    for key in keys:
        table.add_column(key, justify="right")
    for label, *values in rows:
        table.add_row(label, *("–" if v is None else f"{v:.4f}" for v in values))
    console = Console(width=max(Console().width, 132))
    console.print(table)
    probes = ", ".join(f"{k} {v:.4f}" for k, v in summary.probes().items())
    if probes:
        console.print(f"linear probes of the final encoders (test accuracy): {probes}")
    console.print(
        f"{summary.train_seconds:.1f} s training ({summary.seconds_per_round:.2f} s/round) "
        f"on {summary.device}; run folder: {out}"
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


def cmd_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fedcmi.data.prepare import prepare

    if not args.src or not args.out:
        raise CLIError("data prepare needs --src RAW_DIR and --out CACHE_DIR")
    overrides: dict[str, Any] = {}
    for text in args.set:
        parts, value = parse_override(text)
        overrides[parts[-1]] = value
    bar = tqdm(unit="clip", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        manifest = prepare(
            args.name, args.src, args.out, overrides, args.workers, args.force, progress
        )
    finally:
        bar.close()
    print(json.dumps({k: v for k, v in manifest.items() if k != "params"}, indent=2))
    print(f"skip report: {Path(args.out) / 'skipped.json'} ({manifest['skipped']} clips)")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from fedcmi.data import load_dataset

    if args.action == "prepare":
        return cmd_prepare(args)
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
    for folder in preset_dirs():
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.name in seen:
                continue
            seen.add(path.name)
            # The raw file, not a built config: listing must not import the registries'
            # modules (torch); `fedcmi run` validates a preset when it is used.
            raw = read_toml(path)
            algorithm = raw.get("algorithm", {}).get("name", DEFAULT_NAMES["algorithm"])
            data = raw.get("data", {}).get("name", DEFAULT_NAMES["data"])
            rounds = raw.get("rounds", Config.rounds)
            print(f"{path.stem:28s} {algorithm:8s} {data:10s} {rounds:4d} rounds  {path}")
    if not seen:
        print(f"no presets found (looked in {', '.join(map(str, preset_dirs()))})")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from fedcmi.tools.sweep import load_grid, run_sweep

    grid_path = _grid_path(args.grid)
    grid = load_grid(grid_path)
    out = Path(args.out) if args.out else Path("runs") / "sweeps" / grid_path.stem
    total = len(grid.cells)
    print(f"fedcmi sweep: {total} cells from {grid_path} -> {out} ({args.jobs} job(s))")
    done = 0

    def report(cell, summary, status) -> None:
        nonlocal done
        done += 1
        extra = (
            ""
            if summary is None
            else (
                f": test acc {summary.last_mean['test']['acc']:.4f} in {summary.wall_seconds:.0f} s"
            )
        )
        print(f"[{done}/{total}] {cell.cell_id} {status}{extra}", flush=True)

    started = time.perf_counter()
    try:
        results = run_sweep(grid, out, jobs=args.jobs, on_cell=report)
    except (KeyboardInterrupt, RunInterrupted):
        return stopped("sweep", done, total, out)
    print(f"results: {results} ({time.perf_counter() - started:.0f} s)")
    return 0


def stopped(what: str, done: int, total: int, out: Path) -> int:
    """Ctrl-C or SIGTERM stopped a grid (its workers already stopped): say what is kept."""
    print(
        f"fedcmi: {what} stopped after {done} of {total} cells; the finished ones are "
        f"kept in {out} and the same command resumes",
        file=sys.stderr,
    )
    return 130


def cmd_calibrate(args: argparse.Namespace) -> int:
    from fedcmi.tools.calibrate import calibrate_seeds

    if args.epochs < 1:
        raise CLIError(f"--epochs {args.epochs}: expected >= 1")
    if args.seeds < 1:
        raise CLIError(f"--seeds {args.seeds}: expected >= 1")
    if args.grid:
        return _calibrate_grid(args)
    cfg_path = resolve_config(args.config)
    cfg = load_config(cfg_path, args.set)
    print(
        f"fedcmi calibrate: {cfg.data.name} ({cfg_path or 'defaults'}), central training, "
        f"{args.epochs} epochs per model, {args.seeds} seeds"
    )
    started = time.perf_counter()
    summary = calibrate_seeds(cfg, args.epochs, args.seeds)
    print_calibration(summary, time.perf_counter() - started)
    return _write_json_figures(args.json, summary)


def print_calibration(summary: dict[str, Any], seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from fedcmi.tools.calibrate import regime_failures

    title = f"calibration: val accuracies of central models over {summary['seeds']} seeds"
    table = Table(title=title, min_width=60)
    table.add_column("figure")
    table.add_column("mean", justify="right")
    table.add_column("SE", justify="right")
    for key, stat in summary["figures"].items():
        table.add_row(key, f"{stat['mean']:.4f}", f"{stat['se']:.4f}")
    table.add_row("weak", summary["weak"], "")
    console = Console(width=100)
    console.print(table)
    missed = regime_failures(summary)
    verdict = "meets the discriminating regime" if not missed else "does not meet the regime"
    console.print(f"{verdict}{': ' + '; '.join(missed) if missed else ''}; {seconds:.0f} s")


def _calibrate_grid(args: argparse.Namespace) -> int:
    from fedcmi.tools.calibrate import calibrate_grid, calibration_table
    from fedcmi.tools.sweep import load_grid

    if args.config or args.set or args.json:
        raise CLIError("--grid takes the grid file only (its base and [set] give the configs)")
    grid_path = _grid_path(args.grid)
    grid = load_grid(grid_path)
    out = Path(args.out) if args.out else Path("runs") / "calibration" / grid_path.stem
    print(f"fedcmi calibrate: {len(grid.cells)} settings from {grid_path} -> {out}")

    done = 0

    def report(cell, figures, status) -> None:
        nonlocal done
        done += 1
        extra = "" if figures is None else f" in {figures['seconds']:.0f} s"
        print(f"{cell.cell_id} {status}{extra}", flush=True)

    try:
        results = calibrate_grid(
            grid, out, args.epochs, args.jobs, on_cell=report, seeds=args.seeds
        )
    except KeyboardInterrupt:
        return stopped("calibration", done, len(grid.cells), out)
    print(calibration_table(results))
    print(f"results: {results}")
    return 0


def _grid_path(name: str) -> Path:
    """A grid file path, or a grid name looked up in the presets' grids/ folder."""
    path = Path(name)
    return path if path.is_file() else find_preset(str(Path("grids") / name))


def cmd_table(args: argparse.Namespace) -> int:
    from fedcmi.tools.tables import make_table

    by = args.by.split(",") if args.by else None
    metrics = args.metrics.split(",") if args.metrics else None
    print(make_table(args.results, by, metrics, args.format, baseline=args.baseline))
    if args.plot:
        from fedcmi.tools.plots import plot_sweep_bars
        from fedcmi.tools.results import read_results
        from fedcmi.tools.tables import summarise

        rows, axes = read_results(args.results)
        by = by or [a for a in axes if a != "seed"]
        bar_metrics = metrics or ["acc", "acc_v"]
        groups = summarise(rows, by, bar_metrics)
        print(plot_sweep_bars(groups, by, bar_metrics, Path(args.plot)))
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    from fedcmi.tools.curve import sweep_curve

    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        raise CLIError(f"--rates {args.rates!r}: expected comma-separated numbers") from None
    print(sweep_curve(args.sweep, rates, args.missing_seed))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from fedcmi.tools.plots import plot_runs

    out = Path(args.out) if args.out else Path(args.runs[0]) / "plots"
    for path in plot_runs(args.runs, out):
        print(path)
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    try:
        from fedcmi.flower.certs import make_certificates
    except ImportError:
        raise CLIError(
            "certificates need the cryptography package (pip install 'fedcmi[flower]')"
        ) from None
    hosts = tuple(args.host) or ("localhost", "127.0.0.1")
    for name, path in make_certificates(args.folder, hosts).items():
        print(f"{name:12s} {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from fedcmi.tools.bench import bench_engines, default_workload, print_engines

    cfg_path = resolve_config(args.config)
    cfg = load_config(cfg_path, args.set) if cfg_path else default_workload(args.set)
    results = bench_engines(cfg, deployment=args.deployment)
    print_engines(cfg, results)
    return _write_json_figures(args.json, results)


def _write_json_figures(path: str | None, figures: Any) -> int:
    """Benchmarks optionally save their figures as JSON (``--json PATH``)."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    import torch

    from fedcmi.tools.bench_speed import bench_speed, print_speed

    gpu = torch.cuda.is_available()
    scale = args.scale if args.scale is not None else (1.0 if gpu else 0.02)
    epochs = args.epochs if args.epochs is not None else (10 if gpu else 1)
    done: list[dict] = []

    def save(row: dict) -> None:  # after every row, so a run cut short keeps what it measured
        done.append(row)
        _write_json_figures(args.json, done)
        print(f"measured {row['workload']} / {row['variant']}: {row['seconds_per_round']} s")

    from fedcmi.engine.setup import select_device
    from fedcmi.engine.speed import resolve_precision

    chosen = resolve_precision("auto", select_device("auto"))
    print(f"tuned rows: precision auto -> {chosen.name} ({chosen.reason})")
    rows = bench_speed(args.workload.split(","), scale, epochs, args.compile, on_row=save)
    print_speed(rows, scale, epochs)
    return 0


def cmd_bench_scale(args: argparse.Namespace) -> int:
    from fedcmi.tools.bench_scale import SCALE_HEADER, bench_scale, scale_line

    print(SCALE_HEADER)

    def show(r: dict[str, Any]) -> None:
        print(scale_line(r), flush=True)

    result = bench_scale(show)
    print(f"machine: {result['machine']}, {result['date']}")
    return _write_json_figures(args.json, result)


def cmd_bench_faults(args: argparse.Namespace) -> int:
    from fedcmi.tools.bench import attack_line, attack_table, bench_attacks

    results: dict[str, Any] = {}
    if args.only != "attacks":
        results["mix"] = _bench_fault_mix(args)
    if args.only != "mix":
        preset = resolve_config(args.attack_config)
        assert preset is not None
        print(f"malicious clients ({preset.stem}, 5 clients per round, 30 rounds):")

        rows = bench_attacks(preset, args.set, lambda row: print(attack_line(row), flush=True))
        print(attack_table(rows))
        results["attacks"] = rows
    return _write_json_figures(args.json, results)


def _bench_fault_mix(args: argparse.Namespace) -> dict[str, Any]:
    from fedcmi.tools.bench import bench_faults, print_fault_mix

    cfg_path = resolve_config(args.config or "av-digits-fedcmi")
    overrides = args.set if args.config else ["rounds=10", *args.set]
    cfg = load_config(cfg_path, overrides)
    result = bench_faults(cfg)
    print_fault_mix(result)
    return result


def cmd_report(args: argparse.Namespace) -> int:
    from fedcmi.tools.report import build_report

    print(build_report(args.target, args.out))
    return 0


def add_set_option(
    parser: argparse.ArgumentParser,
    help: str = "override a config key, value parsed as TOML (repeatable)",
) -> None:
    """The one ``--set KEY=VALUE`` option of every command that reads a config."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedcmi", description=__doc__)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of every error (user errors print one line otherwise)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment on the embedded engine")
    run.add_argument("--config", help="TOML file or preset name (see `fedcmi configs`)")
    add_set_option(run)
    run.add_argument("--out", help="run folder (default: runs/<preset>-seed<seed>-<time>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its latest valid checkpoint",
    )
    run.add_argument(
        "--engine",
        choices=["embedded", "flower"],
        default="embedded",
        help="embedded (default, in-process) or flower (Flower's simulation engine)",
    )
    run.set_defaults(func=cmd_run)
    data = sub.add_parser("data", help="build or describe a dataset")
    data.add_argument("action", choices=["build", "info", "prepare"])
    data.add_argument("--src", help="prepare: the raw dataset folder")
    data.add_argument("--out", help="prepare: the cache folder to write")
    data.add_argument("--workers", type=int, default=1, help="prepare: decoding processes")
    data.add_argument(
        "--force", action="store_true", help="prepare: rebuild a cache made with other parameters"
    )
    data.add_argument("name", help="dataset name (av-digits, mfeat, crema-d, ave, crisismmd, ...)")
    add_set_option(data, "dataset knob, e.g. --set per_class=100 (repeatable)")
    data.set_defaults(func=cmd_data)
    configs = sub.add_parser("configs", help="list the presets")
    configs.set_defaults(func=cmd_configs)
    sweep = sub.add_parser("sweep", help="run a grid of experiments (resumable)")
    sweep.add_argument("grid", help="grid TOML file (or a name in configs/grids/)")
    sweep.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    sweep.add_argument("--out", help="sweep folder (default: runs/sweeps/<grid name>)")
    sweep.set_defaults(func=cmd_sweep)
    cal = sub.add_parser(
        "calibrate",
        help="describe a dataset setting by central training (unimodal, joint, oracle, probes)",
    )
    cal.add_argument("--config", help="TOML file or preset name (its data and training)")
    add_set_option(cal)
    cal.add_argument("--epochs", type=int, default=20, help="epochs of central training")
    cal.add_argument(
        "--seeds", type=int, default=3, help="run seeds per setting (the regime needs >= 3)"
    )
    cal.add_argument("--json", help="write the figures to this JSON file")
    cal.add_argument("--grid", help="calibrate every setting of a grid file's [axes] instead")
    cal.add_argument("--jobs", type=int, default=1, help="--grid: settings in parallel")
    cal.add_argument("--out", help="--grid: output folder (default runs/calibration/<grid>)")
    cal.set_defaults(func=cmd_calibrate)
    table = sub.add_parser("table", help="mean +- std table from a sweep's results.csv")
    table.add_argument("results", help="a sweep's results.csv")
    table.add_argument(
        "--by", help="comma-separated grouping columns, method first (default: every axis but seed)"
    )
    table.add_argument("--metrics", help="comma-separated metric columns")
    table.add_argument("--format", choices=["markdown", "latex", "csv", "html"], default="markdown")
    table.add_argument(
        "--baseline",
        metavar="METHOD",
        help="instead: each method's mean paired difference (same setting and seed) to this "
        "method, with a 95%% confidence interval; intervals excluding 0 are marked",
    )
    table.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw grouped bars (mean +- std) of the metrics to this file",
    )
    table.set_defaults(func=cmd_table)
    curve = sub.add_parser(
        "curve",
        help="accuracy against the test-time missing rate, from every finished run of a "
        "sweep (final models, no retraining): SWEEP/missing-curve.csv",
    )
    curve.add_argument("sweep", help="a sweep folder (holding results.csv)")
    curve.add_argument(
        "--rates", default="0.25,0.5,0.75", help="missing rates, each for a alone and v alone"
    )
    curve.add_argument(
        "--missing-seed", type=int, default=0, help="seed of the fixed masks (eval.missing_seed)"
    )
    curve.set_defaults(func=cmd_curve)
    plot = sub.add_parser("plot", help="PNG figures comparing run folders")
    plot.add_argument("runs", nargs="+", help="run folders")
    plot.add_argument("--out", help="output folder (default: <first run>/plots)")
    plot.set_defaults(func=cmd_plot)
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    engines = bench_sub.add_parser("engines", help="per-round time: embedded vs Flower")
    engines.add_argument("--config", help="workload preset (default: a small synthetic one)")
    add_set_option(engines)
    engines.add_argument(
        "--deployment",
        action="store_true",
        help="also a loopback TLS deployment (SuperLink + SuperNodes)",
    )
    engines.add_argument("--json", help="write the figures to this JSON file")
    engines.set_defaults(func=cmd_bench)
    speed = bench_sub.add_parser("speed", help="reference-style loop vs engine vs tuned settings")
    speed.add_argument(
        "--workload",
        default="crema-shaped,av-digits",
        help="comma-separated: crema-shaped, av-digits",
    )
    speed.add_argument(
        "--scale",
        type=float,
        default=None,
        help="crema-shaped client size as a fraction of 335 (default 1 on a GPU, 0.02 on a CPU)",
    )
    speed.add_argument(
        "--epochs", type=int, default=None, help="local epochs (default 10 on a GPU, 1 on a CPU)"
    )
    speed.add_argument(
        "--compile", action="store_true", help="add a 'tuned+compile' row (torch.compile)"
    )
    speed.add_argument("--json", help="write the rows to this JSON file (after every row)")
    speed.set_defaults(func=cmd_bench_speed)
    scale = bench_sub.add_parser("scale", help="round time and memory against the client count")
    scale.add_argument("--json", help="write the figures to this JSON file")
    scale.set_defaults(func=cmd_bench_scale)
    faults = bench_sub.add_parser("faults", help="a seeded fault mix against the fault-free run")
    faults.add_argument("--config", help="workload preset (default: av-digits-fedcmi, 10 rounds)")
    add_set_option(faults)
    faults.add_argument("--json", help="write the figures to this JSON file")
    faults.add_argument(
        "--only", choices=("mix", "attacks"), help="one of the two tables (default: both)"
    )
    faults.add_argument(
        "--attack-config",
        default="mfeat-hard-fedcmi",
        help="workload of the malicious-client table (default: mfeat-hard-fedcmi)",
    )
    faults.set_defaults(func=cmd_bench_faults)
    flower = sub.add_parser("flower", help="Flower deployment helpers")
    flower_sub = flower.add_subparsers(dest="flower_command", required=True)
    certs = flower_sub.add_parser("certs", help="test CA, server and client certificates (PEM)")
    certs.add_argument("folder", help="where the PEM files are written")
    certs.add_argument(
        "--host",
        action="append",
        default=[],
        help="server host name or IP for the certificate (repeatable; "
        "default localhost and 127.0.0.1)",
    )
    certs.set_defaults(func=cmd_certs)
    report = sub.add_parser("report", help="self-contained HTML report of a run or sweep folder")
    report.add_argument("target", help="a run folder or a sweep folder")
    report.add_argument("--out", help="HTML file (default: <target>/report.html)")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (:class:`fedcmi.errors.UserError`, a missing file)
    prints one line and returns 2; anything else is a bug and raises with its traceback;
    ``--debug`` shows the traceback of user errors too."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UserError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"fedcmi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
