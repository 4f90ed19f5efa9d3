"""The embedded in-process federated engine (the default runner).

One model object serves every client: the engine loads the global state into it,
lets the algorithm train it in place, and copies the resulting state out. Client data
stays on the training device as tensors and is batched by index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedcmi.aggregation import ClientUpdate, State
from fedcmi.algorithms import build_algorithm
from fedcmi.config import Config, TrainConfig
from fedcmi.data.base import MultimodalData
from fedcmi.federation import Federation
from fedcmi.metrics import evaluate
from fedcmi.training import ClientData, RoundContext


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(round_idx: int, train: TrainConfig, rounds: int) -> float:
    """Constant lr before ``lr_decay_start``, then linear decay to ``lr_min`` at the end."""
    start = train.lr_decay_start
    if start is None or round_idx < start or rounds - 1 <= start:
        return train.lr
    frac = (round_idx - start) / (rounds - 1 - start)
    return train.lr + frac * (train.lr_min - train.lr)


def client_generator(seed: int, round_idx: int, cid: int) -> torch.Generator:
    """A CPU generator for one client's batch order in one round (resumable, order-free)."""
    state = np.random.SeedSequence([seed, round_idx, cid]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def clone_state(state: State) -> State:
    return {k: v.detach().clone() for k, v in state.items()}


class EmbeddedEngine:
    """Runs rounds of a registered algorithm over a fixed federation, in one process."""

    def __init__(
        self, cfg: Config, data: MultimodalData, federation: Federation, device: torch.device
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.federation = federation
        self.device = device
        self.algorithm = build_algorithm(cfg.algorithm.name, cfg.algorithm.params)
        torch.manual_seed(cfg.seed)
        self.model = self.algorithm.build_model(data, cfg.model).to(device)
        self.global_state = clone_state(self.model.state_dict())
        self.clients = self._client_data(data, federation, device)
        self.val = data.val.to(device)
        self.test = data.test.to(device)

    @staticmethod
    def _client_data(
        data: MultimodalData, federation: Federation, device: torch.device
    ) -> list[ClientData]:
        train = data.train.to(device)
        clients = []
        for cid, (idx, mods) in enumerate(zip(federation.client_indices, federation.modalities)):
            index = torch.as_tensor(idx, device=device)
            clients.append(
                ClientData(
                    cid=cid,
                    modalities=mods,
                    x_a=train.x_a[index] if "a" in mods else None,
                    x_v=train.x_v[index] if "v" in mods else None,
                    y=train.y[index],
                )
            )
        return clients

    def train_client(self, cid: int, round_idx: int) -> tuple[ClientUpdate, dict[str, Any]]:
        """Train one client from the current global state; returns its update and logs."""
        client = self.clients[cid]
        self.model.load_state_dict(self.global_state)
        ctx = RoundContext(
            round=round_idx,
            lr=lr_at(round_idx, self.cfg.train, self.cfg.rounds),
            train=self.cfg.train,
            generator=client_generator(self.cfg.seed, round_idx, cid),
            num_classes=self.data.num_classes,
        )
        logs = self.algorithm.local_train(self.model, self.global_state, client, ctx)
        update = ClientUpdate(
            cid, client.modalities, len(client), clone_state(self.model.state_dict())
        )
        return update, {
            "cid": cid,
            "modalities": client.modalities,
            "num_samples": len(client),
            **logs,
        }

    def run_round(self, round_idx: int) -> dict[str, Any]:
        """Train the round's clients, aggregate, evaluate; returns the round's record."""
        selected = [
            cid
            for cid in self.federation.schedule[round_idx]
            if self.algorithm.participates(self.federation.modalities[cid])
        ]
        updates, client_logs = [], []
        for cid in selected:
            update, logs = self.train_client(cid, round_idx)
            updates.append(update)
            client_logs.append(logs)
        if updates:  # a round where no sampled client can take part leaves the model as is
            self.global_state = self.algorithm.aggregate(self.global_state, updates)
        losses = [c["loss"] for c in client_logs]
        return {
            "round": round_idx + 1,
            "lr": lr_at(round_idx, self.cfg.train, self.cfg.rounds),
            "clients": selected,
            "train_loss": float(np.mean(losses)) if losses else None,
            **self.evaluate(),
            "client_logs": client_logs,
        }

    def evaluate(self) -> dict[str, Any]:
        self.model.load_state_dict(self.global_state)
        bs, c = self.cfg.eval.batch_size, self.data.num_classes
        return {
            "val": evaluate(self.model, self.val, bs, c),
            "test": evaluate(self.model, self.test, bs, c),
        }
