"""Sync benchmark: a busy store catches up with central after a 24 h WAN outage.

Real parts end to end: the store's outbox holds a day of changes (written with the daemon's own
`sync.outbox.append`, spread over the last 24 h, in the daemon's row shapes), the daemon runs as a
process (`storeedge run`) with live MQTT traffic through mosquitto the whole time, central runs as a
process (`python -m sync run`) and pulls through the flaky-WAN proxy (`simulators.flaky_wan`), which is
cut and then restored. Measured:

  catch-up      changes/s and MB/s from the first change applied to the last backlog change committed
                in central's database (MB: the changes' JSON; also the gzipped bytes on the wire)
  first change  seconds from the WAN being restored to central's first committed change
  live ingest   publish -> committed in the store's database, for live MQTT readings, while catching up
                (and before, with the WAN cut, for comparison): p50/p99/max
  COPY ceiling  the same rows COPYed straight into a table shaped like central's change log, in the same
                run: what central's apply is up against

Central's database is a throwaway PostgreSQL cluster (tests/pg_testkit.py, fsync on), started here.

Prints a table, writes bench/results/sync.json. Not a test: nothing here asserts a speed.

    python bench/sync.py                 # 24 h of a busy store (50 changes/s: 4.32 M changes)
    python bench/sync.py --hours 2       # a shorter outage
    python bench/sync.py --quick         # 20 minutes of backlog, a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as paho

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import pct  # noqa: E402
from edge.demo.broker import MosquittoBroker, free_port  # noqa: E402
from edge.demo.service import to_toml  # noqa: E402
from edge.store.db import open_store  # noqa: E402
from simulators.flaky_wan import CUT, UP, FlakyWan  # noqa: E402
from sync.outbox import OutboxEntry, append  # noqa: E402
from tests.pg_testkit import PgCluster  # noqa: E402

TOKEN = "bench-sync-token-0123456789"
PLANOGRAM = REPO / "simulators" / "demo_store" / "planogram.toml"
SHELVES = [f"A{a}-{s}" for a in (1, 2, 3, 4, 5, 7, 8) for s in range(1, 6)]
FRIDGES = ["F1", "F2", "F3", "F4"]
ZONES = ["entrance", "produce", "grocery", "chilled", "frozen", "checkout"]


# -- the backlog ----------------------------------------------------------------------------------------


def make_backlog(db: Path, hours: float, rate: float, seed: int) -> tuple[int, int]:
    """Fill the store's outbox with ``hours`` of a store producing ``rate`` changes/s; return (rows, bytes)."""
    rng = random.Random(seed)
    conn = open_store(db)
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    total = int(hours * 3600 * rate)
    now = int(time.time() * 1000)
    start = now - int(hours * 3_600_000)
    seqs: dict[str, int] = {}
    size = 0
    batch: list[OutboxEntry] = []
    batch_ms = start
    for n in range(total):
        ts = start + int(n * 1000 / rate)
        roll = rng.random()
        if roll < 0.70:
            shelf = SHELVES[n % len(SHELVES)]
            device = f"shelf-{shelf}"
            seq = seqs[device] = seqs.get(device, 0) + 1
            body = f'{{"type":"shelf_weight","device":"{device}","shelf":"{shelf}","seq":{seq},"ts_ms":{ts},"grams":{rng.uniform(0, 5000):.1f}}}'
            kind = "reading"
        elif roll < 0.80:
            shelf = rng.choice(SHELVES)
            device = f"shelf-{shelf}"
            seq = seqs[device] = seqs.get(device, 0) + 1
            body = f'{{"type":"shelf_event","device":"{device}","shelf":"{shelf}","seq":{seq},"ts_ms":{ts},"action":"pick","count":{rng.randint(1, 3)}}}'
            kind = "reading"
        elif roll < 0.90:
            unit = rng.choice(FRIDGES)
            device = f"fridge-{unit}"
            seq = seqs[device] = seqs.get(device, 0) + 1
            body = f'{{"type":"fridge_temperature","device":"{device}","unit":"{unit}","seq":{seq},"ts_ms":{ts},"celsius":{rng.uniform(1, 6):.2f}}}'
            kind = "reading"
        elif roll < 0.97:
            zone = rng.choice(ZONES)
            device = f"footfall-{zone}"
            seq = seqs[device] = seqs.get(device, 0) + 1
            body = f'{{"type":"footfall","device":"{device}","zone":"{zone}","seq":{seq},"ts_ms":{ts},"entered":{rng.randint(0, 9)},"exited":{rng.randint(0, 9)},"interval_s":60.0}}'
            kind = "reading"
        else:
            device = f"b-{n}"
            items = ",".join(
                f'{{"sku":"{1001 + rng.randint(0, 40)}","qty":{rng.randint(1, 3)},"unit_price":{rng.uniform(0.5, 9):.2f}}}'
                for _ in range(rng.randint(1, 8))
            )
            body = f'{{"lane":"{rng.randint(1, 4)}","basket_id":"{device}","household":"{rng.getrandbits(128):032x}","ts_ms":{ts},"total":{rng.uniform(1, 120):.2f},"items":[{items}]}}'
            kind = "purchase"
        size += len(body)
        batch.append(OutboxEntry(kind, device, body))
        if len(batch) >= 50_000 or n == total - 1:
            conn.execute("BEGIN IMMEDIATE")
            append(conn, batch_ms, batch)
            conn.execute("COMMIT")
            batch = []
            batch_ms = ts
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return total, size


# -- processes --------------------------------------------------------------------------------------------


def start_daemon(
    workdir: Path, broker: MosquittoBroker, db: Path, page_max: int
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / "storeedge.toml"
    config.write_text(
        to_toml(
            {
                "store": {
                    "id": "demo",
                    "planogram": str(PLANOGRAM),
                    "layout": str(PLANOGRAM.with_name("layout.toml")),
                },
                "mqtt": {"port": broker.port},
                "database": {"path": str(db)},
                "http": {"port": port, "staff_token": "bench-staff-token"},
                "privacy": {"pseudonym_key": "bench-key-0123456789abcdef"},
                "sync": {"token": TOKEN, "page_max": page_max},
                "log": {"level": "warning"},
            }
        )
    )
    log = (workdir / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)], stdout=log, stderr=log, cwd=REPO
    )
    wait_http(
        f"http://127.0.0.1:{port}/healthz", lambda b: json.loads(b)["mqtt_connected"], workdir / "daemon.log"
    )
    return proc, port


def start_central(workdir: Path, store_url: str, page_limit: int, dsn: str) -> subprocess.Popen[bytes]:
    port = free_port()
    config = workdir / "central.toml"
    config.write_text(
        f'[central]\ndsn = "{dsn}"\nport = {port}\nbundle_dir = "{workdir / "bundles"}"\n'
        f'page_limit = {page_limit}\n\n[log]\nlevel = "warning"\n\n'
        f'[[stores]]\nid = "demo"\nurl = "{store_url}"\ntoken = "{TOKEN}"\n'
    )
    log = (workdir / "central.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync", "run", "--config", str(config)], stdout=log, stderr=log, cwd=REPO
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", lambda _b: True, workdir / "central.log")
    return proc


def wait_http(url: str, ok: Any, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if ok(resp.read()):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up; see {log}")


# -- live traffic and its latency -------------------------------------------------------------------------


class LiveTraffic(threading.Thread):
    """Publishes live shelf weights (QoS 1) at ``rate``/s with ts = publish time."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.rate = port, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-live-{os.getpid()}")
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        next_at = time.monotonic()
        while not self.stop.is_set():
            shelf = SHELVES[self.sent % len(SHELVES)]
            seq = self.sent // len(SHELVES) + 1
            payload = json.dumps({"ts": int(time.time() * 1000), "seq": seq, "grams": 1000.0})
            client.publish(f"store/demo/shelf/{shelf}/weight", payload, qos=1)
            self.sent += 1
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        client.loop_stop()
        client.disconnect()


class CommitWatcher(threading.Thread):
    """Polls the store's ledger every 2 ms: latency = when a reading is visible (committed) - its ts.
    Each sample also keeps how much of that was before the daemon received the message (the ledger's
    ``received_ms`` - ts: publisher, broker, the daemon's event loop), so a slow run can be attributed."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.samples: list[tuple[float, float, float]] = []  # (seen at, latency s, publish -> received s)

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        last = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
        while not self.stop.is_set():
            rows = conn.execute(
                "SELECT id, ts_ms, received_ms FROM readings WHERE id > ? ORDER BY id", (last,)
            ).fetchall()
            now = time.time()
            for rid, ts, received in rows:
                self.samples.append((time.monotonic(), now - ts / 1000, (received - ts) / 1000))
                last = rid
            time.sleep(0.002)
        conn.close()


def latency(samples: list[tuple[float, float, float]], start: float, end: float) -> dict[str, float]:
    window = [lat for at, lat, _ in samples if start <= at <= end]
    before = [early for at, _, early in samples if start <= at <= end]
    return {
        "samples": len(window),
        "p50_ms": round(pct(window, 0.5) * 1000, 1),
        "p99_ms": round(pct(window, 0.99) * 1000, 1),
        "max_ms": round(max(window, default=float("nan")) * 1000, 1),
        # of which before the daemon had the message (publisher, broker, the daemon's event loop)
        "to_daemon_p99_ms": round(pct(before, 0.99) * 1000, 1),
    }


# -- the run ----------------------------------------------------------------------------------------------


async def central_progress(conn: asyncpg.Connection) -> tuple[int, int]:
    """(changes central holds, its committed cursor) for the store."""
    try:
        row = await conn.fetchrow("SELECT changes, cursor FROM stores WHERE id = 'demo'")
    except asyncpg.UndefinedTableError:  # central has not migrated yet
        return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def copy_ceiling(conn: asyncpg.Connection, chunk: int = 50_000) -> dict[str, Any]:
    """COPY the rows central holds into a fresh table of the change log's shape (primary key and arrival
    index included), ``chunk`` rows per COPY and commit: the ceiling for central's apply in this run."""
    await conn.execute(
        "CREATE TABLE copy_ceiling (id bigint GENERATED ALWAYS AS IDENTITY, stream integer NOT NULL,"
        " seq bigint NOT NULL, kind text NOT NULL, entity text, created_ms bigint, body text,"
        " received_ms bigint NOT NULL, PRIMARY KEY (stream, seq));"
        " CREATE INDEX copy_ceiling_id ON copy_ceiling (id)"
    )
    columns = ("stream", "seq", "kind", "entity", "created_ms", "body", "received_ms")
    rows = copy_s = 0.0
    after = -1
    while True:
        records = await conn.fetch(
            "SELECT stream, seq, kind, entity, created_ms, body, received_ms FROM change_log"
            " WHERE seq > $1 AND kind <> 'superseded' ORDER BY seq LIMIT $2",
            after,
            chunk,
        )
        if not records:
            break
        after = records[-1]["seq"]
        t = time.monotonic()
        await conn.copy_records_to_table("copy_ceiling", records=[tuple(r) for r in records], columns=columns)
        copy_s += time.monotonic() - t
        rows += len(records)
    await conn.execute("DROP TABLE copy_ceiling")
    return {
        "rows": int(rows),
        "seconds": round(copy_s, 2),
        "rows_per_s": round(rows / copy_s) if copy_s else None,
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = workdir / "store.db"
    t = time.monotonic()
    rows, body_bytes = make_backlog(db, args.hours, args.rate, args.seed)
    print(
        f"backlog: {rows:,} changes, {body_bytes / 1e6:.0f} MB of JSON, {db.stat().st_size / 1e6:.0f} MB database ({time.monotonic() - t:.0f} s to build)"
    )
    with PgCluster() as pg, MosquittoBroker(workdir / "broker") as broker:
        dsn = pg.create_database("central")
        progress = await asyncpg.connect(dsn)
        daemon, http_port = start_daemon(workdir, broker, db, args.page_max)
        try:
            async with FlakyWan("127.0.0.1", http_port) as wan:
                wan.set(CUT)
                central = start_central(workdir, f"http://127.0.0.1:{wan.port}", args.page_max, dsn)
                live = LiveTraffic(broker.port, args.live_rate)
                watcher = CommitWatcher(db)
                watcher.start()
                live.start()
                try:
                    # Let central's start-up (imports, first connection attempts) and the publisher's
                    # connection settle first: the WAN-cut window is the steady-state baseline.
                    await asyncio.sleep(args.warmup_s)
                    cut_start = time.monotonic()
                    await asyncio.sleep(args.offline_s)
                    cut_end = time.monotonic()
                    restored = time.monotonic()
                    wan.set(UP)
                    first = None
                    target = rows  # the backlog's last seq (live changes come after it)
                    deadline = restored + args.timeout_s
                    cursor = 0
                    while time.monotonic() < deadline:
                        changes, cursor = await central_progress(progress)
                        if first is None and changes > 0:
                            first = time.monotonic()
                        if cursor >= target:
                            break
                        await asyncio.sleep(0.02)
                    done = time.monotonic()
                finally:
                    live.stop.set()
                    watcher.stop.set()
                    live.join(10)
                    watcher.join(10)
                    central.terminate()
                    central.wait(15)
                wire_bytes = wan.stats.bytes_down
        finally:
            daemon.terminate()
            daemon.wait(15)
        ceiling = await copy_ceiling(progress) if first is not None and cursor >= target else {}
        await progress.close()
    if first is None or cursor < target:
        raise SystemExit(
            f"central did not catch up in {args.timeout_s} s (cursor {cursor} of {target}); see {workdir}"
        )
    catch_up_s = done - first
    return {
        "backlog": {
            "hours": args.hours,
            "rate_per_s": args.rate,
            "changes": rows,
            "json_mb": round(body_bytes / 1e6, 1),
        },
        "catch_up": {
            "seconds": round(catch_up_s, 2),
            "changes_per_s": round(rows / catch_up_s),
            "mb_per_s_json": round(body_bytes / 1e6 / catch_up_s, 2),
            "mb_per_s_wire": round(wire_bytes / 1e6 / catch_up_s, 2),
            "wall_from_restore_s": round(done - restored, 2),
        },
        "copy_ceiling": ceiling,
        "first_change_after_restore_s": round(first - restored, 3),
        "live_ingest_while_offline": latency(watcher.samples, cut_start, cut_end),
        "live_ingest_during_catch_up": {
            **latency(watcher.samples, restored, done),
            "rate_per_s": args.live_rate,
        },
        "settings": {
            "page_max": args.page_max,
            "gzip_level": 1,
            "synchronous": "FULL on the store; central on PostgreSQL with fsync on",
            "warmup_s": args.warmup_s,
            "offline_s": args.offline_s,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=24.0, help="length of the outage (default 24)")
    parser.add_argument("--rate", type=float, default=50.0, help="the busy store's changes/s (default 50)")
    parser.add_argument("--live-rate", type=float, default=50.0, help="live MQTT readings/s during the run")
    parser.add_argument("--page-max", type=int, default=5000, help="[sync] page_max and central's page_limit")
    parser.add_argument(
        "--offline-s", type=float, default=5.0, help="seconds to measure live ingest with the WAN cut"
    )
    parser.add_argument(
        "--warmup-s", type=float, default=5.0, help="seconds of live traffic before that measurement"
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20 minutes of backlog")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases, logs)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sync.json")
    args = parser.parse_args()
    if args.quick:
        args.hours = 1 / 3
    workdir = Path(tempfile.mkdtemp(prefix="storeedge-sync-bench-"))
    try:
        result = asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    c, live, idle = (
        result["catch_up"],
        result["live_ingest_during_catch_up"],
        result["live_ingest_while_offline"],
    )
    print()
    print(f"{'measure':<38} {'value':>14}  goal")
    print(f"{'catch-up rate (changes/s)':<38} {c['changes_per_s']:>14,}  >= 20,000")
    print(f"{'  raw COPY of the same rows (rows/s)':<38} {result['copy_ceiling']['rows_per_s']:>14,}")
    print(f"{'catch-up rate (MB/s JSON | wire)':<38} {c['mb_per_s_json']:>7} | {c['mb_per_s_wire']:<4}")
    print(f"{'catch-up time (s)':<38} {c['seconds']:>14}")
    print(f"{'first change after WAN restored (s)':<38} {result['first_change_after_restore_s']:>14}  < 5")
    print(
        f"{'live ingest p50 / p99 / max (ms)':<38} {live['p50_ms']:>5} / {live['p99_ms']} / {live['max_ms']}  p99 < 100 during catch-up"
    )
    print(
        f"{'  (same with the WAN cut, no catch-up)':<38} {idle['p50_ms']:>5} / {idle['p99_ms']} / {idle['max_ms']}"
    )
    print(
        f"{'  p99 of publish -> daemon (cut | catch-up)':<38} {idle['to_daemon_p99_ms']:>5} | {live['to_daemon_p99_ms']}"
    )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
