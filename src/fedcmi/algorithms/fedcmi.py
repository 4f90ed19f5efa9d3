"""FedCMI: Cross-Modal Infiltration Federated Learning (Fan et al., arXiv 2401.00894).

Implements FedCMI as docs/algorithm.md states it. Multimodal client, local objective::

    L = CE(z, y) + lambda1 [CE(z_a^s, y) + CE(z_v^s, y)] + lambda2 L_cmi
        + (mu/2) ||theta - theta_g||^2

with the dominant modality decided per batch by
``rho = sum_i p(z_a,i^s)[y_i] / sum_i p(z_v,i^s)[y_i]`` (rho > 1: a dominant) and, from
round ``warmup_rounds`` on (0-based), the infiltration loss from the frozen *global*
model's dominant self-projector logits into the weak modality's infiltration logits,
both softened by the class-wise temperature of each sample's true class. Unimodal
clients train CE(g([aa ; av]), y) (a-only) or CE(g([va ; vv]), y) (v-only) plus prox.
The server averages each modality's branch over the clients holding it.

Per-sample missing modalities: a sample missing one input gets the other modality's
infiltration projection in that fusion slot; each head's CE averages over the samples
holding its input; rho, the temperatures and L_cmi use only the samples holding both.

Ablation switches (``[algorithm]`` keys): ``temperature = "uniform"`` (T = 1),
``teacher = "local"`` (the client's own detached dominant self logits),
``prox_mu = 0``, ``infiltration_projector = false`` (distil into the weak self-projector;
unimodal clients zero-fill), ``shared_classifier = false``, ``aggregation = "all"``.

Strong label skew (docs/algorithm.md): ``local_momentum`` sets the SGD momentum of the
clients' local optimiser (0 stops the weak branch's overshoot from feeding itself);
``distill_scale = "temperature"`` multiplies each sample's L_cmi by T_y.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.base import Algorithm, global_parameters
from fedcmi.bounds import Fraction, NonNegative, NonNegativeInt
from fedcmi.config import ModelConfig
from fedcmi.core.aggregation import State
from fedcmi.core.dominance import PROB_FLOOR, dominance_ratio
from fedcmi.core.training import (
    Batch,
    ClientData,
    LocalResult,
    LossTerms,
    RoundContext,
    cross_entropy_rows,
    masked_mean,
    present,
    rows,
    timed,
    train_local,
)
from fedcmi.data.base import MultimodalData
from fedcmi.models import FedCMIModel
from fedcmi.models.base import build_encoders
from fedcmi.registry import ALGORITHMS


def class_wise_temperatures(
    p_a: Tensor, p_v: Tensor, labels: Tensor, num_classes: int, beta: float = 2.0
) -> Tensor:
    """Class-wise distillation temperatures T_c in (0, 1] (the paper's rule, docs/algorithm.md).

    ``p_a[i]``/``p_v[i]``: the global model's a/v self-head probability of sample i's
    true class. With P_c^m the class means, rho_c = P_c^a / P_c^v and rho_bar their mean
    over the classes present: if rho_bar > 1, T_c = 1 / (1 + beta ln(rho_c / rho_bar))
    where rho_c > rho_bar; otherwise, with rho'_c = P_c^v / P_c^a,
    T_c = 1 / (1 + beta ln(rho'_c rho_bar)) where rho'_c > 1 / rho_bar. Other classes,
    and classes absent from ``labels``, get 1.
    """
    labels = labels.long()
    counts = torch.bincount(labels, minlength=num_classes).to(p_a.dtype)
    present = counts > 0
    sums_a = torch.zeros(num_classes, dtype=p_a.dtype, device=p_a.device).index_add_(0, labels, p_a)
    sums_v = torch.zeros(num_classes, dtype=p_v.dtype, device=p_v.device).index_add_(0, labels, p_v)
    mean_a = (sums_a / counts.clamp_min(1)).clamp_min(PROB_FLOOR)  # both directions divide
    mean_v = (sums_v / counts.clamp_min(1)).clamp_min(PROB_FLOOR)
    temps = torch.ones(num_classes, dtype=p_a.dtype, device=p_a.device)
    if not present.any():
        return temps
    rho = mean_a / mean_v
    rho_bar = rho[present].mean()
    if rho_bar > 1:
        sharpen = present & (rho > rho_bar)
        gap = torch.log(rho / rho_bar)
    else:
        rho_prime = mean_v / mean_a
        sharpen = present & (rho_prime > 1 / rho_bar)
        gap = torch.log(rho_prime * rho_bar)
    temps[sharpen] = 1.0 / (1.0 + beta * gap[sharpen])
    return temps


def infiltration_loss(
    teacher_logits: Tensor,
    student_logits: Tensor,
    temperatures: Tensor,
    labels: Tensor,
    rows: Tensor | None = None,
    temperature_scaled: bool = False,
) -> Tensor:
    """Batch-mean soft cross-entropy -sum_c q[c] log softmax(student / T_y)[c] with
    q = softmax(teacher / T_y), T_y = ``temperatures[labels[i]]``; no T^2 factor, and no
    gradient into the teacher. ``rows`` limits the mean to the samples holding both
    inputs (per-sample missing modalities).

    The gradient on the student's logits is (softmax(student / T_y) - q) / T_y: a
    temperature T_y < 1 sharpens the target *and* multiplies the step by 1 / T_y.
    ``temperature_scaled`` multiplies each sample's term by T_y, which keeps the
    sharpened target and removes the step factor (gradient softmax(student / T_y) - q,
    bounded by 2 in L1 like a cross-entropy's)."""
    temps = temperatures[labels].unsqueeze(1)
    target = F.softmax(teacher_logits.detach() / temps, dim=1)
    per_sample = -(target * F.log_softmax(student_logits / temps, dim=1)).sum(dim=1)
    if temperature_scaled:
        per_sample = per_sample * temps.squeeze(1)
    return masked_mean(per_sample, rows)


@torch.no_grad()
def true_class_probabilities(
    model: FedCMIModel, x_a: Tensor, x_v: Tensor, labels: Tensor, batch_size: int
) -> tuple[Tensor, Tensor]:
    """p(z_a^s)[y], p(z_v^s)[y] of ``model`` in eval mode over a client's data."""
    model.eval()
    out_a, out_v = [], []
    for start in range(0, len(labels), batch_size):
        sl = slice(start, start + batch_size)
        y = labels[sl, None]
        out_a.append(F.softmax(model.self_logits("a", x_a[sl]), 1).gather(1, y).squeeze(1))
        out_v.append(F.softmax(model.self_logits("v", x_v[sl]), 1).gather(1, y).squeeze(1))
    return torch.cat(out_a), torch.cat(out_v)


@ALGORITHMS.register("fedcmi")
class FedCMI(Algorithm):
    @dataclass
    class Params:
        lambda1: NonNegative = 2.0
        """Weight of the two self-projector cross-entropies."""
        lambda2: NonNegative = 1.0
        """Weight of the cross-modal infiltration loss L_cmi."""
        prox_mu: NonNegative = 1.0
        """mu of the proximal term (mu / 2) ||theta - theta_g||^2."""
        warmup_rounds: NonNegativeInt = 1
        """W: rounds (0-based index < W) without L_cmi and without temperatures."""
        beta: NonNegative = 2.0
        """Sharpness of the class-wise temperatures, T_c = 1 / (1 + beta ln(...))."""
        temperature: Literal["class-wise", "uniform"] = "class-wise"
        """Ablation: ``"uniform"`` uses T = 1 for every class."""
        teacher: Literal["global", "local"] = "global"
        """Ablation: ``"local"`` distils from the client's own current dominant
        self-projector logits (detached) instead of the frozen global model's."""
        infiltration_projector: bool = True
        """Ablation: false distils into the weak modality's self-projector; unimodal
        clients then zero-fill the missing slot."""
        shared_classifier: bool = True
        """Ablation: false gives each infiltration projector its own classifier."""
        local_momentum: Fraction | None = None
        """SGD momentum of every FedCMI client's local optimiser; absent: ``train.momentum``.
        0 is the stabiliser for strong label skew chosen on val (docs/algorithm.md,
        "Strong label skew"); the av-digits-hard preset sets it."""
        distill_scale: Literal["none", "temperature"] = "none"
        """``"none"``: L_cmi as the paper writes it, whose gradient carries a factor
        1 / T_y; ``"temperature"``: each sample's term times T_y, so a sharpening
        temperature changes the target but not the step size (docs/algorithm.md,
        "Strong label skew")."""
        aggregation: Literal["modality-aware", "all"] = "modality-aware"
        """``"modality-aware"``: each modality's branch averaged over the clients holding
        it; ``"all"``: over every sampled client."""

    params: Params

    @property
    def modality_aware(self) -> bool:
        return self.params.aggregation == "modality-aware"

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._teacher: FedCMIModel | None = None

    def build_model(self, data: MultimodalData, cfg: ModelConfig) -> FedCMIModel:
        enc_a, enc_v = build_encoders(data, cfg)
        return FedCMIModel(
            enc_a,
            enc_v,
            cfg.feature_dim,
            data.num_classes,
            projector=cfg.projector,
            infiltration=self.params.infiltration_projector,
            shared_classifier=self.params.shared_classifier,
        )

    def teacher(self, model: FedCMIModel, global_state: State) -> FedCMIModel:
        """The frozen global model in eval mode: one module reused across clients,
        loaded with ``global_state`` for every client. Loading is one copy of the
        weights, small beside a client's training, and needs no guess about whether
        the state changed since the last client."""
        if self._teacher is None:
            self._teacher = copy.deepcopy(model).requires_grad_(False)
        self._teacher.load_state_dict(global_state)
        return self._teacher.eval()

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        assert isinstance(model, FedCMIModel)
        gparams = global_parameters(model, global_state)
        mu = self.params.prox_mu
        if client.modalities != "av":

            def unimodal_loss(batch: Batch) -> LossTerms:
                logits = model(batch.x_a, batch.x_v, client.modalities)
                return {"fused": F.cross_entropy(logits, batch.y)}

            return train_local(
                model, client, ctx, unimodal_loss, gparams, prox_mu=mu,
                momentum=self.params.local_momentum,
            )  # fmt: skip
        return self._train_multimodal(model, global_state, client, ctx, gparams)

    def _train_multimodal(
        self,
        model: FedCMIModel,
        global_state: State,
        client: ClientData,
        ctx: RoundContext,
        gparams: list[Tensor],
    ) -> LocalResult:
        p = self.params
        use_cmi = ctx.round >= p.warmup_rounds and p.lambda2 > 0
        teacher = self.teacher(model, global_state) if use_cmi else None
        with timed(ctx, "forward"):  # the teacher's pass over the client's data
            temps = None if teacher is None else self.round_temperatures(teacher, client, ctx)
        a_dominant = torch.zeros((), device=client.y.device)
        batches = 0

        def loss_fn(batch: Batch) -> LossTerms:
            nonlocal a_dominant, batches
            aa, av = model.project_a(present(batch.x_a))
            vv, va = model.project_v(present(batch.x_v))
            z_a, z_v = model.head_a(aa), model.head_v(vv)
            fused = model.fuse_filled(aa, av, vv, va, batch.mask_a, batch.mask_v)
            terms = {
                "fused": F.cross_entropy(fused, batch.y),
                "head_a": p.lambda1 * cross_entropy_rows(z_a, batch.y, batch.mask_a),
                "head_v": p.lambda1 * cross_entropy_rows(z_v, batch.y, batch.mask_v),
            }
            both = batch.both_present()
            a_dom = dominance_ratio(z_a, z_v, batch.y, both) > 1
            a_dominant += a_dom
            batches += 1
            if use_cmi:
                terms["cmi"] = p.lambda2 * self._cmi_term(
                    model, teacher, batch, both, a_dom, (z_a, z_v), (av, va), present(temps)
                )
            return terms

        result = train_local(
            model, client, ctx, loss_fn, gparams, prox_mu=p.prox_mu, momentum=p.local_momentum
        )
        result.logs["a_dominant_frac"] = float(a_dominant) / max(batches, 1)
        if temps is not None:
            result.logs["temperatures"] = [round(float(t), 6) for t in temps]
        return result

    def _cmi_term(
        self,
        model: FedCMIModel,
        teacher: FedCMIModel | None,
        batch: Batch,
        both: Tensor | None,
        a_dom: Tensor,
        self_logits: tuple[Tensor, Tensor],
        inf_feats: tuple[Tensor | None, Tensor | None],
        temps: Tensor,
    ) -> Tensor:
        # Branch on a tensor condition: one host sync per batch, needed to pick the
        # teacher branch to run (running both would double the teacher's cost).
        strong, weak = ("a", "v") if bool(a_dom) else ("v", "a")
        x_strong = present(batch.x_a if strong == "a" else batch.x_v)
        if self.params.teacher == "global":
            assert teacher is not None
            with torch.no_grad():
                teacher_logits = teacher.self_logits(strong, x_strong)
        else:
            teacher_logits = self_logits[0 if strong == "a" else 1].detach()
        weak_idx = 0 if weak == "a" else 1
        if model.infiltration:
            student = model.infiltration_head(weak)(inf_feats[weak_idx])
        else:
            student = self_logits[weak_idx]
        scaled = self.params.distill_scale == "temperature"
        return infiltration_loss(teacher_logits, student, temps, batch.y, both, scaled)

    def round_temperatures(
        self, teacher: FedCMIModel, client: ClientData, ctx: RoundContext
    ) -> Tensor:
        if self.params.temperature == "uniform":
            return torch.ones(ctx.num_classes, device=client.y.device)
        both = client.both_present()
        labels = rows(client.y, both)
        p_a, p_v = true_class_probabilities(
            teacher,
            rows(present(client.x_a), both),
            rows(present(client.x_v), both),
            labels,
            batch_size=max(256, ctx.train.batch_size),
        )
        return class_wise_temperatures(p_a, p_v, labels, ctx.num_classes, self.params.beta)
