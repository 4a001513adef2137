"""The experiments' tables (schema v12): each experiment's state at this store, its events, and the
per-household metric values its analysis reads.

Every function takes a connection: readers on a read-only connection off the event loop, writers inside
the single writer's transaction. A metric's unit is the household (its values over the window are
averaged first), except the scoring guardrails, whose unit is one scored step of an arm.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from models.experiments.spec import Experiment, encode_experiment
from sync.change_bodies import ExperimentEventBody
from sync.outbox import OutboxEntry, append

FloatArray = npt.NDArray[np.float64]
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    id: str
    definition: str
    bundle_version: int | None
    state: str
    step: int
    step_started_ms: int
    started_ms: int
    updated_ms: int
    reason: str
    winner: str | None


_COLUMNS = (
    "id, definition, bundle_version, state, step, step_started_ms, started_ms, updated_ms, reason, winner"
)


def experiment_row(conn: sqlite3.Connection, experiment_id: str) -> ExperimentRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM experiments WHERE id = ?", (experiment_id,)).fetchone()  # noqa: S608
    return None if row is None else ExperimentRow(*row)


def experiment_rows(conn: sqlite3.Connection) -> list[ExperimentRow]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM experiments ORDER BY started_ms DESC, id").fetchall()  # noqa: S608
    return [ExperimentRow(*r) for r in rows]


def begin_experiment(
    conn: sqlite3.Connection, spec: Experiment, bundle_version: int | None, state: str, now_ms: int
) -> ExperimentRow:
    """The experiment's row, created (state ``state``, step 0) the first time the store sees it; an
    experiment already known keeps its state (a restart, or the same bundle again), and takes the
    definition of a newer bundle (central moved its end, say)."""
    found = experiment_row(conn, spec.id)
    if found is not None and (bundle_version is None or found.bundle_version == bundle_version):
        return found
    if found is not None:
        conn.execute(
            "UPDATE experiments SET definition = ?, bundle_version = ? WHERE id = ?",
            (encode_experiment(spec).decode(), bundle_version, spec.id),
        )
        row = experiment_row(conn, spec.id)
        assert row is not None
        return row
    conn.execute(
        f"INSERT INTO experiments ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?, ?, '', NULL)",  # noqa: S608
        (spec.id, encode_experiment(spec).decode(), bundle_version, state, now_ms, now_ms, now_ms),
    )
    row = experiment_row(conn, spec.id)
    assert row is not None
    return row


def update_experiment(
    conn: sqlite3.Connection,
    experiment_id: str,
    *,
    state: str,
    step: int,
    step_started_ms: int,
    reason: str,
    winner: str | None,
    now_ms: int,
) -> None:
    conn.execute(
        "UPDATE experiments SET state = ?, step = ?, step_started_ms = ?, reason = ?, winner = ?, updated_ms = ?"
        " WHERE id = ?",
        (state, step, step_started_ms, reason, winner, now_ms, experiment_id),
    )


def record_event(conn: sqlite3.Connection, event: ExperimentEventBody) -> None:
    """An experiment's step, for central (outbox kind ``experiment``)."""
    append(conn, event.ts_ms, [OutboxEntry("experiment", event.experiment, _json.encode(event).decode())])


# -- what the analysis reads -------------------------------------------------------------------------------

# Per household: the metric's value over the window (households with no value are left out).
_HOUSEHOLD_METRICS: dict[str, str] = {
    "list_hit_rate": (
        "SELECT arm, household, sum(on_list) * 1.0 / sum(categories) FROM list_outcomes"
        " WHERE experiment = ? AND purchased_ms >= ? AND purchased_ms < ? AND categories > 0"
        " GROUP BY arm, household"
    ),
    "thumbs_up_share": (
        "SELECT arm, household, avg(vote > 0) FROM list_feedback"
        " WHERE experiment = ? AND ts_ms >= ? AND ts_ms < ? GROUP BY arm, household"
    ),
    "suggestion_acceptance": (
        "SELECT arm, household, avg(kind = 'suggestion_taken') FROM customer_interactions"
        " WHERE experiment = ? AND ts_ms >= ? AND ts_ms < ?"
        " AND kind IN ('suggestion_taken', 'suggestion_declined') GROUP BY arm, household"
    ),
    "mae_days": (
        "SELECT arm, household, avg(abs(actual_days - expected_days)) FROM prediction_outcomes"
        " WHERE experiment = ? AND purchased_ms >= ? AND purchased_ms < ? AND expected_days IS NOT NULL"
        " GROUP BY arm, household"
    ),
    # Among predictions followed by a purchase of the category (the store sees no other outcome yet):
    # label 1 when it came within 7 days of the prediction's origin.
    "brier_7d": (
        "SELECT arm, household, avg((p7 - (actual_days <= 7)) * (p7 - (actual_days <= 7)))"
        " FROM prediction_outcomes WHERE experiment = ? AND purchased_ms >= ? AND purchased_ms < ?"
        " AND p7 IS NOT NULL GROUP BY arm, household"
    ),
    "log_loss_7d": (
        "SELECT arm, household, avg(CASE WHEN actual_days <= 7"
        " THEN -ln(max(min(p7, 1 - 1e-6), 1e-6)) ELSE -ln(max(min(1 - p7, 1 - 1e-6), 1e-6)) END)"
        " FROM prediction_outcomes WHERE experiment = ? AND purchased_ms >= ? AND purchased_ms < ?"
        " AND p7 IS NOT NULL GROUP BY arm, household"
    ),
}
# The same metric before the experiment, per household, for CUPED (any arm or none).
_PRE_PERIOD: dict[str, str] = {
    "list_hit_rate": (
        "SELECT household, sum(on_list) * 1.0 / sum(categories) FROM list_outcomes"
        " WHERE purchased_ms < ? AND purchased_ms >= ? AND categories > 0 GROUP BY household"
    ),
}
# Per scored step of an arm: CPU milliseconds per household, and the share of households that failed.
_GUARDRAILS: dict[str, str] = {
    "scoring_ms": "cpu_ms / households",
    "scoring_errors": "errors * 1.0 / households",
}


@dataclass(frozen=True, slots=True)
class ArmValues:
    """One metric's values per arm (in the order asked), and each value's pre-period covariate (None:
    no CUPED for this metric)."""

    values: tuple[FloatArray, ...]
    covariates: tuple[FloatArray, ...] | None


def household_metric(
    conn: sqlite3.Connection,
    metric: str,
    experiment_id: str,
    arms: tuple[str, ...],
    window: tuple[int, int],
    pre_from_ms: int | None = None,
) -> ArmValues:
    """Per-household values of ``metric`` in each arm over ``window`` (ms, half-open); with
    ``pre_from_ms``, each household's value in [pre_from_ms, experiment start) as its covariate (the
    pooled mean for a household with none), when the metric has a pre-period form."""
    rows = conn.execute(_HOUSEHOLD_METRICS[metric], (experiment_id, *window)).fetchall()
    by_arm: dict[str, list[tuple[str, float]]] = {a: [] for a in arms}
    for arm, household, value in rows:
        if arm in by_arm and value is not None:
            by_arm[arm].append((str(household), float(value)))
    values = tuple(np.asarray([v for _, v in by_arm[a]], dtype=np.float64) for a in arms)
    pre_sql = _PRE_PERIOD.get(metric)
    if pre_from_ms is None or pre_sql is None:
        return ArmValues(values, None)
    start = _started_ms(conn, experiment_id)
    pre = {str(h): float(v) for h, v in conn.execute(pre_sql, (start, pre_from_ms)) if v is not None}
    if len(pre) < 2:
        return ArmValues(values, None)
    fill = float(np.mean(list(pre.values())))
    covariates = tuple(np.asarray([pre.get(h, fill) for h, _ in by_arm[a]], dtype=np.float64) for a in arms)
    return ArmValues(values, covariates)


def guardrail_metric(
    conn: sqlite3.Connection, metric: str, experiment_id: str, arms: tuple[str, ...], window: tuple[int, int]
) -> ArmValues:
    expression = _GUARDRAILS[metric]
    values = []
    for arm in arms:
        rows = conn.execute(
            f"SELECT {expression} FROM experiment_scoring"  # noqa: S608 - a fixed expression
            " WHERE experiment = ? AND arm = ? AND ts_ms >= ? AND ts_ms < ? AND households > 0",
            (experiment_id, arm, *window),
        ).fetchall()
        values.append(np.asarray([float(v) for (v,) in rows], dtype=np.float64))
    return ArmValues(tuple(values), None)


def assigned_counts(conn: sqlite3.Connection, experiment_id: str, arms: tuple[str, ...]) -> tuple[int, ...]:
    """Households whose cached list each arm serves now (the exposures the SRM check compares with the
    weights)."""
    counts = dict(
        conn.execute(
            "SELECT arm, count(DISTINCT household) FROM predictions WHERE experiment = ? GROUP BY arm",
            (experiment_id,),
        ).fetchall()
    )
    return tuple(int(counts.get(a, 0)) for a in arms)


def served_by(conn: sqlite3.Connection, household: str) -> tuple[str | None, str | None, str | None]:
    """(experiment, arm, next-basket model version) of the household's cached list, if any."""
    row = conn.execute(
        "SELECT experiment, arm, basket_model_version FROM predictions WHERE household = ? LIMIT 1",
        (household,),
    ).fetchone()
    return (None, None, None) if row is None else (row[0], row[1], row[2])


def _started_ms(conn: sqlite3.Connection, experiment_id: str) -> int:
    row = conn.execute("SELECT started_ms FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
    return 0 if row is None else int(row[0])
