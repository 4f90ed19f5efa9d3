"""What every multimodal model offers the engine, the metrics and the aggregation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedcmi.config import ModelConfig
from fedcmi.data.base import MultimodalData
from fedcmi.errors import InputError
from fedcmi.registry import ENCODERS

MODALITY_SETS = ("av", "a", "v")


def side_of(key: str) -> str | None:
    """Modality side of a state-dict key: ``"a"``, ``"v"``, or None for shared modules.

    Models follow one naming rule: a top-level module whose name ends in ``_a`` belongs to
    modality a (encoder, projectors, head), ``_v`` to v; anything else (the fusion head)
    is shared by both.
    """
    top = key.split(".", 1)[0]
    if top.endswith("_a"):
        return "a"
    if top.endswith("_v"):
        return "v"
    return None


def held_by(key: str, modalities: str) -> bool:
    """Whether a client holding ``modalities`` trains state-dict key ``key`` (its
    modalities' branches and the shared modules)."""
    side = side_of(key)
    return side is None or side in modalities


def fill_missing(own: Tensor, substitute: Tensor | None, mask: Tensor | None) -> Tensor:
    """``own`` where ``mask`` says the sample holds the input, else ``substitute`` (zeros
    when None): the per-sample fill of a missing modality's fusion slot."""
    if mask is None:
        return own
    keep = mask[:, None]
    return torch.where(keep, own, own.new_zeros(()) if substitute is None else substitute)


class MultimodalModel(nn.Module):
    """Base class: fused forward for any modality set and named evaluation logits."""

    # Evaluation-logit keys whose true-class probabilities define the imbalance ratio.
    imbalance_keys: tuple[str, str] | None = ("acc_a", "acc_v")

    feature_dim: int
    fusion: nn.Module

    def fuse(self, left: Tensor | None, right: Tensor | None) -> Tensor:
        """Fusion head on ``[left ; right]``; a missing side (None) is zero-filled."""
        ref = left if left is not None else right
        if ref is None:
            raise ValueError("fuse needs at least one modality")
        zeros = ref.new_zeros(ref.shape[0], self.feature_dim)
        left = zeros if left is None else left
        right = zeros if right is None else right
        return self.fusion(torch.cat([left, right], dim=1))

    def forward(
        self,
        x_a: Tensor | None,
        x_v: Tensor | None,
        modalities: str,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> Tensor:
        """Fused logits of a batch from a client holding ``modalities``; ``mask_a`` and
        ``mask_v`` mark the samples that hold each input (per-sample missing inputs)."""
        raise NotImplementedError  # pragma: no cover

    def evaluation_logits(
        self,
        x_a: Tensor,
        x_v: Tensor,
        mask_a: Tensor | None = None,
        mask_v: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Logits of every evaluation head by metric name; ``mask_a``/``mask_v`` (True =
        present) mark test samples missing an input, whose slot each head fills as the
        model's training forward does."""
        raise NotImplementedError  # pragma: no cover


def build_encoders(data: MultimodalData, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """The two encoders named in ``cfg`` ("auto" = the dataset's recommended ones)."""
    names = (
        cfg.encoder_a if cfg.encoder_a != "auto" else data.default_encoders[0],
        cfg.encoder_v if cfg.encoder_v != "auto" else data.default_encoders[1],
    )
    encoders = []
    for i, side in enumerate("av"):
        options = {**data.encoder_options[i], **getattr(cfg, f"options_{side}")}
        factory = ENCODERS.get(names[i])
        try:
            encoder = factory(data.shapes[i], cfg.feature_dim, **options)
        except TypeError as exc:
            raise InputError(
                f"model.options_{side} = {options}: not accepted by encoder {names[i]!r} ({exc})"
            ) from None
        encoder.register_forward_pre_hook(upcast_half_input)
        encoders.append(encoder)
    return encoders[0], encoders[1]


def upcast_half_input(module: nn.Module, args: tuple) -> tuple | None:
    """float16 inputs (prepared spectrograms are stored and kept resident in float16)
    become float32 batch by batch, so every encoder sees the dtype its weights have;
    autocast still lowers the encoder's own computation when bf16 is on."""
    if args and isinstance(args[0], Tensor) and args[0].dtype == torch.float16:
        return (args[0].float(), *args[1:])
    return None
