"""Late-fusion model of the baselines: two encoders, concat, one linear head.

A client without a modality fills that half of the concatenation with zeros, and so does
a sample whose input is missing (``mask_a``/``mask_v``, per-sample missing modalities).
"""

from __future__ import annotations

from torch import Tensor, nn

from fedcmi.models.base import MultimodalModel, fill_missing


class LateFusionModel(MultimodalModel):
    imbalance_keys = ("acc_a", "acc_v")

    def __init__(self, enc_a: nn.Module, enc_v: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.enc_a = enc_a
        self.enc_v = enc_v
        self.fusion: nn.Linear = nn.Linear(2 * feature_dim, num_classes)
        self.feature_dim = feature_dim

    def forward(
        self,
        x_a: Tensor | None,
        x_v: Tensor | None,
        modalities: str,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> Tensor:
        f_a = fill_missing(self.enc_a(x_a), None, mask_a) if "a" in modalities else None
        f_v = fill_missing(self.enc_v(x_v), None, mask_v) if "v" in modalities else None
        return self.fuse(f_a, f_v)

    def evaluation_logits(
        self,
        x_a: Tensor,
        x_v: Tensor,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> dict[str, Tensor]:
        f_a = fill_missing(self.enc_a(x_a), None, mask_a)
        f_v = fill_missing(self.enc_v(x_v), None, mask_v)
        return {
            "acc": self.fuse(f_a, f_v),
            "acc_a": self.fuse(f_a, None),
            "acc_v": self.fuse(None, f_v),
        }
