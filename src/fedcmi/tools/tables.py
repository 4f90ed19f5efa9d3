"""Paper-style tables from a sweep's results.csv: mean +- std over seeds, best marked,
and paired differences to a baseline with confidence intervals.

Rows are grouped by the ``by`` columns (default: every grid axis except ``seed``). The
first ``by`` column names the method; the best mean of each metric is marked among the
rows that share the values of the other ``by`` columns (one setting), the highest for
accuracies and the lowest for ``per_class_std``, ``class_acc_std`` and ``wall_seconds``.
The standard deviation is the sample standard deviation over the grouped runs (0 for one
run).

Paired differences (``--baseline METHOD``): a seed gives every method the same data
split, federation and client schedule, so the runs of two methods with the same setting
and seed form a pair. For each method and setting, with d_s = metric(method, s) -
metric(baseline, s) over the n seeds both have::

    mean = (1/n) sum_s d_s,   half-width = t_{0.975, n-1} * sd(d) / sqrt(n)

(the two-sided 95% Student-t interval of the mean difference; sd the sample standard
deviation). A difference whose interval excludes 0 is marked when it rests on at least
``MIN_MARKED_PAIRS`` = 3 pairs (two pairs give an interval too unstable to call). Pairing
needs every axis but the seed in ``by`` (a narrower ``by`` would pair runs of different
settings) and is refused otherwise; a method and setting without any pair is listed with
0 pairs. A results.csv without rows, or with two rows of the same cell, is refused.
"""

from __future__ import annotations

import csv
import html
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcmi.errors import InputError
from fedcmi.tools.results import read_results

DEFAULT_METRICS = ("acc", "acc_a", "acc_v", "acc_va", "probe_a", "probe_v", "best_acc")
LOWER_IS_BETTER = {"per_class_std", "class_acc_std", "wall_seconds"}
NOT_RANKED = {"val_gain", "best_round", "rounds"}
CONFIDENCE = 0.95
MIN_MARKED_PAIRS = 3


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
    marks: set[tuple[int, str]] = set()
    for members in settings.values():
        for metric in (m for m in metrics if m not in NOT_RANKED):
            present = [(groups[i].stats[metric], i) for i in members]
            scored = [(stat.mean, i) for stat, i in present if stat is not None]
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
    body = []
    for i, group in enumerate(groups):
        cells: list[Any] = [*group.key, str(group.runs)]
        for metric in metrics:
            stat = group.stats[metric]
            cells.append(("–" if stat is None else _pm(stat, fmt), (i, metric) in marks))
        body.append(cells)
    return layout([*by, "runs", *metrics], body, fmt, label_columns=len(by) + 1)


def layout(header: list[str], body: list[list], fmt: str, label_columns: int) -> str:
    """A markdown, HTML or LaTeX table; a ``(text, True)`` cell is marked (bold)."""
    if fmt not in ("markdown", "html", "latex"):
        raise InputError(f"--format {fmt!r}: expected markdown, latex, html or csv")
    bold = {"markdown": "**{}**", "latex": "\\textbf{{{}}}", "html": "<b>{}</b>"}[fmt]

    def text(cell) -> str:
        value, marked = cell if isinstance(cell, tuple) else (cell, False)
        if fmt == "html":
            value = html.escape(value)
        elif fmt == "latex":
            value = value.replace("_", r"\_")
        return bold.format(value) if marked else value

    rows = [[text(c) for c in row] for row in body]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{cells}</table>"
    spec = "l" * label_columns + "r" * (len(header) - label_columns)
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    lines.append(" & ".join(h.replace("_", r"\_") for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


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


@dataclass
class Paired:
    """Mean paired difference to the baseline, its interval half-width and pair count."""

    mean: float
    half_width: float | None  # None with a single pair
    n: int

    @property
    def excludes_zero(self) -> bool:
        """Marked: enough pairs, and the interval excludes 0."""
        enough = self.n >= MIN_MARKED_PAIRS and self.half_width is not None
        return enough and abs(self.mean) > (self.half_width or 0.0)


def paired_difference(diffs: list[float], confidence: float = CONFIDENCE) -> Paired:
    """Mean of ``diffs`` and the half-width of its two-sided Student-t interval."""
    from scipy.stats import t

    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return Paired(mean, None, n)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(diffs) / n**0.5
    return Paired(mean, half, n)


def paired_groups(
    rows: list[dict[str, str]], by: list[str], metrics: list[str], baseline: str
) -> list[tuple[tuple[str, ...], dict[str, Paired | None]]]:
    """For every (method, setting) but the baseline's: each metric's paired difference."""
    if "seed" not in rows[0]:
        raise InputError("--baseline pairs runs by seed: results.csv has no 'seed' column")
    method, setting = by[0], by[1:]
    if baseline not in {r[method] for r in rows}:
        raise InputError(f"--baseline {baseline!r}: no runs of that {method} in the results")
    base = {(tuple(r[c] for c in setting), r["seed"]): r for r in rows if r[method] == baseline}
    buckets: dict[tuple[str, ...], list[tuple[dict[str, str], dict[str, str]]]] = {}
    for row in rows:
        if row[method] == baseline:
            continue
        pairs = buckets.setdefault(tuple(row[c] for c in by), [])
        partner = base.get((tuple(row[c] for c in setting), row["seed"]))
        if partner is not None:
            pairs.append((row, partner))
    out = []
    for key, pairs in buckets.items():
        stats: dict[str, Paired | None] = {}
        for metric in metrics:
            diffs = [
                float(r[metric]) - float(b[metric])
                for r, b in pairs
                if r.get(metric, "") != "" and b.get(metric, "") != ""
            ]
            stats[metric] = paired_difference(diffs) if diffs else None
        out.append((key, stats))
    return out


def check_cells(rows: list[dict[str, str]], axes: list[str], path: str | Path) -> None:
    """Refuse a results.csv without rows or with two rows for one cell."""
    if not rows:
        raise InputError(f"{path}: no runs (only a header); nothing to tabulate")
    seen: dict[tuple[str, ...], int] = {}
    for line, row in enumerate(rows, start=2):
        cell = tuple(row[a] for a in axes)
        if cell in seen:
            where = ", ".join(f"{a}={v}" for a, v in zip(axes, cell))
            raise InputError(f"{path}: lines {seen[cell]} and {line} are the same cell ({where})")
        seen[cell] = line


def check_pairing(by: list[str], axes: list[str], path: str | Path) -> None:
    """--baseline pairs runs that differ only in the method: every other axis but the
    seed must be in ``by``."""
    missing = [a for a in axes if a != "seed" and a not in by]
    if missing:
        raise InputError(
            f"--baseline with --by {','.join(by)}: {path} also varies {', '.join(missing)}; "
            "add them to --by (pairs must share every setting but the method)"
        )


def render_paired(
    groups: list[tuple[tuple[str, ...], dict[str, Paired | None]]],
    by: list[str],
    metrics: list[str],
    fmt: str,
) -> str:
    """Cells ``+mean [low, high]``, marked where the interval excludes 0."""
    if fmt == "csv":
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        cols = ("diff", "low", "high", "excludes_0")
        writer.writerow([*by, "pairs", *(f"{m}_{c}" for m in metrics for c in cols)])
        for key, stats in groups:
            row: list = [*key, max((s.n for s in stats.values() if s), default=0)]
            for metric in metrics:
                st = stats[metric]
                if st is None or st.half_width is None:
                    row += ["" if st is None else f"{st.mean:.6f}", "", "", ""]
                else:
                    low, high = st.mean - st.half_width, st.mean + st.half_width
                    mark = "*" if st.excludes_zero else ""
                    row += [f"{st.mean:.6f}", f"{low:.6f}", f"{high:.6f}", mark]
            writer.writerow(row)
        return buf.getvalue().rstrip("\n")
    body = []
    for key, stats in groups:
        cells: list = [*key, str(max((s.n for s in stats.values() if s), default=0))]
        for metric in metrics:
            st = stats[metric]
            if st is None:
                cells.append("–")
            elif st.half_width is None:
                cells.append(f"{st.mean:+.4f}")
            else:
                low, high = st.mean - st.half_width, st.mean + st.half_width
                cells.append((f"{st.mean:+.4f} [{low:+.4f}, {high:+.4f}]", st.excludes_zero))
        body.append(cells)
    header = [*by, "pairs", *(f"Δ{m}" if fmt != "latex" else f"d {m}" for m in metrics)]
    return layout(header, body, fmt, label_columns=len(by) + 1)


def make_table(
    path: str | Path,
    by: list[str] | None = None,
    metrics: list[str] | None = None,
    fmt: str = "markdown",
    baseline: str | None = None,
) -> str:
    """The mean +- std table of a results.csv, or with ``baseline`` the paired
    differences of every other method to it (see the module docstring)."""
    rows, axes = read_results(path)
    by = by or [a for a in axes if a != "seed"]
    unknown = [c for c in by if c not in axes]
    if unknown:
        raise InputError(
            f"--by {', '.join(unknown)}: not a column of {path} (axes: {', '.join(axes)})"
        )
    metrics = metrics or list(DEFAULT_METRICS)
    check_cells(rows, axes, path)
    if baseline is not None:
        check_pairing(by, axes, path)
        return render_paired(paired_groups(rows, by, metrics, baseline), by, metrics, fmt)
    return render(summarise(rows, by, metrics), by, metrics, fmt)
