"""The route screen (#17 item 5): tick off as you go re-plans from the ticked stop, the next stop moves
on, step-free re-plans without narrow aisles; snapshots at 80x24 and at a kiosk's 120x40.

Regenerate after a deliberate change with
`pytest tests/kiosk/test_kiosk_route_screen.py --snapshot-update` and look at the SVGs first.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from kiosk.errors import DaemonUnreachableError
from kiosk.schemas import Consent
from kiosk.screens.route import RouteScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.visit import VisitView
from routing import EdgeTag, load_demo_layout
from tests.kiosk.kiosk_testkit import FakeApi, fake_app, screen_text, wait_for_screen

SIZES = {"80x24": (80, 24), "kiosk": (120, 40)}


async def open_route(pilot: Pilot[Any]) -> RouteScreen:
    await pilot.press(*"777", "enter")
    await wait_for_screen(pilot, ShoppingListScreen)
    await pilot.click("#route")
    await wait_for_screen(pilot, RouteScreen)
    await pilot.pause(0.1)
    screen = pilot.app.screen
    assert isinstance(screen, RouteScreen)
    return screen


def shown(screen: RouteScreen, widget_id: str) -> str:
    """A Static's whole text, unwrapped (the screen wraps it to the width)."""
    return str(screen.query_one(f"#{widget_id}", Static).content)


async def until_replanned(pilot: Pilot[Any], api: FakeApi, calls: int) -> None:
    for _ in range(100):
        if sum(1 for name, _ in api.calls if name == "visit") >= calls:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


async def test_ticking_the_next_stop_replans_the_rest_from_its_shelf() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_route(pilot)
        assert ("visit", (["milk", "bread", "ice cream"], None, False)) in api.calls
        first = screen.visit.sections[0]
        assert first.items[0].category == "bread"
        text = screen_text(app)
        assert "3 stops to go" in text
        assert "Next: 1. Walk" in text
        assert "Bread on your left" in text
        await pilot.press("space")  # got the bread
        await until_replanned(pilot, api, 2)
        assert api.calls[-2] == ("visit", (["milk", "ice cream"], first.node, False))
        assert screen.visit.start == first.node  # re-planned from where the shopper stands
        assert [s.items[0].category for s in screen.visit.sections] == ["milk", "ice-cream"]
        assert screen.ticked == ["bread"]
        text = screen_text(app)
        assert "2 stops to go" in text
        assert "✓ Bread (got it)" in text
        upcoming = shown(screen, "route-next")
        assert upcoming.startswith("Next: 1. ")
        assert upcoming.endswith("Milk on your left (chilled)")
        assert text.count("@") == 2  # one on the map, one in the legend


async def test_enter_on_any_stop_ticks_it_and_the_last_tick_leaves_the_walk_to_the_checkout() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_route(pilot)
        stops = screen.query_one("#route-stops", OptionList)
        assert stops.has_focus
        await pilot.press("down", "enter")  # stop 2 (milk) first, out of order
        await until_replanned(pilot, api, 2)
        assert screen.ticked == ["milk"]
        assert [s.items[0].category for s in screen.visit.sections] == ["bread", "ice-cream"]
        await pilot.press("space")
        await until_replanned(pilot, api, 3)
        await pilot.press("space")
        await until_replanned(pilot, api, 4)
        assert api.calls[-2][1][0] == []  # nothing left: routed to the checkout
        assert screen.visit.sections == []
        upcoming = shown(screen, "route-next")
        assert upcoming.startswith("Everything is ticked off")
        assert upcoming.endswith("and pay.")
        await pilot.press("escape")
        await wait_for_screen(pilot, ShoppingListScreen)


async def test_step_free_replans_without_narrow_aisles() -> None:
    layout = load_demo_layout()
    narrow = {frozenset((e.source, e.target)) for e in layout.edges if EdgeTag.NARROW in e.tags}
    assert narrow, "the demo store marks its cut-through as narrow"
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#route")
        await wait_for_screen(pilot, RouteScreen)
        screen = app.screen
        assert isinstance(screen, RouteScreen)
        await pilot.press("a")
        await until_replanned(pilot, api, 2)
        assert api.calls[-1] == ("visit", (["milk", "bread", "ice cream"], None, True))
        path = screen.visit.path
        assert not any(frozenset(pair) in narrow for pair in itertools.pairwise(path))
        text = screen_text(app)
        assert "Step-free: on" in text
        assert "no stairs and no narrow aisles" in shown(screen, "route-notes")


class DaemonGoesAway(FakeApi):
    """Answers the first visit, then stops answering."""

    async def visit(self, *args: Any, **kwargs: Any) -> VisitView:
        if any(name == "visit" for name, _ in self.calls):
            self.calls.append(("visit", "unreachable"))
            raise DaemonUnreachableError("the store daemon does not answer")
        return await super().visit(*args, **kwargs)


async def test_a_tick_the_daemon_cannot_replan_is_undone_and_said() -> None:
    api = DaemonGoesAway(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_route(pilot)
        shown = screen.visit
        await pilot.press("space")
        await until_replanned(pilot, api, 2)
        assert screen.ticked == []
        assert screen.remaining() == ["milk", "bread", "ice cream"]
        assert screen.visit is shown
        assert any("not answering" in n.message for n in app._notifications)


async def ticked(pilot: Pilot[Any], api: FakeApi) -> None:
    await open_route(pilot)
    await pilot.press("space")
    await until_replanned(pilot, api, 2)


@pytest.mark.parametrize("size", SIZES)
def test_route_after_a_tick_snapshot(size: str, snap_compare: Any) -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ticked(pilot, api)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
