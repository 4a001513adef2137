"""The warehouse: each change central records, materialised into relational tables in the same transaction.

`sync.central_db.apply_page` decodes a page's bodies (`sync.change_bodies`), hands every change it has
not seen before to a `PageWarehouse` in seq order, and calls `PageWarehouse.flush` inside the page's
transaction, after the change log's COPY. What goes where:

- ``reading`` / ``reading_aggregate`` -> ``sensor_minutes``: one row per device, minute, type and subject, everything
  additive (n, sum, counters; min/max; the newest ``last``). When an aggregate replaces raw rows central
  already holds, their share is taken back (`take_back`) and the aggregate's added: the same minute as if
  only the aggregate had come.
- ``purchase`` -> ``purchases`` + ``purchase_items`` (+ ``households``); ``consent`` -> ``consents``
  (withdrawing ``analytics`` deletes the household's ``customer_interactions`` up to then);
  ``alert``, ``device_status`` -> their tables; ``list_feedback``, ``prediction_outcome``, ``list_outcome``,
  ``experiment``, ``bundle`` -> their append-only tables (`sync.central_append`).
- ``erasure`` -> a row in ``erasures`` (the feed every store polls) and the household erased at central:
  its consents, feedback, outcomes and household row deleted, its purchases kept as anonymous sales, and
  its changes in the log scrubbed (`sync.central_erasures.erase_everywhere`). A store's report that it applied a feed entry
  (``origin: central``) lands in ``erasure_reports`` and erases again (anything that arrived meanwhile).
  A change about an erased household that arrives later (from a store that had not heard yet) but
  happened before the erasure is stored already anonymised.
- A change central cannot read (`sync.change_bodies.Refused`) -> ``quarantine`` with the reason; it stays
  in the change log untouched, so it is still pulled exactly once and can be replayed after a fix.

Every statement is one multi-row ``INSERT ... SELECT FROM unnest(...)``; rows that would meet twice in
one statement are merged first (``ON CONFLICT DO UPDATE`` refuses to touch a row twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from sync.central_append import APPEND_TABLES, append_row, utc
from sync.central_erasures import erase_everywhere
from sync.central_inserts import (
    ALERTS,
    CONSENTS,
    DEVICES,
    HOUSEHOLDS,
    ITEMS,
    MINUTES,
    PURCHASES,
    QUARANTINE,
    insert,
)
from sync.central_schema import PARTITIONED, Month
from sync.change_bodies import (
    AlertBody,
    Body,
    ConsentBody,
    DeviceStatusBody,
    ErasureBody,
    FootfallBody,
    FridgeTemperatureBody,
    ListOutcomeBody,
    PredictionOutcomeBody,
    PurchaseBody,
    ReadingBody,
    Refused,
    ShelfEventBody,
    ShelfWeightBody,
    decode_body,
    household_of,
    time_of,
)
from sync.schemas import ReadingAggregate

QUARANTINE_BODY_CHARS = 8192  # what is kept of a refused body for inspection
_any = msgspec.json.Decoder()
_json = msgspec.json.Encoder()


def _month(ms: int) -> Month:
    moment = utc(ms)
    return moment.year, moment.month


_PARTITIONED_BY: dict[type, tuple[str, tuple[str, ...]]] = {  # body type -> (its time, the tables it fills)
    PurchaseBody: ("ts_ms", ("purchases", "purchase_items")),
    PredictionOutcomeBody: ("scored_ms", ("prediction_outcomes",)),
    ListOutcomeBody: ("purchased_ms", ("list_outcomes",)),
    ReadingAggregate: ("minute_ms", ("sensor_minutes",)),
    ShelfWeightBody: ("ts_ms", ("sensor_minutes",)),
    ShelfEventBody: ("ts_ms", ("sensor_minutes",)),
    FridgeTemperatureBody: ("ts_ms", ("sensor_minutes",)),
    FootfallBody: ("ts_ms", ("sensor_minutes",)),
}
assert {t for _, tables in _PARTITIONED_BY.values() for t in tables} == set(PARTITIONED)


def partitions_for(bodies: Iterable[Body | Refused]) -> dict[str, set[Month]]:
    """The monthly partitions a page's rows will land in (`sync.central_schema.ensure_partitions`).
    Runs for every change: the month is worked out once per (table, UTC day)."""
    days: set[tuple[str, int]] = set()
    for body in bodies:
        found = _PARTITIONED_BY.get(type(body))
        if found is not None:
            day = getattr(body, found[0]) // 86_400_000
            days.update((table, day) for table in found[1])
    wanted: dict[str, set[Month]] = {}
    for table, day in days:
        wanted.setdefault(table, set()).add(_month(day * 86_400_000))
    return wanted


async def erased_since(conn: asyncpg.Connection, households: Iterable[str]) -> dict[str, int]:
    """For each household that was ever erased: the newest erasure's time (ms)."""
    wanted = sorted(set(households))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT household, max(requested_ms) FROM erasures WHERE household = ANY($1::text[]) GROUP BY household",
        wanted,
    )
    return {r[0]: int(r[1]) for r in rows}


# -- sensor minutes ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Minute:
    type: str
    subject: str
    n: int = 0
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    last: float | None = None
    last_ts_ms: int | None = None
    picks: int | None = None
    puts: int | None = None
    entered: int | None = None
    exited: int | None = None

    def gauge(self, value: float, ts_ms: int, sign: int) -> None:
        self.sum = (self.sum or 0.0) + sign * value
        if sign > 0:
            self.min = value if self.min is None else min(self.min, value)
            self.max = value if self.max is None else max(self.max, value)
            self.newest(value, ts_ms)

    def newest(self, value: float | None, ts_ms: int | None) -> None:
        if value is not None and ts_ms is not None and (self.last_ts_ms is None or ts_ms >= self.last_ts_ms):
            self.last, self.last_ts_ms = value, ts_ms


def _plus(a: int | None, b: int | None) -> int | None:
    return a if b is None else (b if a is None else a + b)


@dataclass(slots=True)
class PageWarehouse:
    """The warehouse rows of one page, collected in seq order and written by `flush`."""

    store: str
    feed: str
    stream: int
    now_ms: int
    erased: dict[str, int]  # household -> newest erasure time (`erased_since`, plus this page's)
    quarantined: int = 0
    _minutes: dict[tuple[str, int, str, str], _Minute] = field(default_factory=dict)
    _purchases: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    _items: list[tuple[Any, ...]] = field(default_factory=list)
    _households: dict[str, list[Any]] = field(default_factory=dict)
    _consents: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    _appends: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # append-only table -> rows
    _alerts: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    _devices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _erasures: list[tuple[str, int, int | None]] = field(default_factory=list)
    # household -> newest analytics withdrawal: what analytics consent allowed goes with it (interactions)
    _analytics_withdrawn: dict[str, int] = field(default_factory=dict)
    _quarantine: list[tuple[Any, ...]] = field(default_factory=list)

    def add(
        self, seq: int, kind: str, raw: bytes | msgspec.Raw, body: Body | Refused, created_ms: int
    ) -> tuple[str | None, str | None]:
        """Take one new change; returns what the change log keeps of it: (household, body text). A
        change about an erased household that happened before its erasure is kept anonymised."""
        text = str(raw, "utf-8", "replace")
        if isinstance(body, Refused):
            self.quarantined += 1
            self._quarantine.append(
                (self.store, self.feed, seq, kind, body.reason, text[:QUARANTINE_BODY_CHARS], self.now_ms)
            )
            return None, text
        household = household_of(body)
        if household is not None and not isinstance(body, ErasureBody):
            when = time_of(body)
            if when <= self.erased.get(household, -1):
                if not isinstance(body, PurchaseBody):
                    return None, None  # about the household alone: nothing is kept
                body = msgspec.structs.replace(body, household=None)
                text = _unlinked(text)
                household = None
        self._materialise(seq, body, created_ms)
        return household, text

    def _materialise(self, seq: int, body: Body, created_ms: int) -> None:
        appended = append_row(self.store, self.stream, seq, created_ms, body)
        if appended is not None:
            self._appends.setdefault(appended[0], []).append(appended[1])
        elif isinstance(body, (ShelfWeightBody, ShelfEventBody, FridgeTemperatureBody, FootfallBody)):
            self._reading(body, 1)
        elif isinstance(body, ReadingAggregate):
            self._aggregate(body)
        elif isinstance(body, PurchaseBody):
            self._purchase(body)
        elif isinstance(body, ConsentBody):
            self._seen(body.household, body.ts_ms)
            for purpose, granted in (
                ("personalisation", body.personalisation),
                ("analytics", body.analytics),
            ):
                key = (body.household, purpose)
                if key not in self._consents or self._consents[key][3] <= body.ts_ms:
                    self._consents[key] = (body.household, purpose, granted, body.ts_ms, self.store)
            if not body.analytics:
                held_ms = self._analytics_withdrawn.get(body.household, -1)
                self._analytics_withdrawn[body.household] = max(held_ms, body.ts_ms)
        elif isinstance(body, AlertBody):
            held = self._alerts.get(body.id)
            if held is None or held[7] <= body.updated_ms:
                self._alerts[body.id] = (
                    self.store, body.id, body.kind, body.subject, body.severity, body.state, body.message,
                    body.updated_ms, body.opened_ms, body.resolved_ms,
                )  # fmt: skip
        elif isinstance(body, DeviceStatusBody):
            held_status = self._devices.get(body.device)
            if held_status is None or held_status[3] <= body.ts_ms:
                self._devices[body.device] = (self.store, body.device, body.online, body.ts_ms)
        elif isinstance(body, ErasureBody):
            if body.ts_ms > self.erased.get(body.household, -1):
                self.erased[body.household] = body.ts_ms
            self._erasures.append(
                (body.household, body.ts_ms, body.erasure if body.origin == "central" else None)
            )

    # -- readings ------------------------------------------------------------------------------------
    def _bucket(self, device: str, ts_ms: int, kind: str, subject: str) -> _Minute:
        key = (device, ts_ms - ts_ms % 60_000, kind, subject)
        minute = self._minutes.get(key)
        if minute is None:
            minute = self._minutes[key] = _Minute(kind, subject)
        return minute

    def _reading(self, r: ReadingBody, sign: int) -> None:
        if isinstance(r, ShelfWeightBody):
            m = self._bucket(r.device, r.ts_ms, "shelf_weight", r.shelf)
            m.gauge(r.grams, r.ts_ms, sign)
        elif isinstance(r, FridgeTemperatureBody):
            m = self._bucket(r.device, r.ts_ms, "fridge_temperature", r.unit)
            m.gauge(r.celsius, r.ts_ms, sign)
        elif isinstance(r, ShelfEventBody):
            m = self._bucket(r.device, r.ts_ms, "shelf_event", r.shelf)
            pick = r.action == "pick"
            m.picks = _plus(m.picks, sign * r.count if pick else 0)
            m.puts = _plus(m.puts, 0 if pick else sign * r.count)
        else:
            m = self._bucket(r.device, r.ts_ms, "footfall", r.zone)
            m.entered = _plus(m.entered, sign * r.entered)
            m.exited = _plus(m.exited, sign * r.exited)
        m.n += sign

    def _aggregate(self, a: ReadingAggregate) -> None:
        m = self._bucket(a.device, a.minute_ms, a.type, a.subject)
        m.n += a.n
        if a.sum is not None:
            m.sum = (m.sum or 0.0) + a.sum
        if a.min is not None:
            m.min = a.min if m.min is None else min(m.min, a.min)
        if a.max is not None:
            m.max = a.max if m.max is None else max(m.max, a.max)
        m.newest(a.last, a.last_ts_ms)
        m.picks, m.puts = _plus(m.picks, a.picks), _plus(m.puts, a.puts)
        m.entered, m.exited = _plus(m.entered, a.entered), _plus(m.exited, a.exited)

    def take_back(self, kind: str, raw: bytes) -> None:
        """A raw reading central held was replaced by an aggregate: take its share out of its minute."""
        if kind != "reading":
            return
        body = decode_body(kind, raw)
        if isinstance(body, (ShelfWeightBody, ShelfEventBody, FridgeTemperatureBody, FootfallBody)):
            self._reading(body, -1)

    # -- purchases -----------------------------------------------------------------------------------
    def _seen(self, household: str, ts_ms: int) -> None:
        held = self._households.get(household)
        if held is None:
            self._households[household] = [household, ts_ms, ts_ms, self.store]
        else:
            held[1], held[2] = min(held[1], ts_ms), max(held[2], ts_ms)

    def _purchase(self, p: PurchaseBody) -> None:
        key = (p.basket_id, p.ts_ms)
        held = self._purchases.get(key)
        if held is not None:  # the same basket twice in one page: unlinked if either copy is
            held[4] = held[4] if p.household is None else None
            return
        self._purchases[key] = [self.store, p.basket_id, utc(p.ts_ms), p.ts_ms, p.household, p.lane,
                                round(p.total, 2), len(p.items)]  # fmt: skip
        when = utc(p.ts_ms)
        self._items.extend(
            (self.store, p.basket_id, when, line, i.sku, i.category, i.qty, round(i.unit_price, 2))
            for line, i in enumerate(p.items, start=1)
        )
        if p.household is not None:
            self._seen(p.household, p.ts_ms)

    # -- writing ------------------------------------------------------------------------------------
    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write everything collected, inside the page's transaction (after the change log's COPY)."""
        await insert(conn, "quarantine", QUARANTINE, self._quarantine)
        await insert(conn, "households", HOUSEHOLDS, [tuple(h) for h in self._households.values()],
                      "ON CONFLICT (id) DO UPDATE SET first_seen_ms = least(households.first_seen_ms,"
                      " excluded.first_seen_ms), last_seen_ms = greatest(households.last_seen_ms,"
                      " excluded.last_seen_ms), last_store = CASE WHEN excluded.last_seen_ms >="
                      " households.last_seen_ms THEN excluded.last_store ELSE households.last_store END")  # fmt: skip
        await insert(conn, "purchases", PURCHASES, [tuple(p) for p in self._purchases.values()],
                      "ON CONFLICT (store, basket_id, ts) DO UPDATE SET household = NULL"
                      " WHERE excluded.household IS NULL")  # fmt: skip
        await insert(conn, "purchase_items", ITEMS, self._items, "ON CONFLICT DO NOTHING")
        await insert(conn, "consents", CONSENTS, list(self._consents.values()),
                      "ON CONFLICT (household, purpose) DO UPDATE SET granted = excluded.granted,"
                      " updated_ms = excluded.updated_ms, store = excluded.store"
                      " WHERE excluded.updated_ms >= consents.updated_ms")  # fmt: skip
        for table in APPEND_TABLES.values():
            await insert(
                conn, table.table, table.columns, self._appends.get(table.table, []), "ON CONFLICT DO NOTHING"
            )
        if self._analytics_withdrawn:  # after the appends: this page's earlier interactions go too
            await conn.executemany(
                "DELETE FROM customer_interactions WHERE household = $1 AND ts_ms <= $2",
                list(self._analytics_withdrawn.items()),
            )
        await insert(conn, "alerts", ALERTS, list(self._alerts.values()),
                      "ON CONFLICT (store, id) DO UPDATE SET severity = excluded.severity,"
                      " state = excluded.state, message = excluded.message, updated_ms = excluded.updated_ms,"
                      " resolved_ms = excluded.resolved_ms WHERE excluded.updated_ms >= alerts.updated_ms")  # fmt: skip
        await insert(conn, "device_status", DEVICES, list(self._devices.values()),
                      "ON CONFLICT (store, device) DO UPDATE SET online = excluded.online,"
                      " ts_ms = excluded.ts_ms WHERE excluded.ts_ms >= device_status.ts_ms")  # fmt: skip
        await self._flush_minutes(conn)
        for household, ts_ms, feed_entry in self._erasures:
            await self._erase(conn, household, ts_ms, feed_entry)

    async def _flush_minutes(self, conn: asyncpg.Connection) -> None:
        rows = [
            (self.store, device, utc(minute), m.type, m.subject, m.n, m.sum, m.min, m.max, m.last,
             m.last_ts_ms, m.picks, m.puts, m.entered, m.exited)
            for (device, minute, _, _), m in self._minutes.items()
        ]  # fmt: skip
        add = "CASE WHEN excluded.{0} IS NULL THEN sensor_minutes.{0} ELSE coalesce(sensor_minutes.{0}, 0) + excluded.{0} END"
        counters = ", ".join(f"{c} = {add.format(c)}" for c in ("sum", "picks", "puts", "entered", "exited"))
        await insert(conn, "sensor_minutes", MINUTES, rows,
                      f"ON CONFLICT (store, device, minute, type, subject) DO UPDATE SET n = sensor_minutes.n + excluded.n,"
                      f" {counters}, min = least(sensor_minutes.min, excluded.min),"
                      " max = greatest(sensor_minutes.max, excluded.max),"
                      " last = CASE WHEN excluded.last_ts_ms >= coalesce(sensor_minutes.last_ts_ms, 0)"
                      " THEN excluded.last ELSE sensor_minutes.last END,"
                      " last_ts_ms = greatest(sensor_minutes.last_ts_ms, excluded.last_ts_ms)")  # fmt: skip

    async def _erase(
        self, conn: asyncpg.Connection, household: str, ts_ms: int, feed_entry: int | None
    ) -> None:
        if feed_entry is None:
            await conn.execute(
                "INSERT INTO erasures (household, origin_store, requested_ms, recorded_ms) VALUES ($1, $2, $3, $4)",
                household, self.store, ts_ms, self.now_ms,
            )  # fmt: skip
        else:
            await conn.execute(
                "INSERT INTO erasure_reports (erasure, store, reported_ms) SELECT id, $2, $3 FROM erasures"
                " WHERE id = $1 ON CONFLICT DO NOTHING",
                feed_entry, self.store, ts_ms,
            )  # fmt: skip
        await erase_everywhere(conn, household, ts_ms)


def _unlinked(text: str) -> str:
    """A purchase body with its household removed (the rest byte for byte as the store sent it, re-encoded)."""
    value = _any.decode(text)
    if isinstance(value, dict):
        value["household"] = None
    return _json.encode(value).decode()
