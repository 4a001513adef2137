"""`storeedge demo --stores N --central`: a small chain on one machine, with central on PostgreSQL.

One throwaway PostgreSQL cluster (`edge.demo.postgres`, in a temp dir), one mosquitto broker shared by
the stores (every topic carries the store id: ``store/{id}/...``), and per store its own daemon and
simulators as child processes, each with its own database, HTTP port, staff token and ``[sync]``
token. Central (`sync.central.Central`) runs inside this process with a config written to
``<workdir>/central.toml`` (so ``storeedge central status --config`` and ``central sign-bundle --config``
work on the running demo) and pulls every store's changes into the cluster. The stores share the chain's
pseudonym key and trust the chain's bundle-signing key (``<workdir>/chain-signing.key``).

Ctrl-C, SIGTERM or --duration stops the simulators, then central, then the daemons (which commit what
they hold), the broker and PostgreSQL, and deletes the cluster's directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from edge.config import Config, load_config
from edge.customers.privacy import CardCheck
from edge.demo.broker import MosquittoBroker, find_mosquitto, free_port
from edge.demo.loop import DEMO_PSEUDONYM_KEY, LearningLoop, start_simulated_time
from edge.demo.postgres import PgCluster, pg_bin
from edge.demo.seed import store_pseudonym_key
from edge.demo.service import (
    DEMO_SEED_HOUSEHOLDS,
    DEMO_SEED_WEEKS,
    demo_config,
    prepare_workdir,
    seed_demo_history,
    spawn,
    to_toml,
    wait_healthy,
)
from edge.errors import EdgeError
from sync.bundle_signing import generate_key
from sync.central import Central
from sync.central_config import load_central_config
from sync.central_pool import DB_ERRORS
from sync.cli import configure_logging
from sync.schemas import CentralStatusView

MAX_STORES = 8  # each store is a daemon and a simulator process: more does not fit a laptop's cores
CENTRAL_DATABASE = "storeedge_central"


class _Stopped(Exception):
    """A signal arrived while the chain was still starting."""


@dataclass
class ChainStore:
    id: str
    dir: Path
    config_path: Path
    url: str
    staff_token: str
    card: str = ""
    daemon: subprocess.Popen[bytes] | None = None
    simulator: subprocess.Popen[bytes] | None = None


@dataclass
class Chain:
    workdir: Path
    central_port: int
    stores: list[ChainStore] = field(default_factory=list)

    @property
    def central_url(self) -> str:
        return f"http://127.0.0.1:{self.central_port}"


def store_config(
    base: Config, store_dir: Path, *, store_id: str, broker_port: int, central_url: str, public_key: str,
    chain_key: Path, learning: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The single-store demo's config for one store of the chain: its own id, sync token and bundle dir;
    the chain's pseudonym key and bundle-signing key; central as its bundle source. With ``learning``
    (`edge.demo.loop`): the tills' simulated baskets from 2026 are accepted and kept whenever the demo
    runs, central's bundles are looked for every second, and central decides the experiment (the store
    rescores when its step changes, not on a timer)."""
    raw = demo_config(base, store_dir, broker_port)
    raw["store"]["id"] = store_id
    raw["store"]["name"] = f"Demo Store {store_id}"
    raw["mqtt"]["client_id"] = f"storeedge-{store_id}"  # the broker keeps each daemon's session by it
    raw["privacy"].update(pseudonym_key=None, pseudonym_key_file=str(chain_key.resolve()))
    raw["sync"].update(
        token=secrets.token_urlsafe(24),
        central_url=central_url,
        public_key=public_key,
        bundle_dir=str((store_dir / "bundles").resolve()),
    )
    if learning:
        raw["sync"]["bundle_poll_s"] = 1.0
        raw["thresholds"]["max_reading_age_s"] = 40 * 365 * 86_400.0
        raw["retention"]["readings_days"] = 40 * 365.0
        raw["models"].update(experiment_check_s=86_400.0, rescore_interval_s=86_400.0)
    return raw


def central_toml(chain: Chain, dsn: str, store_configs: list[dict[str, Any]]) -> str:
    sections = {
        "central": {
            "dsn": dsn,
            "host": "127.0.0.1",
            "port": chain.central_port,
            "bundle_dir": str((chain.workdir / "central-bundles").resolve()),
            "poll_interval_s": 1.0,
        },
        "log": {"level": "info", "format": "logfmt"},
    }
    stores = [
        f"[[stores]]\nid = {json.dumps(s.id)}\nurl = {json.dumps(s.url)}\ntoken = {json.dumps(raw['sync']['token'])}\n"
        for s, raw in zip(chain.stores, store_configs, strict=True)
    ]
    return to_toml(sections) + "\n".join(stores)


def _prepare_stores(
    args: argparse.Namespace, base: Config, chain: Chain, broker_port: int
) -> list[dict[str, Any]]:
    """Make the chain's keys; write each store's config and seed its database. Returns the configs."""
    chain_key = chain.workdir / "chain-pseudonym.key"
    fd = os.open(chain_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        # the learning loop's simulated households must get the same pseudonyms on every run: the retrain
        # trains on them in pseudonym order (edge.demo.loop.DEMO_PSEUDONYM_KEY)
        out.write(secrets.token_hex(32) if args.no_learning else DEMO_PSEUDONYM_KEY)
    public_key = generate_key(chain.workdir / "chain-signing.key")
    raws = []
    for n in range(1, args.stores + 1):
        store_id = f"store-{n}"
        store_dir = chain.workdir / store_id
        store_dir.mkdir()
        raw = store_config(
            base, store_dir, store_id=store_id, broker_port=broker_port, central_url=chain.central_url,
            public_key=public_key, chain_key=chain_key, learning=not args.no_learning,
        )  # fmt: skip
        config_path = store_dir / "storeedge.toml"
        config_path.write_text(to_toml(raw))
        config = load_config(config_path)
        seeded = seed_demo_history(
            config, households=DEMO_SEED_HOUSEHOLDS, weeks=DEMO_SEED_WEEKS, seed=args.seed + n
        )
        store = ChainStore(
            store_id,
            store_dir,
            config_path,
            f"http://127.0.0.1:{raw['http']['port']}",
            raw["http"]["staff_token"],
        )
        store.card = CardCheck(store_pseudonym_key(config)).barcode(seeded.cards[0]) if seeded.cards else ""
        chain.stores.append(store)
        raws.append(raw)
    return raws


def banner(chain: Chain, dsn: str, pg_dir: Path) -> str:
    central_config = chain.workdir / "central.toml"
    lines = [
        f"chain running: {len(chain.stores)} stores -> central on PostgreSQL (logs in {chain.workdir}/)",
        f"  operations page   {chain.central_url}/",
        f"  central status    {chain.central_url}/central/v1/status  (JSON; or: storeedge central status --config {central_config})",
        f"  central database  {dsn}  (throwaway cluster in {pg_dir}, deleted at exit)",
    ]
    for s in chain.stores:
        lines.append(
            f"  {s.id:<8} staff API {s.url}/api/v1/summary  (Authorization: Bearer {s.staff_token}; config {s.config_path}"
            + (f"; kiosk card {s.card})" if s.card else ")")
        )
    lines.append(
        f"  stop              Ctrl-C or `kill {os.getpid()}`: stops simulators, central, daemons, mosquitto and "
        "PostgreSQL, and deletes the cluster"
    )
    return "\n".join(lines)


def render(status: CentralStatusView, elapsed_s: float, synced_after: float | None) -> str:
    lines = [
        f"storeedge chain demo — {elapsed_s:.0f}s — "
        + (
            f"central had changes from every store {synced_after:.1f}s after start"
            if synced_after is not None
            else "waiting for every store's first changes"
        ),
        f"{'store':<10}{'state':<13}{'changes':>9}{'behind':>8}{'lag':>8}  last error",
    ]
    for v in status.stores:
        lag = f"{v.lag_s:.1f}s" if v.lag_s is not None else "-"
        lines.append(
            f"{v.store:<10}{v.state:<13}{v.changes:>9}{v.behind:>8}{lag:>8}  {(v.last_error or '')[:60]}"
        )
    return "\n".join(lines)


def _terminate_all(processes: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """SIGTERM every process at once, then wait for each (kill -9 whatever outlives ``timeout``)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def _simulator_argv(args: argparse.Namespace, store: ChainStore, n: int) -> list[str]:
    return [
        sys.executable, "-m", "edge", "simulate", "--config", str(store.config_path),
        "--seed", str(args.seed + n), "--speed", str(args.speed), "--fault-rate", str(args.fault_rate),
        "--till-receipts",
    ]  # fmt: skip


async def run_chain(args: argparse.Namespace) -> int:
    if not 1 <= args.stores <= MAX_STORES:
        raise EdgeError(f"demo: --stores must be within 1..{MAX_STORES}")
    started = time.monotonic()
    pg_bin("initdb")  # before anything starts: say how to install what is missing
    if not args.external_broker:
        find_mosquitto()
    stop = _stop_on_signals()
    base, workdir = prepare_workdir(args)
    chain = Chain(workdir.resolve(), free_port())  # configs name absolute paths: they sit in subfolders
    cluster = PgCluster()
    broker = None if args.external_broker else MosquittoBroker(workdir / "broker")
    log_file = (workdir / "central.log").open("a")
    watch = _Watch(started)
    try:
        if broker is not None:
            broker.start()
        # initdb and the stores' seeding overlap (both take a second or two); both end before a failure of
        # either is raised, so the cleanup below never races a thread still creating the cluster
        raws = await _prepare(args, base, chain, cluster, broker.port if broker else base.mqtt.port)
        dsn = cluster.create_database(CENTRAL_DATABASE)
        (workdir / "central.toml").write_text(central_toml(chain, dsn, raws))
        clock_file = None if args.no_learning else start_simulated_time(chain.workdir)
        await _start_daemons(chain, stop, clock_file)
        central_config = load_central_config(workdir / "central.toml")
        configure_logging(central_config.log.level, central_config.log.format, stream=log_file)
        async with Central(central_config) as central:
            for n, store in enumerate(chain.stores, start=1):
                store.simulator = spawn(_simulator_argv(args, store, n), store.dir / "simulator.log")
            if clock_file is not None:
                stores = [(s.id, s.url, s.staff_token, s.config_path) for s in chain.stores]
                port = broker.port if broker else base.mqtt.port
                watch.start_loop(
                    LearningLoop.for_chain(stores, central, chain.central_url, chain.workdir, port)
                )
            try:
                await watch.run(args, chain, central, banner(chain, dsn, cluster.dir), stop)
            finally:
                await watch.stop_loop()
            _terminate_all([s.simulator for s in chain.stores if s.simulator], 10)
            await asyncio.sleep(central_config.central.poll_interval_s + 0.5)  # the last changes arrive
            with contextlib.suppress(*DB_ERRORS):
                watch.final = await central.status()
    except _Stopped:
        pass
    finally:
        _terminate_all([p for s in chain.stores for p in (s.simulator, s.daemon) if p is not None], 10)
        if broker is not None:
            broker.stop()
        cluster.remove()
        logging.getLogger().handlers.clear()
        log_file.close()
    print(json.dumps(_summary(chain, watch, cluster), indent=2, sort_keys=True))
    return 0 if all(s.daemon.returncode == 0 for s in chain.stores if s.daemon is not None) else 1


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _prepare(
    args: argparse.Namespace, base: Config, chain: Chain, cluster: PgCluster, broker_port: int
) -> list[dict[str, Any]]:
    created, raws = await asyncio.gather(
        asyncio.to_thread(cluster.create),
        asyncio.to_thread(_prepare_stores, args, base, chain, broker_port),
        return_exceptions=True,
    )
    if isinstance(created, BaseException):
        raise created
    if isinstance(raws, BaseException):
        raise raws
    configs: list[dict[str, Any]] = raws
    return configs


async def _start_daemons(chain: Chain, stop: asyncio.Event, clock_file: Path | None) -> None:
    """Each store's daemon; on the demo's simulated time (`edge.clocked_daemon`) with ``clock_file``."""
    if stop.is_set():
        raise _Stopped
    for store in chain.stores:
        if clock_file is None:
            argv = [sys.executable, "-m", "edge", "run", "--config", str(store.config_path)]
        else:
            argv = [sys.executable, "-m", "edge.clocked_daemon", "--config", str(store.config_path),
                    "--clock-file", str(clock_file)]  # fmt: skip
        store.daemon = spawn(argv, store.dir / "daemon.log")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(
            *(wait_healthy(session, s.url, _daemon(s), s.dir / "daemon.log") for s in chain.stores)
        )
    if stop.is_set():
        raise _Stopped


@dataclass
class _Watch:
    """The live summary: central's status every ``--refresh`` seconds until stopped or ``--duration``."""

    started: float
    final: CentralStatusView | None = None
    synced_after: float | None = None  # seconds from the command until central had every store's changes
    loop: LearningLoop | None = None
    loop_task: asyncio.Task[None] | None = None

    def start_loop(self, loop: LearningLoop) -> None:
        self.loop = loop
        self.loop_task = asyncio.create_task(loop.run(), name="learning-loop")

    async def stop_loop(self) -> None:
        """Cancel the learning loop if it still runs (a bug in it is raised here, not lost)."""
        if self.loop_task is None:
            return
        self.loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.loop_task

    async def run(
        self, args: argparse.Namespace, chain: Chain, central: Central, text: str, stop: asyncio.Event
    ) -> None:
        print(text, flush=True)
        interactive = sys.stdout.isatty()
        running_since = printed = time.monotonic()
        while not stop.is_set():
            if args.duration is not None and time.monotonic() - running_since >= args.duration:
                return
            # until every store has reached central, look often (to report when), print at --refresh
            wait = args.refresh if self.synced_after is not None else min(args.refresh, 0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            for store in chain.stores:
                if _daemon(store).poll() is not None:
                    raise EdgeError(f"{store.id}'s daemon exited; see {store.dir / 'daemon.log'}")
            self.final = await central.status()
            synced_now = self.synced_after is None and all(v.changes > 0 for v in self.final.stores)
            if synced_now:
                self.synced_after = round(time.monotonic() - self.started, 1)
            if not synced_now and time.monotonic() - printed < args.refresh - 0.1:
                continue
            printed = time.monotonic()
            table = render(self.final, time.monotonic() - self.started, self.synced_after)
            if interactive and self.loop is not None:  # the loop's lines are printed as they happen too
                table += "\n\nlearning loop\n" + "\n".join(self.loop.lines or ["starting"])
            print(("\x1b[2J\x1b[H" + text + "\n\n" + table) if interactive else table + "\n", flush=True)


def _daemon(store: ChainStore) -> subprocess.Popen[bytes]:
    if store.daemon is None:
        raise EdgeError(f"{store.id}: the daemon was not started")
    return store.daemon


def _summary(chain: Chain, watch: _Watch, cluster: PgCluster) -> dict[str, Any]:
    views = {v.store: v for v in watch.final.stores} if watch.final else {}
    stores = []
    for s in chain.stores:
        v = views.get(s.id)
        stores.append(
            {
                "store": s.id,
                "staff_api": s.url,
                "daemon_exit_code": s.daemon.returncode if s.daemon else None,
                "state": v.state if v else None,
                "changes": v.changes if v else 0,
                "behind": v.behind if v else None,
            }
        )
    return {
        "stores": stores,
        "central": chain.central_url,
        "all_stores_at_central_after_s": watch.synced_after,
        "learning": watch.loop.lines if watch.loop else None,
        "learning_verdict": watch.loop.verdict if watch.loop else None,
        "postgres_dir": str(cluster.dir),
        "postgres_removed": not cluster.dir.exists(),
        "workdir": str(chain.workdir),
    }
