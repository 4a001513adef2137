"""Central at chain scale: many stores' outboxes applied into PostgreSQL through the real apply path.

Every page goes through `sync.central_db.apply_page` (the function central's pullers call), over an
asyncpg pool of central's size, one puller task per store, exactly as `sync/central.py` runs them. What
is simulated is the stores' side: their outboxes are generated here, in the daemon's exact row shapes
(the bodies of every `OutboxEntry(...)` in edge/ and sync/: shelf weights and events, fridge
temperatures, footfall, compaction's reading aggregates, purchases with items and a pseudonymous
household, prediction outcomes, consents, list feedback, alerts, device status, bundle reports,
erasures), serialised as the feed's JSON pages and gzipped, then decoded by central's decoder
(`ChangesPage`) inside the measured time. No daemons and no HTTP: that is much cheaper than 50 daemons
on a 2-core box, and `bench/sync.py` measures the wire end to end.

Measured, in one run on one throwaway PostgreSQL cluster (tests/pg_testkit.py, fsync on):

  apply         N stores' backlogs pulled concurrently: changes/s, per-store lag (a store's first page
                -> its last page committed), rows per table, bytes per million changes
  COPY ceiling  the same end state (every row of every table apply wrote) COPYed into a second database
                with the same schema, a page's share of each table per transaction, over the same number
                of connections: apply's rate as a ratio of it (goal: >= 50%)
  outage        one store back after 24 h offline catches up (one puller, like central) while the other
                stores' live pulls go on (every poll_interval_s, their changes created in real time):
                catch-up changes/s (goal >= 20,000) and the live stores' lag before and during it
  design load   the changes/day of DESIGN.md's chain (100 stores, 1 M interactions a day, sensors) as a
                fraction of the apply capacity measured here

Prints a table, writes bench/results/central.json. Not a test: nothing here asserts a speed.

    python bench/central.py              # 50 stores, 5 M changes; a 24 h outage of a 50 changes/s store
    python bench/central.py --quick      # 50 stores, 500,000 changes; a 2 h outage
    python bench/central.py --smoke      # a few stores, seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.central_backlogs import apply_backlogs, build_all, build_backlog, now_ms  # noqa: E402
from bench.central_ceiling import copy_ceiling, table_stats  # noqa: E402
from bench.central_outage import design_load, outage  # noqa: E402
from bench.central_outbox import HOUSEHOLDS, StoreOutbox, household_ids  # noqa: E402
from bench.stats import pct  # noqa: E402
from sync import central_schema  # noqa: E402
from tests.pg_testkit import PgCluster  # noqa: E402


async def create_partitions(conn: asyncpg.Connection, start_ms: int, end_ms: int) -> int:
    """The monthly partitions the run's rows fall in, created up front (a running central has its month's
    already). Not left to the first pages: their concurrent creation raced (see docs/central.md)."""
    if not hasattr(central_schema, "ensure_partitions"):  # schema v1: no warehouse
        return 0
    months: set[tuple[int, int]] = set()
    day = start_ms
    while day <= end_ms + 86_400_000:
        when = time.gmtime(day / 1000)
        months.add((when.tm_year, when.tm_mon))
        day += 86_400_000
    return await central_schema.ensure_partitions(conn, dict.fromkeys(central_schema.PARTITIONED, months))


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    per_store = args.changes // args.stores
    span_ms = int(per_store / args.rate * 1000)
    end = now_ms() - 60_000
    t = time.monotonic()
    jobs = [
        (i, args.stores, args.seed, per_store, end - span_ms, end, args.page_max, 1, 1, args.aggregates)
        for i in range(args.stores)
    ]
    backlogs = build_all(jobs, args.build_workers)
    changes = sum(b.changes for b in backlogs)
    json_bytes = sum(b.json_bytes for b in backlogs)
    gzip_bytes = sum(b.gzip_bytes for b in backlogs)
    pages = sum(len(b.pages) for b in backlogs)
    kinds: dict[str, int] = {}
    for b in backlogs:
        for k, v in b.kinds.items():
            kinds[k] = kinds.get(k, 0) + v
    print(
        f"backlogs: {args.stores} stores, {changes:,} changes in {pages:,} pages, {json_bytes / 1e6:.0f} MB of"
        f" JSON ({gzip_bytes / 1e6:.0f} MB gzipped); built in {time.monotonic() - t:.0f} s (not measured)"
    )
    with PgCluster() as pg:
        dsn = pg.create_database("central")
        conn = await asyncpg.connect(dsn)
        await central_schema.migrate(conn)
        # rows reach back ~8 days before the oldest change (aggregated minutes, predictions' scoring time)
        await create_partitions(
            conn, end - span_ms - int(args.outage_hours * 3_600_000) - 9 * 86_400_000, end
        )
        pool = await asyncpg.create_pool(dsn, min_size=args.connections, max_size=args.connections)
        try:
            seconds, runs = await apply_backlogs(pool, backlogs)
            print(f"apply: {changes:,} changes in {seconds:.1f} s")
            stats = await table_stats(conn)
            quarantined = stats.get("quarantine", {}).get("rows", 0)
            reasons = (
                [
                    dict(r)
                    for r in await conn.fetch(
                        "SELECT kind, reason, count(*) AS n FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10"
                    )
                ]
                if quarantined
                else []
            )
            ceiling = await copy_ceiling(pg, dsn, stats, pages, args.connections, workdir)
            print(f"ceiling: {ceiling['rows']:,} rows in {ceiling['seconds']} s")
            # the outage: store 0 was offline for args.outage_hours; the others keep pulling live
            first = backlogs[0]
            t = time.monotonic()
            n = int(args.outage_hours * 3600 * args.rate)
            outage_backlog = build_backlog(
                0, args.stores, args.seed + 1, n, now_ms() - int(args.outage_hours * 3_600_000), now_ms(),
                args.page_max, first.next_seq, first.next_id, args.aggregates,
            )  # fmt: skip
            print(
                f"outage backlog: {outage_backlog.changes:,} changes, built in {time.monotonic() - t:.0f} s"
            )
            households = household_ids(HOUSEHOLDS, args.seed)
            live = [
                (
                    StoreOutbox(
                        i,
                        args.stores,
                        args.seed + 2,
                        households,
                        b.next_seq,
                        b.next_id + 10_000_000,
                        args.aggregates,
                    ),
                    b.feed,
                )
                for i, b in enumerate(backlogs)
                if i > 0
            ]
            del backlogs
            outage_result = await outage(pool, args, outage_backlog, live)
        finally:
            await pool.close()
            await conn.close()
    lags = [r.last_commit - r.first for r in runs]
    rate = changes / seconds
    sizes = {t: s for t, s in stats.items() if s["rows"]}
    db_bytes = sum(s["bytes"] for s in stats.values())
    return {
        "apply": {
            "stores": args.stores,
            "changes": changes,
            "pages": pages,
            "seconds": round(seconds, 2),
            "changes_per_s": round(rate),
            "quarantined": quarantined,
            "quarantine_reasons": reasons,
            "store_lag_s": {
                "p50": round(pct(lags, 0.5), 2),
                "p95": round(pct(lags, 0.95), 2),
                "max": round(max(lags), 2),
            },
            "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        },
        "ceiling": {
            **ceiling,
            "changes_per_s": round(changes / ceiling["seconds"]),
            "apply_ratio": round(ceiling["seconds"] / seconds, 3),
        },
        "bytes_per_million_changes": {
            "database": round(db_bytes / changes * 1e6),
            "indexes": round(sum(s["index_bytes"] for s in stats.values()) / changes * 1e6),
            "change_log": round(stats.get("change_log", {}).get("bytes", 0) / changes * 1e6),
            "page_json": round(json_bytes / changes * 1e6),
            "page_gzip": round(gzip_bytes / changes * 1e6),
        },
        "tables": sizes,
        "outage": outage_result,
        "design_load": design_load(rate, kinds),
        "settings": {
            "connections": args.connections,
            "page_max": args.page_max,
            "store_rate_per_s": args.rate,
            "poll_s": args.poll_s,
            "households": HOUSEHOLDS,
            "pages_built_in_process": True,
            "postgresql": "throwaway cluster (tests/pg_testkit.py), fsync on, shared_buffers 64MB",
        },
    }


def print_table(result: dict[str, Any]) -> None:
    a, c, o, b = result["apply"], result["ceiling"], result["outage"], result["bytes_per_million_changes"]
    lb, ld = o["live_lag_before"], o["live_lag_during"]
    print()
    print(
        f"{a['stores']} stores' outboxes built in-process (no daemons, no HTTP), gzipped pages decoded and applied with"
        f" sync.central_db.apply_page, one puller task per store over a pool of {result['settings']['connections']}"
    )
    print(f"{'measure':<52} {'value':>16}  goal")
    print(f"{'apply rate (changes/s)':<52} {a['changes_per_s']:>16,}")
    print(f"{'  raw COPY of the same rows, same tables (changes/s)':<52} {c['changes_per_s']:>16,}")
    print(f"{'  apply / COPY ceiling':<52} {c['apply_ratio']:>16.0%}  >= 50%")
    print(f"{'  rows written by apply (all tables)':<52} {c['rows']:>16,}")
    print(
        f"{'per-store lag, first page -> last commit p95 | max (s)':<52} {a['store_lag_s']['p95']:>8} | {a['store_lag_s']['max']:<6}"
    )
    print(f"{'database bytes per million changes (incl. indexes)':<52} {b['database'] / 1e6:>14.0f}MB")
    print(f"{'  of which indexes':<52} {b['indexes'] / 1e6:>14.0f}MB")
    print(f"{'  of which the change log (bodies kept as sent)':<52} {b['change_log'] / 1e6:>14.0f}MB")
    print(
        f"{'page JSON | gzipped bytes per million changes':<52} {b['page_json'] / 1e6:>7.0f}MB | {b['page_gzip'] / 1e6:.0f}MB"
    )
    print(f"{'changes quarantined':<52} {a['quarantined']:>16,}")
    outage_label = f"{o['hours']:g} h outage catch-up (changes/s), 1 store"
    print(f"{outage_label:<52} {o['changes_per_s']:>16,}  >= 20,000")
    print(f"{'  changes, seconds':<52} {o['changes']:>8,} | {o['seconds']}")
    print(
        f"{'  live stores oldest-change lag p95 | max (s), before':<52} {lb['oldest_change_p95_s']:>8} | {lb['oldest_change_max_s']}"
    )
    print(
        f"{'  same, during the catch-up':<52} {ld['oldest_change_p95_s']:>8} | {ld['oldest_change_max_s']}"
        f"  ({o['live_stores']} stores x {o['live_rate_per_store']:g}/s, polled every {result['settings']['poll_s']} s)"
    )
    d = result["design_load"]
    a_ = d["assumptions"]
    print(
        f"design load: {a_['stores']} stores, {a_['interactions_per_day']:,} interactions/day x"
        f" {a_['changes_per_interaction']} changes, {a_['sensors_per_store']} sensors a store;"
        f" capacity = apply rate x 86,400 = {a_['apply_capacity_per_day']:,} changes/day"
    )
    for name, case in d["cases"].items():
        print(
            f"{'  ' + name:<52} {case['fraction_of_one_box']:>16.2%}  of one box ({case['changes_per_day']:,} changes/day)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=50, help="stores pulled concurrently (default 50)")
    parser.add_argument("--changes", type=int, default=5_000_000, help="changes in all (default 5 M)")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="a store's changes/s (bench/sync.py's busy store)"
    )
    parser.add_argument(
        "--connections", type=int, default=4, help="central's pool size (default 4, as central)"
    )
    parser.add_argument("--page-max", type=int, default=5000, help="changes per page (central's page_limit)")
    parser.add_argument(
        "--outage-hours", type=float, default=24.0, help="the offline store's outage (default 24)"
    )
    parser.add_argument("--live-rate", type=float, default=50.0, help="each live store's changes/s during it")
    parser.add_argument("--poll-s", type=float, default=1.0, help="central's poll_interval_s for live stores")
    parser.add_argument(
        "--baseline-s", type=float, default=10.0, help="live pulls alone, before the catch-up"
    )
    parser.add_argument("--build-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--aggregates", type=float, default=0.002, help="share of compaction aggregates (default 0.2%%)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="500,000 changes, a 2 h outage")
    parser.add_argument("--smoke", action="store_true", help="4 stores, 20,000 changes, a 6 min outage")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "central.json")
    args = parser.parse_args()
    if args.quick:
        args.changes, args.outage_hours = 500_000, 2.0
    if args.smoke:
        args.stores, args.changes, args.outage_hours = 4, 20_000, 0.1
        args.baseline_s, args.page_max = 1.0, 2000
    workdir = Path(tempfile.mkdtemp(prefix="storeedge-central-bench-"))
    try:
        result = asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(result)
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
