"""Draws docs/figures/model.png, the FedCMI model diagram of the README and the docs.

Run from the repository root: ``.venv/bin/python docs/figures/make_model_figure.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BLUE, ORANGE, GREY, GREEN = "#dbe8f7", "#fbe3cc", "#eeeeee", "#dff2e0"


def box(ax, x, y, text, color, w=1.7, h=0.62):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04", fc=color, ec="#444", lw=1
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=9.5)


def arrow(ax, a, b, style="-|>", color="#333", ls="-", rad=0.0):
    ax.add_patch(
        FancyArrowPatch(
            a, b, arrowstyle=style, mutation_scale=11, color=color, lw=1.1, ls=ls,
            connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2,
        )
    )  # fmt: skip


def main(out: Path) -> None:
    fig, ax = plt.subplots(figsize=(10.5, 4.6))
    ax.set_xlim(0, 12.2)
    ax.set_ylim(0, 5.2)
    ax.axis("off")
    rows = {"a": (4.1, BLUE, "audio x^a"), "v": (1.1, ORANGE, "visual x^v")}
    for m, (y, color, label) in rows.items():
        other = "v" if m == "a" else "a"
        box(ax, 0.9, y, label, color, w=1.4)
        box(ax, 2.9, y, f"encoder E_{m}", color)
        box(ax, 5.2, y + 0.45, f"self-projector S_{m}\n{m}{m}", color)
        box(ax, 5.2, y - 0.45, f"infiltration I_{m}\n{m}{other}", color)
        box(ax, 7.6, y, f"classifier h_{m}\n(shared)", color)
        arrow(ax, (1.6, y), (2.05, y))
        arrow(ax, (3.75, y), (4.35, y + 0.45))
        arrow(ax, (3.75, y), (4.35, y - 0.45))
        arrow(ax, (6.05, y + 0.45), (6.75, y + 0.1))
        arrow(ax, (6.05, y - 0.45), (6.75, y - 0.1))
        ax.text(8.55, y + 0.18, f"z_{m}^s, z_{m}^i", fontsize=8.5, va="center")
    box(ax, 10.9, 2.6, "fusion head g\n[aa ; vv] -> z", GREEN, w=1.9, h=0.8)
    arrow(ax, (5.2, 4.86), (10.9, 3.0), rad=-0.25)
    arrow(ax, (5.2, 1.86), (10.9, 2.2), rad=-0.05)
    # The distillation: the frozen global model's dominant self-projector teaches the
    # weak modality's infiltration projector.
    box(ax, 2.9, 2.6, "frozen global model\nteacher: dominant S_m", GREY, w=2.1, h=0.7)
    arrow(ax, (3.4, 2.95), (4.35, 3.55), color="#b03030", ls="--")
    arrow(ax, (3.4, 2.25), (4.35, 0.75), color="#b03030", ls="--")
    ax.text(
        4.45, 2.6,
        "L_cmi into the weak modality's I,\nclass-wise temperatures T_c",
        fontsize=8.2, color="#b03030", va="center",
    )  # fmt: skip
    ax.text(
        10.9, 1.55,
        "a-only client: g([aa ; av])\nv-only client: g([va ; vv])",
        fontsize=8.2, ha="center", va="center", color="#333",
    )  # fmt: skip
    ax.text(
        0.2, 0.15,
        "Server: each modality's branch {E_m, S_m, I_m, h_m} averaged over the clients "
        "holding m; g over all selected clients.",
        fontsize=8.5, color="#333",
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=130)


if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "model.png")
