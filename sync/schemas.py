"""Wire formats of the sync protocol (docs/sync.md has examples of each), in one place.

Up: the changes feed (`ChangesPage` of `Change`s) and acks (`AckRequest` -> `AckResponse`); errors are an
`ErrorBody`. Down: signed bundle manifests (`BundleManifest`, listed in a `BundleList`) and the erasure
feed (`ErasureFeed` of `ErasureEntry`s). Outbox bodies that sync itself writes: `ReadingAggregate`
(compaction) and `BundleReport` (activation or refusal).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Version = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
BundleKind = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


# -- up: the changes feed ---------------------------------------------------------------------------


class Change(msgspec.Struct, frozen=True):
    """One outbox row. ``body`` is the change's own JSON, passed through untouched."""

    seq: int
    created_ms: int
    kind: str
    entity: str
    body: msgspec.Raw


class ChangesPage(msgspec.Struct, frozen=True):
    """``GET /sync/v1/changes`` answer. ``next`` is the cursor for the following request (the last seq in
    the page, or ``after`` when the page is empty); ``more`` says whether rows beyond ``next`` exist now.
    ``head`` is the newest seq the store has issued and ``acked`` the store's durable ack cursor."""

    store: str
    feed: str
    changes: list[Change]
    next: int
    more: bool
    head: int
    acked: int


class AckRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /sync/v1/ack``: central has committed every change with ``seq <= through``."""

    through: Seq
    feed: str | None = None


class AckResponse(msgspec.Struct, frozen=True):
    acked: int  # the store's ack cursor after this request (never lower than before)
    moved: bool  # False when ``through`` was at or behind the cursor already (a replayed ack)
    feed: str


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    error: str  # stable code: bad_request, feed_mismatch, cursor_ahead, cursor_gone, ack_ahead, ...
    message: str
    feed: str | None = None
    head: int | None = None
    acked: int | None = None


# -- sync's own outbox bodies -------------------------------------------------------------------------

ReadingType = Literal["shelf_weight", "fridge_temperature", "shelf_event", "footfall"]


class ReadingAggregate(msgspec.Struct, frozen=True, omit_defaults=True):
    """One device's raw readings of one minute (by device time), folded into one row by compaction.

    Everything is additive so two aggregates of the same device-minute (compaction runs in chunks) merge
    by summing ``n``/``sum``/counters and taking min/max. ``replaces`` lists the seqs of the raw rows this
    aggregate stands for: central drops any of those it already holds (see docs/sync.md, "Compaction").
    """

    type: ReadingType
    device: str
    subject: str  # shelf, fridge unit or zone
    minute_ms: int  # start of the minute, device time
    n: int  # raw readings folded in
    first_ts_ms: int
    last_ts_ms: int
    replaces: list[int]
    # gauges (shelf_weight: grams, fridge_temperature: celsius)
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    last: float | None = None
    # counters
    picks: int | None = None
    puts: int | None = None
    entered: int | None = None
    exited: int | None = None
    interval_s: float | None = None


BundleOutcome = Literal["activated", "refused", "rolled_back"]


class BundleReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """Outbox body of kind ``bundle``: what the store did with a bundle from central."""

    kind: str
    version: int
    sha256: str
    outcome: BundleOutcome
    reason: str | None = None
    detail: str | None = None


# -- down: bundles -----------------------------------------------------------------------------------


class BundleManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A signed description of one bundle. The Ed25519 ``signature`` (hex) covers kind, version, sha256,
    size and created_ms (`sync.bundle_signing.signed_bytes`); ``blob`` is where to fetch it and is not signed:
    the blob is checked against ``sha256`` and ``size`` whatever served it."""

    kind: BundleKind
    version: Version
    sha256: Sha256Hex
    size: Annotated[int, msgspec.Meta(ge=1)]
    created_ms: int
    signature: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{128}$")]
    blob: str = ""
    notes: str = ""


class BundleList(msgspec.Struct, frozen=True):
    """``GET /central/v1/bundles/latest``: the newest bundle of each kind."""

    bundles: list[BundleManifest]


# -- down: erasures ----------------------------------------------------------------------------------

ErasureId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class ErasureEntry(msgspec.Struct, frozen=True):
    """One "forget me" anywhere in the chain, as central recorded it. ``id`` is the feed's cursor;
    ``requested_ms`` is when the shopper asked (the origin store's clock)."""

    id: ErasureId
    household: str
    requested_ms: int


class ErasureFeed(msgspec.Struct, frozen=True):
    """``GET /central/v1/erasures?store=ID&after=N&limit=M``: the erasures with ``id > after`` in id order.
    ``next`` is the cursor for the following request (the last id in the page, or ``after`` when the page
    is empty); ``more`` says whether entries beyond ``next`` exist now."""

    erasures: list[ErasureEntry]
    next: Seq
    more: bool


# -- status views ------------------------------------------------------------------------------------


class ActiveBundleView(msgspec.Struct, frozen=True):
    kind: str
    version: int
    sha256: str
    activated_ms: int | None


class BundleEventView(msgspec.Struct, frozen=True):
    at_ms: int
    kind: str
    version: int
    sha256: str
    outcome: str
    reason: str | None


class SyncStatusView(msgspec.Struct, frozen=True):
    """``GET /sync/v1/status`` and ``GET /api/v1/sync``: how far behind central is."""

    store: str
    feed: str
    head: int
    acked: int
    acked_ms: int | None
    pending_rows: int
    pending_bytes: int
    oldest_pending_ms: int | None
    oldest_pending_age_s: float | None
    last_ack_age_s: float | None
    compacted_rows: int
    aggregates_written: int
    over_bound: bool
    bundles: list[ActiveBundleView]
    bundle_events: list[BundleEventView]


class CentralStoreView(msgspec.Struct, frozen=True):
    """One store in central's ``GET /central/v1/status``."""

    store: str
    url: str
    state: str  # in_sync, catching_up, unreachable, diverged, never
    feed: str | None
    cursor: int
    head: int
    behind: int  # head - cursor: changes the store has that central has not committed
    changes: int  # changes central holds for this store
    last_pull_ms: int | None
    last_applied_ms: int | None
    lag_s: float | None  # now - created_ms of the newest change central applied
    last_error: str | None
    gaps: int
    bundles: dict[str, int]


class CentralStatusView(msgspec.Struct, frozen=True):
    stores: list[CentralStoreView]
