"""The reference central against real daemons: pulls, dedup, acks after commit, two stores at once,
a replaced store database, a central database restored from an old backup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from edge.demo.broker import MosquittoBroker
from sync import central_db
from sync.central import Central
from sync.central_config import parse_central_config
from sync.client import StoreClient
from sync.errors import TransportError
from tests.conftest import STAFF_TOKEN, ajson, run_daemon, write_config
from tests.pg_testkit import PgCluster
from tests.sync.sync_helpers import (
    SYNC_TOKEN,
    Publisher,
    apublish_all,
    central_changes,
    central_totals,
    count,
    day_of_traffic,
    pg_count,
    pg_rows,
    wait_for,
)

pytestmark = pytest.mark.integration


def central_config(tmp_path: Path, dsn: str, stores: dict[str, str], **central: Any) -> Any:
    raw: dict[str, Any] = {
        "central": {
            "dsn": dsn,
            "port": 0,
            "bundle_dir": str(tmp_path / "central-bundles"),
            "poll_interval_s": 0.1,
            "backoff_min_s": 0.05,
            "backoff_max_s": 0.3,
            "page_limit": 200,
            **central,
        },
        "stores": [{"id": s, "url": url, "token": SYNC_TOKEN} for s, url in stores.items()],
    }
    return parse_central_config(raw)


@contextlib.asynccontextmanager
async def running_central(config: Any) -> AsyncIterator[Central]:
    async with Central(config) as central:
        yield central


def store_config(tmp_path: Path, broker: MosquittoBroker, store: str) -> Path:
    folder = tmp_path / store
    folder.mkdir(exist_ok=True)
    return write_config(folder, broker, store={"id": store}, sync={"token": SYNC_TOKEN, "page_max": 500})


async def edge_status(url: str) -> dict[str, Any]:
    return await ajson(f"{url}/api/v1/sync", STAFF_TOKEN)


def assert_exactly_once_in_order(dsn: str, store: str, head: int) -> list[tuple[int, str]]:
    rows = central_changes(dsn, store)
    seqs = [seq for seq, _ in rows]
    assert seqs == list(range(1, head + 1)), f"{store}: central holds {len(seqs)} changes, head is {head}"
    return rows


async def test_central_pulls_every_change_once_and_acks_after_commit(
    tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch, central_dsn: str
) -> None:
    messages = day_of_traffic(600, seed=11, store="s1")
    purchases = sum(1 for m in messages if "/pos/" in m.topic)
    async with run_daemon(store_config(tmp_path, broker, "s1")) as edge:
        await apublish_all(broker.port, messages)
        db = edge.config.path(edge.config.database.path)
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 600, what="readings stored")

        # Central's first commits fail: nothing may be acked until a commit succeeds.
        real_apply, failures = central_db.apply_page, {"left": 3}

        async def flaky_apply(*args: Any, **kwargs: Any) -> Any:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise asyncpg.DiskFullError("could not extend file (simulated)")
            return await real_apply(*args, **kwargs)

        monkeypatch.setattr(central_db, "apply_page", flaky_apply)
        config = central_config(tmp_path, central_dsn, {"s1": edge.url})
        async with running_central(config) as central:
            await wait_for(lambda: failures["left"] == 0, what="simulated failures used")
            assert (await edge_status(edge.url))["acked"] == 0
            head = (await edge_status(edge.url))["head"]
            await wait_for(
                lambda: (
                    central.pullers["s1"].state.state == "in_sync" and central.pullers["s1"].applied >= head
                ),
                what="caught up",
            )
            status = await edge_status(edge.url)
            await wait_for(
                lambda: count(db, "SELECT acked_seq FROM sync_state") == status["head"], what="acked"
            )
            view = (await central.status()).stores[0]
            assert (view.cursor, view.behind, view.state) == (status["head"], 0, "in_sync")
        rows = assert_exactly_once_in_order(central_dsn, "s1", status["head"])
        kinds = [k for _, k in rows]
        assert kinds.count("reading") + kinds.count("purchase") == 600
        assert central_totals(central_dsn, "s1")["purchases"] == purchases
        # acked rows are deleted on the store (in small steps after each ack)
        await wait_for(lambda: count(db, "SELECT count(*) FROM outbox") == 0, what="acked rows trimmed")


async def test_a_lost_ack_is_repeated_from_the_committed_cursor_without_duplicates(
    tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch, central_dsn: str
) -> None:
    real_ack, dropped = StoreClient.ack, {"n": 0}

    async def lossy_ack(self: StoreClient, through: int, feed: str | None) -> Any:
        if dropped["n"] < 4:  # the ack never reaches the store (WAN cut after central committed)
            dropped["n"] += 1
            raise TransportError("connection reset (simulated)")
        return await real_ack(self, through, feed)

    monkeypatch.setattr(StoreClient, "ack", lossy_ack)
    async with run_daemon(store_config(tmp_path, broker, "s1")) as edge:
        await apublish_all(broker.port, day_of_traffic(300, seed=5, store="s1"))
        db = edge.config.path(edge.config.database.path)
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 300, what="readings stored")
        head = (await edge_status(edge.url))["head"]
        async with running_central(central_config(tmp_path, central_dsn, {"s1": edge.url})) as central:
            await wait_for(lambda: count(db, "SELECT acked_seq FROM sync_state") == head, what="acked")
            assert dropped["n"] == 4
            assert central.pullers["s1"].pages >= 4
        assert_exactly_once_in_order(central_dsn, "s1", head)


async def test_two_stores_sync_to_one_central_concurrently(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str
) -> None:
    traffic = {"s1": day_of_traffic(700, seed=1, store="s1"), "s2": day_of_traffic(500, seed=2, store="s2")}
    async with (
        run_daemon(store_config(tmp_path, broker, "s1")) as one,
        run_daemon(store_config(tmp_path, broker, "s2")) as two,
    ):
        edges = {"s1": one, "s2": two}
        async with running_central(
            central_config(tmp_path, central_dsn, {s: e.url for s, e in edges.items()})
        ) as central:
            # traffic keeps arriving while central pulls both stores
            publishers = [
                Publisher(broker.port, msgs, rate_per_s=1500, name=s) for s, msgs in traffic.items()
            ]
            for p in publishers:
                p.start()
            await asyncio.to_thread(lambda: [p.join(60) for p in publishers])
            assert all(p.acked == len(traffic[s]) for p, s in zip(publishers, traffic, strict=True))
            for store, edge in edges.items():
                db, expected = edge.config.path(edge.config.database.path), len(traffic[store])
                await wait_for(
                    lambda db=db, n=expected: count(db, "SELECT count(*) FROM readings") == n,
                    what=f"{store} stored",
                )
            heads = {s: (await edge_status(e.url))["head"] for s, e in edges.items()}
            for store, edge in edges.items():
                db = edge.config.path(edge.config.database.path)
                await wait_for(
                    lambda db=db, h=heads[store]: count(db, "SELECT acked_seq FROM sync_state") == h,
                    what=f"{store} acked",
                )
            views = {v.store: v for v in (await central.status()).stores}
            assert {s: (v.cursor, v.behind) for s, v in views.items()} == {
                s: (h, 0) for s, h in heads.items()
            }
    for store, head in heads.items():
        rows = assert_exactly_once_in_order(central_dsn, store, head)
        kinds = [k for _, k in rows]
        assert kinds.count("reading") + kinds.count("purchase") == len(traffic[store])


async def test_a_replaced_store_database_starts_a_new_feed_and_a_restored_central_resumes_after_a_gap(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str, pg_cluster: PgCluster
) -> None:
    config_path = store_config(tmp_path, broker, "s1")
    async with run_daemon(config_path) as edge:
        await apublish_all(broker.port, day_of_traffic(100, seed=8, store="s1"))
        db = edge.config.path(edge.config.database.path)
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 100, what="stored")
        first = await edge_status(edge.url)
        async with running_central(central_config(tmp_path, central_dsn, {"s1": edge.url})) as central:
            await wait_for(
                lambda: count(db, "SELECT acked_seq FROM sync_state") == first["head"], what="acked"
            )
            del central
    # The store's disk is replaced: a new database, seqs start at 1 again, same URL and store id.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    async with run_daemon(config_path) as edge:
        await apublish_all(broker.port, day_of_traffic(40, seed=9, store="s1"))
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 40, what="stored again")
        second = await edge_status(edge.url)
        assert second["feed"] != first["feed"]
        async with running_central(central_config(tmp_path, central_dsn, {"s1": edge.url})):
            await wait_for(
                lambda: count(db, "SELECT acked_seq FROM sync_state") == second["head"], what="new feed acked"
            )
        by_feed = dict(pg_rows(central_dsn, "SELECT feed, count(*) FROM changes GROUP BY feed"))
        assert by_feed == {first["feed"]: first["head"], second["feed"]: second["head"]}
        assert pg_rows(central_dsn, "SELECT reason FROM gaps")[0][0].startswith("feed_changed")

        # Central's database is restored from a backup older than the store's ack cursor (here: empty).
        restored = pg_cluster.create_database()
        async with running_central(central_config(tmp_path, restored, {"s1": edge.url})) as central:
            await wait_for(lambda: pg_count(restored, "SELECT count(*) FROM gaps") == 1, what="gap recorded")
            view = (await central.status()).stores[0]
            assert view.gaps == 1
            assert view.cursor == second["head"]
