"""Typed run configuration loaded from TOML presets, with dotted ``--set`` overrides.

A config is a tree of dataclasses. The ``[data]`` and ``[algorithm]`` tables are open:
their ``name`` picks a registered dataset or algorithm, whose own parameter dataclass
then types the remaining keys. Unknown keys and wrong types raise :class:`ConfigError`
naming the dotted key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fedcmi.bounds import (
    Fraction,
    NonNegative,
    NonNegativeInt,
    OneOf,
    Positive,
    PositiveInt,
    Probability,
    Range,
)
from fedcmi.errors import InputError
from fedcmi.registry import (
    AGGREGATION_RULES,
    ALGORITHMS,
    ATTACKS,
    DATASETS,
    PARTITIONERS,
    SELECTIONS,
    SERVER_OPTIMIZERS,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class ConfigError(InputError):
    """A config value or key is invalid; the message names the dotted key at fault."""


@dataclass
class FederationConfig:
    """``[federation]``: how the training set is split over clients, which modalities each
    holds, and which clients take part in a round."""

    num_clients: PositiveInt = 20
    """N: the number of clients."""
    clients_per_round: PositiveInt = 5
    """K: the clients that train in each round."""
    alpha: Positive = 3.0
    """Concentration of the per-class Dirichlet(alpha) label split; a very large value
    (e.g. 1000) is close to IID."""
    multimodal_ratio: Probability = 1.0
    """r: the fraction of clients holding both modalities; the rest is split half
    a-only, half v-only. Fixed for the run, drawn from the seed."""
    min_client_size: PositiveInt = 10
    """The Dirichlet split (and the quantity split's Dirichlet sizes) is redrawn until
    every client holds at least this many samples; the other partitioners refuse a
    split with a smaller client."""
    partitioner: Annotated[str, OneOf(PARTITIONERS)] = "dirichlet"
    """How the training samples are split over the clients: ``"dirichlet"`` (per-class
    Dirichlet(alpha) label skew), ``"iid"`` (a uniform shuffle cut into equal parts),
    ``"shards"`` (``classes_per_client`` classes per client, each class shared evenly
    by the clients that hold it), ``"quantity"`` (IID labels, client sizes from
    ``size_distribution``) or ``"natural"`` (one client per value of the dataset's
    ``natural_key``, or the values grouped into ``num_clients`` clients)."""
    classes_per_client: PositiveInt = 2
    """Shards only: the k classes each client holds (at most the number of classes, and
    ``num_clients`` x k must cover every class)."""
    size_distribution: Literal["dirichlet", "power-law"] = "dirichlet"
    """Quantity only: client size shares ~ Dirichlet(``size_alpha``), or proportional
    to rank^-``size_alpha`` (a power law, ranks shuffled over the clients)."""
    size_alpha: Positive = 1.0
    """Quantity only: the Dirichlet concentration (small: very unequal sizes) or the
    power-law exponent (large: very unequal sizes)."""
    natural_key: str = ""
    """Natural only: the dataset's per-sample key (``actor`` for CREMA-D, ``video`` for
    AVE, ``event`` for CrisisMMD)."""
    selection: Annotated[str, OneOf(SELECTIONS)] = "uniform"
    """``"uniform"``: ``clients_per_round`` clients drawn uniformly without replacement.
    ``"power-of-choice"`` (Cho et al. 2022): ``candidates`` clients drawn with probability
    proportional to their sample count; the ``clients_per_round`` of them with the highest
    local loss of the global model take part, and their updates are averaged equally (the
    size already counted in the draw)."""
    candidates: PositiveInt | None = None
    """Power-of-choice only: the candidates d asked for their loss (absent:
    min(2 K, N))."""
    missing_rate_a: Fraction = 0.0
    """Per-sample missing modality a within multimodal clients: each sample's a input is
    absent with this probability, drawn once from the seed, independently of v. A sample
    that draws both absent is left out of training and counted in the manifest."""
    missing_rate_v: Fraction = 0.0
    """As ``missing_rate_a``, for modality v."""


@dataclass
class ServerConfig:
    """``[server]``: the server's step on the aggregated update (FedOpt, Reddi et al.,
    ICLR 2021).

    With Delta = aggregate(client states) - theta (the pseudo-gradient): "sgd" takes
    theta + lr Delta (lr = 1 is plain averaging); "adam", "yogi" and "adagrad" keep
    moments m, v per parameter and take theta + lr m / (sqrt(v) + tau) (see
    fedcmi.core.server_opt).
    """

    optimizer: Annotated[str, OneOf(SERVER_OPTIMIZERS)] = "sgd"
    """``"sgd"`` (theta + lr Delta), or FedAdam, FedYogi, FedAdagrad."""
    lr: Positive = 1.0
    """Server learning rate (also SCAFFOLD's global step size)."""
    beta1: Fraction = 0.9
    """Adam/Yogi/Adagrad: first-moment decay, m = beta1 m + (1 - beta1) Delta."""
    beta2: Fraction = 0.99
    """Adam/Yogi: second-moment decay."""
    tau: Positive = 1e-3
    """Adaptivity: the second moment starts at tau^2 and tau is added to sqrt(v)."""


@dataclass
class TrainConfig:
    """``[train]``: local training (SGD), identical for every method in a comparison."""

    local_epochs: PositiveInt = 2
    """Passes over the client's data per round."""
    batch_size: PositiveInt = 64
    """Local mini-batch size (a last batch of one sample joins the previous batch)."""
    lr: Positive = 0.01
    """SGD learning rate."""
    momentum: Fraction = 0.9
    """SGD momentum; the optimizer is created afresh for every client in every round."""
    weight_decay: NonNegative = 1e-4
    """SGD weight decay (L2)."""
    lr_decay_start: NonNegativeInt | None = None
    """The round (0-based) the learning rate starts to decay at, by ``lr_decay``;
    absent = constant."""
    lr_decay: Literal["linear", "reference"] = "linear"
    """``"linear"``: constant before ``lr_decay_start``, then linear from ``lr`` to
    ``lr_min`` at the last round. ``"reference"``: the FedCMI authors' code
    (``client/FedCMI.py``): ``lr`` up to round ``lr_decay_start``, then
    ``lr - (lr - lr_min) t / rounds`` at round t, a step down (to about 0.6 ``lr`` at
    round 81 of 200) followed by a linear decay."""
    lr_min: NonNegative = 1e-4
    """The learning rate reached at the last round when ``lr_decay_start`` is set."""
    clip_grad_norm: Positive | None = None
    """Rescale each local step's gradient (the loss's, plus the proximal term's) to this
    L2 norm when it is larger; absent = no clipping (every method's published form)."""


@dataclass
class ModelConfig:
    """``[model]``: encoders and widths."""

    encoder_a: str = "auto"
    """Modality a's encoder: ``"auto"`` (the dataset's own) or a registered encoder name
    (the encoder table of the documentation)."""
    encoder_v: str = "auto"
    """Modality v's encoder, as ``encoder_a``."""
    feature_dim: PositiveInt = 128
    """d: the width of the encoder features and of the projectors."""
    projector: Literal["linear", "mlp"] = "linear"
    """FedCMI's projectors: ``"linear"`` (Linear(d, d)) or ``"mlp"``
    (Linear-ReLU-Linear-ReLU-Linear)."""
    options_a: dict[str, Any] = field(default_factory=dict)
    """Extra keyword options for encoder a, e.g. ``[model.options_a] pretrained = "PATH"``
    (a local file or folder; nothing is downloaded). The dataset's defaults are merged
    first."""
    options_v: dict[str, Any] = field(default_factory=dict)
    """Extra keyword options for encoder v, as ``options_a``."""


@dataclass
class EvalConfig:
    """``[eval]``: central evaluation and the reported figures (see
    :mod:`fedcmi.core.protocol`)."""

    batch_size: PositiveInt = 1024
    """Evaluation batch size (no effect on the numbers)."""
    last_rounds: PositiveInt = 5
    """The primary figure: test metrics averaged over this many last rounds."""
    smooth_rounds: PositiveInt = 3
    """The best-val round: chosen on a trailing mean of val accuracy over this many
    rounds."""
    missing_rate_a: Fraction = 0.0
    """Test-time missing modality a: each test sample's a input is absent with this
    probability (fixed masks drawn from ``missing_seed``, independently of v, separate
    from the training rates ``federation.missing_rate_*``). Above 0, every round also
    reports every head on the masked test set (``test_missing``; the complete test set
    stays ``test``)."""
    missing_rate_v: Fraction = 0.0
    """As ``missing_rate_a``, for modality v."""
    missing_seed: NonNegativeInt = 0
    """Seed of the test-time masks: the same masked test set for every method and run
    seed, so the curves compare."""
    quality_epochs: NonNegativeInt = 20
    """With per-client quality profiles (av-digits' ``client_audio_snr_db`` /
    ``client_image_noise``): central epochs of the joint model that tells, at the start of
    a run, which modality dominates on each profile (recorded in ``manifest.json``,
    printed by ``fedcmi run``); 0 lists the profiles only. The run's own numbers do not
    depend on it."""


@dataclass
class EngineConfig:
    """``[engine]``: where and how fast the embedded engine computes; none of these keys
    changes the math (``deterministic = true`` and ``precision = "fp32"`` keep runs
    bit-reproducible)."""

    device: str = "auto"
    """``"auto"``: ``"cuda"`` when available, else ``"cpu"``; or any torch device string."""
    deterministic: bool = True
    """Deterministic kernels; false lets cuDNN autotune convolutions (faster on a GPU, not
    bit-reproducible). See fedcmi.engine.speed.configure_torch."""
    threads: PositiveInt | None = None
    """Torch intra-op threads (absent: torch's choice, which the run's resolved
    config.toml then records)."""
    precision: Literal["fp32", "tf32", "bf16", "auto"] = "fp32"
    """``"tf32"``: CUDA matmuls/convolutions in TF32; ``"bf16"``: autocast of the local
    forward passes to bfloat16 (CUDA GPUs that support it, and the CPU); ``"auto"``: bf16
    where the hardware runs it natively, else fp32."""
    channels_last: bool = False
    """NHWC memory format for convolutional encoders."""
    compile: bool = False
    """``torch.compile`` the encoders (in place; state-dict keys unchanged)."""
    concurrent_clients: PositiveInt = 1
    """Clients of a round trained at the same time, each on its own model replica (and
    CUDA stream on a GPU); the same math as one after another (1 = sequential)."""
    checkpoint_every: NonNegativeInt = 1
    """Rounds between checkpoints (0 = none); see ``fedcmi run --resume``."""


@dataclass
class RobustnessConfig:
    """``[robustness]``: how the server treats failing or suspicious clients, and the
    aggregation rule."""

    client_timeout: Positive | None = None
    """Seconds; a slower client's update is rejected (absent: no limit)."""
    min_clients: PositiveInt = 1
    """Accepted updates needed to complete a round."""
    max_round_retries: NonNegativeInt = 2
    """A round short of ``min_clients`` is retried this often, then the run fails."""
    rule: Annotated[str, OneOf(AGGREGATION_RULES)] = "mean"
    """Per modality side: ``"mean"`` (sample-weighted, FedCMI's rule), coordinate-wise
    ``"median"``, or ``"trimmed-mean"`` (drops ``trim_fraction`` of the values at each
    end)."""
    trim_fraction: Annotated[float, Range(low=0.0, high=0.5, high_open=True)] = 0.1
    """Trimmed mean: the fraction dropped at each end, in [0, 0.5)."""
    clip_norm: Positive | None = None
    """Clip each client's update (per modality side) to this L2 norm (absent: no
    clipping)."""


@dataclass
class FaultsConfig:
    """``[faults]``: seeded fault injection (tests and robustness studies); all off by
    default."""

    drop_rate: Probability = 0.0
    """Probability that a client raises instead of returning an update."""
    nan_rate: Probability = 0.0
    """Probability that a client returns non-finite parameters."""
    slow_rate: Probability = 0.0
    """Probability that a client takes longer than ``robustness.client_timeout``."""
    shape_rate: Probability = 0.0
    """Probability that a client returns a wrongly shaped parameter."""
    malicious_clients: NonNegativeInt = 0
    """A fixed, seeded set of this many clients that attack in every round they take
    part in (see fedcmi.engine.faults.poison); finite attacks, which update validation
    cannot catch."""
    attack: Annotated[str, OneOf(ATTACKS)] = "sign-flip"
    """What a malicious client sends."""
    attack_factor: float = 4.0
    """Sign-flip sends g - f (theta - g), scale sends g + f (theta - g), for global g and
    honest update theta."""
    attack_norm: NonNegative = 10.0
    """Noise attack: theta + Gaussian noise of this L2 norm (whole update)."""


@dataclass
class LoggingConfig:
    """``[logging]``: optional live views of a run; the run folder stays the record."""

    tensorboard: bool = False
    """Write TensorBoard event files to ``RUN/tensorboard/`` every round (needs the
    ``tensorboard`` extra)."""


@dataclass
class NamedConfig:
    """A registry name plus that entry's typed parameters (``[data]`` / ``[algorithm]``)."""

    name: str
    params: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **_drop_none(dataclasses.asdict(self.params))}


@dataclass
class Config:
    """A whole run: top-level keys, then one table per section."""

    seed: int = 0
    """Seeds the model init, the federation (split, modalities, schedule, missing
    inputs) and the batch order."""
    rounds: PositiveInt = 30
    """Communication rounds."""
    data: NamedConfig = field(default_factory=lambda: _named("data", {}))
    federation: FederationConfig = field(default_factory=FederationConfig)
    algorithm: NamedConfig = field(default_factory=lambda: _named("algorithm", {}))
    server: ServerConfig = field(default_factory=ServerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed, "rounds": self.rounds}
        for f in dataclasses.fields(self)[2:]:
            value = getattr(self, f.name)
            out[f.name] = (
                value.to_dict()
                if isinstance(value, NamedConfig)
                else _drop_none(dataclasses.asdict(value))
            )
        return out

    def to_toml(self) -> str:
        import tomli_w  # imported here: loading a config (e.g. for a benchmark) needs none

        return tomli_w.dumps(self.to_dict())

    def validate(self) -> None:
        """Every field's declared range (also of a config built in Python, which the
        TOML/``--set`` builder never saw), then the relations between fields."""
        check_ranges(self, "")
        fed = self.federation
        _check(
            fed.clients_per_round <= fed.num_clients,
            "federation.clients_per_round",
            fed.clients_per_round,
            f"1..num_clients ({fed.num_clients})",
        )
        if fed.candidates is not None:
            _check(
                fed.clients_per_round <= fed.candidates <= fed.num_clients,
                "federation.candidates",
                fed.candidates,
                f"clients_per_round..num_clients ({fed.clients_per_round}..{fed.num_clients})",
            )
        bad = self.faults.malicious_clients
        _check(
            bad <= fed.num_clients,
            "faults.malicious_clients",
            bad,
            f"0..num_clients ({fed.num_clients})",
        )


def check_ranges(obj: Any, prefix: str) -> None:
    """Check every field of the dataclass ``obj`` (and of the dataclasses it holds)
    against the :class:`~fedcmi.bounds.Range` its annotation declares; the error names
    the dotted key."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if isinstance(value, NamedConfig):  # [algorithm] / [data]: keys sit beside name
            check_ranges(value.params, f"{key}.")
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, f"{key}.")
        elif value is not None:
            for bound in declared_ranges(hints[f.name]):
                _check(bound.admits(value), key, value, str(bound))


def declared_ranges(hint: Any) -> list[Range | OneOf]:
    """The ranges (and registered names) an annotation declares, also inside
    ``X | None``."""
    if typing.get_origin(hint) is Annotated:
        return [b for b in hint.__metadata__ if isinstance(b, (Range, OneOf))]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [r for arg in typing.get_args(hint) for r in declared_ranges(arg)]
    return []


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is not allowed: expected {allowed}")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# ---------------------------------------------------------------------------------
# Building dataclasses from plain mappings with type checks
# ---------------------------------------------------------------------------------


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, checking keys and types.

    ``where`` is the dotted prefix used in error messages (e.g. ``"federation"``).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(_unknown_key(f"{where}.{key}" if where else key, key, names))
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _unknown_key(dotted: str, key: str, allowed: list[str]) -> str:
    hint = difflib.get_close_matches(key, allowed, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown key {dotted!r}{extra}; allowed here: {', '.join(allowed)}"


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        value = _coerce(value, args[0], key)
        for bound in declared_ranges(hint):
            _check(bound.admits(value), key, value, str(bound))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{key} = {value!r} is not allowed: expected one of {', '.join(map(repr, args))}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {value!r}: expected a table")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} = {value!r}: expected a list")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r} is not allowed: expected a finite number")
    if hint in (int, float, str, bool):
        if type(value) is not hint:
            raise ConfigError(
                f"{key} = {value!r}: expected {hint.__name__}, got {type(value).__name__}"
            )
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{key}: unsupported config type {hint!r}")  # pragma: no cover


DEFAULT_NAMES = {"data": "av-digits", "algorithm": "fedcmi"}


def _named(kind: str, raw: dict[str, Any]) -> NamedConfig:
    name = raw.get("name", DEFAULT_NAMES[kind])
    if not isinstance(name, str):
        raise ConfigError(f"{kind}.name = {name!r}: expected str")
    registry = DATASETS if kind == "data" else ALGORITHMS
    try:
        entry = registry.get(name)
    except KeyError as exc:
        raise ConfigError(f"{kind}.name: {exc.args[0]}") from None
    rest = {k: v for k, v in raw.items() if k != "name"}
    return NamedConfig(name=name, params=build_dataclass(entry.Params, rest, kind))


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (e.g. parsed TOML)."""
    top = {f.name for f in dataclasses.fields(Config)}
    for key in raw:
        if key not in top:
            raise ConfigError(_unknown_key(key, key, sorted(top)))
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for key, value in raw.items():
        if key in ("data", "algorithm"):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a table, got {value!r}")
            kwargs[key] = _named(key, value)
        elif dataclasses.is_dataclass(hints[key]):
            kwargs[key] = build_dataclass(hints[key], value, key)
        else:
            kwargs[key] = _coerce(value, hints[key], key)
    cfg = Config(**kwargs)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------
# Files and overrides
# ---------------------------------------------------------------------------------


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.sub=value``; the value is read as TOML, falling back to a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw_value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw_value}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw_value.strip()
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a nested mapping, in place.

    ``algorithm.name`` is applied first, whatever its position: switching to another
    method drops the previous method's keys (its own defaults replace them, as in a
    sweep), and the other ``algorithm.*`` overrides then set the new method's keys.
    """
    parsed = [(text, *parse_override(text)) for text in overrides]
    for _, parts, value in parsed:
        if parts == ["algorithm", "name"]:
            switch_method(raw, value)
    for text, parts, value in parsed:
        if parts == ["algorithm", "name"]:
            continue
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a table")
            node = child
        node[parts[-1]] = value
    return raw


def switch_method(raw: dict[str, Any], name: Any) -> None:
    """Set ``algorithm.name``; another method than the current one starts from its own
    defaults (the current method's keys would be unknown to it)."""
    table = raw.get("algorithm")
    if not isinstance(table, dict) or table.get("name", DEFAULT_NAMES["algorithm"]) != name:
        raw["algorithm"] = {"name": name}


# The presets and grids shipped with the package (``configs/`` in a source checkout
# links here).
PRESETS_DIR = Path(__file__).resolve().parent / "configs"


def preset_dirs() -> tuple[Path, ...]:
    """Where preset names are looked up: ./configs first (a user's own), then the
    package's presets."""
    return (Path.cwd() / "configs", PRESETS_DIR)


def find_preset(name: str) -> Path:
    """A TOML path as given, else the preset (or ``grids/NAME``) of that name, with or
    without ``.toml``, from :func:`preset_dirs`."""
    path = Path(name)
    if path.is_file():
        return path
    for folder in preset_dirs():
        for candidate in (folder / name, folder / f"{name}.toml"):
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"config {name!r} not found: not a file, nor a preset in "
        f"{' or '.join(str(d) for d in preset_dirs())} (list them with `fedcmi configs`)"
    )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a preset (or the defaults) and apply dotted overrides."""
    raw = read_toml(path) if path is not None else {}
    raw = apply_overrides(raw, overrides or [])
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise
