"""Config loading, overrides and errors that name the key at fault."""

import pytest

from fedcmi.config import ConfigError, config_from_dict, load_config, parse_override


def test_defaults_are_the_fedcmi_spec_values():
    cfg = load_config()
    p = cfg.algorithm.params
    assert (cfg.data.name, cfg.algorithm.name) == ("av-digits", "fedcmi")
    assert (p.lambda1, p.lambda2, p.prox_mu, p.warmup_rounds, p.beta) == (2.0, 1.0, 1.0, 1, 2.0)


def test_overrides_are_parsed_as_toml():
    cfg = load_config(
        None,
        [
            "federation.alpha=0.1",
            "data.name=mfeat",
            'data.views=["pix","zer"]',
            "rounds=7",
            "algorithm.temperature=uniform",
        ],
    )
    assert cfg.federation.alpha == 0.1
    assert cfg.data.params.views == ["pix", "zer"]
    assert cfg.rounds == 7
    assert cfg.algorithm.params.temperature == "uniform"


def test_int_is_accepted_for_float():
    assert load_config(None, ["federation.alpha=3"]).federation.alpha == 3.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("federation.alpah=1.0", "federation.alpah"),
        ("federation.alpha='x'", "federation.alpha"),
        ("train.batch_size=1.5", "train.batch_size"),
        ("algorithm.temperature=hot", "algorithm.temperature"),
        ("algorithm.name=fedsomething", "algorithm.name"),
        ("data.per_class=true", "data.per_class"),
        ("federation.clients_per_round=50", "federation.clients_per_round"),
        ("federation.multimodal_ratio=1.5", "federation.multimodal_ratio"),
        ("bogus=1", "bogus"),
    ],
)
def test_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, [override])


def test_algorithm_keys_are_checked_against_the_chosen_algorithm():
    with pytest.raises(ConfigError, match="algorithm.lambda1"):
        config_from_dict({"algorithm": {"name": "fedavg", "lambda1": 2.0}})


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = 'fast'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*train\.lr"):
        load_config(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("rounds = = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml.*invalid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_resolved_config_round_trips_through_toml(tmp_path):
    cfg = load_config(
        None, ["data.name=synthetic", "algorithm.teacher=local", "train.lr_decay_start=5"]
    )
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg


def test_parse_override_requires_key_value():
    assert parse_override("a.b=plain words") == (["a", "b"], "plain words")
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_one_preset_serves_every_method():
    """Switching algorithm.name drops the preset's method keys; the new method's own
    defaults apply, and other algorithm.* overrides set its keys, in any order."""
    preset = "configs/av-digits-fedcmi.toml"
    cfg = load_config(preset, ["algorithm.name=fedavg"])
    assert cfg.algorithm.name == "fedavg" and cfg.algorithm.params.aggregation == "all"
    cfg = load_config(preset, ["algorithm.prox_mu=0.1", "algorithm.name=fedprox"])
    assert cfg.algorithm.params.prox_mu == 0.1
    cfg = load_config(preset, ["algorithm.name=fedprox", "algorithm.prox_mu=0.1"])
    assert cfg.algorithm.params.prox_mu == 0.1
    # the same method keeps the preset's knobs (prox_mu = 0.01 there, 1.0 by default)
    assert load_config(preset, ["algorithm.name=fedcmi"]).algorithm.params.prox_mu == 0.01
    with pytest.raises(ConfigError, match="lambda1"):
        load_config(preset, ["algorithm.name=fedavg", "algorithm.lambda1=1.0"])


def test_av_digits_cache_key_does_not_depend_on_how_a_number_is_written():
    from fedcmi.data.av_digits import AVDigits
    from fedcmi.data.base import params_key

    keys = {
        params_key("av-digits", load_config(None, [f"data.audio_snr_db={v}"]).data.params, 1)
        for v in ("-5", "-5.0", "-5.00")
    }
    keys |= {params_key("av-digits", AVDigits.Params(audio_snr_db=v), 1) for v in (-5, -5.0)}
    assert len(keys) == 1
    noise = {params_key("av-digits", AVDigits.Params(image_noise=v), 1) for v in (1, 1.0)}
    assert len(noise) == 1


def test_evaluation_protocol_keys_are_checked():
    assert load_config(None, []).eval.last_rounds == 5
    with pytest.raises(ConfigError, match="eval.last_rounds"):
        load_config(None, ["eval.last_rounds=0"])
    with pytest.raises(ConfigError, match="eval.smooth_rounds"):
        load_config(None, ["eval.smooth_rounds=0"])


@pytest.mark.parametrize(
    "override", ["algorithm.lambda1=nan", "train.lr=inf", "federation.alpha=-inf"]
)
def test_non_finite_floats_are_refused_with_their_key(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} = .* expected a finite number"):
        load_config(None, [override])


def test_non_finite_values_in_a_preset_file_name_the_file_and_key(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text("[train]\nlr = nan\n")
    with pytest.raises(ConfigError, match=r"bad.toml: train.lr = nan"):
        load_config(preset)


def test_validate_checks_the_declared_ranges_of_a_config_built_in_python():
    import dataclasses

    cfg = load_config(None, [])
    cfg.train = dataclasses.replace(cfg.train, momentum=1.5)
    with pytest.raises(ConfigError, match=r"^train\.momentum = 1\.5 is not allowed: expected"):
        cfg.validate()
    cfg = load_config(None, [])
    cfg.algorithm.params.lambda1 = -3.0
    with pytest.raises(ConfigError, match=r"^algorithm\.lambda1 = -3\.0 is not allowed"):
        cfg.validate()


# Numeric settings that accept any value: the seed, the attack's signed factor.
UNBOUNDED = {"seed", "faults.attack_factor"}


def test_every_numeric_setting_declares_its_range():
    import dataclasses
    import typing

    from fedcmi.config import Config, declared_ranges

    def numeric(hint):
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        args = typing.get_args(base) or (base,)
        return any(a in (int, float) or typing.get_origin(a) is typing.Annotated for a in args)

    top = typing.get_type_hints(Config)
    sections = [Config] + [
        top[f.name]
        for f in dataclasses.fields(Config)
        if dataclasses.is_dataclass(top[f.name]) and top[f.name].__name__ != "NamedConfig"
    ]
    checked, unbounded = [], []
    for cls in sections:
        hints = typing.get_type_hints(cls, include_extras=True)
        prefix = "" if cls is Config else f"{cls.__name__.removesuffix('Config').lower()}."
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint) or not numeric(hint):
                continue
            checked.append(f"{prefix}{f.name}")
            if not declared_ranges(hint) and f"{prefix}{f.name}" not in UNBOUNDED:
                unbounded.append(f"{prefix}{f.name}")
    assert len(sections) == 10 and "robustness.trim_fraction" in checked
    assert unbounded == []
