"""Figures comparing runs: accuracy per round, per-class accuracy, imbalance ratio,
FedCMI's class-wise temperatures and the fraction of batches each modality dominated."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fedcmi.core.protocol import ACCURACIES  # noqa: E402
from fedcmi.engine.run_folder import RoundRecord, RunFolder, Summary  # noqa: E402
from fedcmi.errors import InputError

CURVE_METRICS = tuple(m for m in ACCURACIES if m != "acc_av")


@dataclass
class Run:
    path: Path
    label: str
    records: list[RoundRecord]
    summary: Summary | None  # None while the run is still going
    class_names: list[str]

    @property
    def rounds(self) -> list[int]:
        return [r.round for r in self.records]

    def series(self, split: str, key: str) -> list[float] | None:
        metrics = [r.val if split == "val" else r.test for r in self.records]
        if key not in metrics[0]:
            return None
        return [m[key] for m in metrics]


def load_run(path: str | Path) -> Run:
    folder = RunFolder(path)
    records = folder.records()
    if not records:
        raise InputError(f"{folder.metrics_file} holds no rounds yet")
    summary = folder.summary() if folder.is_finished() else None
    label = folder.path.name if summary is None else f"{summary.algorithm} (seed {summary.seed})"
    classes = folder.manifest()["dataset"]["classes"]
    return Run(folder.path, label, records, summary, classes)


def unique_labels(runs: list[Run]) -> None:
    """Fall back to folder names when two runs would share a legend label."""
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        for run in runs:
            run.label = run.path.name


def plot_accuracy(runs: list[Run], path: Path) -> Path:
    """Val accuracy (the plateau check's curve), then each test accuracy, per round."""
    panels = [("val", "acc")]
    panels += [("test", k) for k in CURVE_METRICS if any(r.series("test", k) for r in runs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (split, key) in zip(axes[0], panels):
        for i, run in enumerate(runs):  # one colour per run in every panel
            values = run.series(split, key)
            if values:
                ax.plot(run.rounds, values, color=f"C{i}", label=run.label)
        ax.set(title=f"{split} {key}", xlabel="round", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_per_class(runs: list[Run], path: Path) -> Path:
    names = runs[0].class_names
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) * max(1, len(runs) / 2)), 3.6))
    x = np.arange(len(names))
    for i, run in enumerate(runs):
        ax.bar(x + i * width, run.records[-1].test["per_class_acc"], width, label=run.label)
    ax.set_xticks(x + width * (len(runs) - 1) / 2, names, rotation=30, fontsize=8)
    ax.set(ylabel="test accuracy (last round)", ylim=(0, 1.05), title="per-class fused accuracy")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_imbalance(runs: list[Run], path: Path) -> Path | None:
    runs = [r for r in runs if r.series("test", "imbalance_ratio")]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for run in runs:
        ax.plot(run.rounds, run.series("test", "imbalance_ratio") or [], label=run.label)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set(yscale="log", xlabel="round", ylabel="p_a(y) / p_v(y)", title="imbalance ratio (test)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_dominance(runs: list[Run], path: Path) -> Path | None:
    runs = [r for r in runs if any("a_dominant_frac" in c for c in r.records[0].client_logs)]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for run in runs:
        fracs = [
            np.mean(
                [c["a_dominant_frac"] for c in r.client_logs if "a_dominant_frac" in c] or [np.nan]
            )
            for r in run.records
        ]
        ax.plot(run.rounds, fracs, label=f"{run.label}: a dominant")
    ax.set(
        xlabel="round",
        ylabel="fraction of batches",
        ylim=(-0.02, 1.02),
        title="dominant modality per batch (1 = a, 0 = v)",
    )
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_temperatures(run: Run, path: Path, panels: int = 6) -> Path | None:
    rounds = [r for r in run.records if any("temperatures" in c for c in r.client_logs)]
    if not rounds:
        return None
    picks = [
        rounds[i]
        for i in sorted(
            {round(j) for j in np.linspace(0, len(rounds) - 1, min(panels, len(rounds)))}
        )
    ]
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks) + 1, 3.2), squeeze=False)
    image = None
    for ax, record in zip(axes[0], picks):
        logs = [c for c in record.client_logs if "temperatures" in c]
        grid = np.array([c["temperatures"] for c in logs])
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(logs)), [str(c["cid"]) for c in logs], fontsize=7)
        ax.set_xticks(range(grid.shape[1]), range(grid.shape[1]), fontsize=6)
        ax.set_title(f"round {record.round}", fontsize=9)
        ax.set_xlabel("class")
    axes[0][0].set_ylabel("client")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="T_c")
    fig.suptitle(f"class-wise temperatures: {run.label}", fontsize=10)
    return _save(fig, path, tight=False)


def _save(fig, path: Path, tight: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_runs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> list[Path]:
    """Write every applicable figure for ``run_dirs`` into ``out_dir``; returns the files."""
    runs = [load_run(p) for p in run_dirs]
    unique_labels(runs)
    out = Path(out_dir)
    written = [
        plot_accuracy(runs, out / "accuracy.png"),
        plot_per_class(runs, out / "per_class.png"),
        plot_imbalance(runs, out / "imbalance.png"),
        plot_dominance(runs, out / "dominance.png"),
    ]
    for i, run in enumerate(runs):
        written.append(plot_temperatures(run, out / f"temperatures_{i}_{_slug(run.label)}.png"))
    return [p for p in written if p is not None]


def plot_sweep_bars(groups, by: list[str], metrics: list[str], path: Path) -> Path:
    """Grouped bars of mean +- std per method (first ``by`` column) in each setting."""
    methods = sorted({g.key[0] for g in groups}, key=[g.key[0] for g in groups].index)
    settings = sorted({g.key[1:] for g in groups}, key=[g.key[1:] for g in groups].index)
    lookup = {g.key: g for g in groups}
    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(max(7, 1.1 * len(settings) * math.sqrt(len(methods))), 3.2 * len(metrics)),
        squeeze=False,
    )
    width = 0.8 / len(methods)
    x = np.arange(len(settings))
    for ax, metric in zip(axes[:, 0], metrics):
        for i, method in enumerate(methods):
            stats = [lookup.get((method, *s)) for s in settings]
            means = [g.stats[metric].mean if g and g.stats[metric] else np.nan for g in stats]
            stds = [g.stats[metric].std if g and g.stats[metric] else 0 for g in stats]
            ax.bar(x + i * width, means, width, yerr=stds, capsize=2, label=method)
        names = [
            ", ".join(f"{b.rsplit('.', 1)[-1]}={v}" for b, v in zip(by[1:], s)) for s in settings
        ]
        ax.set_xticks(x + width * (len(methods) - 1) / 2, names, fontsize=8)
        ax.set(ylabel=f"test {metric}", ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=min(4, len(methods)))
    return _save(fig, path)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")
