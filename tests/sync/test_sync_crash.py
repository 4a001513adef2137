"""kill -9 of the daemon and of central at random moments during sync, repeated: no loss, no duplicate.

Both run as real processes (`storeedge run`, `python -m sync run`), the store on SQLite and central on the
session's real PostgreSQL; traffic keeps arriving over MQTT while they die and come back. At the end
central holds every change the store ever issued exactly once, in order, and the store has nothing left
to send. Also: central killed while a page's transaction is open, and PostgreSQL itself crashing
(``pg_ctl stop -m immediate``) while central pulls."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.demo.broker import MosquittoBroker, free_port
from sync.central import Central
from tests.conftest import REPO, STAFF_TOKEN, DaemonProcess, ajson, http_get, run_daemon, write_config
from tests.pg_testkit import PgCluster
from tests.sync.sync_helpers import (
    SYNC_TOKEN,
    Message,
    Publisher,
    apublish_all,
    central_changes,
    central_totals,
    count,
    day_of_traffic,
    pg_count,
    publish_all,
    wait_for,
    wait_for_sync,
)
from tests.sync.test_sync_central import central_config

pytestmark = pytest.mark.integration


class CentralProcess:
    def __init__(self, workdir: Path, store_url: str, dsn: str, page_limit: int = 300) -> None:
        self.port = free_port()
        self.dsn = dsn
        self.config = workdir / "central.toml"
        self.config.write_text(
            "[central]\n"
            f'dsn = "{dsn}"\nport = {self.port}\nbundle_dir = "{workdir / "bundles"}"\n'
            f"page_limit = {page_limit}\npoll_interval_s = 0.1\nbackoff_min_s = 0.05\nbackoff_max_s = 0.3\n"
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


def run_crash_cycles(
    tmp_path: Path, broker: MosquittoBroker, dsn: str, *, total: int, kills: int, seed: int
) -> None:
    rng = random.Random(seed)
    config = write_config(tmp_path, broker, sync={"token": SYNC_TOKEN, "page_max": 300})
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    central = CentralProcess(tmp_path, daemon.url, dsn)
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
    assert_exactly_once(dsn, head, messages)


def assert_exactly_once(dsn: str, head: int, messages: list[Message]) -> None:
    rows = central_changes(dsn, "demo")
    assert [seq for seq, _ in rows] == list(range(1, head + 1)), "central lost or doubled changes"
    kinds = [k for _, k in rows]
    assert kinds.count("reading") + kinds.count("purchase") == len(messages)
    assert central_totals(dsn, "demo")["purchases"] == sum(1 for m in messages if "/pos/" in m.topic)


def test_kill_9_of_daemon_and_central_during_sync_loses_and_doubles_nothing(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str
) -> None:
    run_crash_cycles(tmp_path, broker, central_dsn, total=3500, kills=4, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kill_9_sync_soak(tmp_path: Path, broker: MosquittoBroker, central_dsn: str, seed: int) -> None:
    run_crash_cycles(tmp_path, broker, central_dsn, total=15_000, kills=12, seed=100 + seed)


def applying_a_page(dsn: str) -> bool:
    """A session of central holds a page's transaction open: it has written (it has an xid) and its
    latest statement is one of `apply_page`'s after the store's row lock (not `load_cursor`'s lock)."""
    return (
        pg_count(
            dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            " AND query ~ '(change_log|^COPY|INTO totals|SET cursor)'",
        )
        > 0
    )


def run_central_kills_mid_page(
    tmp_path: Path, broker: MosquittoBroker, dsn: str, *, total: int, kills: int, seed: int
) -> None:
    """A backlog on the store; central is started, killed -9 while a page's transaction is open, restarted,
    ``kills`` times, then left to finish."""
    config = write_config(tmp_path, broker, sync={"token": SYNC_TOKEN, "page_max": 2000})
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    central = CentralProcess(tmp_path, daemon.url, dsn, page_limit=2000)
    messages = day_of_traffic(total, seed=seed)
    mid_page = 0
    try:
        daemon.start()
        publish_all(broker.port, messages)
        db = daemon.config.path(daemon.config.database.path)
        wait_for_sync(
            lambda: count(db, "SELECT count(*) FROM readings") == total, timeout=120, what="all stored"
        )
        head = edge_sync(daemon)["head"]
        for _ in range(kills):
            central.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and edge_sync(daemon)["acked"] < head:
                if applying_a_page(dsn):
                    mid_page += 1
                    break
            central.kill()
        central.start()
        wait_for_sync(lambda: edge_sync(daemon)["acked"] == head, timeout=120, what="central caught up")
    finally:
        central.stop()
        daemon.stop_quietly()
    assert mid_page >= 1, "central was never caught with a page's transaction open"
    assert_exactly_once(dsn, head, messages)


def test_kill_9_of_central_mid_page_then_restart_loses_and_doubles_nothing(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str
) -> None:
    run_central_kills_mid_page(tmp_path, broker, central_dsn, total=6000, kills=3, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_kill_9_of_central_mid_page_soak(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str, seed: int
) -> None:
    run_central_kills_mid_page(tmp_path, broker, central_dsn, total=20_000, kills=10, seed=200 + seed)


async def run_postgres_crashes_mid_pull(
    tmp_path: Path,
    broker: MosquittoBroker,
    dsn: str,
    pg: PgCluster,
    caplog: pytest.LogCaptureFixture,
    *,
    total: int,
    crashes: int,
    seed: int,
) -> None:
    """PostgreSQL dies (``pg_ctl stop -m immediate``: no checkpoint, crash recovery at start) while
    central is pulling a backlog in small pages, ``crashes`` times; the puller reconnects by itself."""
    messages = day_of_traffic(total, seed=seed, store="demo")
    config = write_config(tmp_path, broker, sync={"token": SYNC_TOKEN, "page_max": 100})
    async with run_daemon(config) as edge:
        await apublish_all(broker.port, messages)
        db = edge.config.path(edge.config.database.path)
        await wait_for(
            lambda: count(db, "SELECT count(*) FROM readings") == total, timeout=120, what="stored"
        )
        head = (await ajson(f"{edge.url}/api/v1/sync", STAFF_TOKEN))["head"]
        central_cfg = central_config(tmp_path, dsn, {"demo": edge.url}, page_limit=100)
        async with Central(central_cfg) as central:
            puller = central.pullers["demo"]
            for n in range(1, crashes + 1):
                await wait_for(
                    lambda n=n: puller.applied >= n * head // (crashes + 2), what=f"pull {n} going"
                )
                await asyncio.to_thread(pg.restart, down_s=0.3)
            await wait_for(
                lambda: count(db, "SELECT acked_seq FROM sync_state") == head, timeout=120, what="caught up"
            )
    failures = [r for r in caplog.records if r.getMessage() == "central_pull_failed"]
    assert failures, "central never noticed PostgreSQL going away"
    assert_exactly_once(dsn, head, messages)


async def test_a_postgresql_crash_mid_pull_loses_and_doubles_nothing(
    tmp_path: Path,
    broker: MosquittoBroker,
    central_dsn: str,
    pg_cluster: PgCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_postgres_crashes_mid_pull(
        tmp_path, broker, central_dsn, pg_cluster, caplog, total=4000, crashes=2, seed=9
    )


@pytest.mark.slow
async def test_postgresql_crashes_mid_pull_soak(
    tmp_path: Path,
    broker: MosquittoBroker,
    central_dsn: str,
    pg_cluster: PgCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_postgres_crashes_mid_pull(
        tmp_path, broker, central_dsn, pg_cluster, caplog, total=15_000, crashes=6, seed=19
    )
