"""Keeping the outbox bounded while central is away: raw sensor readings become per-minute aggregates.

Rules (docs/sync.md, "Compaction"):

- Only rows of kind ``reading`` whose body is one of the raw sensor types (`COMPACTABLE`) are ever
  compacted. Purchases, device status, alerts, prediction outcomes, consent and erasure events, and the
  aggregates themselves are never touched, and nothing is ever dropped: a reading's information survives
  in its aggregate (counters exactly: picks, put-backs, people in and out; gauges as n/min/max/sum/last).
- Trigger: the oldest unacked row is older than ``max_age_ms`` (then readings older than that are
  compacted), or the pending bytes exceed ``max_bytes`` (then the oldest readings are compacted, whatever
  their age, until the outbox is under ``low_water`` of the bound or no raw readings are left).
- Aggregates are appended with NEW seqs (above everything), in the same transaction that deletes the
  raw rows they replace, so central's cursor only ever moves forward. Each aggregate lists the seqs it
  replaces: central may already hold some of them (pulled, committed, ack still in flight) and drops
  those when the aggregate arrives, so nothing is counted twice.
- Work is done in chunks of at most `CHUNK_ROWS` outbox rows, one writer transaction each, so ingest
  never waits long behind compaction. ``sync_state.compact_floor`` remembers how far it got.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import msgspec

from sync.outbox import OutboxEntry, OutboxStatus, append, remove
from sync.schemas import ReadingAggregate

COMPACTABLE = frozenset({"shelf_weight", "fridge_temperature", "shelf_event", "footfall"})
CHUNK_ROWS = 2_000  # ~20 ms of the writer's time per step
_GAUGE_FIELD = {"shelf_weight": "grams", "fridge_temperature": "celsius"}
_SUBJECT_FIELD = {
    "shelf_weight": "shelf",
    "shelf_event": "shelf",
    "fridge_temperature": "unit",
    "footfall": "zone",
}


class _RawReading(msgspec.Struct, frozen=True):
    """The fields compaction needs from a raw reading's body (`sensors.schemas` readings, tagged ``type``)."""

    type: str
    device: str
    ts_ms: int
    shelf: str | None = None
    unit: str | None = None
    zone: str | None = None
    grams: float | None = None
    celsius: float | None = None
    action: str | None = None
    count: int | None = None
    entered: int | None = None
    exited: int | None = None
    interval_s: float | None = None


_decoder = msgspec.json.Decoder(_RawReading)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    max_bytes: int
    max_age_ms: int
    low_water: float = 0.8  # when over max_bytes, compact until pending bytes are under this fraction

    def over_bound(self, current: OutboxStatus, now_ms: int) -> bool:
        too_old = (
            current.oldest_created_ms is not None and now_ms - current.oldest_created_ms > self.max_age_ms
        )
        return too_old or current.pending_bytes > self.max_bytes


@dataclass(frozen=True, slots=True)
class StepResult:
    folded: int  # raw rows replaced in this step
    aggregates: int  # aggregate rows written
    done: bool  # nothing more to compact now


@dataclass(slots=True)
class _Bucket:
    type: str
    device: str
    subject: str
    minute_ms: int
    first_ts_ms: int
    last_ts_ms: int
    replaces: list[int] = field(default_factory=list)
    n: int = 0
    vmin: float | None = None
    vmax: float | None = None
    vsum: float = 0.0
    last: float | None = None
    picks: int = 0
    puts: int = 0
    entered: int = 0
    exited: int = 0
    interval_s: float = 0.0

    def add(self, seq: int, r: _RawReading) -> None:
        self.n += 1
        self.replaces.append(seq)
        self.first_ts_ms = min(self.first_ts_ms, r.ts_ms)
        gauge = _GAUGE_FIELD.get(r.type)
        if gauge is not None:
            value = getattr(r, gauge)
            if value is not None:
                self.vmin = value if self.vmin is None else min(self.vmin, value)
                self.vmax = value if self.vmax is None else max(self.vmax, value)
                self.vsum += value
                if r.ts_ms >= self.last_ts_ms or self.last is None:
                    self.last = value
        elif r.type == "shelf_event":
            if r.action == "pick":
                self.picks += r.count or 0
            else:
                self.puts += r.count or 0
        elif r.type == "footfall":
            self.entered += r.entered or 0
            self.exited += r.exited or 0
            self.interval_s += r.interval_s or 0.0
        self.last_ts_ms = max(self.last_ts_ms, r.ts_ms)

    def aggregate(self) -> ReadingAggregate:
        gauge = self.type in _GAUGE_FIELD
        events = self.type == "shelf_event"
        footfall = self.type == "footfall"
        return ReadingAggregate(
            type=self.type,  # type: ignore[arg-type]  # one of COMPACTABLE, checked before bucketing
            device=self.device,
            subject=self.subject,
            minute_ms=self.minute_ms,
            n=self.n,
            first_ts_ms=self.first_ts_ms,
            last_ts_ms=self.last_ts_ms,
            replaces=self.replaces,
            min=self.vmin if gauge else None,
            max=self.vmax if gauge else None,
            sum=self.vsum if gauge else None,
            last=self.last if gauge else None,
            picks=self.picks if events else None,
            puts=self.puts if events else None,
            entered=self.entered if footfall else None,
            exited=self.exited if footfall else None,
            interval_s=self.interval_s if footfall else None,
        )


def compact_step(conn: sqlite3.Connection, policy: CompactionPolicy, now_ms: int, *, for_size: bool) -> int:
    """One chunk of compaction inside the caller's write transaction; returns the raw rows folded plus one
    while there is more to look at, 0 when there is nothing (more) to do now. Call until it returns 0.
    ``for_size``: this round started because the outbox was past ``max_bytes``."""
    result = compact_chunk(conn, policy, now_ms, for_size=for_size)
    return 0 if result.done else result.folded + 1


def compact_chunk(
    conn: sqlite3.Connection, policy: CompactionPolicy, now_ms: int, *, for_size: bool
) -> StepResult:
    floor, acked, pending_bytes = conn.execute(
        "SELECT compact_floor, acked_seq, pending_bytes FROM sync_state WHERE id = 1"
    ).fetchone()
    low = max(floor, acked)
    # Past the bound, compact the oldest readings whatever their age, down to the low-water mark
    # (hysteresis: a store hovering at the bound does not compact a few rows every interval).
    by_size = for_size and pending_bytes > policy.max_bytes * policy.low_water
    cutoff_ms = now_ms - policy.max_age_ms
    # The chunk: the next CHUNK_ROWS rows above the floor; without size pressure, only those older than
    # the age cutoff (created_ms grows with seq: one writer, and aggregates are stamped with their time).
    if by_size:
        row = conn.execute(
            "SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?)",
            (low, CHUNK_ROWS),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq > ? AND created_ms < ? ORDER BY seq LIMIT ?)",
            (low, cutoff_ms, CHUNK_ROWS),
        ).fetchone()
    high = row[0]
    if high is None:
        return StepResult(0, 0, done=True)
    buckets: dict[tuple[str, str, int, str], _Bucket] = {}
    folded: list[int] = []
    for seq, body in conn.execute(
        "SELECT seq, body FROM outbox WHERE seq > ? AND seq <= ? AND kind = 'reading' ORDER BY seq",
        (low, high),
    ):
        try:
            reading = _decoder.decode(body)
        except msgspec.DecodeError:
            continue  # not a raw reading we understand: leave it alone
        if reading.type not in COMPACTABLE:
            continue
        subject = getattr(reading, _SUBJECT_FIELD[reading.type]) or ""
        minute = reading.ts_ms - reading.ts_ms % 60_000
        key = (reading.type, reading.device, minute, subject)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket(
                reading.type, reading.device, subject, minute, reading.ts_ms, reading.ts_ms
            )
        bucket.add(seq, reading)
        folded.append(seq)
    if folded:
        append(
            conn,
            now_ms,
            (
                OutboxEntry("reading_aggregate", b.device, _encoder.encode(b.aggregate()).decode())
                for b in sorted(buckets.values(), key=lambda b: (b.minute_ms, b.device, b.type))
            ),
        )
        remove(conn, folded)  # keeps the pending totals exact (one UPDATE, no per-row trigger)
    conn.execute(
        "UPDATE sync_state SET compact_floor = ?, compacted_rows = compacted_rows + ?,"
        " aggregates_written = aggregates_written + ?, last_compaction_ms = ? WHERE id = 1",
        (high, len(folded), len(buckets), now_ms),
    )
    return StepResult(len(folded), len(buckets), done=False)
