"""`storeedge demo`: a whole simulated store on one machine, with a live summary.

Starts mosquitto on a free loopback port (unless --external-broker), the daemon and the simulators as
child processes (they talk to each other only through the broker, the serial PTY and HTTP, exactly as
in a store), then polls the daemon's HTTP API and prints what flows. Ctrl-C, SIGTERM or --duration
stops the simulator first, then the daemon (which commits what it holds), then the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from edge.catalog.load import load_catalog, store_catalog_file
from edge.config import Config, load_config, parse_config
from edge.customers.privacy import CardCheck
from edge.demo.broker import MosquittoBroker, free_port
from edge.demo.seed import SeedBasket, SeedReport, seed_store, store_pseudonym_key
from edge.errors import EdgeError
from edge.predictions.clock import StoreClock
from models.progress import NO_PROGRESS, Progress
from sensors.planogram import load_planogram

DEMO_SEED_HOUSEHOLDS = 300
DEMO_SEED_WEEKS = 60  # over a year: the seasonal suggestions compare with the same weeks last year

REPO = Path(__file__).resolve().parents[2]  # edge/demo/service.py -> the checkout
REPO_EXAMPLE = REPO / "storeedge.example.toml"
DEMO_PLANOGRAM = REPO / "simulators" / "demo_store" / "planogram.toml"


def seed_demo_history(
    config: Config, *, households: int, weeks: int, seed: int = 7, progress: Progress = NO_PROGRESS
) -> SeedReport:
    """Simulate the store's households for the ``weeks`` before today and seed the config's database with
    their baskets (`edge.demo.seed`). The simulator lives here, where edge may import it. ``progress``
    hears the simulation and one step per basket written. With a ``[store] catalog`` the households buy
    its products at its prices (a usual product each, sometimes another); demand has seasons and
    pre-holiday peaks (`simulators.seasonal_demand`)."""
    from simulators.household_history import (  # noqa: PLC0415 - the simulators only when seeding
        HouseholdSimConfig,
        pos_transactions,
        simulate_households,
    )

    if households < 1 or not 1 <= weeks <= 104:
        raise EdgeError("seed: --households must be >= 1 and --weeks within 1..104")
    planogram_path = config.path(config.store.planogram)
    catalog_path = store_catalog_file(config)
    catalog_categories = load_catalog(catalog_path).categories if catalog_path is not None else None
    clock = StoreClock(config.store.timezone)
    now_ms = clock.now_ms()
    offset_ms = clock.utc_offset_min(now_ms) * 60_000
    today = date(1970, 1, 1) + timedelta(days=(now_ms + offset_ms) // 86_400_000)
    progress.stage(f"simulating {households} households for {weeks} weeks")
    sim = simulate_households(
        HouseholdSimConfig(
            seed=seed, households=households, days=7 * weeks, start=today - timedelta(days=7 * weeks),
            planogram=planogram_path, catalog=catalog_path, seasonal_demand=True,
        )
    )  # fmt: skip
    baskets = (
        SeedBasket(
            t.payload.loyalty_id or "",
            int(t.payload.ts) - offset_ms,  # the simulator's clock is store-local
            t.payload.basket_id,
            [(i.sku, i.qty, i.unit_price) for i in t.payload.items],
        )
        for t in pos_transactions(sim)
        if t.payload.loyalty_id
    )
    progress.stage("writing baskets")
    return seed_store(config, load_planogram(planogram_path), _counted(baskets, progress), catalog_categories)


def _counted(baskets: Iterable[SeedBasket], progress: Progress) -> Iterator[SeedBasket]:
    for basket in baskets:
        yield basket
        progress.advance()


def demo_config(base: Config, workdir: Path, broker_port: int | None) -> dict[str, Any]:
    raw: dict[str, Any] = msgspec.to_builtins(base)
    raw.pop("base_dir")
    raw["store"]["planogram"] = str(base.path(base.store.planogram).resolve())
    raw["store"]["layout"] = str(base.path(base.store.layout).resolve())
    if broker_port is not None:
        raw["mqtt"]["port"] = broker_port
    raw["http"]["port"] = free_port(base.http.host)
    raw["http"]["staff_token"] = base.http.staff_token or secrets.token_urlsafe(16)
    raw["http"]["kiosk_token"] = base.http.kiosk_token or secrets.token_urlsafe(16)
    if base.store.promotions:
        raw["store"]["promotions"] = str(base.path(base.store.promotions).resolve())
    if base.store.catalog:
        raw["store"]["catalog"] = str(base.path(base.store.catalog).resolve())
    raw["database"]["path"] = str((workdir / "storeedge.db").resolve())
    raw["serial"]["ports"] = [
        {"path": str((workdir / "tty-legacy").resolve()), "name": "legacy-a6", "baudrate": 9600}
    ]
    return raw


def to_toml(raw: Mapping[str, Any]) -> str:
    """Enough TOML for a storeedge config: sections of scalars, and arrays of tables one level down."""
    lines: list[str] = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        nested = []
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, list) and value and isinstance(value[0], dict):
                nested.append((key, value))
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        for key, rows in nested:
            for row in rows:
                lines.append(f"[[{section}.{key}]]")
                lines.extend(f"{k} = {json.dumps(v)}" for k, v in row.items() if v is not None)
        lines.append("")
    return "\n".join(lines)


def parse_prometheus(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for the counters the summary shows."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            samples[key] = float(value)
        except ValueError:
            continue
    return samples


def _labelled(samples: Mapping[str, float], name: str) -> dict[str, float]:
    out = {}
    for key, value in samples.items():
        if key.startswith(name + "{"):
            label = key[len(name) + 1 : -1].partition("=")[2].strip('"')
            out[label] = value
    return out


class DemoSnapshot(msgspec.Struct):
    elapsed_s: float
    received: dict[str, float]
    stored: dict[str, float]
    rejected: dict[str, float]
    duplicates: float
    messages_per_s: float
    shelves_low: list[str]
    shelves_reporting: int
    fridges_out_of_range: list[str]
    zones: dict[str, int]
    devices_online: int
    quarantined: int
    alerts_active: dict[str, int]
    restock: list[str]
    db: dict[str, Any]


async def snapshot(
    session: aiohttp.ClientSession, base_url: str, token: str, started: float, prev: tuple[float, float]
) -> DemoSnapshot:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base_url}/metrics") as resp:
        samples = parse_prometheus(await resp.text())

    async def api(path: str) -> Any:
        async with session.get(f"{base_url}/api/v1/{path}", headers=headers) as resp:
            resp.raise_for_status()
            return await resp.json()

    shelves, fridges, zones, devices, quarantine, db, alerts, restock = await asyncio.gather(
        api("shelves"), api("fridges"), api("zones"), api("devices"), api("quarantine?limit=1"), api("summary"),
        api("alerts?state=active&limit=1000"), api("restock"),
    )  # fmt: skip
    active: dict[str, int] = {}
    for alert in alerts:
        active[alert["kind"]] = active.get(alert["kind"], 0) + 1
    received = _labelled(samples, "storeedge_messages_received_total")
    now = time.monotonic()
    total = sum(received.values())
    rate = (total - prev[1]) / (now - prev[0]) if now > prev[0] else 0.0
    return DemoSnapshot(
        elapsed_s=round(now - started, 1),
        received=received,
        stored=_labelled(samples, "storeedge_messages_stored_total"),
        rejected=_labelled(samples, "storeedge_messages_rejected_total"),
        duplicates=samples.get("storeedge_messages_duplicate_total", 0.0),
        messages_per_s=round(rate, 1),
        shelves_low=[s["id"] for s in shelves if s["low"]],
        shelves_reporting=sum(1 for s in shelves if s["items"] is not None),
        fridges_out_of_range=[f["id"] for f in fridges if f["in_range"] is False],
        zones={z["id"]: z["occupancy"] for z in zones},
        devices_online=sum(1 for d in devices if d["online"]),
        quarantined=quarantine["total"],
        alerts_active=active,
        restock=[f"{r['shelf']} +{r['bring']} {r['product']}" for r in restock[:5]],
        db=db,
    )


def render(s: DemoSnapshot, url: str) -> str:
    def fmt(d: Mapping[str, float]) -> str:
        return ", ".join(f"{k} {int(v)}" for k, v in sorted(d.items())) or "none"

    return "\n".join(
        [
            f"storeedge demo — {s.elapsed_s:.0f}s — API {url} — Ctrl-C stops",
            "",
            f"messages/s       {s.messages_per_s:8.1f}   received: {fmt(s.received)}",
            f"stored           {fmt(s.stored)}",
            f"rejected         {fmt(s.rejected)}   (duplicates dropped: {int(s.duplicates)})",
            f"shelves          {s.shelves_reporting} reporting, low: {', '.join(s.shelves_low) or 'none'}",
            f"fridges          out of range: {', '.join(s.fridges_out_of_range) or 'none'}",
            f"zones            {', '.join(f'{k} {v}' for k, v in s.zones.items())}",
            f"devices online   {s.devices_online}",
            f"alerts active    {fmt(s.alerts_active)}",
            f"restock next     {'; '.join(s.restock) or 'nothing'}",
            f"database         {s.db['readings']} readings, {s.db['purchases']} purchases, "
            f"{s.db['households']} households, {s.db['outbox_rows']} outbox rows, {s.db['quarantined']} quarantined",
        ]
    )


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, daemon: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise EdgeError(f"the daemon exited with {daemon.returncode}; see {log}")
        try:
            async with session.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise EdgeError(f"the daemon did not become healthy within 30 s; see {log}")


def prepare_workdir(args: argparse.Namespace) -> tuple[Config, Path]:
    if args.config is not None:
        base = load_config(args.config)
    elif REPO_EXAMPLE.exists():
        base = load_config(REPO_EXAMPLE)
    else:
        base = parse_config(
            {
                "store": {
                    "planogram": str(DEMO_PLANOGRAM),
                    "layout": str(DEMO_PLANOGRAM.with_name("layout.toml")),
                }
            }
        )
    workdir: Path = args.workdir
    if workdir.exists():
        shutil.rmtree(workdir)  # the demo starts from an empty store every time
    workdir.mkdir(parents=True)
    return base, workdir


def _write_config(
    base: Config, workdir: Path, broker: MosquittoBroker | None, seed: int
) -> tuple[dict[str, Any], Path]:
    """The demo's config file, and its database seeded with weeks of loyalty purchases so a kiosk shows a
    real list (the demo database is new every time); prints loyalty cards worth typing at a kiosk."""
    raw = demo_config(base, workdir, broker.port if broker else None)
    config_path = workdir / "storeedge.toml"
    config_path.write_text(to_toml(raw))
    try:
        seeded = seed_demo_history(
            load_config(config_path), households=DEMO_SEED_HOUSEHOLDS, weeks=DEMO_SEED_WEEKS, seed=seed
        )
    except BaseException:
        if broker is not None:
            broker.stop()
        raise
    # Scanning a card sends its barcode (number and check code): that is what opens a personal list.
    cards = CardCheck(store_pseudonym_key(load_config(config_path)))
    print(
        f"seeded {seeded.households} households with {DEMO_SEED_WEEKS} weeks of purchases; loyalty cards to "
        f"try at a kiosk (type the barcode as a scanner would): {', '.join(map(cards.barcode, seeded.cards))}",
        flush=True,
    )
    return raw, config_path


async def run_demo(args: argparse.Namespace) -> int:
    base, workdir = prepare_workdir(args)
    broker = None if args.external_broker else MosquittoBroker(workdir / "broker")
    if broker is not None:
        broker.start()
    raw, config_path = _write_config(base, workdir, broker, args.seed)
    url = f"http://{raw['http']['host']}:{raw['http']['port']}"
    token = raw["http"]["staff_token"]
    cli = [sys.executable, "-m", "edge"]
    daemon = spawn([*cli, "run", "--config", str(config_path)], workdir / "daemon.log")
    simulator = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    interactive = sys.stdout.isatty()
    final: DemoSnapshot | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await wait_healthy(session, url, daemon, workdir / "daemon.log")
            simulator = spawn(
                [
                    *cli,
                    "simulate",
                    "--config",
                    str(config_path),
                    "--seed",
                    str(args.seed),
                    "--speed",
                    str(args.speed),
                    "--fault-rate",
                    str(args.fault_rate),
                    "--ground-truth",
                    str(workdir / "ground_truth.json"),
                    "--till-receipts",
                ],
                workdir / "simulator.log",
            )
            print(
                f"store running: broker 127.0.0.1:{raw['mqtt']['port']}, API {url} (staff token in {config_path}), logs in {workdir}/",
                flush=True,
            )
            started = time.monotonic()
            prev = (started, 0.0)
            while not stop.is_set():
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.refresh)
                if daemon.poll() is not None:
                    raise EdgeError(
                        f"the daemon exited with {daemon.returncode}; see {workdir / 'daemon.log'}"
                    )
                final = await snapshot(session, url, token, started, prev)
                prev = (time.monotonic(), sum(final.received.values()))
                text = render(final, url)
                print(("\x1b[2J\x1b[H" + text) if interactive else text + "\n", flush=True)
            if simulator is not None:
                terminate(simulator, 10)
            await asyncio.sleep(1.0)  # let the last QoS 1 messages reach the daemon
            final = await snapshot(session, url, token, started, prev)
    finally:
        if simulator is not None:
            terminate(simulator, 10)
        daemon_exit = terminate(daemon, 10)
        if broker is not None:
            broker.stop()
    result = msgspec.to_builtins(final) if final else {}
    result["daemon_exit_code"] = daemon_exit
    result["workdir"] = str(workdir)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if daemon_exit == 0 else 1
