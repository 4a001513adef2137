"""The store daemon as a subprocess for the benchmark scripts (import as `bench.daemon_process`)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from edge.demo.broker import free_port
from edge.demo.service import to_toml

REPO = Path(__file__).resolve().parent.parent


def start_daemon(
    workdir: Path, mqtt_port: int, overrides: dict[str, dict[str, object]] | None = None
) -> tuple[subprocess.Popen[bytes], Path, int]:
    """Start `storeedge run` on the demo store against the broker at ``mqtt_port`` (config sections in
    ``overrides`` are merged in) and wait until it is connected; returns (process, db path, HTTP port)."""
    http_port = free_port()
    db = workdir / "store.db"
    sections: dict[str, dict[str, object]] = {
        "store": {
            "id": "demo",
            "planogram": str(REPO / "simulators" / "demo_store" / "planogram.toml"),
            "layout": str(REPO / "simulators" / "demo_store" / "layout.toml"),
        },
        "mqtt": {"port": mqtt_port},
        "database": {"path": str(db)},
        "http": {"port": http_port, "staff_token": "bench-staff-token"},
        "privacy": {"pseudonym_key": "bench-key-0123456789abcdef"},
        "log": {"level": "warning"},
    }
    for name, values in (overrides or {}).items():
        sections[name] = {**sections.get(name, {}), **values}
    config = workdir / "storeedge.toml"
    config.write_text(to_toml(sections))
    log = (workdir / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)], stdout=log, stderr=log, cwd=REPO
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with (
            contextlib.suppress(OSError, ValueError, KeyError),
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as resp,
        ):
            if json.loads(resp.read())["mqtt_connected"]:
                return proc, db, http_port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"daemon did not start:\n{(workdir / 'daemon.log').read_text()[-2000:]}")
