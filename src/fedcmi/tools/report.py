"""One self-contained HTML report (figures embedded as base64 PNG) for a run or a sweep."""

from __future__ import annotations

import base64
import html
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from fedcmi.engine.run_folder import RunFolder
from fedcmi.tools import plots
from fedcmi.tools.results import read_results
from fedcmi.tools.tables import (
    DEFAULT_METRICS,
    paired_groups,
    render,
    render_paired,
    summarise,
)

PAIRED_BASELINE = "fedavg"  # a sweep report shows every method's paired difference to it

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; margin: .5em 0; border: 1px solid #eee; }
"""


def build_report(target: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run folder or a sweep folder; returns its path."""
    target = Path(target)
    if (target / "results.csv").is_file():
        body = _sweep_sections(target)
        title = f"Sweep report: {target.name}"
    elif RunFolder(target).is_run():
        body = _run_sections(target)
        title = f"Run report: {target.name}"
    else:
        raise FileNotFoundError(
            f"{target} is neither a run folder (metrics.jsonl) nor a sweep folder (results.csv)"
        )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    path = Path(out) if out else target / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    text = html.escape(caption)
    return (
        f"<figure><img alt='{text}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{text}</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _figures(run_dirs: list[Path]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        files = plots.plot_runs(run_dirs, tmp)
        return "".join(_img(f, f.stem.replace("_", " ")) for f in files)


def _run_sections(run_dir: Path) -> str:
    folder = RunFolder(run_dir)
    summary, manifest, config = folder.summary(), folder.manifest(), folder.config_text()
    keys, rows = summary.rows()
    probes = [[k, v] for k, v in summary.probes().items()]
    sizes = [c["num_samples"] for c in manifest["clients"]]
    fed = [
        ["clients", manifest["num_clients"]],
        ["modalities (av / a / v)", "{av} / {a} / {v}".format(**manifest["modality_counts"])],
        [
            "samples per client (min / median / max)",
            f"{min(sizes)} / {statistics.median(sizes):g} / {max(sizes)}",
        ],
        ["dataset", json.dumps(manifest["dataset"]["sizes"])],
    ]
    clients = [
        [c["cid"], c["modalities"], c["num_samples"], " ".join(map(str, c["class_counts"]))]
        for c in manifest["clients"]
    ]
    return (
        f"<p>{html.escape(summary.algorithm)} on {html.escape(summary.dataset)}, "
        f"seed {summary.seed}, {summary.rounds} rounds on {html.escape(summary.device)}; "
        f"{summary.train_seconds:.1f} s training. The primary figures are the means over "
        f"the last {summary.last_rounds} rounds; the best round is chosen on smoothed val "
        "accuracy.</p>"
        "<h2>Test metrics</h2>"
        + _table(["rounds", *keys], rows)
        + ("<h2>Linear probes of the final encoders</h2>" + _table(["", "test"], probes))
        + "<h2>Figures</h2>"
        + _figures([run_dir])
        + "<h2>Federation</h2>"
        + _table(["", ""], fed)
        + _table(["client", "modalities", "samples", "class counts"], clients)
        + f"<h2>Config</h2><pre>{html.escape(config)}</pre>"
    )


def _sweep_sections(sweep_dir: Path) -> str:
    rows, axes = read_results(sweep_dir / "results.csv")
    by = [a for a in axes if a != "seed"]
    metrics = list(DEFAULT_METRICS)
    groups = summarise(rows, by, metrics)
    grid = (sweep_dir / "grid.toml").read_text() if (sweep_dir / "grid.toml").is_file() else ""
    parts = [f"<p>{len(rows)} finished runs; mean ± std over seeds, best per setting in bold.</p>"]
    parts.append("<h2>Results</h2>" + render(groups, by, metrics, "html"))
    methods = {r[by[0]] for r in rows} if by else set()
    if "seed" in axes and PAIRED_BASELINE in methods and len(methods) > 1:
        pairs = paired_groups(rows, by, metrics, PAIRED_BASELINE)
        paired = render_paired(pairs, by, metrics, "html")
        parts.append(
            f"<h2>Paired differences to {PAIRED_BASELINE}</h2><p>Mean over the seeds both "
            "methods ran [95% Student-t interval]; bold where the interval excludes 0.</p>" + paired
        )
    with tempfile.TemporaryDirectory() as tmp:
        bars = plots.plot_sweep_bars(groups, by, ["acc", "probe_v"], Path(tmp) / "bars.png")
        parts.append(
            "<h2>Fused accuracy and the probe of the v encoder</h2>"
            + _img(bars, "mean ± std over seeds")
        )
    first = [
        sweep_dir / r["run_dir"]
        for r in rows
        if all(r[a] == rows[0][a] for a in by[1:])
        and r.get("seed", "0") == rows[0].get("seed", "0")
    ]
    if first:
        setting = ", ".join(f"{a}={rows[0][a]}" for a in by[1:])
        parts.append(f"<h2>Curves: {html.escape(setting)}</h2>" + _figures(first))
    parts.append(f"<h2>Grid</h2><pre>{html.escape(grid)}</pre>")
    return "".join(parts)
