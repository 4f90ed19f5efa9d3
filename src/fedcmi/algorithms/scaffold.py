"""SCAFFOLD (Karimireddy, Kale, Mohri, Reddi, Stich, Suresh; "SCAFFOLD: Stochastic
Controlled Averaging for Federated Learning", ICML 2020), on the late-fusion model.

The server keeps a control variate c and every client i its own c_i (zeros at first),
one tensor per model parameter. Client i, from the global x, runs its K local steps on
the corrected gradient (Algorithm 1, line 10)::

    g(y) <- g(y) - c_i + c

then updates its variate with option II (line 12), eta the local learning rate::

    c_i+ = c_i - c + (x - y) / (K eta)

and reports Delta c_i = c_i+ - c_i. The server aggregates the models like FedAvg (then
``[server]``'s step: with ``server.optimizer = "sgd"``, ``server.lr`` is SCAFFOLD's
global step size eta_g, x <- x + eta_g (mean(y_i) - x)) and updates (line 17)::

    c <- c + (1 / N) sum_{i in S} Delta c_i

Choices where the paper is silent or the setting differs:

- Models are averaged sample-weighted (as every method here; the paper's mean is
  unweighted, which equals it for equal client sizes).
- Local training is the framework's common SGD (momentum beta, weight decay) so methods
  stay comparable; the correction enters the gradient before the optimizer. Heavy-ball
  momentum moves (x - y) / K ~ eta / (1 - beta) times the mean gradient per step, so
  option II divides by K eta / (1 - beta): c_i+ = c_i - c + (1 - beta)(x - y) / (K eta),
  the paper's formula for beta = 0. Dividing by K eta alone (as code bases that keep
  momentum do) inflates the variates 1 / (1 - beta) = 10-fold at beta = 0.9, and the
  corrected training diverged on mfeat-hard within 5 rounds.
- A parameter a client does not train (the branch of a modality it lacks) gets no
  correction, keeps its c_i and reports Delta c_i = 0. With
  ``aggregation = "modality-aware"`` a modality's variates average over the N_m clients
  that hold it, 1 / N_m in place of 1 / N.

The server holds every c_i (in the checkpoint, so a resumed run is exact, and sent to
the client with the global model): it learns nothing it could not rebuild, since it
receives every Delta c_i anyway. That is one model-sized tensor set per client that has
taken part, in memory and in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fedcmi.algorithms.base import global_parameters
from fedcmi.algorithms.fedavg import FedAvg, fused_cross_entropy
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.core.training import ClientData, LocalResult, RoundContext, train_local
from fedcmi.models import side_of
from fedcmi.models.base import held_by
from fedcmi.registry import ALGORITHMS


def trained_keys(param_keys: Sequence[str], modalities: str) -> list[str]:
    """The parameters a client holding ``modalities`` trains (its sides and shared ones)."""
    return [k for k in param_keys if held_by(k, modalities)]


def option_two_variate(
    c_i: Tensor, c: Tensor, x: Tensor, y: Tensor, steps: int, lr: float, momentum: float = 0.0
) -> Tensor:
    """c_i+ = c_i - c + (x - y) / (K eta_eff) (SCAFFOLD option II), with
    eta_eff = eta / (1 - momentum) the step size SGD with heavy-ball momentum takes in
    steady state (= eta for plain SGD, the paper's setting)."""
    return c_i - c + (x - y) * (1.0 - momentum) / (steps * lr)


def variate_mean_counts(
    keys: Sequence[str], modalities: Sequence[str], modality_aware: bool
) -> dict[str, int]:
    """The N of c's update per key: every client, or with modality awareness the
    clients holding the key's modality."""
    n = len(modalities)
    out = {}
    for k in keys:
        side = side_of(k)
        if side is None or not modality_aware:
            out[k] = n
        else:
            out[k] = max(sum(side in m for m in modalities), 1)
    return out


@ALGORITHMS.register("scaffold")
class Scaffold(FedAvg):
    params: FedAvg.Params

    def init_server_state(self, global_state: State) -> State:
        return {f"c.{k}": torch.zeros_like(global_state[k]) for k in self.param_shapes}

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        names = [name for name, _ in model.named_parameters()]
        trained = set(trained_keys(names, client.modalities))
        c = {k: ctx.server_state[f"c.{k}"] for k in names}
        c_i = {k: ctx.client_state.get(f"c.{k}", torch.zeros_like(c[k])) for k in names}
        corrections = [c[k] - c_i[k] if k in trained else None for k in names]
        params = list(model.parameters())

        def correct() -> None:
            for p, corr in zip(params, corrections):
                if corr is not None and p.grad is not None:
                    p.grad.add_(corr)

        stats = train_local(
            model,
            client,
            ctx,
            fused_cross_entropy(model, client.modalities),
            after_backward=correct,
        )
        steps = int(stats.logs["steps"])
        x = dict(zip(names, global_parameters(model, global_state)))
        y = dict(model.named_parameters())
        new_c_i = dict(c_i)
        for k in trained:
            if steps:
                new_c_i[k] = option_two_variate(
                    c_i[k], c[k], x[k], y[k].detach(), steps, ctx.lr, ctx.train.momentum
                )
        stats.kept = {f"c.{k}": v.detach().clone() for k, v in new_c_i.items()}
        stats.report = {f"dc.{k}": (new_c_i[k] - c_i[k]).detach() for k in sorted(trained)}
        return stats

    def server_update(
        self, server_state: State, updates: Sequence[ClientUpdate], modalities: Sequence[str]
    ) -> State:
        counts = variate_mean_counts(list(self.param_shapes), modalities, self.modality_aware)
        new = dict(server_state)
        for k, n in counts.items():
            deltas = [u.report[f"dc.{k}"] for u in updates if f"dc.{k}" in u.report]
            if deltas:
                total = torch.stack([d.double() for d in deltas]).sum(dim=0)
                new[f"c.{k}"] = (server_state[f"c.{k}"].double() + total / n).to(
                    server_state[f"c.{k}"].dtype
                )
        return new
