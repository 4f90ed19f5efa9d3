"""Federation set-up: the split of the samples over clients (a registered partitioner),
modality assignment, per-round sampling.

Independent random streams are spawned from the run seed (partition, modalities,
schedule, per-sample missing inputs), so changing the number of rounds never changes the
partition, the modality assignment or the missing inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS, SELECTIONS

MAX_PARTITION_TRIES = 10_000


@dataclass
class Missing:
    """Per-sample presence of each input on one multimodal client (True = present),
    aligned with its ``client_indices``; samples missing both are dropped from training
    and counted here."""

    present_a: np.ndarray
    present_v: np.ndarray

    @property
    def both_missing(self) -> np.ndarray:
        return ~self.present_a & ~self.present_v

    def counts(self) -> dict[str, int]:
        return {
            "a_missing": int((~self.present_a).sum()),
            "v_missing": int((~self.present_v).sum()),
            "both_missing_dropped": int(self.both_missing.sum()),
        }


@dataclass
class Federation:
    client_indices: list[np.ndarray]  # indices into the training split
    modalities: list[str]  # "av", "a" or "v" per client
    # Clients drawn in each round: the participants (uniform selection) or the candidates
    # a selection rule chooses from (power-of-choice keeps those with the highest loss).
    schedule: list[list[int]]
    missing: dict[int, Missing] = field(default_factory=dict)  # multimodal clients only
    missing_rates: tuple[float, float] = (0.0, 0.0)
    partitioner: str = "dirichlet"

    def manifest(
        self,
        labels: np.ndarray,
        class_names: list[str],
        quality: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The federation as the run folder's ``manifest.json`` records it; ``quality``:
        each client's quality profile (its index and levels), when the dataset has
        per-client quality."""
        num_classes = len(class_names)
        clients = [
            {
                "cid": cid,
                "modalities": mods,
                "num_samples": int(len(idx)),
                "class_counts": np.bincount(labels[idx], minlength=num_classes).tolist(),
                **({"missing": self.missing[cid].counts()} if cid in self.missing else {}),
                **({"quality": quality[cid]} if quality else {}),
            }
            for cid, (idx, mods) in enumerate(zip(self.client_indices, self.modalities))
        ]
        out = {
            "num_clients": len(self.client_indices),
            "partition": partition_summary(self.partitioner, self.client_indices, labels),
            "modality_counts": {m: self.modalities.count(m) for m in ("av", "a", "v")},
            "class_names": class_names,
            "clients": clients,
            "schedule": self.schedule,
            "client_indices": [idx.tolist() for idx in self.client_indices],
        }
        if self.missing:
            out["missing"] = self.missing_summary()
        return out

    def missing_summary(self) -> dict[str, Any]:
        """Configured and realised per-sample missing rates over the multimodal clients."""
        totals = {"a_missing": 0, "v_missing": 0, "both_missing_dropped": 0}
        samples = 0
        for m in self.missing.values():
            samples += len(m.present_a)
            for k, v in m.counts().items():
                totals[k] += v
        return {
            "missing_rate_a": self.missing_rates[0],
            "missing_rate_v": self.missing_rates[1],
            "multimodal_samples": samples,
            **totals,
            "realised_rate_a": totals["a_missing"] / max(samples, 1),
            "realised_rate_v": totals["v_missing"] / max(samples, 1),
        }


def partition_summary(
    partitioner: str, client_indices: list[np.ndarray], labels: np.ndarray
) -> dict[str, Any]:
    """What the manifest says of a split: the partitioner, the client sizes and how
    skewed the clients' labels are (classes held; the largest class's share)."""
    sizes = np.array([len(idx) for idx in client_indices])
    held, top_share = [], []
    for idx in client_indices:
        counts = np.bincount(labels[idx])
        held.append(int((counts > 0).sum()))
        top_share.append(float(counts.max() / max(len(idx), 1)))

    def spread(values: Any) -> dict[str, float]:
        values = np.asarray(values, dtype=np.float64)
        return {
            "min": float(values.min()),
            "median": float(np.median(values)),
            "max": float(values.max()),
        }

    return {
        "partitioner": partitioner,
        "client_sizes": spread(sizes),
        "classes_per_client": spread(held),
        "largest_class_share": spread(top_share),
    }


class Partitioner:
    """One ``federation.partitioner``: the training samples' indices per client.

    :meth:`split` gets the labels, the dataset's per-sample key values for
    ``federation.natural_key`` (None when the config names none or the dataset has no
    such key; only :attr:`needs_key` entries read them), the ``[federation]`` section
    and the partition's own random generator, and returns one sorted index array per
    client covering every sample once. An impossible request is refused with
    :class:`~fedcmi.errors.InputError` naming the key. An entry is a subclass registered
    with ``@PARTITIONERS.register("name")`` in a module of
    :mod:`fedcmi.engine.partitioners`.
    """

    needs_key = False

    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError


def check_split(parts: list[np.ndarray], samples: int, cfg: FederationConfig) -> list[np.ndarray]:
    """``parts`` when they cover every one of ``samples`` samples once and each client
    holds at least ``federation.min_client_size`` of them; else the error says which
    client fell short."""
    sizes = [len(p) for p in parts]
    covered = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if len(covered) != samples or len(np.unique(covered)) != samples:
        raise InputError(
            f"federation.partitioner = {cfg.partitioner!r} did not place each of the "
            f"{samples} training samples in exactly one client"
        )
    small = min(range(len(sizes)), key=sizes.__getitem__)
    if sizes[small] < cfg.min_client_size:
        raise InputError(
            f"federation.partitioner = {cfg.partitioner!r} gave client {small} "
            f"{sizes[small]} samples, fewer than federation.min_client_size = "
            f"{cfg.min_client_size}"
        )
    return parts


def dirichlet_partition(
    labels: np.ndarray, num_clients: int, alpha: float, min_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split sample indices over clients with per-class proportions ~ Dirichlet(alpha).

    Every sample lands in exactly one client. Draws are repeated until each client holds
    at least ``min_size`` samples; a very large alpha approaches an IID split.
    """
    if min_size * num_clients > len(labels):
        raise InputError(
            f"federation.min_client_size = {min_size} x {num_clients} clients exceeds the "
            f"{len(labels)} training samples"
        )
    classes = np.unique(labels)
    for _ in range(MAX_PARTITION_TRIES):
        shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            props = rng.dirichlet(np.full(num_clients, alpha))
            # Rounded (not floored) cut points: flooring would hand a small class's
            # samples to the last clients only.
            cuts = np.round(np.cumsum(props)[:-1] * len(idx)).astype(int)
            for client, part in enumerate(np.split(idx, cuts)):
                shards[client].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise InputError(
        f"no Dirichlet(alpha={alpha}) split gave every one of {num_clients} clients "
        f">= {min_size} samples in {MAX_PARTITION_TRIES} draws; lower "
        "federation.min_client_size or federation.num_clients, or raise federation.alpha"
    )


def assign_modalities(
    num_clients: int, multimodal_ratio: float, rng: np.random.Generator
) -> list[str]:
    """round(r N) multimodal clients; the rest half a-only, half v-only (a gets the odd one)."""
    n_av = int(round(multimodal_ratio * num_clients))
    rest = num_clients - n_av
    n_a = (rest + 1) // 2
    kinds = ["av"] * n_av + ["a"] * n_a + ["v"] * (rest - n_a)
    return [kinds[i] for i in rng.permutation(num_clients)]


def sample_schedule(
    num_clients: int,
    per_round: int,
    rounds: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> list[list[int]]:
    """Clients per round, without replacement within a round: uniform, or with
    probabilities proportional to ``weights`` (power-of-choice's candidate draw)."""
    p = None if weights is None else weights / weights.sum()
    return [
        sorted(rng.choice(num_clients, per_round, replace=False, p=p).tolist())
        for _ in range(rounds)
    ]


class Selection:
    """One ``federation.selection``: which clients take part in a round.

    The seeded schedule draws :meth:`draw_count` clients per round, without replacement,
    with probabilities from :meth:`draw_weights` (uniform when None); in the round,
    :meth:`choose` keeps some of them, reading their local losses of the global model
    when :attr:`needs_losses`. With :attr:`equal_weights` the aggregate averages the
    chosen updates equally instead of by sample count. An entry is a subclass registered
    with ``@SELECTIONS.register("name")`` in a module of :mod:`fedcmi.engine.selection`.
    The base class is uniform sampling.
    """

    needs_losses = False
    equal_weights = False

    def draw_count(self, cfg: FederationConfig) -> int:
        return cfg.clients_per_round

    def draw_weights(self, sizes: np.ndarray) -> np.ndarray | None:
        return None

    def choose(
        self, drawn: list[int], losses: list[float] | None, cfg: FederationConfig
    ) -> list[int]:
        return drawn


def selection_of(cfg: FederationConfig) -> Selection:
    return SELECTIONS.get(cfg.selection)()


def draw_missing(
    client_indices: list[np.ndarray],
    modalities: list[str],
    rates: tuple[float, float],
    rng: np.random.Generator,
) -> dict[int, Missing]:
    """Per-sample missing inputs of every multimodal client: each sample's a input is
    absent with probability ``rates[0]`` and its v input with ``rates[1]``, independently
    (the setting of FedMultimodal's missing-modality experiments), in client order."""
    missing = {}
    for cid, (idx, mods) in enumerate(zip(client_indices, modalities)):
        if mods != "av":
            continue
        present_a = rng.random(len(idx)) >= rates[0]
        present_v = rng.random(len(idx)) >= rates[1]
        missing[cid] = Missing(present_a, present_v)
    return missing


def natural_keys(
    keys: Mapping[str, np.ndarray] | None, cfg: FederationConfig, partitioner: Partitioner
) -> np.ndarray | None:
    """The per-sample values of ``federation.natural_key`` a partitioner reads."""
    if not partitioner.needs_key:
        return None
    if not cfg.natural_key:
        raise InputError(
            f"federation.partitioner = {cfg.partitioner!r} needs federation.natural_key "
            "(the dataset's per-sample key: actor, video, event)"
        )
    available = dict(keys or {})
    if cfg.natural_key not in available:
        names = ", ".join(sorted(available)) or "none"
        raise InputError(
            f"federation.natural_key = {cfg.natural_key!r}: the dataset has no such "
            f"per-sample key (it has: {names})"
        )
    return available[cfg.natural_key]


def build_federation(
    labels: np.ndarray,
    cfg: FederationConfig,
    rounds: int,
    seed: int,
    keys: Mapping[str, np.ndarray] | None = None,
) -> Federation:
    """The seeded federation of ``cfg`` over the training labels (``keys``: the
    dataset's per-sample key values, which the natural partitioner reads)."""
    part_rng, mod_rng, sched_rng, missing_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    partitioner = PARTITIONERS.get(cfg.partitioner)()
    values = natural_keys(keys, cfg, partitioner)
    indices = check_split(partitioner.split(labels, values, cfg, part_rng), len(labels), cfg)
    modalities = assign_modalities(cfg.num_clients, cfg.multimodal_ratio, mod_rng)
    selection = selection_of(cfg)
    weights = selection.draw_weights(np.array([len(i) for i in indices], dtype=np.float64))
    schedule = sample_schedule(
        cfg.num_clients, selection.draw_count(cfg), rounds, sched_rng, weights
    )
    rates = (cfg.missing_rate_a, cfg.missing_rate_v)
    missing = draw_missing(indices, modalities, rates, missing_rng) if any(rates) else {}
    return Federation(indices, modalities, schedule, missing, rates, cfg.partitioner)
