"""What central's analysis of an A/B test reads from PostgreSQL (`sync.central_experiments` answers with
it, `sync.central_rollout` decides with it): per household and arm, each metric over a window of trips
or outcomes at every store (the stores' `edge.experiments.tables`, in PostgreSQL), the pre-experiment
covariate for CUPED, the exposures and the weights each store follows; and the experiments published in
central's bundle directory."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from models.experiments.experiment import Direction, ExperimentData, MetricData
from models.experiments.rollout import challenger_weights
from models.experiments.spec import EXPERIMENT_FILE, HIGHER_IS_BETTER, Experiment, decode_experiment

DAY_MS = 86_400_000
PRE_PERIOD_MS = 56 * DAY_MS

# Per household and arm over the window (the store's `edge.experiments.tables`, in PostgreSQL).
_SINCE = "purchased >= to_timestamp($2 / 1000.0) AND purchased < to_timestamp($3 / 1000.0)"
_HOUSEHOLD_METRICS: dict[str, str] = {
    "list_hit_rate": "SELECT arm, household, sum(on_list)::float8 / sum(categories) FROM list_outcomes"  # noqa: S608
    f" WHERE experiment = $1 AND {_SINCE} AND categories > 0 GROUP BY arm, household",
    "thumbs_up_share": "SELECT arm, household, avg((vote > 0)::int)::float8 FROM list_feedback"
    " WHERE experiment = $1 AND ts_ms >= $2 AND ts_ms < $3 GROUP BY arm, household",
    "suggestion_acceptance": "SELECT arm, household, avg((kind = 'suggestion_taken')::int)::float8"
    " FROM customer_interactions WHERE experiment = $1 AND ts_ms >= $2 AND ts_ms < $3"
    " AND kind IN ('suggestion_taken', 'suggestion_declined') GROUP BY arm, household",
    "mae_days": "SELECT arm, household, avg(abs(actual_days - expected_days)) FROM prediction_outcomes"
    " WHERE experiment = $1 AND purchased_ms >= $2 AND purchased_ms < $3 AND expected_days IS NOT NULL"
    " GROUP BY arm, household",
    "brier_7d": "SELECT arm, household, avg(power(p7 - (actual_days <= 7)::int, 2)) FROM prediction_outcomes"
    " WHERE experiment = $1 AND purchased_ms >= $2 AND purchased_ms < $3 AND p7 IS NOT NULL"
    " GROUP BY arm, household",
    "log_loss_7d": "SELECT arm, household, avg(CASE WHEN actual_days <= 7"
    " THEN -ln(greatest(least(p7, 1 - 1e-6), 1e-6)) ELSE -ln(greatest(least(1 - p7, 1 - 1e-6), 1e-6)) END)"
    " FROM prediction_outcomes WHERE experiment = $1 AND purchased_ms >= $2 AND purchased_ms < $3"
    " AND p7 IS NOT NULL GROUP BY arm, household",
}
_PRE_HIT_RATE = (
    "SELECT household, sum(on_list)::float8 / sum(categories) FROM list_outcomes"
    " WHERE household = ANY($1::text[]) AND purchased >= to_timestamp($2 / 1000.0)"
    " AND purchased < to_timestamp($3 / 1000.0) AND categories > 0 GROUP BY household"
)


@dataclass(frozen=True, slots=True)
class PublishedExperiment:
    spec: Experiment
    version: int
    blob: Path


def newest_experiments(bundle_dir: Path) -> dict[str, PublishedExperiment]:
    """The newest published version of each experiment id (a newer bundle may carry another id)."""
    found: dict[str, PublishedExperiment] = {}
    kind_dir = bundle_dir / "experiment"
    if not kind_dir.is_dir():
        return found
    for version in sorted((int(v.name) for v in kind_dir.iterdir() if v.name.isdigit()), reverse=True):
        blob = kind_dir / str(version) / "bundle.tar.gz"
        try:
            with tarfile.open(blob, "r:gz") as archive:
                member = archive.extractfile(EXPERIMENT_FILE)
                raw = member.read() if member is not None else b""
            spec = decode_experiment(raw, f"{blob}: {EXPERIMENT_FILE}")
        except (OSError, KeyError, tarfile.TarError, ValueError):
            continue
        found.setdefault(spec.id, PublishedExperiment(spec, version, blob))
    return found


async def household_values(
    c: asyncpg.Connection, metric: str, spec: Experiment, window: tuple[int, int]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], ...]:
    rows = await c.fetch(_HOUSEHOLD_METRICS[metric], spec.id, *window)
    by_arm: dict[str, list[float]] = {a.key: [] for a in spec.arms}
    for arm, _household, value in rows:
        if arm in by_arm and value is not None:
            by_arm[arm].append(float(value))
    return tuple(np.asarray(by_arm[a.key], dtype=np.float64) for a in spec.arms)


async def experiment_data(c: asyncpg.Connection, spec: Experiment, started: int, now: int) -> ExperimentData:
    arms = tuple(a.key for a in spec.arms)
    window = (started, now + 1)

    async def metric(name: str) -> MetricData:
        direction = Direction.HIGHER_IS_BETTER if HIGHER_IS_BETTER[name] > 0 else Direction.LOWER_IS_BETTER
        if name != "list_hit_rate":
            return MetricData(name, direction, await household_values(c, name, spec, window))
        rows = await c.fetch(_HOUSEHOLD_METRICS[name], spec.id, *window)
        by_arm: dict[str, list[tuple[str, float]]] = {a: [] for a in arms}
        for arm, household, value in rows:
            if arm in by_arm and value is not None:
                by_arm[arm].append((household, float(value)))
        values = tuple(np.asarray([v for _, v in by_arm[a]], dtype=np.float64) for a in arms)
        households = [h for a in arms for h, _ in by_arm[a]]
        pre = dict(await c.fetch(_PRE_HIT_RATE, households, started - PRE_PERIOD_MS, started))
        if len(pre) < 2:
            return MetricData(name, direction, values)
        fill = float(np.mean([float(v) for v in pre.values()]))
        covariates = tuple(
            np.asarray([float(pre.get(h, fill)) for h, _ in by_arm[a]], dtype=np.float64) for a in arms
        )
        return MetricData(name, direction, values, covariates)

    primary = await metric(spec.primary_metric)
    secondary = tuple([await metric(m) for m in spec.secondary_metrics])
    assigned, weights = await _exposures(c, spec, window)
    return ExperimentData(
        experiment_id=spec.id,
        arms=arms,
        weights=weights,
        assigned=assigned,
        days_running=(now - started) / DAY_MS,
        primary=primary,
        secondary=secondary,
        min_n=spec.min_households_per_arm,
        min_days=float(spec.min_days),
    )


async def _exposures(
    c: asyncpg.Connection, spec: Experiment, window: tuple[int, int]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Households with a trip in each arm over the window (central sees no cached lists), and the weights
    they should follow: each store's own (its rollout step), weighted by its households."""
    arms = tuple(a.key for a in spec.arms)
    rows = await c.fetch(
        f"SELECT store, arm, count(DISTINCT household) FROM list_outcomes WHERE experiment = $1 AND {_SINCE}"  # noqa: S608 - fixed text
        " GROUP BY store, arm",
        spec.id,
        *window,
    )
    traffic = dict(
        await c.fetch(
            "SELECT DISTINCT ON (store) store, traffic FROM experiment_events WHERE experiment = $1"
            " AND event IN ('started', 'advanced') ORDER BY store, ts_ms DESC, seq DESC",
            spec.id,
        )
    )
    assigned = dict.fromkeys(arms, 0)
    expected = np.zeros(len(arms))
    per_store: dict[str, int] = {}
    for store, arm, n in rows:
        if arm in assigned:
            assigned[arm] += int(n)
            per_store[store] = per_store.get(store, 0) + int(n)
    for store, n in per_store.items():
        weights = (
            challenger_weights(float(traffic.get(store, 0.0)))
            if spec.rollout
            else tuple(a.weight for a in spec.arms)
        )
        expected += n * np.asarray(weights, dtype=np.float64)
    total = expected.sum()
    blended = tuple(float(w) for w in expected / total) if total > 0 else tuple([1 / len(arms)] * len(arms))
    return tuple(assigned[a] for a in arms), blended
