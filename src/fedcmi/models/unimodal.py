"""Single-modality model of the unimodal baselines: one encoder and one linear head."""

from __future__ import annotations

from torch import Tensor, nn

from fedcmi.core.training import present
from fedcmi.models.base import MultimodalModel


class UnimodalModel(MultimodalModel):
    """Encoder and head of modality ``side`` only; module names keep the side suffix so
    aggregation and checkpoints read the same as for the multimodal models."""

    imbalance_keys = None

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int, side: str):
        super().__init__()
        if side not in ("a", "v"):
            raise ValueError(f"side = {side!r}: expected 'a' or 'v'")
        self.side = side
        self.feature_dim = feature_dim
        self.add_module(f"enc_{side}", encoder)
        self.add_module(f"head_{side}", nn.Linear(feature_dim, num_classes))

    def logits(self, x: Tensor) -> Tensor:
        return getattr(self, f"head_{self.side}")(getattr(self, f"enc_{self.side}")(x))

    def forward(
        self,
        x_a: Tensor | None,
        x_v: Tensor | None,
        modalities: str,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> Tensor:
        """Logits of every row; rows whose input is missing (``mask_a``/``mask_v``) are
        the callers' to leave out of a loss."""
        return self.logits(present(x_a if self.side == "a" else x_v))

    def evaluation_logits(
        self,
        x_a: Tensor,
        x_v: Tensor,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> dict[str, Tensor]:
        # A missing input's rows are zeros: the one encoder sees what the data holds.
        logits = self.logits(x_a if self.side == "a" else x_v)
        return {"acc": logits, f"acc_{self.side}": logits}
