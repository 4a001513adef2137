from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config, parse_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_cover_everything() -> None:
    config = parse_config({})
    assert config.store.id == "demo"
    assert config.mqtt.port == 1883
    assert config.database.batch_max > 0
    assert config.mqtt_client_id == "storeedge-demo"


def test_example_config_is_valid_and_matches_defaults_where_it_says_so() -> None:
    example = load_config(REPO / "storeedge.example.toml")
    defaults = parse_config({})
    assert example.mqtt == defaults.mqtt
    assert example.thresholds == defaults.thresholds
    assert example.retention == defaults.retention
    assert example.path(example.store.planogram).exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mqtt": {"port": 70000}}, "[mqtt] port: Expected `int` <= 65535"),
        ({"mqtt": {"port": "1883"}}, "[mqtt] port: Expected `int`, got `str`"),
        ({"mqtt": {"prot": 1}}, "[mqtt] prot: unknown key"),
        (
            {"mqtt": {"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}},
            "[mqtt] reconnect_min_s: must not exceed",
        ),
        ({"store": {"id": "my store"}}, "[store] id: Expected `str` matching regex"),
        (
            {"serial": {"ports": [{"baudrate": 9600}]}},
            "[serial] ports[0].path: missing (required)",
        ),
        (
            {"serial": {"ports": [{"path": "/dev/a"}, {"path": "/dev/a"}]}},
            "[serial] ports[1]: duplicate port",
        ),
        ({"log": {"level": "loud"}}, "[log] level: Invalid enum value 'loud'"),
        ({"thresholds": {"fridge_min_c": 10.0, "fridge_max_c": 5.0}}, "[thresholds] fridge_min_c"),
        ({"thresholds": {"max_reading_age_s": 0}}, "[thresholds] max_reading_age_s: Expected `float` > 0"),
        ({"privacy": {"pseudonym_key": "short"}}, "[privacy] pseudonym_key: must be at least 16"),
        ({"database": {"batch_max": 0}}, "[database] batch_max: Expected `int` >= 1"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"http": {"staff_token": "change-me-staff-token"}}, "[http] staff_token: still the example's"),
        ({"http": {"kiosk_token": "change-me-kiosk-token"}}, "[http] kiosk_token: still the example's"),
        ({"http": {"staff_token": "1234"}}, "[http] staff_token: must be at least 16 characters (it is 4)"),
        ({"http": {"kiosk_token": "kiosk token, spaces"}}, "[http] kiosk_token: printable ASCII"),
        ({"http": {"staff_token": "s2.a-session-shaped-one"}}, "[http] staff_token: must not start like"),
        ({"kiosk": {"session_burst": 0}}, "[kiosk] session_burst: Expected `int` >= 1"),
    ],
)
def test_errors_name_file_and_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, origin="store.toml")
    assert str(caught.value).startswith("store.toml: ")
    assert message in str(caught.value)


def test_the_example_config_leaves_the_tokens_to_be_set(tmp_path: Path) -> None:
    """`storeedge config check storeedge.example.toml` passes because the example sets no token; the
    same file with its placeholders uncommented fails, naming the key."""
    example = REPO / "storeedge.example.toml"
    assert load_config(example).http.staff_token is None
    text = example.read_text().replace("# staff_token = ", "staff_token = ")
    copy = tmp_path / "storeedge.toml"
    copy.write_text(text)
    with pytest.raises(ConfigError, match=r"storeedge\.toml: \[http\] staff_token: still the example's"):
        load_config(copy)


def test_bad_toml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\nport = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_relative_paths_resolve_from_the_config_directory(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "storeedge.toml"
    path.parent.mkdir()
    path.write_text('[database]\npath = "data/x.db"\n')
    config = load_config(path)
    assert config.path(config.database.path) == tmp_path / "etc" / "data" / "x.db"
