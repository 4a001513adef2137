"""The bodies of the store's outbox changes, as central reads them: one struct per change kind, in one place.

The store writes each body (grep ``OutboxEntry(`` in edge/ and sync/); central decodes it here to
materialise it into the warehouse (`sync.central_warehouse`). Decoding is lenient about extra fields (a
newer store may add some) and strict about the ones central uses: a body that does not match its kind,
an unknown kind, or a time outside `TIME_RANGE_MS` is refused with a reason, and central quarantines the
change instead of guessing (`decode_body`). ``reading_aggregate`` and ``bundle`` bodies are
`sync.schemas.ReadingAggregate` and `sync.schemas.BundleReport`.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec

from sync.schemas import BundleReport, Change, ReadingAggregate

# 2000-01-01 .. 2100-01-01 UTC: a device clock outside this is wrong, and the warehouse's monthly
# partitions must not be created for year 1970 or 50000 on its word.
TIME_RANGE_MS = (946_684_800_000, 4_102_444_800_000)
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# -- readings (the store's typed readings, tagged by ``type``) -----------------------------------------


class ShelfWeightBody(msgspec.Struct, frozen=True, tag_field="type", tag="shelf_weight"):
    device: Name
    shelf: Name
    ts_ms: int
    grams: float


class ShelfEventBody(msgspec.Struct, frozen=True, tag_field="type", tag="shelf_event"):
    device: Name
    shelf: Name
    ts_ms: int
    action: Literal["pick", "put"]
    count: Annotated[int, msgspec.Meta(ge=0)]


class FridgeTemperatureBody(msgspec.Struct, frozen=True, tag_field="type", tag="fridge_temperature"):
    device: Name
    unit: Name
    ts_ms: int
    celsius: float


class FootfallBody(msgspec.Struct, frozen=True, tag_field="type", tag="footfall"):
    device: Name
    zone: Name
    ts_ms: int
    entered: Annotated[int, msgspec.Meta(ge=0)]
    exited: Annotated[int, msgspec.Meta(ge=0)]


ReadingBody: TypeAlias = ShelfWeightBody | ShelfEventBody | FridgeTemperatureBody | FootfallBody

# -- purchases and households ---------------------------------------------------------------------------


class PurchaseLine(msgspec.Struct, frozen=True):
    sku: Name
    qty: float
    unit_price: float
    category: str | None = None  # stores since schema v2 of the warehouse send it; older ones do not


class PurchaseBody(msgspec.Struct, frozen=True):
    basket_id: Name
    ts_ms: int
    total: float
    items: list[PurchaseLine]
    lane: str | None = None
    household: Name | None = None


class ConsentBody(msgspec.Struct, frozen=True):
    household: Name
    personalisation: bool
    analytics: bool
    ts_ms: int


class FeedbackBody(msgspec.Struct, frozen=True):
    household: Name
    category: Name
    vote: Literal["up", "down"]
    ts_ms: int
    model_version: str | None = None
    experiment: str | None = None  # the experiment and arm whose list the household voted on
    arm: str | None = None


class ErasureBody(msgspec.Struct, frozen=True):
    """A shopper's "forget me" at a store; with ``origin == "central"`` the store's report that it applied
    entry ``erasure`` of central's erasure feed."""

    household: Name
    ts_ms: int
    origin: Literal["store", "central"] = "store"
    erasure: int | None = None


class PredictionOutcomeBody(msgspec.Struct, frozen=True):
    household: Name
    category: Name
    scored_ms: int
    model_version: str | None = None
    basket_model_version: str | None = None
    expected_days: float | None = None
    p7: float | None = None
    basket_probability: float | None = None
    urgency: str | None = None
    list_rank: int | None = None
    purchased_ms: int | None = None
    actual_days: float | None = None
    experiment: str | None = None  # the experiment and arm whose models made the prediction
    arm: str | None = None


class ListOutcomeBody(msgspec.Struct, frozen=True):
    """A consenting household's trip against the list cached for it (the list hit rate)."""

    household: Name
    purchased_ms: int
    categories: int
    on_list: int
    listed: int
    basket_model_version: str | None = None
    experiment: str | None = None
    arm: str | None = None


InteractionKind = Literal[
    "list_viewed", "item_ticked", "suggestion_taken", "suggestion_declined", "route_asked", "offer_opened"
]


class InteractionBody(msgspec.Struct, frozen=True):
    """What a shopper did at the kiosk (with analytics consent), with what served its list."""

    household: Name
    kind: InteractionKind
    ts_ms: int
    subject: str | None = None
    basket_model_version: str | None = None
    experiment: str | None = None
    arm: str | None = None


class ExperimentEventBody(msgspec.Struct, frozen=True):
    """A step of an experiment at a store: started, advanced, held, rolled back, promoted, stopped, ended."""

    experiment: Name
    event: str
    ts_ms: int
    step: int
    traffic: float  # the challenger's share of the traffic after the event
    reason: str
    winner: str | None = None


# -- devices and alerts ---------------------------------------------------------------------------------


class AlertBody(msgspec.Struct, frozen=True):
    id: int
    kind: Name
    subject: Name
    severity: str
    state: str
    message: str
    opened_ms: int
    updated_ms: int
    resolved_ms: int | None = None


class DeviceStatusBody(msgspec.Struct, frozen=True):
    device: Name
    online: bool
    ts_ms: int


Body: TypeAlias = (
    ReadingBody
    | ReadingAggregate
    | PurchaseBody
    | ConsentBody
    | FeedbackBody
    | ErasureBody
    | PredictionOutcomeBody
    | ListOutcomeBody
    | InteractionBody
    | ExperimentEventBody
    | AlertBody
    | DeviceStatusBody
    | BundleReport
)

_DECODERS: dict[str, msgspec.json.Decoder[Body]] = {
    "reading": msgspec.json.Decoder(ReadingBody),
    "reading_aggregate": msgspec.json.Decoder(ReadingAggregate),
    "purchase": msgspec.json.Decoder(PurchaseBody),
    "consent": msgspec.json.Decoder(ConsentBody),
    "list_feedback": msgspec.json.Decoder(FeedbackBody),
    "erasure": msgspec.json.Decoder(ErasureBody),
    "prediction_outcome": msgspec.json.Decoder(PredictionOutcomeBody),
    "list_outcome": msgspec.json.Decoder(ListOutcomeBody),
    "interaction": msgspec.json.Decoder(InteractionBody),
    "experiment": msgspec.json.Decoder(ExperimentEventBody),
    "alert": msgspec.json.Decoder(AlertBody),
    "device_status": msgspec.json.Decoder(DeviceStatusBody),
    "bundle": msgspec.json.Decoder(BundleReport),
}
KINDS = frozenset(_DECODERS)
# What central's client calls a change entry of a page that is not a change (`sync.client.read_page`).
MALFORMED_KIND = "malformed_change"


class Refused(msgspec.Struct, frozen=True):
    """Why central cannot read a change (stored with it in ``quarantine``)."""

    reason: str


# Each body's own time, checked against TIME_RANGE_MS (a type lookup: this runs for every change).
_TIME_FIELD: dict[type, str] = {
    ShelfWeightBody: "ts_ms",
    ShelfEventBody: "ts_ms",
    FridgeTemperatureBody: "ts_ms",
    FootfallBody: "ts_ms",
    ReadingAggregate: "minute_ms",
    PurchaseBody: "ts_ms",
    ConsentBody: "ts_ms",
    FeedbackBody: "ts_ms",
    ErasureBody: "ts_ms",
    PredictionOutcomeBody: "scored_ms",
    ListOutcomeBody: "purchased_ms",
    InteractionBody: "ts_ms",
    ExperimentEventBody: "ts_ms",
    AlertBody: "updated_ms",
    DeviceStatusBody: "ts_ms",
}
_HOUSEHOLD_TYPES = frozenset(
    {
        PurchaseBody,
        ConsentBody,
        FeedbackBody,
        ErasureBody,
        PredictionOutcomeBody,
        ListOutcomeBody,
        InteractionBody,
    }
)


def decode_body(kind: str, body: bytes | msgspec.Raw) -> Body | Refused:
    """The body as its kind's struct, or why not."""
    decoder = _DECODERS.get(kind)
    if kind == MALFORMED_KIND:
        return Refused(f"change entry is malformed: {_entry_error(body)}")
    if decoder is None:
        return Refused(f"unknown change kind {kind[:40]!r}")
    try:
        decoded = decoder.decode(body)
    except msgspec.DecodeError as exc:
        return Refused(f"{kind} body does not match its kind: {exc}")
    field = _TIME_FIELD.get(type(decoded))
    ts = getattr(decoded, field) if field is not None else None
    if ts is not None and not TIME_RANGE_MS[0] <= ts < TIME_RANGE_MS[1]:
        return Refused(f"{kind} time {ts} ms is outside 2000-2100")
    return decoded


def time_of(body: Body) -> int:
    """A body's own time (ms): when what it records happened."""
    field = _TIME_FIELD.get(type(body))
    return int(getattr(body, field)) if field is not None else 0


def household_of(body: Body | Refused) -> str | None:
    """The household a change is about, if any (erasure finds every row of it at central)."""
    if type(body) in _HOUSEHOLD_TYPES:
        household: str | None = body.household  # type: ignore[union-attr]
        return household
    return None


def _entry_error(entry: bytes | msgspec.Raw) -> str:
    try:
        msgspec.json.decode(entry, type=Change)
    except msgspec.DecodeError as exc:
        return str(exc)
    return "unreadable"
