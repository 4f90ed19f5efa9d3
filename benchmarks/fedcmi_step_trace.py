"""Step-by-step trace of one client's local training: where a divergence starts.

Runs a preset's federation up to round R - 1 on the embedded engine, then trains client
C in round R and prints, for every local step: each loss term (as weighted in the loss),
the proximal term, the gradient norm before any clipping, the gradient norm of every
module (encoders, projectors, heads, fusion) and, for FedCMI, the distillation loss of
the same batch as the authors' reference code computes it (``torch.log`` of a softmax;
tests/reference/fedcmi_code.py). Usage:

    python benchmarks/fedcmi_step_trace.py --round 5 --client 8 \\
        --set federation.alpha=0.1 --set federation.multimodal_ratio=0.5 --set seed=22
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fedcmi.algorithms.fedcmi as fedcmi_module  # noqa: E402
import fedcmi.core.training as training  # noqa: E402
from fedcmi.cli import resolve_config  # noqa: E402
from fedcmi.config import load_config  # noqa: E402
from fedcmi.engine.embedded import EmbeddedEngine  # noqa: E402
from fedcmi.engine.setup import set_up  # noqa: E402
from tests.reference.fedcmi_code import reference_distillation  # noqa: E402


def module_norms(model: torch.nn.Module) -> dict[str, float]:
    """Gradient L2 norm per top-level module."""
    squares: dict[str, float] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            top = name.split(".")[0]
            squares[top] = squares.get(top, 0.0) + float(p.grad.float().square().sum())
    return {k: v**0.5 for k, v in squares.items()}


def trace(engine: EmbeddedEngine, cid: int, round_idx: int) -> list[dict[str, Any]]:
    """Client ``cid``'s steps in round ``round_idx`` (0-based), recorded through the
    package's own hooks: the gradient clip (before it acts) and the distillation loss."""
    steps: list[dict[str, Any]] = []
    model = engine.trainer.model
    clip, distil = training.clip_gradient, fedcmi_module.infiltration_loss
    add = training.StepMonitor.add
    reference: list[float] = []

    def clip_logged(params: list[torch.nn.Parameter], max_norm: float | None) -> torch.Tensor:
        steps.append({"modules": module_norms(model)})
        return clip(params, max_norm)

    def distil_logged(teacher, student, temps, labels, rows=None, scaled=False):  # type: ignore[no-untyped-def]
        if rows is None and not scaled:
            ref = reference_distillation(teacher.detach(), student.detach(), temps.tolist(), labels)
            reference.append(float(ref))
        return distil(teacher, student, temps, labels, rows, scaled)

    def add_logged(self, terms, prox, grad_norm):  # type: ignore[no-untyped-def]
        steps[-1]["terms"] = {k: float(v.detach()) for k, v in terms.items()}
        steps[-1]["prox"] = 0.0 if prox is None else float(prox)
        steps[-1]["grad_norm"] = float(grad_norm)
        if reference:
            steps[-1]["cmi_reference"] = reference.pop()
        return add(self, terms, prox, grad_norm)

    training.clip_gradient = clip_logged
    fedcmi_module.infiltration_loss = distil_logged
    training.StepMonitor.add = add_logged  # type: ignore[method-assign]
    try:
        engine.train_client(cid, round_idx)
    except training.NonFiniteTraining as exc:
        print(f"client {cid}: {exc}")
    finally:
        training.clip_gradient = clip
        fedcmi_module.infiltration_loss = distil
        training.StepMonitor.add = add  # type: ignore[method-assign]
    return steps


def print_steps(steps: list[dict[str, Any]]) -> None:
    terms = list(steps[0]["terms"]) if steps else []
    modules = sorted({m for s in steps for m in s["modules"]})
    head = ["step", *terms, "prox", "|g|"]
    if any("cmi_reference" in s for s in steps):
        head.insert(len(terms) + 1, "cmi (ref. code)")
    print("  ".join(f"{h:>9}" for h in head) + "  |g| per module: " + " ".join(modules))
    for i, s in enumerate(steps, 1):
        row = [str(i), *(f"{s['terms'][t]:.4g}" for t in terms)]
        if "cmi (ref. code)" in head:  # unweighted: equal to cmi at lambda2 = 1
            row.append(f"{s['cmi_reference']:.4g}" if "cmi_reference" in s else "-")
        row += [f"{s['prox']:.3g}", f"{s['grad_norm']:.4g}"]
        norms = " ".join(f"{s['modules'].get(m, 0.0):.3g}" for m in modules)
        print("  ".join(f"{c:>9}" for c in row) + "  " + norms)


def write_csv(steps: list[dict[str, Any]], path: Path) -> None:
    """One row per step: the loss terms, the reference-code distillation, the proximal
    term, the gradient norm and one ``grad_<module>`` column per module."""
    terms = list(steps[0]["terms"]) if steps else []
    modules = sorted({m for s in steps for m in s["modules"]})
    head = ["step", *terms, "cmi_reference", "prox", "grad_norm", *(f"grad_{m}" for m in modules)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(head)
        for i, s in enumerate(steps, 1):
            ref = s.get("cmi_reference")
            out.writerow(
                [i, *(f"{s['terms'][t]:.6g}" for t in terms), "" if ref is None else f"{ref:.6g}"]
                + [f"{s['prox']:.6g}", f"{s['grad_norm']:.6g}"]
                + [f"{s['modules'].get(m, 0.0):.6g}" for m in modules]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="av-digits-hard-fedcmi")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--round", type=int, required=True, help="1-based round to trace")
    parser.add_argument("--client", type=int, required=True)
    parser.add_argument("--csv", type=Path, help="also write the steps to this CSV file")
    args = parser.parse_args()
    cfg = load_config(resolve_config(args.config), args.set)
    engine = EmbeddedEngine(set_up(cfg))
    for t in range(args.round - 1):
        record = engine.run_round(t)
        losses = " ".join(f"{c['cid']}:{c['loss']:.3g}" for c in record.client_logs)
        print(f"round {t + 1}: test acc {record.test['acc']:.3f}; client losses {losses}")
    client = engine.clients[args.client]
    counts = torch.bincount(client.y, minlength=engine.run.data.num_classes).tolist()
    print(f"round {args.round}, client {args.client} ({client.modalities}), labels {counts}")
    steps = trace(engine, args.client, args.round - 1)
    print_steps(steps)
    if args.csv:
        write_csv(steps, args.csv)
    engine.close()


if __name__ == "__main__":
    main()
