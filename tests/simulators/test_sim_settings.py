"""Settings validation and the package's public surface."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import simulators
from simulators import SimulationSummary, SimulatorSettings
from simulators.errors import SimulatorSettingsError


def _settings(**overrides: Any) -> SimulatorSettings:
    base: dict[str, Any] = {
        "store_id": "demo",
        "planogram_path": Path("planogram.toml"),
        "mqtt_host": "127.0.0.1",
        "mqtt_port": 1883,
    }
    return SimulatorSettings(**(base | overrides))


def test_defaults_are_the_documented_ones() -> None:
    settings = _settings()
    assert (settings.seed, settings.speed, settings.weight_hz, settings.fault_rate) == (1, 60.0, 1.0, 0.0)
    assert settings.duration_s is None
    assert settings.serial_link is None
    assert settings.ground_truth_path is None
    assert settings.start_time_ms is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("store_id", "a/b"),
        ("store_id", "#"),
        ("mqtt_port", 0),
        ("speed", 0.0),
        ("weight_hz", -1.0),
        ("fault_rate", 1.5),
        ("duration_s", 0.0),
        ("start_time_ms", -5),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(SimulatorSettingsError, match=field):
        _settings(**{field: value})


def test_settings_are_frozen_and_hide_the_password() -> None:
    settings = _settings(mqtt_username="sim", mqtt_password="hunter2")
    assert "hunter2" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.speed = 2.0  # type: ignore[misc]


def test_public_surface() -> None:
    assert set(simulators.__all__) >= {"SimulatorSettings", "SimulationSummary", "run_simulation"}
    assert dataclasses.fields(SimulationSummary)
    assert SimulationSummary.__dataclass_params__.frozen  # type: ignore[attr-defined]
