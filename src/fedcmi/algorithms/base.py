"""The algorithm interface every registered method implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from fedcmi.config import ModelConfig, RobustnessConfig
from fedcmi.core.aggregation import ClientUpdate, State, aggregate
from fedcmi.core.dominance import PROB_FLOOR, dominance_ratio
from fedcmi.core.training import ClientData, LocalResult, RoundContext
from fedcmi.data.base import MultimodalData
from fedcmi.models import LateFusionModel, MultimodalModel, side_of
from fedcmi.models.base import build_encoders, held_by


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
        self.param_shapes: dict[str, torch.Size] = {}

    def attach(self, model: nn.Module) -> None:
        """Record the model's parameter names and shapes (the keys that server optimizers
        and control variates act on); the engine calls it once the model is built."""
        self.param_shapes = {name: p.shape for name, p in model.named_parameters()}

    def init_server_state(self, global_state: State) -> State:
        """The method's server state before round 1 (none by default)."""
        return {}

    def server_update(
        self, server_state: State, updates: Sequence[ClientUpdate], modalities: Sequence[str]
    ) -> State:
        """The method's server state after a round, from the accepted updates' reports;
        ``modalities`` holds every client's modality set (the whole federation)."""
        return server_state

    def updated_keys(self, updates: Sequence[ClientUpdate]) -> list[str]:
        """The parameters a round's updates changed: all of them, or for a modality-aware
        method those of the sides some selected client holds (and shared ones)."""
        held = "".join(sorted({m for u in updates for m in u.modalities}))
        return [k for k in self.param_shapes if not self.modality_aware or held_by(k, held)]

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
    ) -> LocalResult:  # pragma: no cover
        raise NotImplementedError

    def aggregate(
        self,
        global_state: State,
        updates: Sequence[ClientUpdate],
        robustness: RobustnessConfig | None = None,
    ) -> State:
        return aggregate(global_state, updates, side_of, self.modality_aware, robustness)


def global_parameters(model: nn.Module, global_state: State) -> list[Tensor]:
    """The global values of ``model``'s parameters, in ``model.parameters()`` order."""
    return [global_state[name] for name, _ in model.named_parameters()]


__all__ = ["PROB_FLOOR", "Algorithm", "dominance_ratio", "global_parameters"]
