"""The FedCMI model (docs/algorithm.md, "Model").

Per modality m: encoder ``enc_m``, self-projector ``self_m``, infiltration projector
``inf_m`` and classifier ``head_m`` shared by both projectors; a fusion head ``fusion``
over ``[aa ; vv]``. A unimodal client fills the missing slot with its own modality's
infiltration projection: a-only ``fusion([aa ; av])``, v-only ``fusion([va ; vv])``;
a multimodal client's sample missing one input (per-sample missing modalities) likewise
gets the other modality's infiltration projection in the missing slot.

Ablation switches: ``infiltration=False`` drops ``inf_m`` (distillation then targets the
self-projector and unimodal clients zero-fill, like the baselines);
``shared_classifier=False`` gives the infiltration branch its own head ``inf_head_m``.
"""

from __future__ import annotations

from torch import Tensor, nn

from fedcmi.core.training import present
from fedcmi.errors import InputError
from fedcmi.models.base import MultimodalModel, fill_missing


def make_projector(kind: str, dim: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(dim, dim)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )
    raise InputError(f"model.projector = {kind!r}: expected 'linear' or 'mlp'")


class FedCMIModel(MultimodalModel):
    imbalance_keys = ("acc_a_head", "acc_v_head")

    def __init__(
        self,
        enc_a: nn.Module,
        enc_v: nn.Module,
        feature_dim: int,
        num_classes: int,
        projector: str = "linear",
        infiltration: bool = True,
        shared_classifier: bool = True,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.infiltration = infiltration
        self.shared_classifier = shared_classifier
        self.enc_a, self.enc_v = enc_a, enc_v
        self.self_a = make_projector(projector, feature_dim)
        self.self_v = make_projector(projector, feature_dim)
        self.head_a = nn.Linear(feature_dim, num_classes)
        self.head_v = nn.Linear(feature_dim, num_classes)
        if infiltration:
            self.inf_a = make_projector(projector, feature_dim)
            self.inf_v = make_projector(projector, feature_dim)
            if not shared_classifier:
                self.inf_head_a = nn.Linear(feature_dim, num_classes)
                self.inf_head_v = nn.Linear(feature_dim, num_classes)
        self.fusion = nn.Linear(2 * feature_dim, num_classes)

    # -- projections ---------------------------------------------------------------
    def project_a(self, x_a: Tensor) -> tuple[Tensor, Tensor | None]:
        """(aa, av): self and infiltration projections of the a features."""
        f = self.enc_a(x_a)
        return self.self_a(f), self.inf_a(f) if self.infiltration else None

    def project_v(self, x_v: Tensor) -> tuple[Tensor, Tensor | None]:
        """(vv, va): self and infiltration projections of the v features."""
        f = self.enc_v(x_v)
        return self.self_v(f), self.inf_v(f) if self.infiltration else None

    def self_logits(self, side: str, x: Tensor) -> Tensor:
        """Per-modality head on the self projection: z_m^s = h_m(S_m(E_m(x)))."""
        proj = self.project_a(x)[0] if side == "a" else self.project_v(x)[0]
        return self.head(side)(proj)

    def head(self, side: str) -> nn.Module:
        return self.head_a if side == "a" else self.head_v

    def infiltration_head(self, side: str) -> nn.Module:
        if self.infiltration and not self.shared_classifier:
            return self.inf_head_a if side == "a" else self.inf_head_v
        return self.head(side)

    # -- fusion --------------------------------------------------------------------
    def forward(
        self,
        x_a: Tensor | None,
        x_v: Tensor | None,
        modalities: str,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> Tensor:
        if modalities == "av":
            aa, av = self.project_a(present(x_a))
            vv, va = self.project_v(present(x_v))
            return self.fuse_filled(aa, av, vv, va, mask_a, mask_v)
        if modalities == "a":
            aa, av = self.project_a(present(x_a))
            return self.fuse(aa, av)
        if modalities == "v":
            vv, va = self.project_v(present(x_v))
            return self.fuse(va, vv)
        raise ValueError(f"modalities = {modalities!r}: expected 'av', 'a' or 'v'")

    def fuse_filled(
        self,
        aa: Tensor,
        av: Tensor | None,
        vv: Tensor,
        va: Tensor | None,
        mask_a: Tensor | None,
        mask_v: Tensor | None,
    ) -> Tensor:
        """fusion([aa ; vv]) with a sample's missing a slot filled by va and a missing v
        slot by av (zeros without infiltration projectors)."""
        return self.fuse(fill_missing(aa, va, mask_a), fill_missing(vv, av, mask_v))

    def evaluation_logits(
        self,
        x_a: Tensor,
        x_v: Tensor,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> dict[str, Tensor]:
        aa, av = self.project_a(x_a)
        vv, va = self.project_v(x_v)
        # A missing slot holds the other modality's infiltration projection, as in
        # training (fuse_filled); every head reads the filled projections.
        aa, vv = fill_missing(aa, va, mask_a), fill_missing(vv, av, mask_v)
        out = {
            "acc": self.fuse(aa, vv),
            "acc_a": self.fuse(aa, None),
            "acc_v": self.fuse(None, vv),
            "acc_a_head": self.head_a(aa),
            "acc_v_head": self.head_v(vv),
        }
        if self.infiltration:
            out["acc_av"] = self.fuse(aa, av)
            out["acc_va"] = self.fuse(va, vv)
        return out
