"""Shared fixtures: real mosquitto brokers, configs, and the daemon as an in-process task or a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, settings

from edge.config import Config, load_config
from edge.daemon import Daemon
from edge.demo.broker import MosquittoBroker, free_port
from edge.demo.service import to_toml
from tests.pg_testkit import PgCluster

# Machines are noisy (2 cores shared with brokers and daemons): no per-example deadlines. `make test-long`
# selects the "long" profile for many more examples.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "long", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=5000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parent.parent
DEMO_PLANOGRAM = REPO / "simulators" / "demo_store" / "planogram.toml"
STAFF_TOKEN = "test-staff-token"
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster per test session (tests/pg_testkit.py); fsync on."""
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def central_dsn(pg_cluster: PgCluster) -> str:
    """A fresh, empty database for central on the session's cluster."""
    return pg_cluster.create_database()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def write_config(tmp_path: Path, broker: MosquittoBroker | None, **sections: dict[str, Any]) -> Path:
    """A config for a test store: demo planogram, the test broker, free HTTP port, DB in tmp_path."""
    raw: dict[str, dict[str, Any]] = {
        "store": {
            "id": "demo",
            "planogram": str(DEMO_PLANOGRAM),
            "layout": str(DEMO_PLANOGRAM.with_name("layout.toml")),
            "promotions": str(DEMO_PLANOGRAM.with_name("promotions.json")),
            "catalog": str(DEMO_PLANOGRAM.with_name("catalog.json")),
        },
        "mqtt": {
            "port": broker.port if broker else free_port(),
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
        },
        "database": {"path": str(tmp_path / "store.db")},
        "http": {"port": free_port(), "staff_token": STAFF_TOKEN},
        "privacy": {"pseudonym_key": PSEUDONYM_KEY},
        "serial": {"reopen_min_s": 0.1, "reopen_max_s": 0.5},
        # Silence alerts are driven by the wall clock, not by the test's traffic: off unless a test
        # turns them on, so no test's outbox grows by a timing accident.
        "thresholds": {"silent_after_periods": 1_000_000.0},
        "log": {"level": "info"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    path = tmp_path / "storeedge.toml"
    path.write_text(to_toml(raw))
    return path


@pytest.fixture
def config_path(tmp_path: Path, broker: MosquittoBroker) -> Path:
    return write_config(tmp_path, broker)


class RunningDaemon:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        assert daemon.http is not None
        self.url = f"http://{daemon.http.host}:{daemon.http.port}"

    @property
    def config(self) -> Config:
        return self.daemon.config


@contextlib.asynccontextmanager
async def run_daemon(config_path: Path) -> AsyncIterator[RunningDaemon]:
    daemon = Daemon(load_config(config_path))
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(daemon.run(stop, started))
    started_or_failed = asyncio.create_task(started.wait())
    await asyncio.wait({task, started_or_failed}, return_when=asyncio.FIRST_COMPLETED, timeout=20)
    if task.done():
        task.result()
    assert started.is_set(), "daemon did not start within 20 s"
    # The first connection creates the broker-side session: publish only once it is subscribed.
    deadline = time.monotonic() + 10
    while daemon.mqtt.source is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    try:
        yield RunningDaemon(daemon)
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            stuck = [
                f"{t.get_name()}: {' -> '.join(_await_chain(t.get_coro()))}"
                for t in asyncio.all_tasks()
                if not t.done()
            ]
            raise AssertionError("daemon did not stop within 10 s; still running:\n" + "\n".join(stuck))
        task.result()


def _await_chain(coro: Any) -> list[str]:
    """Where a suspended coroutine is waiting, innermost last (Task.get_stack shows only the top)."""
    chain = []
    while coro is not None and hasattr(coro, "cr_frame") and coro.cr_frame is not None:
        chain.append(f"{coro.cr_code.co_qualname}:{coro.cr_frame.f_lineno}")
        coro = coro.cr_await
    if coro is not None:
        chain.append(repr(coro)[:80])
    return chain


def http_get(url: str, token: str | None = STAFF_TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, token: str | None = STAFF_TOKEN) -> Any:
    status, body = http_get(url, token)
    assert status == 200, (status, body)
    return json.loads(body)


async def aget(url: str, token: str | None = STAFF_TOKEN) -> tuple[int, bytes]:
    """HTTP GET from inside the event loop that also runs an in-process daemon."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.read()


async def ajson(url: str, token: str | None = STAFF_TOKEN) -> Any:
    status, body = await aget(url, token)
    assert status == 200, (status, body)
    return json.loads(body)


class DaemonProcess:
    """`storeedge run` as a real child process, for crash and shutdown tests."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.config = load_config(config_path)
        self.url = f"http://{self.config.http.host}:{self.config.http.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 40.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=log,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"daemon exited {self.process.returncode}: {self.log_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(OSError):
                status, body = http_get(f"{self.url}/healthz", None)
                if status == 200 and json.loads(body)["mqtt_connected"]:
                    return
            time.sleep(0.1)
        raise AssertionError(f"daemon not healthy in {timeout}s: {self.log_path.read_text()[-3000:]}")

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemon_process(config_path: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(config_path, tmp_path / "daemon.log")
    yield proc
    proc.stop_quietly()
