"""Writes the measured tables and figures of the documentation and the README from the
committed data under docs/data (``make reference``). A page marks each generated table with
``<!-- data: NAME -->`` ... ``<!-- /data -->``; this script replaces what lies between the
marks with the table NAME rendered from its data, and ``tests/test_docs.py`` fails when a
committed page differs from what this writes, so no figure on a page can drift from the
data it came from.

Data (each written by the command given on the page that shows it):

- ``data/skew-trace/<variant>.csv``: ``benchmarks/fedcmi_step_trace.py --csv``, one local
  training of one client, step by step.
- ``data/<grid>/results.csv`` and ``failures.csv``: a sweep's tables, copied from
  ``runs/sweeps/<grid>/``.
- ``data/calibrate-*/calibration.csv``: ``fedcmi calibrate --grid``, copied from
  ``runs/calibration/<grid>/``.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Callable
from pathlib import Path

from fedcmi.config import read_toml
from fedcmi.tools.calibrate import calibration_table
from fedcmi.tools.curve import CURVE_FILE
from fedcmi.tools.tables import layout, make_table, paired_difference

DOCS = Path(__file__).resolve().parent
DATA = DOCS / "data"
GRIDS = DOCS.parent / "configs" / "grids"
PAGES = (DOCS / "algorithm.md", DOCS / "results.md", DOCS.parent / "README.md")
SEEDED_GRIDS = (  # compared over seeds, paired tables
    "skew-", "stabiliser-", "fairness-", "paper-", "missing-", "server-opt-", "selection-",
    "ablation-", "test-missing-", "quality-",
)  # fmt: skip
# The figures a grid's tables show, by the grid's name prefix (default: accuracy and probes).
GRID_METRICS = {
    "tune-": ["val_acc"],
    "fairness-": ["acc", "worst_class_acc", "class_acc_std"],
    "paper-": ["acc", "acc_a", "acc_v", "acc_va", "probe_a", "probe_v"],
    "ablation-": ["acc", "acc_v", "acc_va", "probe_a", "probe_v"],
    "test-missing-": ["acc", "missing_acc", "missing_acc_a", "missing_acc_v"],
    "quality-": ["acc", "acc_a", "acc_v", "probe_a", "probe_v"],
}
BASELINES = ("fedavg", "fedavg-momentum0", "fedcmi", "fedcmi-paper", "uniform", "sgd")
EXTREMES = ("max_client_loss", "max_grad_norm")  # results.csv columns
VALUE = re.compile(r"(<!-- value: (?P<key>[\w.:@,=*+-]+) -->)(?P<body>[^<]*)(<!-- /value -->)")
BLOCK = re.compile(r"(<!-- data: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /data -->)", re.S)

TRACE_COLUMNS = {  # column of the trace CSV -> table header
    "fused": "fused",
    "head_a": "λ1·CE_a",
    "head_v": "λ1·CE_v",
    "cmi": "λ2·L_cmi",
    "cmi_reference": "L_cmi, authors' code",
    "grad_norm": "‖g‖",
    "grad_enc_a": "‖g‖ enc_a",
    "grad_enc_v": "‖g‖ enc_v",
    "grad_head_v": "‖g‖ head_v",
    "grad_inf_v": "‖g‖ inf_v",
}
TRACE_VARIANTS = {  # file stem -> what differs from the published method
    "faithful": "the published method",
    "uniform-temperature": "T = 1 for every class",
    "local-teacher": "teacher: the client's own dominant head",
    "separate-ip-classifier": "own classifier for the infiltration projector",
    "no-infiltration-projector": "distil into the weak self-projector",
    "no-cmi": "λ2 = 0 (no infiltration loss)",
    "momentum0": "SGD momentum 0 instead of 0.9",
    "clip10": "gradient norm clipped to 10",
    "tscaled": "L_cmi per sample times T_y",
    "fedavg": "FedAvg (fused cross-entropy only; its own rounds 1-4)",
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def method(row: dict[str, str]) -> str:
    """The row's method: its variant in a grid of variants, else its algorithm."""
    return row["variant"] if "variant" in row else row["algorithm.name"]


def number(text: str, digits: int = 3) -> str:
    """A figure as the tables show it: ``inf``/``nan`` spelled out, else ``digits``
    significant digits."""
    value = float(text)
    return f"{value:.{digits}g}" if value == value and abs(value) != float("inf") else text


def trace_table(stem: str) -> str:
    """Every step of one traced local training."""
    rows = read_csv(DATA / "skew-trace" / f"{stem}.csv")
    columns = [c for c in TRACE_COLUMNS if c in rows[0]]
    body = [[r["step"], *(number(r[c]) if r[c] else "–" for c in columns)] for r in rows]
    return layout(["step", *(TRACE_COLUMNS[c] for c in columns)], body, "markdown", 1)


def trace_variants_table() -> str:
    """One row per traced variant: the largest value each weak-branch term and the
    gradient norm reach over the client's local steps."""
    body = []
    for stem, change in TRACE_VARIANTS.items():
        path = DATA / "skew-trace" / f"{stem}.csv"
        if not path.is_file():
            continue
        rows = read_csv(path)

        def peak(column: str, rows: list[dict[str, str]] = rows) -> str:
            values = [float(r[column]) for r in rows if r.get(column, "") != ""]
            return number(str(max(values))) if values else "–"

        first = rows[0]
        body.append(
            [
                stem,
                change,
                number(first["grad_norm"]),
                peak("grad_norm"),
                peak("fused" if "fused" in first else "ce"),
                peak("head_v"),
                peak("cmi"),
            ]
        )
    header = ["variant", "differs from the paper", "‖g‖ step 1", "max ‖g‖", "max fused",
              "max λ1·CE_v", "max λ2·L_cmi"]  # fmt: skip
    return layout(header, body, "markdown", 2)


def tuning_table(grid: str) -> str:
    """Val accuracy (last 5 rounds) per variant and seed, their mean (the best in bold),
    and the largest client training loss and step gradient norm of any round."""
    rows = read_csv(DATA / grid / "results.csv")
    seeds = sorted({r["seed"] for r in rows}, key=int)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    val = {(r["variant"], r["seed"]): float(r["val_acc"]) for r in rows}
    means = {v: statistics.fmean(val[v, s] for s in seeds if (v, s) in val) for v in variants}
    best = max(means.values())
    body = []
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        peaks = [number(str(max(float(r[c]) for r in mine))) for c in EXTREMES]
        cells = [f"{val[v, s]:.3f}" if (v, s) in val else "–" for s in seeds]
        body.append([v, *cells, (f"{means[v]:.3f}", means[v] == best), *peaks])
    header = ["variant", *(f"val, seed {s}" for s in seeds), "mean", "max client loss", "max ‖g‖"]
    return layout(header, body, "markdown", 1)


def grid_table(grid: str, baseline: str | None = None) -> str:
    """A sweep's mean ± std table (``fedcmi table``), or its paired differences to
    ``baseline`` (``fedcmi table --baseline``), over every axis but the seed."""
    path = DATA / grid / "results.csv"
    metrics = next(
        (list(m) for prefix, m in GRID_METRICS.items() if grid.startswith(prefix)),
        ["acc", "probe_a", "probe_v"],
    )
    if baseline is None:
        metrics += [m for m in ("val_acc", "val_gain") if m not in metrics]
    axes = grid_axes(grid)
    if baseline is None:
        # the method column first: the algorithm, else the variant (a grid varying both
        # uses its variants as settings: missing rates, server optimisers)
        first = next((a for a in ("algorithm.name", "variant") if a in axes), next(iter(axes)))
    else:  # the axis holding the baseline: power-of-choice is paired with uniform selection
        first = next(a for a, values in axes.items() if baseline in values)
    by = [first, *(a for a in axes if a != first)]  # the compared column first
    return make_table(path, by=by, metrics=metrics, baseline=baseline)


def grid_file(grid: str) -> Path:
    """``GRID``'s results.csv, or for ``GRID+curve`` its missing-curve.csv (``fedcmi
    curve``: the final models on masked test sets)."""
    name, _, part = grid.partition("+")
    return DATA / name / {"": "results.csv", "curve": CURVE_FILE}[part]


def grid_axes(grid: str) -> dict[str, list[str]]:
    """Every axis of a committed grid but the seed (of ``GRID+curve``: and ``masked``),
    with the values its results.csv holds."""
    rows = read_csv(grid_file(grid))
    name, _, part = grid.partition("+")
    names = [a for a in read_toml(GRIDS / f"{name}.toml")["axes"] if a != "seed"]
    names += ["masked"] if part else []
    return {a: list(dict.fromkeys(r[a] for r in rows)) for a in names}


METHOD_NAMES = {  # algorithm.name -> how the README's headline table names it
    "fedavg": "FedAvg",
    "fedprox": "FedProx",
    "fedavg-ogm": "FedAvg + OGM-GE",
    "fedavg-pmr": "FedAvg + PMR",
    "fedavg-agm": "FedAvg + AGM",
    "fedproto": "FedProto",
    "scaffold": "SCAFFOLD",
    "fedcmi": "FedCMI",
}


def headline_table(grid: str, ratio: str | None = None, ours: str = "fedcmi") -> str:
    """The multimodal methods of a grid (of a paper grid: at one ``multimodal_ratio``):
    fused accuracy and both probes as mean ± std over the seeds, a baseline's figure in
    bold where ``ours`` minus it, paired by seed, has a 95% interval excluding 0 (3 pairs
    or more)."""
    metrics = ("acc", "probe_a", "probe_v")
    rows = [r for r in read_csv(DATA / grid / "results.csv")
            if ratio is None or r["federation.multimodal_ratio"] == ratio]  # fmt: skip
    by_method = {m: {r["seed"]: r for r in rows if method(r) == m} for m in METHOD_NAMES}
    mine = by_method[ours]
    body = []
    for name, runs in by_method.items():
        if not runs:
            continue
        cells: list = [(METHOD_NAMES[name], name == ours)]
        for metric in metrics:
            values = [float(r[metric]) for r in runs.values()]
            text = f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
            diffs = [
                float(mine[s][metric]) - float(r[metric]) for s, r in runs.items() if s in mine
            ]
            marked = name != ours and paired_difference(diffs).excludes_zero
            cells.append((text, marked))
        body.append(cells)
    return layout(["method", *metrics], body, "markdown", 1)


def curve_table(grid: str, baseline: str | None = None) -> str:
    """``fedcmi curve``'s points of a grid (every head of the final models on the masked
    test sets), or their paired differences to ``baseline``."""
    by, figures = ["algorithm.name", "masked"], ["acc", "acc_a", "acc_v"]
    return make_table(grid_file(f"{grid}+curve"), by=by, metrics=figures, baseline=baseline)


def dominance_table(grid: str, ours: str = "fedcmi") -> str:
    """Per run of ``ours`` (and per variant, where the grid has variants): the share of
    batches in which modality a dominated on the clients of each quality profile over
    the last rounds (results.csv's ``a_dominant_p{k}``; "–" where the run has no such
    profile), then the mean over the seeds."""
    rows = [r for r in read_csv(DATA / grid / "results.csv") if r["algorithm.name"] == ours]
    columns = sorted(c for c in rows[0] if c.startswith("a_dominant_p"))
    groups = dict.fromkeys(r.get("variant", ours) for r in rows)
    body = []
    for group in groups:
        mine = [r for r in rows if r.get("variant", ours) == group]
        for r in mine:
            body.append([group, r["seed"], *(number(r[c]) if r[c] else "–" for c in columns)])
        means = [[float(r[c]) for r in mine if r[c]] for c in columns]
        body.append([group, "mean", *(f"{statistics.fmean(m):.3f}" if m else "–" for m in means)])
    header = ["run", "seed", *(f"a dominant, profile {c.removeprefix('a_dominant_p')}"
                               for c in columns)]  # fmt: skip
    return layout(header, body, "markdown", 2)


def failure_table(grid: str) -> str:
    """Per variant (and label skew, where the grid varies it): runs finished, runs
    stopped by a non-finite update, runs whose largest client loss passed 100 (a spike: a
    run that trains stays near 1-15)."""
    results = read_csv(DATA / grid / "results.csv")
    failures = read_csv(DATA / grid / "failures.csv")
    keys = [k for k in ("federation.alpha", "variant") if k in (results + failures)[0]]

    def group(row: dict[str, str]) -> tuple[str, ...]:
        return tuple(row[k] for k in keys)

    body = []
    for cell in dict.fromkeys(group(r) for r in results + failures):
        done = [r for r in results if group(r) == cell]
        stopped = sum(group(r) == cell for r in failures)
        spiked = sum(float(r["max_client_loss"]) > 100 for r in done)
        peak = max((float(r["max_client_loss"]) for r in done), default=float("nan"))
        body.append([*cell, str(len(done)), str(stopped), str(spiked), number(str(peak))])
    header = [*(k.rsplit(".", 1)[-1] for k in keys), "finished", "stopped (non-finite)",
              "spiked (client loss > 100)", "max client loss"]  # fmt: skip
    return layout(header, body, "markdown", len(keys))


def runs_table(grid: str) -> str:
    """One row per cell of a grid without seeds: how far it got and what it reached
    (a cell in failures.csv stopped on a non-finite update and has no figures)."""
    rows: dict[str, list[str]] = {}
    for row in read_csv(DATA / grid / "results.csv"):
        rows[row["variant"]] = [
            row["variant"], row["rounds"], "finished", f"{float(row['acc']):.3f}",
            f"{float(row['val_acc']):.3f}", number(row["max_client_loss"]),
            number(row["max_grad_norm"]),
        ]  # fmt: skip
    for row in read_csv(DATA / grid / "failures.csv"):
        reason = row["error"].split("; last failures")[0]  # the clients' reasons follow
        rows[row["variant"]] = [row["variant"], "–", f"stopped: {reason}", "–", "–", "–", "–"]
    order = read_toml(GRIDS / f"{grid}.toml")["axes"]["variant"]
    body = [rows[v] for v in order if v in rows]
    header = ["variant", "rounds", "outcome", "acc", "val_acc", "max client loss", "max ‖g‖"]
    return layout(header, body, "markdown", 1)


def renderers() -> dict[str, Callable[[], str]]:
    tables: dict[str, Callable[[], str]] = {
        "skew-trace": lambda: trace_table("faithful"),
        "skew-trace-variants": trace_variants_table,
    }
    for grid in ("tune-fedcmi-skew-av-digits-hard", "tune-fedcmi-stabiliser-av-digits-hard"):
        if (DATA / grid / "results.csv").is_file():
            tables[grid] = lambda g=grid: tuning_table(g)
    seeded = [p.name for p in DATA.iterdir() if p.name.startswith(SEEDED_GRIDS)]
    for grid in sorted(seeded):
        if (DATA / grid / "results.csv").is_file():
            tables[f"{grid}"] = lambda g=grid: grid_table(g)
            tables[f"{grid}-failures"] = lambda g=grid: failure_table(g)
            values = {v for vs in grid_axes(grid).values() for v in vs}
            for base in BASELINES:
                if base in values:
                    tables[f"{grid}-paired-{base}"] = lambda g=grid, b=base: grid_table(g, b)
    if (DATA / "paper-av-digits-hard" / "results.csv").is_file():
        tables["paper-av-digits-hard-headline"] = lambda: headline_table(
            "paper-av-digits-hard", "1.0"
        )
    for grid in sorted(p.name for p in DATA.iterdir() if p.name.startswith("quality-")):
        tables[f"{grid}-headline"] = lambda g=grid: headline_table(g)
        tables[f"{grid}-dominance"] = lambda g=grid: dominance_table(g)
    for grid in sorted(p.parent.name for p in DATA.glob(f"*/{CURVE_FILE}")):
        tables[f"{grid}-curve"] = lambda g=grid: curve_table(g)
        tables[f"{grid}-curve-paired-fedcmi"] = lambda g=grid: curve_table(g, "fedcmi")
    for grid in ("tune-agm-av-digits-hard", "tune-mfeat-hard", "tune-mfeat-hard-extended"):
        if (DATA / grid / "results.csv").is_file():
            tables[grid] = lambda g=grid: grid_table(g)
    for grid in ("calibrate-av-digits", "calibrate-av-digits-hard", "calibrate-mfeat"):
        if (DATA / grid / "calibration.csv").is_file():
            tables[grid] = lambda g=grid: calibration_table(DATA / g / "calibration.csv")
    if (DATA / "stability-av-digits-hard" / "results.csv").is_file():
        tables["stability-av-digits-hard"] = lambda: runs_table("stability-av-digits-hard")
    return tables


def value(key: str) -> str:
    """One figure for running text, by key:

    - ``trace:STEM:STEP:COLUMN``: a cell of ``data/skew-trace/STEM.csv``;
    - ``trace-max:STEM:COLUMN``: that column's largest value over the steps;
    - ``max:GRID:VARIANT:COLUMN``: the largest COLUMN of VARIANT's runs in
      ``data/GRID/results.csv``;
    - ``cell:GRID:VARIANT:COLUMN``: COLUMN of the one run of VARIANT (a grid without
      seeds);
    - ``mean:GRID:VARIANT:RATIO:METRIC``: METRIC's mean over the seeds of VARIANT at
      ``federation.multimodal_ratio`` RATIO (``std:``: its standard deviation);
    - ``diff:GRID:VARIANT:BASE:RATIO:METRIC``: VARIANT minus BASE paired by seed, in
      points, with its 95% interval (``fedcmi table --baseline``); for these two and
      ``std:``, ``GRID@ALPHA`` keeps the runs at ``federation.alpha`` ALPHA and
      ``GRID@AXIS=VALUE`` those with AXIS at VALUE; RATIO ``*`` takes every ratio;
      ``GRID+curve`` reads the grid's missing-curve.csv (``fedcmi curve``) instead;
    - ``val:GRID:VARIANT``: VARIANT's val accuracy in ``data/GRID/results.csv``, mean
      over its seeds;
    - ``calmax:GRID:FIGURE``: the largest mean of FIGURE over the settings of
      ``data/GRID/calibration.csv``;
    - ``calcell:GRID:SETTING:FIGURE``: FIGURE's mean ± standard error at SETTING, the
      setting's axis values joined by commas (``fou,mor``; ``-4.0,1.2``);
    - ``calregime:GRID``: the settings of ``data/GRID/calibration.csv`` in the regime;
    - ``tally:GRID:OURS:METRIC[:M1,M2,...]``: over every (method, setting) pair of the
      grid (or of the listed methods), how often OURS minus the method, paired by seed,
      is measurably positive and measurably negative (95% interval excluding 0).
    """
    kind, *args = key.split(":")
    if kind in ("trace", "trace-max"):
        rows = read_csv(DATA / "skew-trace" / f"{args[0]}.csv")
        if kind == "trace":
            return number(rows[int(args[1]) - 1][args[2]])
        return number(str(max(float(r[args[1]]) for r in rows if r[args[1]] != "")))
    if kind == "max":
        rows = read_csv(DATA / args[0] / "results.csv")
        return number(str(max(float(r[args[2]]) for r in rows if method(r) == args[1])))
    if kind == "cell":
        rows = read_csv(DATA / args[0] / "results.csv")
        (row,) = [r for r in rows if method(r) == args[1]]
        return f"{float(row[args[2]]):.3f}"
    if kind in ("mean", "std", "diff"):
        return grid_figure(kind, *args)
    if kind == "val":
        rows = read_csv(DATA / args[0] / "results.csv")
        vals = [float(r["val_acc"]) for r in rows if method(r) == args[1]]
        return f"{statistics.fmean(vals):.3f}"
    if kind in ("calmax", "calcell", "calregime"):
        return calibration_figure(kind, *args)
    if kind == "tally":
        return tally(*args)
    kinds = "trace, trace-max, max, cell, mean, std, diff, val, calmax, calcell, calregime, tally"
    raise KeyError(f"value {key!r}: unknown kind {kind!r} ({kinds})")


def calibration_figure(kind: str, grid: str, *rest: str) -> str:
    """``calmax`` / ``calcell`` / ``calregime`` of :func:`value`, from
    ``data/GRID/calibration.csv``."""
    rows = read_csv(DATA / grid / "calibration.csv")
    if kind == "calmax":
        return f"{max(float(r[rest[0]]) for r in rows):.3f}"
    axes = list(rows[0])[: list(rows[0]).index("unimodal_a")]
    if kind == "calregime":  # the settings in the regime, as "a = x, b = y; ..."
        found = [r for r in rows if r["regime"] == "yes"]
        names = [a.rsplit(".", 1)[-1] for a in axes]
        return "; ".join(", ".join(f"{n} {r[a]}" for n, a in zip(names, axes)) for r in found)
    setting, figure = rest

    def key(row: dict[str, str]) -> str:
        return ",".join(re.sub(r"[\[\]' ]", "", row[a]) for a in axes)

    (row,) = [r for r in rows if key(r) == setting]
    return f"{float(row[figure]):.3f} ± {float(row[figure + '_se']):.3f}"


def grid_rows(spec: str) -> list[dict[str, str]]:
    """The rows of ``GRID``, ``GRID@ALPHA`` (those at ``federation.alpha`` ALPHA) or
    ``GRID@AXIS=VALUE@...`` (those with every named axis at its value; AXIS may drop
    its section: ``alpha``, ``variant``)."""
    grid, *filters = spec.split("@")
    rows = read_csv(grid_file(grid))
    for item in filters:
        axis, _, wanted = item.rpartition("=")
        axis = axis or "alpha"
        (column,) = [c for c in rows[0] if c == axis or c.endswith(f".{axis}")]
        rows = [r for r in rows if r[column] == wanted]
    return rows


def grid_figure(kind: str, grid: str, variant: str, *rest: str) -> str:
    rows = grid_rows(grid)
    ratio, metric = rest[-2], rest[-1]

    def of(name: str) -> dict[str, float]:
        """METRIC per seed of the runs of ``name``: their method, else (a grid whose
        variants are settings, not methods) their algorithm, else their client
        selection; ratio ``*``: any."""
        mine: list[dict[str, str]] = []
        for column in ("algorithm.name", "federation.selection"):
            mine = mine or [r for r in rows if r.get(column) == name]
        mine = [r for r in rows if method(r) == name] or mine
        mine = [r for r in mine if ratio == "*" or r["federation.multimodal_ratio"] == ratio]
        by_seed = {r["seed"]: float(r[metric]) for r in mine}
        if len(by_seed) != len(mine):
            raise KeyError(f"{grid}: {name!r} has several runs per seed; filter with @AXIS=VALUE")
        return by_seed

    mine = of(variant)
    if kind == "mean":
        return f"{statistics.fmean(mine.values()):.3f}"
    if kind == "std":
        return f"{statistics.stdev(mine.values()):.3f}"
    base = of(rest[0])
    diff = paired_difference([mine[s] - base[s] for s in mine if s in base])
    if diff.half_width is None:
        return f"{100 * diff.mean:+.1f} points"
    low, high = 100 * (diff.mean - diff.half_width), 100 * (diff.mean + diff.half_width)
    return f"{100 * diff.mean:+.1f} points [{low:+.1f}, {high:+.1f}]"


def tally(grid: str, ours: str, metric: str, methods: str = "") -> str:
    rows = grid_rows(grid)
    axes = [a for a in grid_axes(grid.split("@")[0]) if a != "algorithm.name"]

    def runs(name: str) -> dict[tuple[str, ...], dict[str, float]]:
        out: dict[tuple[str, ...], dict[str, float]] = {}
        for r in rows:
            if r["algorithm.name"] == name:
                out.setdefault(tuple(r[a] for a in axes), {})[r["seed"]] = float(r[metric])
        return out

    mine = runs(ours)
    names = methods.split(",") if methods else [
        m for m in dict.fromkeys(r["algorithm.name"] for r in rows)
        if m != ours and not m.startswith("unimodal")
    ]  # fmt: skip
    ahead = behind = total = 0
    for name in names:
        for setting, theirs in runs(name).items():
            # pairs of the seeds both have (a run that stopped has no row)
            pairs = [mine[setting][s] - v for s, v in theirs.items() if s in mine[setting]]
            diff = paired_difference(pairs)
            total += 1
            ahead += diff.excludes_zero and diff.mean > 0
            behind += diff.excludes_zero and diff.mean < 0
    return f"ahead in {ahead} and behind in {behind} of {total}"


def fill(page: str, tables: dict[str, Callable[[], str]], name: str = "page") -> str:
    """``page`` with every data block replaced by its table and every inline value
    (``<!-- value: KEY -->x<!-- /value -->``) by its figure."""

    def table(match: re.Match[str]) -> str:
        key = match["name"]
        if key not in tables:
            raise KeyError(f"{name}: data block {key!r} has no table (known: {', '.join(tables)})")
        return f"{match[1]}{tables[key]()}\n{match[4]}"

    def figure(match: re.Match[str]) -> str:
        return f"{match[1]}{value(match['key'])}{match[4]}"

    return VALUE.sub(figure, BLOCK.sub(table, page))


def pages() -> dict[Path, str]:
    tables = renderers()
    return {page: fill(page.read_text(encoding="utf-8"), tables, page.name) for page in PAGES}


if __name__ == "__main__":
    for path, text in pages().items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
