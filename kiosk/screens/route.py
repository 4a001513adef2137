"""The walk through the store, built from the visit document (`kiosk.visit`): the map drawn to fit
(`kiosk.route_map`), "you are here", the next stop highlighted, and turn-by-turn directions beside it.

Ticking a stop off (Enter on it, or Space for the next one) re-plans the rest of the list from that
stop's shelf; "Step-free" re-plans without stairs and narrow aisles. Re-planning is the app's call
(`replan`, an API request); the screen keeps what was ticked and the way walked so far.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from kiosk.route_map import draw_route_map
from kiosk.route_words import legend, map_route, route_steps, step_text
from kiosk.schemas import RouteStop
from kiosk.strings import category_name, t
from kiosk.visit import SectionView, VisitView
from kiosk.widgets import ConnectionBanner, KioskScreen
from routing import Layout, RoutingError, normalize_name

__all__ = ["Replan", "RouteScreen", "VisitMap", "stop_place"]

#: Re-plan ``items`` from ``start`` (a layout node; None: where the kiosk stands), step-free or not.
Replan = Callable[[list[str], str | None, bool], Awaitable[VisitView | None]]

#: Below this many columns the directions go under the map instead of beside it.
STACK_BELOW_COLUMNS = 80


def stop_place(layout: Layout | None, stop: RouteStop) -> str:
    """Where a stop is, in words: "aisle 2, left side" from the layout, else "shelf A2-1, left side"."""
    section = None
    if layout is not None:
        try:
            section = layout.section(stop.section)
        except KeyError:
            section = None
    if section is not None and section.name:
        place = section.name
    elif layout is not None and layout.has_node(stop.node):
        place = layout.place_name(stop.node)
    else:
        place = t("route.shelf", shelf=stop.section)
    return f"{place}, {t('route.' + stop.side)}" if stop.side in ("left", "right") else place


class VisitMap(Static):
    """The store map with the rest of the route, redrawn to fit whenever the widget is resized."""

    def __init__(self, layout: Layout | None) -> None:
        super().__init__(id="map")
        self._layout = layout
        self._visit: VisitView | None = None
        self._walked: tuple[str, ...] = ()

    def show(self, visit: VisitView, walked: tuple[str, ...]) -> None:
        self._visit, self._walked = visit, walked
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        size = self.content_size
        if size.width and size.height:
            self.update(self.draw(size.width, size.height))

    def draw(self, width: int, height: int) -> Text | str:
        if self._layout is None:
            return t("route.no_map")
        if self._visit is None:
            return ""
        try:
            route = map_route(self._layout, self._visit, self._walked)
            lines = draw_route_map(self._layout, route, legend(), width, height)
        except (RoutingError, KeyError, ValueError, IndexError):
            return t("route.map_mismatch")
        return Text("\n", no_wrap=True).join(lines)


class RouteScreen(KioskScreen):
    BINDINGS = [
        *KioskScreen.BINDINGS,
        Binding("escape", "back", "Back", show=False),
        Binding("space", "tick_next", "Got it", show=False),
        Binding("a", "step_free", "Step-free", show=False),
    ]

    def __init__(
        self, layout: Layout | None, visit: VisitView, items: list[str], replan: Replan | None = None
    ) -> None:
        super().__init__()
        self._layout = layout
        self._visit = visit
        self._items = list(items)  # the list as the shopper has it, in their order
        self._replan = replan
        self._ticked: list[str] = []  # categories, in the order they were ticked
        self._walked: tuple[str, ...] = ()
        self._here: str | None = None  # None: where the kiosk stands (the daemon's start)
        self.step_free = False
        # What was shown last: a re-plan that fails puts the ticks and the toggle back to it.
        self._before: tuple[list[str], tuple[str, ...], str | None, bool] = ([], (), None, False)

    @property
    def visit(self) -> VisitView:
        return self._visit

    @property
    def ticked(self) -> list[str]:
        return list(self._ticked)

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static(id="route-title", classes="title")
        with Horizontal(id="route-body"):
            yield VisitMap(self._layout)
            with Vertical(id="route-side"):
                yield Static(id="route-next")
                yield OptionList(id="route-stops")
                yield Static(id="route-notes")
        with Horizontal(id="route-buttons"):
            yield Button(t("route.tick_next"), id="tick", variant="success")
            yield Button(t("route.step_free_off"), id="step-free")
            yield Button(t("common.back_to_list"), id="back", variant="primary")

    def on_mount(self) -> None:
        self.show_visit(self._visit)
        self.query_one("#route-stops", OptionList).focus()

    def on_resize(self) -> None:
        self.set_class(self.size.width < STACK_BELOW_COLUMNS, "-stacked")

    # -- showing a (re-)planned visit -----------------------------------------------------------------

    def show_visit(self, visit: VisitView) -> None:
        self._visit = visit
        self.query_one("#route-title", Static).update(
            t(
                "route.stops_left",
                stops=len(visit.sections),
                metres=f"{visit.distance_m:.0f}",
                minutes=f"{visit.minutes:.0f}",
            )
        )
        self.query_one(VisitMap).show(visit, self._walked)
        steps = route_steps(self._layout, visit)
        texts = [
            step_text(section, steps[index] if steps else None, section.place)
            for index, section in enumerate(visit.sections)
        ]
        to_checkout = step_text(None, steps[-1] if steps else None, visit.end or "")
        if visit.sections:
            upcoming = Text(t("route.next", step=f"{visit.sections[0].order}. {texts[0]}"), style="bold")
        else:
            upcoming = Text(t("route.all_done", step=to_checkout), style="bold")
        self.query_one("#route-next", Static).update(upcoming)
        options = self.query_one("#route-stops", OptionList)
        options.clear_options()
        for section, text in zip(visit.sections, texts, strict=True):
            options.add_option(Option(f"○ {section.order}. {text}", id=f"stop-{section.order}"))
        if visit.sections:
            options.add_option(Option(f"  {t('route.then')}: {to_checkout}", disabled=True))
        for category in self._ticked:
            options.add_option(
                Option(f"✓ {category_name(category)} ({t('route.done_title')})", disabled=True)
            )
        options.highlighted = 0 if visit.sections else None
        self.query_one("#route-notes", Static).update(self._notes(visit))
        self.query_one("#tick", Button).disabled = not visit.sections
        self.query_one("#step-free", Button).label = t(
            "route.step_free_on" if self.step_free else "route.step_free_off"
        )

    def _notes(self, visit: VisitView) -> str:
        notes = [t("route.tick_hint")]
        if self.step_free:
            notes.append(t("route.step_free_note"))
        if any(s.storage in ("chilled", "frozen") for s in visit.sections):
            notes.append(t("route.cold_chain"))
        notes.extend(t("route.unreachable", item=category_name(item)) for item in visit.unreachable)
        return "\n".join(notes)

    # -- ticking off and re-planning ------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#route-stops")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        if option_id.startswith("stop-"):
            self.tick(int(option_id.removeprefix("stop-")))

    @on(Button.Pressed, "#tick")
    def action_tick_next(self) -> None:
        if self._visit.sections:
            self.tick(self._visit.sections[0].order)

    @on(Button.Pressed, "#step-free")
    def action_step_free(self) -> None:
        self._before = (list(self._ticked), self._walked, self._here, self.step_free)
        self.step_free = not self.step_free
        self.replan()

    def tick(self, order: int) -> None:
        """Tick off the stop numbered `order`: its items are got, the shopper stands at its shelf."""
        section = next((s for s in self._visit.sections if s.order == order), None)
        if section is None:
            return
        self._before = (list(self._ticked), self._walked, self._here, self.step_free)
        got = {item.category for item in section.items}
        self._ticked.extend(sorted(got - set(self._ticked)))
        node = section.node or self._section_node(section)
        path = self._visit.path
        if node and node in path:
            walked = path[: path.index(node) + 1]
            self._walked = (*self._walked, *walked[1:]) if self._walked else tuple(walked)
            self._here = node
        self.replan()

    def _section_node(self, section: SectionView) -> str | None:
        if self._layout is None:
            return None
        try:
            return self._layout.section(section.section).node
        except KeyError:
            return None

    def remaining(self) -> list[str]:
        """The shopper's list without what has been ticked off."""
        ticked = set(self._ticked)
        return [item for item in self._items if self._category(item) not in ticked]

    def _category(self, item: str) -> str:
        found = self._layout.resolve_item(item) if self._layout is not None else None
        return found or normalize_name(item)

    @work(exclusive=True, group="replan", exit_on_error=False)
    async def replan(self) -> None:
        if self._replan is None:
            return
        visit = await self._replan(self.remaining(), self._here, self.step_free)
        if visit is None:  # the daemon did not answer (the app said so): as it was before the tick
            self._ticked, self._walked, self._here, self.step_free = self._before
            return
        self._before = (list(self._ticked), self._walked, self._here, self.step_free)
        self.show_visit(visit)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss()
