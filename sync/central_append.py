"""The warehouse's append-only tables: one row per change, keyed by the change's (stream, seq), written
with ``ON CONFLICT DO NOTHING`` (`sync.central_warehouse.PageWarehouse`). Each body type that lands in
one names its table, columns and how a change becomes a row (None: the change adds no row).

    list_feedback       a vote on a list (with the experiment and arm whose list it was)
    prediction_outcomes what became of a prediction (with the experiment and arm whose models made it)
    list_outcomes       a consenting household's trip against its list (the list hit rate)
    customer_interactions  what a shopper did at the kiosk (analytics consent), with its list's arm
    experiment_events   an experiment's steps at a store (started, advanced, rolled back, promoted, ...)
    bundle_reports      what a store did with a bundle (activated, refused, rolled back)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync.central_inserts import Columns
from sync.change_bodies import (
    Body,
    ExperimentEventBody,
    FeedbackBody,
    InteractionBody,
    ListOutcomeBody,
    PredictionOutcomeBody,
)
from sync.schemas import BundleReport

Row = tuple[Any, ...]
_REPORTED = {"activated", "refused", "rolled_back"}  # bundle outcomes worth a row (not "downloaded" etc.)


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class AppendTable:
    table: str
    columns: Columns
    row: Callable[[str, int, int, int, Any], Row | None]  # (store, stream, seq, created_ms, body)


def _feedback(store: str, stream: int, seq: int, _created: int, b: FeedbackBody) -> Row:
    vote = 1 if b.vote == "up" else -1
    return (store, stream, seq, b.ts_ms, b.household, b.category, vote, b.model_version, b.experiment, b.arm)


def _outcome(store: str, stream: int, seq: int, _created: int, b: PredictionOutcomeBody) -> Row:
    return (store, stream, seq, utc(b.scored_ms), b.household, b.category, b.model_version,
            b.basket_model_version, b.expected_days, b.p7, b.basket_probability, b.urgency, b.list_rank,
            b.purchased_ms, b.actual_days, b.experiment, b.arm)  # fmt: skip


def _list_outcome(store: str, stream: int, seq: int, _created: int, b: ListOutcomeBody) -> Row:
    return (store, stream, seq, utc(b.purchased_ms), b.household, b.categories, b.on_list, b.listed,
            b.basket_model_version, b.experiment, b.arm)  # fmt: skip


def _interaction(store: str, stream: int, seq: int, _created: int, b: InteractionBody) -> Row:
    return (
        store,
        stream,
        seq,
        b.ts_ms,
        b.household,
        b.kind,
        b.subject,
        b.basket_model_version,
        b.experiment,
        b.arm,
    )


def _experiment_event(store: str, stream: int, seq: int, _created: int, b: ExperimentEventBody) -> Row:
    return (store, stream, seq, b.ts_ms, b.experiment, b.event, b.step, b.traffic, b.reason, b.winner)


def _bundle(store: str, stream: int, seq: int, created: int, b: BundleReport) -> Row | None:
    if b.outcome not in _REPORTED:
        return None
    return (store, stream, seq, created, b.kind, b.version, b.outcome, b.reason)


_KEY: Columns = (("store", "text"), ("stream", "int4"), ("seq", "int8"))
APPEND_TABLES: dict[type, AppendTable] = {
    FeedbackBody: AppendTable(
        "list_feedback",
        (
            *_KEY,
            ("ts_ms", "int8"),
            ("household", "text"),
            ("category", "text"),
            ("vote", "int2"),
            ("model_version", "text"),
            ("experiment", "text"),
            ("arm", "text"),
        ),
        _feedback,
    ),
    PredictionOutcomeBody: AppendTable(
        "prediction_outcomes",
        (
            *_KEY,
            ("scored", "timestamptz"),
            ("household", "text"),
            ("category", "text"),
            ("model_version", "text"),
            ("basket_model_version", "text"),
            ("expected_days", "float8"),
            ("p7", "float8"),
            ("basket_probability", "float8"),
            ("urgency", "text"),
            ("list_rank", "int4"),
            ("purchased_ms", "int8"),
            ("actual_days", "float8"),
            ("experiment", "text"),
            ("arm", "text"),
        ),
        _outcome,
    ),
    ListOutcomeBody: AppendTable(
        "list_outcomes",
        (
            *_KEY,
            ("purchased", "timestamptz"),
            ("household", "text"),
            ("categories", "int4"),
            ("on_list", "int4"),
            ("listed", "int4"),
            ("basket_model_version", "text"),
            ("experiment", "text"),
            ("arm", "text"),
        ),
        _list_outcome,
    ),
    InteractionBody: AppendTable(
        "customer_interactions",
        (
            *_KEY,
            ("ts_ms", "int8"),
            ("household", "text"),
            ("kind", "text"),
            ("subject", "text"),
            ("basket_model_version", "text"),
            ("experiment", "text"),
            ("arm", "text"),
        ),
        _interaction,
    ),
    ExperimentEventBody: AppendTable(
        "experiment_events",
        (
            *_KEY,
            ("ts_ms", "int8"),
            ("experiment", "text"),
            ("event", "text"),
            ("step", "int4"),
            ("traffic", "float8"),
            ("reason", "text"),
            ("winner", "text"),
        ),
        _experiment_event,
    ),
    BundleReport: AppendTable(
        "bundle_reports",
        (
            *_KEY,
            ("created_ms", "int8"),
            ("kind", "text"),
            ("version", "int8"),
            ("outcome", "text"),
            ("reason", "text"),
        ),
        _bundle,
    ),
}


def append_row(store: str, stream: int, seq: int, created_ms: int, body: Body) -> tuple[str, Row] | None:
    """The (table, row) a change adds to an append-only table, if it adds one."""
    found = APPEND_TABLES.get(type(body))
    if found is None:
        return None
    row = found.row(store, stream, seq, created_ms, body)
    return None if row is None else (found.table, row)
