"""Live recommendations while shopping (#17 item 3; docs/customers.md, "Live recommendations").

    POST /api/v1/recommendations/realtime   {"basket": ["milk", ...], "position"?: node, "limit"?: 1..20}

Given what is ticked or in the basket and where the shopper stands, re-rank what to suggest next:

- never a category already in the basket;
- the household's own list (its cached next-basket probabilities and reasons), for a verified session of
  a household with personalisation consent (staff name the household);
- complements: categories bought together with the basket's in *this store's* baskets of the last
  `WINDOW_DAYS` days, by association lift (P(b | a) / P(b); at least `MIN_PAIR_BASKETS` baskets with both,
  lift >= `MIN_LIFT`); anonymous store statistics, so anyone gets them (a kiosk without a session too);
- nearer first: with a ``position`` (a node of the store layout) each suggestion's walking distance from
  there to its nearest shelf raises its score (halving at 25 m) and is returned.

The association table is rebuilt every `REFRESH_S` in an executor thread on a read connection; a request
only reads memory (and the household's cached list): bench/kiosk.py measures its p99.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np
import numpy.typing as npt
from aiohttp import web

from edge.customers.tables import has_consent
from edge.http.app import PRINCIPAL
from edge.http.responses import Handler, error_response, json_response, read_json
from edge.store.db import ReadThread
from routing import Layout, RoutingError
from routing.graph import cost_graph

WINDOW_DAYS = 28
MIN_PAIR_BASKETS = 10
MIN_LIFT = 1.2
REFRESH_S = 3600.0
NEAR_M = 25.0  # the proximity bonus halves every this many metres
MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True, eq=False)
class Associations:
    """How often categories are bought together in this store's baskets since ``since_ms``."""

    categories: tuple[str, ...]
    baskets: int
    count: npt.NDArray[np.int64]  # baskets with each category
    pair: npt.NDArray[np.int64]  # baskets with both (categories x categories)
    since_ms: int

    @staticmethod
    def empty() -> Associations:
        return Associations((), 0, np.zeros(0, np.int64), np.zeros((0, 0), np.int64), 0)


def basket_associations(conn: sqlite3.Connection, since_ms: int) -> Associations:
    rows = conn.execute(
        "SELECT DISTINCT i.purchase_id, i.category FROM purchase_items i JOIN purchases p ON p.id = i.purchase_id"
        " WHERE p.ts_ms >= ? AND i.category IS NOT NULL",
        (since_ms,),
    ).fetchall()
    if not rows:
        return Associations.empty()
    baskets, categories = zip(*rows, strict=True)
    names, cat_code = np.unique(np.asarray(categories, dtype=object).astype(str), return_inverse=True)
    _, basket_code = np.unique(np.asarray(baskets, dtype=np.int64), return_inverse=True)
    # float32 so the product goes through BLAS; counts stay exact below 2**24 baskets
    matrix = np.zeros((int(basket_code.max()) + 1, len(names)), dtype=np.float32)
    matrix[basket_code, cat_code] = 1.0
    pair = np.rint(matrix.T @ matrix).astype(np.int64)
    return Associations(tuple(str(n) for n in names), matrix.shape[0], np.diag(pair).copy(), pair, since_ms)


class RealtimeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    basket: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=200)] = (
        msgspec.field(default_factory=list)
    )
    position: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5
    household: Annotated[str, msgspec.Meta(max_length=128)] | None = None  # staff only


class Suggestion(msgspec.Struct, frozen=True):
    category: str
    score: float
    reason: str
    on_list: bool
    lift: float | None = None  # with the basket item it complements best
    distance_m: float | None = None  # walking distance from the position to its nearest shelf


class RealtimeView(msgspec.Struct, frozen=True):
    personalised: bool
    suggestions: list[Suggestion]
    associations_since_ms: int


ListRow = tuple[str, float, str]  # category, P(on the next trip), reason


def recommend(
    table: Associations,
    own_list: list[ListRow],
    basket: list[str],
    limit: int,
    distances: dict[str, float] | None = None,
) -> list[Suggestion]:
    """The ranked suggestions (module docstring); pure, so it is measured and tested on its own."""
    in_basket = set(basket)
    code = {c: i for i, c in enumerate(table.categories)}
    listed = {c: (p, why) for c, p, why in own_list if c not in in_basket}
    complement: dict[str, tuple[float, float, str]] = {}  # category -> (P(b|a), lift, a)
    held = [code[c] for c in in_basket if c in code]
    if held and table.baskets:
        share = table.count / table.baskets
        for a in held:
            if table.count[a] == 0:
                continue
            conditional = table.pair[a] / table.count[a]
            with np.errstate(divide="ignore", invalid="ignore"):
                lifts = np.where(share > 0, conditional / share, 0.0)
            good = (table.pair[a] >= MIN_PAIR_BASKETS) & (lifts >= MIN_LIFT)
            for b in np.flatnonzero(good).tolist():
                name = table.categories[b]
                if name in in_basket:
                    continue
                if name not in complement or conditional[b] > complement[name][0]:
                    complement[name] = (float(conditional[b]), float(lifts[b]), table.categories[a])
    out = []
    for category in set(listed) | set(complement):
        p_list, why = listed.get(category, (0.0, ""))
        conf, lift, partner = complement.get(category, (0.0, 0.0, ""))
        score = 1 - (1 - p_list) * (1 - conf)
        distance = None if distances is None else distances.get(category)
        if distance is not None and math.isfinite(distance):
            score *= 1 + 0.5 * 0.5 ** (distance / NEAR_M)
        if not why:
            why = f"often bought with {partner} in this store ({lift:.1f}x as likely)"
        shown_lift = round(lift, 3) if category in complement else None
        shown_distance = None if distance is None or not math.isfinite(distance) else round(distance, 1)
        out.append(Suggestion(category, round(score, 6), why, category in listed, shown_lift, shown_distance))
    out.sort(key=lambda s: (-s.score, s.category))
    return out[:limit]


def walking_distances(layout: Layout, position: str, categories: set[str]) -> dict[str, float]:
    """Metres from ``position`` to the nearest shelf of each category (`ValueError`: unknown node)."""
    if not layout.has_node(position):
        raise ValueError(f"no node {position!r} in the store layout")
    reach = cost_graph(layout).reachable_from(position)
    found = {}
    for category in categories:
        nodes = [s.node for s in layout.sections_for(category)]
        costs = [reach[n] for n in nodes if n in reach]
        if costs:
            found[category] = min(costs)
    return found


class RealtimeRecommender:
    def __init__(self, db_reads: ReadThread, layout: Callable[[], Layout] | None) -> None:
        self._reads = db_reads
        self._layout = layout
        self.table = Associations.empty()

    async def refresh(self) -> Associations:
        since = int(time.time() * 1000) - WINDOW_DAYS * MS_PER_DAY
        self.table = await self._reads.run(lambda c: basket_associations(c, since))
        return self.table

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/api/v1/recommendations/realtime", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        body = await read_json(request, RealtimeRequest, '{"basket": ["milk"], "position": "A3"}')
        if isinstance(body, web.Response):
            return body
        principal = request[PRINCIPAL]
        if principal.role == "staff":
            household = body.household
        elif body.household is not None:
            return error_response(403, "household: only staff name a household; a session is its own")
        else:
            household = principal.household if principal.personal else None
        own = await self._reads.run(lambda c: _own_list(c, household)) if household else None
        distances = None
        if body.position is not None and self._layout is not None:
            layout, position = self._layout(), body.position
            try:  # a Dijkstra on a first look from this position: off the event loop
                distances = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: walking_distances(layout, position, set(layout.categories))
                )
            except (ValueError, RoutingError) as exc:
                return error_response(400, f"position: {exc}")
        table = self.table
        suggestions = recommend(table, own or [], body.basket, body.limit, distances)
        return json_response(RealtimeView(own is not None, suggestions, table.since_ms))


def _own_list(c: sqlite3.Connection, household: str) -> list[ListRow] | None:
    """The household's cached list (None without personalisation consent)."""
    if not has_consent(c, household):
        return None
    rows = c.execute(
        "SELECT category, basket_probability, reason FROM predictions WHERE household = ? AND list_rank IS NOT NULL",
        (household,),
    ).fetchall()
    return [(str(c_), float(p), str(r)) for c_, p, r in rows]
