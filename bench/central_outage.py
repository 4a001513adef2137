"""The outage scenario for bench/central.py, and the design's load as a share of the apply capacity.

`outage`: one store back after hours offline catches up (one puller, like central) while the other
stores' live pulls go on, their changes created in real time (`live_store`); the live stores' lag is
summarised before and during the catch-up. `design_load`: DESIGN.md's chain's changes/day against the
apply rate measured. Imported as `bench.central_outage` (bench/central.py puts the repo root on sys.path).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from bench.central_backlogs import Backlog, StoreRun, now_ms, page_decoder, page_json, pull_backlog
from bench.central_outbox import DEVICES, LANES, StoreOutbox
from bench.stats import pct
from sync import central_db


async def live_store(
    pool: asyncpg.Pool, outbox: StoreOutbox, feed: str, rate: float, poll_s: float, stop: asyncio.Event,
    lags: list[tuple[float, float, float]],
) -> None:  # fmt: skip
    """A store in sync: every ``poll_s`` (jittered) central pulls what it created since the last pull
    (``rate`` changes/s, created in real time) and applies it. Lag of a page: its commit - the created
    time of its oldest and newest change."""
    last = now_ms()
    owed = 0.0
    await asyncio.sleep(outbox.rng.uniform(0, poll_s))
    while not stop.is_set():
        now = now_ms()
        owed += rate * (now - last) / 1000
        n = int(owed)
        if n:
            owed -= n
            rows = outbox.rows(n, last, now)
            page = page_decoder.decode(page_json(outbox.name, feed, rows, rows[-1][0], False))
            async with pool.acquire() as conn:
                await central_db.apply_page(conn, outbox.name, page, now_ms())
            done = time.time() * 1000
            lags.append((time.monotonic(), (done - rows[0][1]) / 1000, (done - rows[-1][1]) / 1000))
        last = now
        await asyncio.sleep(poll_s * outbox.rng.uniform(0.8, 1.2))


def lag_summary(lags: list[tuple[float, float, float]], start: float, end: float) -> dict[str, Any]:
    oldest = [o for at, o, _ in lags if start <= at <= end]
    newest = [n for at, _, n in lags if start <= at <= end]
    return {
        "pages": len(oldest),
        "oldest_change_p50_s": round(pct(oldest, 0.5), 3),
        "oldest_change_p95_s": round(pct(oldest, 0.95), 3),
        "oldest_change_max_s": round(max(oldest, default=float("nan")), 3),
        "newest_change_p95_s": round(pct(newest, 0.95), 3),
    }


async def outage(
    pool: asyncpg.Pool, args: argparse.Namespace, backlog: Backlog, live: list[tuple[StoreOutbox, str]]
) -> dict[str, Any]:
    stop = asyncio.Event()
    lags: list[tuple[float, float, float]] = []
    tasks = [
        asyncio.create_task(live_store(pool, outbox, feed, args.live_rate, args.poll_s, stop, lags))
        for outbox, feed in live
    ]
    try:
        base_start = time.monotonic()
        await asyncio.sleep(args.baseline_s)
        base_end = time.monotonic()
        run = StoreRun(backlog.store)
        await pull_backlog(pool, backlog, run)
        end = time.monotonic()
        # a last moment of live pulls after the catch-up, so the lag of pages caught behind it is counted
        await asyncio.sleep(args.poll_s * 1.5)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    seconds = run.last_commit - run.first
    return {
        "store": backlog.store,
        "hours": args.outage_hours,
        "changes": backlog.changes,
        "applied": run.changes,
        "pages": run.pages,
        "seconds": round(seconds, 2),
        "changes_per_s": round(backlog.changes / seconds),
        "live_stores": len(live),
        "live_rate_per_store": args.live_rate,
        "live_lag_before": lag_summary(lags, base_start, base_end),
        "live_lag_during": lag_summary(lags, base_end, end + args.poll_s * 1.5),
    }


# -- the design's load ----------------------------------------------------------------------------------


def design_load(apply_per_s: float, kinds: dict[str, int]) -> dict[str, Any]:
    """DESIGN.md's chain: 100 stores, 100,000 customers, 1 M interactions a day, plus sensor data."""
    stores, interactions = 100, 1_000_000
    sensors = len(DEVICES) - len(LANES)  # the demo planogram's shelves, fridges and zones
    # an interaction is a change (a basket, a vote, a consent); a basket also brings prediction outcomes
    outcomes_per_purchase = kinds.get("prediction_outcome", 0) / max(kinds.get("purchase", 0), 1)
    per_interaction = 1 + outcomes_per_purchase
    aggregates = stores * sensors * 1440  # one aggregate per sensor and minute
    raw = stores * 50 * 86_400  # every reading raw, at bench/sync.py's busy store (50 changes/s)
    capacity = apply_per_s * 86_400
    cases = {
        "interactions only": interactions * per_interaction,
        "interactions + sensor aggregates (1/sensor-minute)": interactions * per_interaction + aggregates,
        "interactions + every raw reading (50/s a store)": interactions * per_interaction + raw,
    }
    return {
        "assumptions": {
            "stores": stores,
            "customers": 100_000,
            "interactions_per_day": interactions,
            "changes_per_interaction": round(per_interaction, 2),
            "sensors_per_store": sensors,
            "apply_changes_per_s": round(apply_per_s),
            "apply_capacity_per_day": round(capacity),
        },
        "cases": {
            name: {"changes_per_day": round(per_day), "fraction_of_one_box": round(per_day / capacity, 5)}
            for name, per_day in cases.items()
        },
    }
