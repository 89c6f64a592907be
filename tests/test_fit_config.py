"""FitConfig's limits: every numeric setting has a range, every choice a Literal, enforced in one place."""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing

import pytest

from ganfit_core.errors import ConfigError, UserInputError
from ganfit_core.fitting.config import FIELD_CHOICES, FIELD_RANGES, FitConfig, config_fields


def test_every_field_has_a_range_or_choices() -> None:
    for f in config_fields():
        assert (f.name in FIELD_RANGES) != (f.name in FIELD_CHOICES), f.name
        if f.name in FIELD_RANGES:
            low, high = FIELD_RANGES[f.name]
            assert low <= f.default <= high, f.name  # the default is accepted
            assert math.isfinite(high), f.name


@pytest.mark.parametrize("name", sorted(FIELD_RANGES))
def test_ranges_are_enforced(name: str) -> None:
    low, high = FIELD_RANGES[name]
    kind = type(getattr(FitConfig(), name))
    FitConfig(**{name: kind(low)})  # both ends are accepted
    FitConfig(**{name: kind(high)})
    step = 1 if kind is int else max(abs(high) * 1e-3, 1e-6)
    for bad in (low - step, high + step):
        with pytest.raises(ConfigError, match=name):
            FitConfig(**{name: kind(bad)})
    with pytest.raises(ConfigError, match=name):
        FitConfig(**{name: True})  # a bool is not a number here
    if kind is float:
        with pytest.raises(ConfigError, match=name):
            FitConfig(**{name: float("nan")})
    else:
        with pytest.raises(ConfigError, match=name):
            FitConfig(**{name: low + 0.5})


def test_the_probed_dangerous_settings_are_refused() -> None:
    for bad in ({"detail_resolution": 0}, {"detail_resolution": 4096}, {"render_size": 2048},
                {"full_steps": 100_000}):
        with pytest.raises(ConfigError):
            FitConfig(**bad)


def test_choices_come_from_the_literal_types() -> None:
    hints = typing.get_type_hints(FitConfig)
    for name in ("region", "texture_prior", "renderer"):
        assert FIELD_CHOICES[name] == typing.get_args(hints[name]), name
        with pytest.raises(ConfigError, match=name):
            FitConfig(**{name: "nope"})
    assert FIELD_CHOICES["device"] == ("auto", "cpu", "cuda")
    assert FitConfig(device="cuda:1").device == "cuda:1"
    for bad in ("tpu", "cuda:", "cuda:x", 3):
        with pytest.raises(ConfigError, match="device"):
            FitConfig(device=bad)


def test_config_errors_are_user_errors_and_value_errors() -> None:
    with pytest.raises(UserInputError):
        FitConfig(render_size=1)
    with pytest.raises(UserInputError):
        FitConfig.from_dict({"steps_that_do_not_exist": 1})
    assert issubclass(ConfigError, ValueError)


def test_cli_and_app_read_the_same_limits() -> None:
    from ganfit_app.ui_support import config_controls
    from ganfit_core.cli.fit import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = {a.dest: a for a in parser._actions}  # noqa: SLF001
    for name in ("region", "texture_prior", "renderer"):
        assert tuple(actions[f"cfg_{name}"].choices) == FIELD_CHOICES[name]
    controls = {c.key: c for c in config_controls(FitConfig())}
    for name, (low, high) in FIELD_RANGES.items():
        assert (controls[name].minimum, controls[name].maximum) == (low, high), name
        assert f"{low}..{high}" in actions[f"cfg_{name}"].help, name
    assert set(controls["region"].choices) == set(FIELD_CHOICES["region"])
    assert set(controls["texture_prior"].choices) <= set(FIELD_CHOICES["texture_prior"])


def test_round_trip_keeps_every_field() -> None:
    config = FitConfig(region="full", full_steps=7, lr_translation=2.5)
    assert FitConfig.from_dict(config.to_dict()) == config
    assert {f.name for f in dataclasses.fields(FitConfig)} == set(config.to_dict())
