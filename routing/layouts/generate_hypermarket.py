"""Generate `hypermarket.toml`: a 60-aisle hypermarket with 1,000+ nodes, for tests and benchmarks.

Run `python -m routing.layouts.generate_hypermarket` to rewrite the file next to this script (or pass
a path). The output is deterministic, and a test checks that the committed file is what this script
writes, so edit the script, never the TOML.

The floor plan (metres; x east, y towards the back wall):

* three bands of 20 parallel aisles, one behind the other, with cross-aisles in front of, between
  and behind them; every aisle has shelves on both sides of 13 picking points, two shelves per
  category;
* a produce hall along the west wall, a chilled and frozen wall along the east wall, service
  counters (bakery, butcher, fish, deli, hot food) off the back cross-aisle with a staff-only
  corridor behind them;
* a mezzanine (home and electrical) reached by stairs or, for accessible routes, by a lift;
* two entrances with one-way gates, four kiosks, 30 checkouts (one way through) and two exits;
* pallets narrowing the middle of some aisles (tagged `narrow`);
* categories sold in several places (runs of shelves, the fridge wall, promotion end-caps,
  counters), all with placement = "shortest".
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["build_hypermarket_toml", "main"]

AISLES_PER_BAND: Final = 20
BANDS: Final = 3
PICK_POINTS_PER_AISLE: Final = 13
AISLE_SPACING_M: Final = 5.0
FIRST_AISLE_X_M: Final = 12.0
PICK_SPACING_M: Final = 2.0
SHELF_OFFSET_M: Final = 1.5
BAND_GAP_M: Final = 4.0  # width of a cross-aisle between two bands
FRONT_CROSS_AISLE_Y_M: Final = 10.0
WEST_WALKWAY_X_M: Final = 4.0
EAST_WALL_X_M: Final = FIRST_AISLE_X_M + AISLES_PER_BAND * AISLE_SPACING_M
CHECKOUTS: Final = 30
EAST_WALL_POINTS: Final = 30


@dataclass(frozen=True, slots=True)
class _Department:
    band: int
    aisles: range
    storage: str
    zone: str
    categories: tuple[str, ...]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _department(band: int, first: int, last: int, storage: str, zone: str, names: str) -> _Department:
    return _Department(band, range(first, last + 1), storage, zone, _words(names))


_DEPARTMENTS: Final = (
    _department(
        0, 0, 6, "ambient", "grocery",
        "pasta rice noodles canned-tomatoes canned-beans canned-fish soup sauces stock-cubes spices "
        "herbs-dried oil vinegar flour sugar baking cereal porridge jam honey peanut-butter chocolate-spread",
    ),
    _department(
        0, 7, 13, "ambient", "grocery",
        "biscuits crackers crisps nuts popcorn chocolate sweets chewing-gum cake dried-fruit cereal-bars "
        "tea coffee hot-chocolate water soft-drinks juice squash energy-drinks sparkling-water",
    ),
    _department(
        0, 14, 19, "ambient", "grocery",
        "beer cider red-wine white-wine rose-wine sparkling-wine spirits gin whisky vodka rum liqueurs "
        "mixers alcohol-free-beer",
    ),
    _department(
        1, 0, 5, "ambient", "grocery",
        "toilet-paper kitchen-roll tissues detergent fabric-softener dish-soap dishwasher-tablets "
        "surface-cleaner bleach bin-bags foil cling-film batteries light-bulbs air-freshener sponges",
    ),
    _department(
        1, 6, 11, "ambient", "grocery",
        "shampoo conditioner shower-gel soap toothpaste toothbrushes deodorant razors sun-cream "
        "skin-care make-up painkillers vitamins plasters cotton-wool hair-dye",
    ),
    _department(
        1, 12, 15, "ambient", "grocery",
        "nappies baby-wipes baby-food baby-milk cat-food dog-food cat-litter pet-treats",
    ),
    _department(
        1, 16, 19, "ambient", "grocery",
        "curry-paste tortillas soy-sauce coconut-milk salsa couscous lentils chickpeas",
    ),
    _department(
        2, 0, 7, "ambient", "grocery",
        "cookware kitchen-utensils storage-boxes towels bedding candles stationery greeting-cards "
        "gift-wrap toys books magazines garden barbecue party seasonal",
    ),
    _department(
        2, 8, 13, "chilled", "chilled",
        "milk cream butter cheese yogurt eggs ham sausages bacon chicken mince steak ready-meals "
        "fresh-pasta dips salads pizza-fresh desserts juice-chilled plant-milk",
    ),
    _department(
        2, 14, 19, "frozen", "frozen",
        "ice-cream frozen-vegetables frozen-pizza frozen-fish frozen-chips frozen-meat frozen-desserts "
        "frozen-ready-meals ice frozen-fruit frozen-bread frozen-snacks",
    ),
)  # fmt: skip
_VARIETIES: Final = (
    "",
    "organic",
    "value",
    "premium",
    "family",
    "free-from",
    "local",
    "imported",
    "bulk",
    "mini",
)
_PRODUCE: Final = _words(
    "bananas apples oranges grapes berries lemons melons pineapples potatoes carrots onions tomatoes "
    "cucumbers peppers lettuce broccoli mushrooms garlic herbs salad avocados flowers plants nuts-loose"
)
_EAST_WALL_CHILLED: Final = (
    "milk",
    "cream",
    "yogurt",
    "cheese",
    "butter",
    "eggs",
    "juice-chilled",
    "plant-milk",
)
_EAST_WALL_FROZEN: Final = (
    "ice-cream",
    "frozen-pizza",
    "frozen-vegetables",
    "frozen-chips",
    "frozen-desserts",
)
_COUNTERS: Final = (
    ("bakery", "the bakery counter", "ambient", ("bread", "rolls", "pastries", "cake")),
    ("butcher", "the butcher", "chilled", ("beef", "lamb", "pork", "sausages", "mince")),
    ("fish", "the fish counter", "chilled", ("fish", "seafood", "smoked-fish")),
    ("deli", "the deli counter", "chilled", ("olives", "cooked-meats", "ham", "cheese", "antipasti")),
    ("hot-food", "the hot food counter", "ambient", ("rotisserie-chicken", "hot-food")),
)
_MEZZANINE: Final = _words(
    "televisions laptops phones headphones cables small-appliances kettles toasters vacuum-cleaners "
    "lamps furniture rugs mirrors frames clothing shoes sportswear luggage"
)
#: Best sellers also stacked on end-caps along the front cross-aisle.
_PROMOTED: Final = (
    "soft-drinks",
    "crisps",
    "beer",
    "chocolate",
    "water",
    "toilet-paper",
    "detergent",
    "coffee",
)


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string of plain ASCII is a valid TOML basic string


def _n(value: float) -> str:
    return f"{value:g}"


def _array(items: Iterable[str]) -> str:
    return "[" + ", ".join(_q(item) for item in items) + "]"


def _inline(parts: Sequence[str]) -> str:
    return "  { " + ", ".join(parts) + " },"


@dataclass
class _Plan:
    """The layout being built, as TOML lines per array, plus what the later steps need to attach to."""

    nodes: list[str] = field(default_factory=list)
    aisles: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    places_per_category: dict[str, int] = field(default_factory=dict)
    x_of: dict[str, float] = field(default_factory=dict)
    cross_aisles: list[list[str]] = field(default_factory=list)  # node ids per row, west to east
    cross_aisle_y: list[float] = field(default_factory=list)

    def node(
        self, node_id: str, x: float, y: float, kind: str, zone: str | None, name: str | None = None
    ) -> str:
        parts = [f"id = {_q(node_id)}", f"x = {_n(x)}", f"y = {_n(y)}", f"kind = {_q(kind)}"]
        if zone:
            parts.append(f"zone = {_q(zone)}")
        if name:
            parts.append(f"name = {_q(name)}")
        self.nodes.append(_inline(parts))
        self.x_of[node_id] = x
        return node_id

    def aisle(self, aisle_id: str, name: str, members: Iterable[str], tags: Sequence[str] = ()) -> None:
        parts = [f"id = {_q(aisle_id)}", f"name = {_q(name)}", f"nodes = {_array(members)}"]
        if tags:
            parts.append(f"tags = {_array(tags)}")
        self.aisles.append(_inline(parts))

    def edge(
        self,
        source: str,
        target: str,
        tags: Sequence[str] = (),
        name: str | None = None,
        length: float | None = None,
    ) -> None:
        parts = [f"from = {_q(source)}", f"to = {_q(target)}"]
        if length is not None:
            parts.append(f"length = {_n(length)}")
        if tags:
            parts.append(f"tags = {_array(tags)}")
        if name:
            parts.append(f"name = {_q(name)}")
        self.edges.append(_inline(parts))

    def section(
        self, section_id: str, node_id: str, x: float, y: float, categories: Sequence[str], storage: str
    ) -> None:
        for category in categories:
            self.places_per_category[category] = self.places_per_category.get(category, 0) + 1
        parts = [
            f"id = {_q(section_id)}",
            f"node = {_q(node_id)}",
            f"x = {_n(x)}",
            f"y = {_n(y)}",
            f"categories = {_array(categories)}",
            f"storage = {_q(storage)}",
        ]
        self.sections.append(_inline(parts))

    def nearest_on_row(self, row: int, x: float) -> str:
        return min(self.cross_aisles[row], key=lambda node_id: abs(self.x_of[node_id] - x))


def _aisle_x(aisle: int) -> float:
    return FIRST_AISLE_X_M + aisle * AISLE_SPACING_M


def _band_front_y(band: int) -> float:
    length = (PICK_POINTS_PER_AISLE + 1) * PICK_SPACING_M
    return FRONT_CROSS_AISLE_Y_M + band * (length + BAND_GAP_M)


def _category_names(base: Sequence[str], count: int) -> list[str]:
    """`count` distinct names: the base names, then 'organic-...', 'value-...' and so on."""
    names = [f"{variety}-{name}" if variety else name for variety in _VARIETIES for name in base]
    if len(names) < count:
        raise ValueError("not enough category names; add varieties")
    return names[:count]


def _add_cross_aisles(plan: _Plan) -> None:
    plan.cross_aisle_y = [_band_front_y(band) for band in range(BANDS + 1)]
    plan.cross_aisle_y[-1] -= BAND_GAP_M  # the back cross-aisle is right behind the last band
    names = ("the front cross-aisle", "the first middle cross-aisle", "the second middle cross-aisle")
    for row, y in enumerate(plan.cross_aisle_y):
        zone = "entrance" if row == 0 else ("fresh" if row == BANDS else "grocery")
        ids = [plan.node(f"X{row}-w", WEST_WALKWAY_X_M, y, "walkway", "produce")]
        for aisle in range(AISLES_PER_BAND):
            ids.append(plan.node(f"X{row}-{aisle + 1:02d}", _aisle_x(aisle), y, "aisle_end", zone))
            if aisle < AISLES_PER_BAND - 1:
                gap_x = _aisle_x(aisle) + AISLE_SPACING_M / 2
                ids.append(plan.node(f"X{row}-{aisle + 1:02d}g", gap_x, y, "walkway", zone))
        ids.append(plan.node(f"X{row}-e", EAST_WALL_X_M, y, "walkway", "chilled"))
        plan.cross_aisles.append(ids)
        plan.aisle(f"X{row}", names[row] if row < BANDS else "the back cross-aisle", ids)


def _add_aisles(plan: _Plan) -> None:
    for department in _DEPARTMENTS:
        runs_per_side = (PICK_POINTS_PER_AISLE + 1) // 2
        categories = _category_names(department.categories, 2 * runs_per_side * len(department.aisles))
        for position, aisle in enumerate(department.aisles):
            _add_aisle(
                plan, department, aisle, categories[position * 2 * runs_per_side :][: 2 * runs_per_side]
            )


def _add_aisle(plan: _Plan, department: _Department, aisle: int, categories: Sequence[str]) -> None:
    band = department.band
    number = band * AISLES_PER_BAND + aisle + 1
    x, front_y = _aisle_x(aisle), _band_front_y(band)
    aisle_id = f"H{number:02d}"
    points = [
        plan.node(f"{aisle_id}-p{k + 1:02d}", x, front_y + (k + 1) * PICK_SPACING_M, "aisle", department.zone)
        for k in range(PICK_POINTS_PER_AISLE)
    ]
    members = [plan.cross_aisles[band][1 + 2 * aisle], *points, plan.cross_aisles[band + 1][1 + 2 * aisle]]
    name = f"aisle {number}"
    if number % 9 == 4:
        # A pallet narrows the middle of this aisle: wheelchairs come in from either end instead.
        middle = len(members) // 2
        plan.aisle(f"{aisle_id}a", name, members[: middle + 1])
        plan.aisle(f"{aisle_id}-pallet", name, members[middle : middle + 2], ["narrow"])
        plan.aisle(f"{aisle_id}b", name, members[middle + 1 :])
    else:
        plan.aisle(aisle_id, name, members)
    runs_per_side = (PICK_POINTS_PER_AISLE + 1) // 2
    for side_index, (side, offset) in enumerate((("W", -SHELF_OFFSET_M), ("E", SHELF_OFFSET_M))):
        for k, point in enumerate(points):
            category = categories[side_index * runs_per_side + k // 2]  # two shelves per category
            y = front_y + (k + 1) * PICK_SPACING_M
            plan.section(
                f"{aisle_id}-{side}{k + 1:02d}", point, x + offset, y, [category], department.storage
            )


def _add_produce_hall(plan: _Plan) -> None:
    front_y, back_y = plan.cross_aisle_y[0], plan.cross_aisle_y[-1]
    step = (back_y - front_y) / (len(_PRODUCE) + 1)
    ids = [plan.cross_aisles[0][0]]
    for k, category in enumerate(_PRODUCE):
        y = front_y + (k + 1) * step
        ids.append(plan.node(f"produce-{k + 1:02d}", WEST_WALKWAY_X_M, y, "walkway", "produce"))
        plan.section(f"produce-{k + 1:02d}", ids[-1], WEST_WALKWAY_X_M - 2, y, [category], "ambient")
    ids.append(plan.cross_aisles[-1][0])
    plan.aisle("produce", "the produce hall", ids)
    for row in range(1, BANDS):
        nearest = min(range(1, len(ids) - 1), key=lambda i: abs(front_y + i * step - plan.cross_aisle_y[row]))
        plan.edge(plan.cross_aisles[row][0], ids[nearest])


def _add_east_wall(plan: _Plan) -> None:
    front_y, back_y = plan.cross_aisle_y[0], plan.cross_aisle_y[-1]
    step = (back_y - front_y) / (EAST_WALL_POINTS + 1)
    chilled_points = EAST_WALL_POINTS * 2 // 3
    ids = [plan.cross_aisles[0][-1]]
    for k in range(EAST_WALL_POINTS):
        y = front_y + (k + 1) * step
        if k < chilled_points:
            storage, category = "chilled", _EAST_WALL_CHILLED[k % len(_EAST_WALL_CHILLED)]
        else:
            storage, category = "frozen", _EAST_WALL_FROZEN[(k - chilled_points) % len(_EAST_WALL_FROZEN)]
        ids.append(plan.node(f"wall-{k + 1:02d}", EAST_WALL_X_M, y, "walkway", storage))
        plan.section(f"wall-{k + 1:02d}", ids[-1], EAST_WALL_X_M + 2, y, [category], storage)
    ids.append(plan.cross_aisles[-1][-1])
    plan.aisle("east-wall", "the fridge wall", ids)
    for row in range(1, BANDS):
        nearest = min(range(1, len(ids) - 1), key=lambda i: abs(front_y + i * step - plan.cross_aisle_y[row]))
        plan.edge(plan.cross_aisles[row][-1], ids[nearest])


def _add_counters(plan: _Plan) -> None:
    counter_y = plan.cross_aisle_y[-1] + 4
    corridor = []
    for index, (counter_id, name, storage, categories) in enumerate(_COUNTERS):
        aisle = index * 4 + 2
        x = _aisle_x(aisle)
        node_id = plan.node(f"counter-{counter_id}", x, counter_y, "walkway", "fresh", name)
        plan.edge(plan.cross_aisles[-1][1 + 2 * aisle], node_id)
        plan.section(f"counter-{counter_id}", node_id, x, counter_y + 1.5, categories, storage)
        # Staff walk behind the counters; that corridor would be a shortcut, so it must stay staff-only.
        corridor.append(plan.node(f"staff-{counter_id}", x, counter_y + 4, "walkway", None))
        plan.edge(node_id, corridor[-1], ["staff_only"])
    plan.aisle("staff-corridor", "the staff corridor", corridor, ["staff_only"])


def _add_mezzanine(plan: _Plan) -> None:
    x = EAST_WALL_X_M + 12
    ids = []
    for k, category in enumerate(_MEZZANINE):
        y = plan.cross_aisle_y[0] + 6 + k * 5
        ids.append(plan.node(f"mezz-{k + 1:02d}", x, y, "walkway", "mezzanine"))
        plan.section(f"mezz-{k + 1:02d}", ids[-1], x + 2, y, [category], "ambient")
    plan.aisle("mezzanine", "the mezzanine", ids)
    plan.edge(plan.cross_aisles[-1][-1], ids[-1], ["stairs"], "the stairs", length=14)
    lift = plan.node("lift", EAST_WALL_X_M + 6, plan.cross_aisle_y[0], "walkway", "mezzanine", "the lift")
    plan.edge(plan.cross_aisles[0][-1], lift, name="the lift lobby")
    # The ride plus the usual wait, expressed as metres walked at 1 m/s.
    plan.edge(lift, ids[0], name="the lift", length=45)


def _add_front(plan: _Plan) -> None:
    gate_y = plan.cross_aisle_y[0] - 3
    for index, x in enumerate((WEST_WALKWAY_X_M + 4, EAST_WALL_X_M - 4)):
        entrance = plan.node(f"entrance-{index + 1}", x, 0, "entrance", "entrance", f"entrance {index + 1}")
        gate = plan.node(f"gate-{index + 1}", x, gate_y, "walkway", "entrance")
        plan.edge(entrance, gate, ["one_way"])
        plan.edge(gate, plan.nearest_on_row(0, x))
        kiosk_x = x + (2 if index == 0 else -2)
        kiosk = plan.node(f"kiosk-{index + 1}", kiosk_x, gate_y, "kiosk", "entrance", f"kiosk {index + 1}")
        plan.edge(kiosk, gate)
    for row, number in ((1, 3), (2, 4)):
        x = _aisle_x(9) + AISLE_SPACING_M / 2
        kiosk = plan.node(
            f"kiosk-{number}", x, plan.cross_aisle_y[row] + 1, "kiosk", "grocery", f"kiosk {number}"
        )
        plan.edge(kiosk, plan.cross_aisles[row][1 + 2 * 9])
    first_x = _aisle_x(3)
    spacing = (AISLES_PER_BAND - 6) * AISLE_SPACING_M / (CHECKOUTS - 1)
    exits = (
        plan.node("exit-1", first_x - 6, 0, "exit", "checkout", "exit 1"),
        plan.node("exit-2", first_x + (CHECKOUTS - 1) * spacing + 6, 0, "exit", "checkout", "exit 2"),
    )
    for till in range(CHECKOUTS):
        x = first_x + till * spacing
        till_id = plan.node(
            f"checkout-{till + 1:02d}", x, gate_y - 1, "checkout", "checkout", f"checkout {till + 1}"
        )
        plan.edge(plan.nearest_on_row(0, x), till_id, ["one_way"], f"till lane {till + 1}")
        plan.edge(till_id, exits[0] if till < CHECKOUTS // 2 else exits[1], ["one_way"])


def _add_promotions(plan: _Plan) -> None:
    for index, category in enumerate(_PROMOTED):
        node_id = plan.cross_aisles[0][2 + 4 * index]  # a gap between two aisle ends
        y = plan.cross_aisle_y[0] + 1.5
        plan.section(f"promo-{index + 1:02d}", node_id, plan.x_of[node_id], y, [category], "ambient")


def build_hypermarket_toml() -> str:
    """The TOML text of the hypermarket layout."""
    plan = _Plan()
    _add_cross_aisles(plan)
    _add_aisles(plan)
    _add_produce_hall(plan)
    _add_east_wall(plan)
    _add_counters(plan)
    _add_mezzanine(plan)
    _add_front(plan)
    _add_promotions(plan)
    zones = ("entrance", "produce", "grocery", "fresh", "chilled", "frozen", "mezzanine", "checkout")
    lines = [
        "# Routing layout of a 60-aisle hypermarket. GENERATED by routing/layouts/generate_hypermarket.py:",
        "# edit the script and rerun it (python -m routing.layouts.generate_hypermarket), never this file.",
        "",
        'store = { id = "hypermarket", name = "storeedge hypermarket (generated)" }',
        "",
        "zones = [",
        *(_inline([f"id = {_q(zone)}", f"name = {_q(zone.capitalize())}"]) for zone in zones),
        "]",
        "",
        "nodes = [",
        *plan.nodes,
        "]",
        "",
        "aisles = [",
        *plan.aisles,
        "]",
        "",
        "edges = [",
        *plan.edges,
        "]",
        "",
        "sections = [",
        *plan.sections,
        "]",
        "",
        "# Categories sold in several places (runs of shelves, the fridge wall, end-caps, counters).",
    ]
    for category in sorted(name for name, places in plan.places_per_category.items() if places > 1):
        lines += [f"[categories.{category}]", 'placement = "shortest"', ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the generated hypermarket layout.")
    parser.add_argument(
        "output",
        nargs="?",
        type=Path,
        default=Path(__file__).with_name("hypermarket.toml"),
        help="where to write the layout (default: hypermarket.toml next to this script)",
    )
    args = parser.parse_args(argv)
    output: Path = args.output
    output.write_text(build_hypermarket_toml(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
