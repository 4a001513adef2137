"""`storeedge demo` end to end: real mosquitto, daemon and simulators as processes, HTTP polling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.demo.service import parse_prometheus, to_toml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_demo_runs_a_whole_store_and_stops_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "demo",
            "--duration",
            "12",
            "--refresh",
            "3",
            "--workdir",
            str(tmp_path / "demo"),
            "--fault-rate",
            "0.05",
            "--speed",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("\n{") + 1 :])
    assert summary["daemon_exit_code"] == 0
    assert summary["received"]["mqtt"] > 100
    assert summary["received"]["serial"] > 10
    for kind in ("shelf_weight", "fridge_temperature", "footfall", "device_status"):
        assert summary["stored"].get(kind, 0) > 0, kind
    assert sum(summary["rejected"].values()) > 0  # the fault mode's malformed messages, quarantined
    assert summary["shelves_reporting"] == 40
    assert summary["db"]["readings"] > 0
    assert "store running" in result.stdout
    log = (tmp_path / "demo" / "daemon.log").read_text()
    assert "daemon_stopped" in log
    assert "Traceback" not in log


def test_to_toml_round_trips_a_config() -> None:
    import tomllib

    raw = {"store": {"id": "x"}, "serial": {"ports": [{"path": "/dev/a", "name": "a"}], "reopen_min_s": 1.0}}
    assert parse_config(tomllib.loads(to_toml(raw))).serial.ports[0].path == "/dev/a"


def test_parse_prometheus() -> None:
    text = '# HELP a b\n# TYPE a counter\na{x="1"} 3\nb 4.5\n'
    assert parse_prometheus(text) == {'a{x="1"}': 3.0, "b": 4.5}
