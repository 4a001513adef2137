"""The kiosk's heap over many sessions (a kiosk runs for months without a restart).

- It settles when nobody waits (`kiosk.heap`): after start-up and after every session it collects
  everything and freezes the survivors, so a full collection does not land on the next scan.
- Nothing of a session's screens outlives it. The "Reconnecting…" banner of every screen used to stay
  reachable from the app (a Textual `watch` on it, pruned only when the connection next changed), with
  about 1,100 objects of widget caches per session.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from textual.widget import Widget

from kiosk.schemas import Consent
from kiosk.screens.attract import AttractScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from tests.kiosk.kiosk_testkit import FakeApi, fake_app, wait_for_screen, wait_until


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # leave the test process's collector as it found it


def detached_widgets() -> list[Widget]:
    gc.unfreeze()
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Widget) and not o.is_attached]


def new_since(before: set[int]) -> list[Widget]:
    """Detached widgets that did not exist before (other tests' apps may have left theirs)."""
    return [w for w in detached_widgets() if id(w) not in before]


async def test_no_widget_of_an_ended_session_stays_alive_and_each_end_settles_the_heap() -> None:
    before = {id(w) for w in detached_widgets()}
    app = fake_app(FakeApi(consent=Consent(True, True, 1)))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.layout is not None and app.info is not None, "started")
        assert gc.get_freeze_count() > 0  # started: settled
        for _ in range(5):
            await pilot.press(*"777", "enter")
            await wait_for_screen(pilot, ShoppingListScreen)
            app.end_session()
            await wait_for_screen(pilot, AttractScreen)
            await wait_until(pilot, lambda: app.session is None and not app._wiping, "wiped")
            assert gc.get_freeze_count() > 0  # the wipe settled the heap
        await pilot.pause(0.1)
        leftovers = new_since(before)
        assert leftovers == [], leftovers[:10]
