"""Offline for a simulated day, then reconnect; catch up over a WAN that delays, throttles, resets and
black-holes: central ends up with every change exactly once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.demo.broker import MosquittoBroker
from simulators.flaky_wan import BLACKHOLE, CUT, UP, FlakyWan, Phase, WanCondition
from sync.central import Central
from tests.conftest import run_daemon
from tests.sync.sync_helpers import apublish_all, central_changes, count, day_of_traffic, wait_for
from tests.sync.test_sync_central import central_config, edge_status, store_config

pytestmark = pytest.mark.integration


async def test_a_day_offline_then_reconnect_delivers_everything_exactly_once_in_order(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str
) -> None:
    warmup, day = day_of_traffic(200, seed=20, store="s1"), day_of_traffic(4000, seed=21, store="s1")
    purchases = sum(1 for m in warmup + day if "/pos/" in m.topic)
    async with run_daemon(store_config(tmp_path, broker, "s1")) as edge:
        db = edge.config.path(edge.config.database.path)
        host, port = edge.url.removeprefix("http://").split(":")
        async with FlakyWan(host, int(port)) as wan:
            config = central_config(
                tmp_path,
                central_dsn,
                {"s1": f"http://127.0.0.1:{wan.port}"},
                request_timeout_s=3.0,
                connect_timeout_s=1.0,
            )
            async with Central(config) as central:
                puller = central.pullers["s1"]
                await apublish_all(broker.port, warmup)
                await wait_for(
                    lambda: count(db, "SELECT count(*) FROM readings") == 200, what="warm-up stored"
                )
                await wait_for(
                    lambda: count(db, "SELECT acked_seq FROM sync_state") >= 200, what="warm-up synced"
                )

                wan.set(CUT)  # the WAN goes down for the day
                await apublish_all(broker.port, day)
                await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 4200, what="day stored")
                offline = await edge_status(edge.url)
                assert offline["pending_rows"] >= 4000
                assert offline["pending_bytes"] > 0
                assert offline["oldest_pending_age_s"] is not None
                await wait_for(
                    lambda: puller.state.state == "unreachable", what="central sees the store unreachable"
                )
                cursor_while_offline = (await central.status()).stores[0].cursor
                assert cursor_while_offline < offline["head"]

                # The WAN comes back, badly: delayed, throttled, reset mid-transfer, black-holed.
                schedule = [
                    Phase(WanCondition(delay_s=0.05), 0.5),
                    Phase(WanCondition(rate_bps=200_000), 0.7),
                    Phase(UP, 0.3, reset=True),
                    Phase(BLACKHOLE, 0.5),
                    Phase(UP, 0.2, reset=True),
                    Phase(CUT, 0.3),
                    Phase(UP, 60.0),
                ]
                flaky = asyncio.create_task(wan.run_schedule(schedule))
                head = offline["head"]
                await wait_for(
                    lambda: count(db, "SELECT acked_seq FROM sync_state") == head,
                    timeout=60,
                    what="caught up",
                )
                flaky.cancel()
                assert wan.stats.resets > 0
                view = (await central.status()).stores[0]
                assert (view.cursor, view.behind) == (head, 0)
    rows = central_changes(central_dsn, "s1")
    assert [seq for seq, _ in rows] == list(range(1, head + 1))  # exactly once, in arrival order
    kinds = [k for _, k in rows]
    assert kinds.count("reading") + kinds.count("purchase") == 4200
    assert kinds.count("purchase") == purchases
