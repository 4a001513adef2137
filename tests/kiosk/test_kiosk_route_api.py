"""Re-planning the visit after a tick over real HTTP: ``GET /api/v1/in-store/{id}/personalization`` with
``?items=`` (what is left) and ``?from=`` (where the shopper stands), and the kiosk client's call."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kiosk.client import KioskClient
from routing import EdgeTag, load_demo_layout
from tests.conftest import run_daemon
from tests.edge.test_customers_api import KIOSK_TOKEN, SCANNED, call, config  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


async def test_a_tick_replans_the_rest_from_the_ticked_shelf(config: Path) -> None:  # noqa: F811
    layout = load_demo_layout()
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        visit = f"{api}/in-store/{me}/personalization"

        status, whole = await call("GET", f"{visit}?items=bread,milk,ice-cream&from=kiosk-1", token)
        assert status == 200, whole
        assert whole["start"] == "kiosk-1"
        assert whole["path"][0] == "kiosk-1"
        assert whole["path"][-1] == whole["end"]
        first = whole["sections"][0]
        assert first["items"][0]["category"] == "bread"
        assert first["node"] == layout.section(first["section"]).node

        status, rest = await call("GET", f"{visit}?items=milk,ice-cream&from={first['node']}", token)
        assert status == 200, rest
        assert rest["start"] == first["node"]
        assert [s["items"][0]["category"] for s in rest["sections"]] == ["milk", "ice-cream"]
        assert rest["distance_m"] < whole["distance_m"]

        status, done = await call("GET", f"{visit}?items=&from={first['node']}", token)
        assert status == 200, done
        assert done["sections"] == []
        assert done["end"].startswith("checkout")  # nothing left: the walk to the till

        for query, status_expected, words in [
            ("items=milk,,bread", 400, "none blank"),
            ("items=" + ",".join(["milk"] * 201), 400, "at most 200"),
            ("items=" + "x" * 101, 400, "longer than 100"),
            ("items=milk&from=nowhere", 422, "unknown start node 'nowhere'"),
            ("items=milk&accessible=maybe", 400, "accessible"),
        ]:
            status, body = await call("GET", f"{visit}?{query}", token)
            assert status == status_expected, (query, body)
            assert words in body["error"]

        async with KioskClient(d.url, kiosk_token=KIOSK_TOKEN) as client:
            session = await client.open_session(SCANNED)
            view = await client.visit(session, ["milk", "ice cream"], first["node"], accessible=True)
            assert view.start == first["node"]
            assert [s.items[0].category for s in view.sections] == ["milk", "ice-cream"]
            narrow = {frozenset((e.source, e.target)) for e in layout.edges if EdgeTag.NARROW in e.tags}
            assert not any(frozenset(p) in narrow for p in itertools.pairwise(view.path))
