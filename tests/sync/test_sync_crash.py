"""kill -9 of the daemon and of central at random moments during sync, repeated: no loss, no duplicate.

Both run as real processes (`storeedge run`, `python -m sync run`) on real SQLite files; traffic keeps
arriving over MQTT while they die and come back. At the end central holds every change the store ever
issued exactly once, in order, and the store has nothing left to send."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.demo.broker import MosquittoBroker, free_port
from tests.conftest import REPO, STAFF_TOKEN, DaemonProcess, http_get, write_config
from tests.sync.sync_helpers import (
    SYNC_TOKEN,
    Publisher,
    central_changes,
    count,
    day_of_traffic,
    wait_for_sync,
)

pytestmark = pytest.mark.integration


class CentralProcess:
    def __init__(self, workdir: Path, store_url: str) -> None:
        self.port = free_port()
        self.db = workdir / "central.db"
        self.config = workdir / "central.toml"
        self.config.write_text(
            "[central]\n"
            f'database = "{self.db}"\nport = {self.port}\nbundle_dir = "{workdir / "bundles"}"\n'
            "page_limit = 300\npoll_interval_s = 0.1\nbackoff_min_s = 0.05\nbackoff_max_s = 0.3\n"
            "connect_timeout_s = 1.0\nrequest_timeout_s = 5.0\n\n"
            f'[[stores]]\nid = "demo"\nurl = "{store_url}"\ntoken = "{SYNC_TOKEN}"\n'
        )
        self.log = workdir / "central.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sync", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        wait_for_sync(self._healthy, timeout=60, what="central healthy")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"central exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return http_get(f"http://127.0.0.1:{self.port}/healthz", None)[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def edge_sync(daemon: DaemonProcess) -> dict[str, int]:
    status, body = http_get(f"{daemon.url}/api/v1/sync", STAFF_TOKEN)
    assert status == 200, body
    return json.loads(body)


def run_crash_cycles(tmp_path: Path, broker: MosquittoBroker, *, total: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    config = write_config(tmp_path, broker, sync={"token": SYNC_TOKEN, "page_max": 300})
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    central = CentralProcess(tmp_path, daemon.url)
    messages = day_of_traffic(total, seed=seed)
    try:
        daemon.start()
        central.start()
        rate = 700
        publisher = Publisher(broker.port, messages, rate_per_s=rate, name=f"crash{seed}")
        publisher.start()
        first = rng.randint(0, 1)
        for n in range(kills):
            time.sleep(rng.uniform(0.1, total / rate / kills))
            victim = (daemon, central)[(first + n) % 2]  # both die, each more than once
            victim.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            victim.start()
        publisher.join(timeout=120)
        assert publisher.error is None
        assert publisher.acked == total
        db = daemon.config.path(daemon.config.database.path)
        wait_for_sync(
            lambda: count(db, "SELECT count(*) FROM readings") == total, timeout=120, what="all stored"
        )
        head = edge_sync(daemon)["head"]
        wait_for_sync(lambda: edge_sync(daemon)["acked"] == head, timeout=120, what="central caught up")
        assert edge_sync(daemon)["pending_rows"] == 0
    finally:
        central.stop()
        daemon.stop_quietly()
    rows = central_changes(central.db, "demo")
    assert [seq for seq, _ in rows] == list(range(1, head + 1)), "central lost or doubled changes"
    kinds = [k for _, k in rows]
    assert kinds.count("reading") + kinds.count("purchase") == total
    assert count(central.db, "SELECT value FROM totals WHERE store = 'demo' AND name = 'purchases'") == sum(
        1 for m in messages if "/pos/" in m.topic
    )


def test_kill_9_of_daemon_and_central_during_sync_loses_and_doubles_nothing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    run_crash_cycles(tmp_path, broker, total=3500, kills=4, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kill_9_sync_soak(tmp_path: Path, broker: MosquittoBroker, seed: int) -> None:
    run_crash_cycles(tmp_path, broker, total=15_000, kills=12, seed=100 + seed)
