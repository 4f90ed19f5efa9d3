"""The algorithm interface every registered method implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from fedcmi.config import ModelConfig
from fedcmi.core.aggregation import ClientUpdate, State, aggregate
from fedcmi.core.dominance import PROB_FLOOR, dominance_ratio
from fedcmi.core.training import ClientData, RoundContext
from fedcmi.data.base import MultimodalData
from fedcmi.models import LateFusionModel, MultimodalModel, side_of
from fedcmi.models.base import build_encoders


class Algorithm:
    """A federated method: its model, its local training and its server aggregation.

    ``local_train`` receives the shared model object already loaded with the global
    state, trains it in place and returns per-client metrics; the engine then copies
    the state out. Subclasses define ``Params`` (a dataclass: the ``[algorithm]`` keys)
    and annotate ``params: Params``, so every knob is typed where it is read.
    """

    Params: ClassVar[type]
    params: object

    def __init__(self, params: object) -> None:
        self.params = params

    @property
    def modality_aware(self) -> bool:
        """Whether the server averages each modality's branch over the clients holding
        that modality (``aggregation = "modality-aware"``) instead of over all."""
        return False

    def participates(self, modalities: str) -> bool:
        """Whether a client holding ``modalities`` takes part (unimodal baselines say no
        to clients without their modality)."""
        return True

    def build_model(self, data: MultimodalData, cfg: ModelConfig) -> MultimodalModel:
        enc_a, enc_v = build_encoders(data, cfg)
        return LateFusionModel(enc_a, enc_v, cfg.feature_dim, data.num_classes)

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def aggregate(
        self, global_state: State, updates: Sequence[ClientUpdate], robustness: Any = None
    ) -> State:
        options = {}
        if robustness is not None:
            options = {
                "rule": robustness.rule,
                "trim_fraction": robustness.trim_fraction,
                "clip_norm": robustness.clip_norm,
            }
        return aggregate(global_state, updates, side_of, self.modality_aware, **options)


def global_parameters(model: nn.Module, global_state: State) -> list[Tensor]:
    """The global values of ``model``'s parameters, in ``model.parameters()`` order."""
    return [global_state[name] for name, _ in model.named_parameters()]


__all__ = ["PROB_FLOOR", "Algorithm", "dominance_ratio", "global_parameters"]
