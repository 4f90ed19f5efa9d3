"""Paper-style tables from a sweep's results.csv: mean +- std over seeds, best marked.

Rows are grouped by the ``by`` columns (default: every grid axis except ``seed``). The
first ``by`` column names the method; the best mean of each metric is marked among the
rows that share the values of the other ``by`` columns (one setting), the highest for
accuracies and the lowest for ``per_class_std`` and ``wall_seconds``. The standard
deviation is the sample standard deviation over the grouped runs (0 for one run).
"""

from __future__ import annotations

import csv
import html
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fedcmi.sweep import RESULT_COLUMNS

DEFAULT_METRICS = ("acc", "acc_a", "acc_v", "acc_av", "acc_va", "last_acc", "per_class_std")
LOWER_IS_BETTER = {"per_class_std", "wall_seconds"}


@dataclass
class Stat:
    mean: float
    std: float
    n: int


@dataclass
class Group:
    key: tuple[str, ...]
    stats: dict[str, Stat | None]
    runs: int


def read_results(path: str | Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of results.csv and its axis columns (every column before the metrics)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    if RESULT_COLUMNS[0] not in header:
        raise ValueError(f"{path}: no {RESULT_COLUMNS[0]!r} column; is this a sweep's results.csv?")
    return rows, header[: header.index(RESULT_COLUMNS[0])]


def summarise(rows: list[dict[str, str]], by: list[str], metrics: list[str]) -> list[Group]:
    buckets: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        buckets[tuple(row[c] for c in by)].append(row)
    groups = []
    for key, members in buckets.items():
        stats: dict[str, Stat | None] = {}
        for metric in metrics:
            values = [float(r[metric]) for r in members if r.get(metric, "") != ""]
            stats[metric] = (
                Stat(
                    statistics.fmean(values),
                    statistics.stdev(values) if len(values) > 1 else 0.0,
                    len(values),
                )
                if values
                else None
            )
        groups.append(Group(key, stats, len(members)))
    return groups


def best_marks(groups: list[Group], metrics: list[str]) -> set[tuple[int, str]]:
    """(group index, metric) pairs holding the best mean within their setting."""
    settings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        settings[group.key[1:]].append(i)
    marks = set()
    for members in settings.values():
        for metric in metrics:
            scored = [(groups[i].stats[metric].mean, i) for i in members if groups[i].stats[metric]]
            if len(scored) < 2:
                continue
            pick = min if metric in LOWER_IS_BETTER else max
            target = pick(scored)[0]
            marks.update((i, metric) for value, i in scored if value == target)
    return marks


def render(groups: list[Group], by: list[str], metrics: list[str], fmt: str) -> str:
    marks = best_marks(groups, metrics)
    if fmt == "csv":
        return _render_csv(groups, by, metrics, marks)
    header = [*by, "runs", *metrics]
    body = []
    for i, group in enumerate(groups):
        cells = [*(html.escape(k) if fmt == "html" else k for k in group.key), str(group.runs)]
        for metric in metrics:
            stat = group.stats[metric]
            text = "–" if stat is None else _pm(stat, fmt)
            if fmt == "html":
                text = html.escape(text)
            if (i, metric) in marks:
                text = {"markdown": "**{}**", "latex": "\\textbf{{{}}}", "html": "<b>{}</b>"}[
                    fmt
                ].format(text)
            cells.append(text)
        body.append(cells)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
        return f"<table><tr>{head}</tr>{rows}</table>"
    if fmt == "latex":
        esc = [h.replace("_", r"\_") for h in header]
        lines = [r"\begin{tabular}{" + "l" * (len(by) + 1) + "r" * len(metrics) + "}", r"\toprule"]
        lines.append(" & ".join(esc) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(c.replace("_", r"\_") for c in row) + r" \\" for row in body]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    raise ValueError(f"--format {fmt!r}: expected markdown, latex, html or csv")


def _pm(stat: Stat, fmt: str) -> str:
    sep = r" $\pm$ " if fmt == "latex" else " ± "
    return f"{stat.mean:.4f}{sep}{stat.std:.4f}"


def _render_csv(groups, by, metrics, marks) -> str:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*by, "runs", *(f"{m}_{s}" for m in metrics for s in ("mean", "std", "best"))])
    for i, group in enumerate(groups):
        row = [*group.key, group.runs]
        for metric in metrics:
            stat = group.stats[metric]
            row += (
                ["", "", ""]
                if stat is None
                else [f"{stat.mean:.6f}", f"{stat.std:.6f}", "*" if (i, metric) in marks else ""]
            )
        writer.writerow(row)
    return buf.getvalue().rstrip("\n")


def make_table(
    path: str | Path,
    by: list[str] | None = None,
    metrics: list[str] | None = None,
    fmt: str = "markdown",
) -> str:
    rows, axes = read_results(path)
    by = by or [a for a in axes if a != "seed"]
    unknown = [c for c in by if c not in axes]
    if unknown:
        raise ValueError(
            f"--by {', '.join(unknown)}: not a column of {path} (axes: {', '.join(axes)})"
        )
    metrics = metrics or list(DEFAULT_METRICS)
    return render(summarise(rows, by, metrics), by, metrics, fmt)
