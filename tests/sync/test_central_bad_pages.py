"""A store that sends what central cannot read: each bad change is quarantined with the store, seq and
reason and the pull goes on past it; a page central cannot read at all is quarantined once, and the pull
retries from the committed cursor (nothing is acked past what central holds)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sync.central import Central, StorePuller
from sync.change_bodies import MALFORMED_KIND
from sync.client import read_page
from sync.errors import MalformedPage
from tests.sync.sync_helpers import pg_count, pg_rows, wait_for
from tests.sync.test_sync_central import central_config

T0 = 1_764_547_200_000


def entry(seq: int, kind: str, body: Any) -> dict[str, Any]:
    return {"seq": seq, "created_ms": T0, "kind": kind, "entity": "e", "body": body}


GOOD = {"type": "device_status", "device": "pos-1", "online": True, "ts_ms": T0}


def page_json(entries: list[Any], nxt: int, head: int) -> bytes:
    page = {
        "store": "s1",
        "feed": "f1",
        "changes": entries,
        "next": nxt,
        "more": False,
        "head": head,
        "acked": 0,
    }
    return json.dumps(page).encode()


def test_a_change_entry_with_a_seq_comes_through_as_malformed_and_one_without_fails_the_page() -> None:
    page = read_page(page_json([entry(1, "device_status", GOOD), {"seq": 2, "kind": 5}], 2, 2))
    assert [(c.seq, c.kind) for c in page.changes] == [(1, "device_status"), (2, MALFORMED_KIND)]
    with pytest.raises(MalformedPage, match="a change without a seq"):
        read_page(page_json([{"kind": "reading"}], 1, 1))
    with pytest.raises(MalformedPage, match="changes page is not valid"):
        read_page(b'{"store": "s1", "changes": "everything"}')


class CraftedStore:
    """A store whose feed answers with crafted pages and records central's acks."""

    def __init__(self, pages: list[bytes]) -> None:
        self.pages = pages
        self.served = 0
        self.acks: list[int] = []

    async def changes(self, request: web.Request) -> web.Response:
        after = int(request.query["after"])
        body = (
            self.pages[min(self.served, len(self.pages) - 1)] if after == 0 else page_json([], after, after)
        )
        self.served += 1
        return web.Response(body=body, content_type="application/json")

    async def ack(self, request: web.Request) -> web.Response:
        through = int((await request.json())["through"])
        self.acks.append(through)
        return web.json_response({"acked": through, "moved": True, "feed": "f1"})


@contextlib.asynccontextmanager
async def serve(store: CraftedStore) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/sync/v1/changes", store.changes)
    app.router.add_post("/sync/v1/ack", store.ack)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_bad_changes_are_quarantined_and_the_cursor_moves_past_them(
    tmp_path: Path, central_dsn: str
) -> None:
    entries = [
        entry(1, "device_status", GOOD),
        {"seq": 2, "kind": ["not", "a", "kind"]},  # not a change, but it has a seq
        entry(3, "hologram", {"x": 1}),  # unknown kind
        entry(4, "purchase", {"basket_id": "b", "total": -1}),  # body does not match its kind
    ]
    store = CraftedStore([page_json(entries, 4, 4)])
    async with serve(store) as url, Central(central_config(tmp_path, central_dsn, {"s1": url})):
        await wait_for(lambda: 4 in store.acks, what="ack through 4")
    rows = pg_rows(central_dsn, "SELECT seq, reason FROM quarantine WHERE store = 's1' ORDER BY seq")
    assert [r[0] for r in rows] == [2, 3, 4]
    assert "change entry is malformed" in rows[0][1]
    assert "unknown change kind 'hologram'" in rows[1][1]
    assert "purchase body does not match its kind" in rows[2][1]
    assert pg_count(central_dsn, "SELECT count(*) FROM device_status") == 1


@pytest.mark.integration
async def test_an_unreadable_page_is_quarantined_once_and_nothing_is_acked(
    tmp_path: Path, central_dsn: str
) -> None:
    store = CraftedStore([b'{"store": "s1", "feed": "f1", "changes": [{"kind": "reading"}]}'])
    async with serve(store) as url, Central(central_config(tmp_path, central_dsn, {"s1": url})) as central:
        await wait_for(lambda: store.served >= 4, what="several retries")
        status = (await central.status()).stores[0]
        assert status.state == "refused"
        assert "not valid" in (status.last_error or "")
        # the store is fixed: the pull resumes from the committed cursor
        store.pages = [page_json([entry(1, "device_status", GOOD)], 1, 1)]
        await wait_for(lambda: 1 in store.acks, what="ack after the fix")
    assert store.acks[0] == 1  # nothing was acked while the page was unreadable
    quarantined = pg_rows(central_dsn, "SELECT seq, reason FROM quarantine")
    assert len(quarantined) == 1
    assert quarantined[0][0] is None
    assert "changes page is not valid" in quarantined[0][1]


class _DownDb:
    """A central database that is unreachable (what `CentralDb.run` raises when PostgreSQL is down)."""

    async def run(self, fn: Any) -> Any:
        raise ConnectionRefusedError("PostgreSQL is down (simulated)")


async def test_a_bad_page_while_the_database_is_down_never_stops_the_puller(tmp_path: Path) -> None:
    config = central_config(tmp_path, "postgresql://x@127.0.0.1:1/x", {"s1": "http://127.0.0.1:1"})
    async with aiohttp.ClientSession() as session:
        puller = StorePuller(config.stores[0], _DownDb(), session, config.central)  # type: ignore[arg-type]

        async def bad_page() -> int:
            raise MalformedPage("changes page is not valid (simulated)", b"{")

        puller.catch_up = bad_page  # type: ignore[method-assign]
        task = asyncio.create_task(puller.run())
        await wait_for(lambda: puller.state.state == "error", what="the database error recorded")
        await asyncio.sleep(0.2)
        assert not task.done(), "the puller died"
        assert "PostgreSQL is down" in (puller.state.last_error or "")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
