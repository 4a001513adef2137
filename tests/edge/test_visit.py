"""The visit in one document (#17 item 4): sections in walking order with priority, minutes and why,
aisles to skip, cold-chain advice, offers and reminders; pure on the demo layout, and over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.config import load_config
from edge.customers.visit import visit_plan
from edge.demo.service import seed_demo_history
from routing import load_demo_layout, plan_route
from tests.conftest import STAFF_TOKEN, run_daemon
from tests.edge.test_customers_api import KIOSK_TOKEN, SCANNED, call, config  # noqa: F401 - the fixture


@dataclass(frozen=True)
class Entry:
    category: str
    reason: str
    days_left: float | None


def test_sections_in_walking_order_with_why_and_the_cold_chain_last() -> None:
    layout = load_demo_layout()
    by_storage: dict[str, str] = {}
    for category in layout.categories:
        by_storage.setdefault(layout.sections_for(category)[0].storage.value, category)
    ambient, chilled = by_storage["ambient"], by_storage["chilled"]
    route = plan_route(layout, [chilled, ambient], precedence=True)
    groups = {
        "urgent": [Entry(chilled, f"you buy {chilled} about every 3 days; last time was 4 days ago", 0.0)],
        "upcoming": [],
        "usual": [Entry(ambient, f"you usually buy {ambient} on Fridays", None)],
    }
    plan = visit_plan(layout, route, groups, [], household="hh", personalised=True)
    assert [s.items[0].category for s in plan.sections] == [ambient, chilled]  # cold last
    assert [s.priority for s in plan.sections] == ["usual", "urgent"]
    assert plan.sections[0].minutes_from_start < plan.sections[1].minutes_from_start <= plan.minutes
    assert plan.sections[1].items[0].why.startswith(f"you buy {chilled}")
    assert plan.cold_chain is not None
    assert chilled in plan.cold_chain
    assert "end of your route" in plan.cold_chain
    assert f"You usually buy {ambient} on Fridays" in plan.reminders
    assert any(r.startswith(f"{chilled} is due") for r in plan.reminders)
    aisles = {a.name for a in layout.aisles}
    assert set(plan.skip) < aisles  # some aisles are skipped, never one the route walks through
    walked = set(route.path)
    assert all(not walked.intersection(a.nodes) for a in layout.aisles if a.name in plan.skip)


@pytest.mark.integration
async def test_personalization_over_http(config: Path) -> None:  # noqa: F811
    seed_demo_history(load_config(config), households=60, weeks=8, seed=4)
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        status, generic = await call("GET", f"{api}/in-store/{me}/personalization", token)
        assert status == 200, generic
        assert generic["personalised"] is False  # no consent yet: the store's list, routed
        assert generic["sections"]
        assert (await call("GET", f"{api}/in-store/someone-else/personalization", token))[0] == 403
        assert (await call("GET", f"{api}/in-store/{me}/personalization?accessible=maybe", token))[0] == 400
        status, staff = await call("GET", f"{api}/in-store/{me}/personalization?accessible=true", STAFF_TOKEN)
        assert status == 200, staff
        minutes = [s["minutes_from_start"] for s in staff["sections"]]
        assert minutes == sorted(minutes)
        assert all(s["priority"] in ("urgent", "upcoming", "usual") for s in staff["sections"])
