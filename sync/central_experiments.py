"""Central's view of the chain's A/B tests (admin token; docs/experiments.md, "At central"): the same
questions the stores answer, over every store's outcomes, which gives the power a single store lacks.

    GET /api/v1/ab-tests                         every experiment the stores reported, with each store's state
    GET /api/v1/ab-tests/{test}/results          the analysis over all stores (`models.experiments.experiment`)
    GET /api/v1/ab-tests/{test}/metrics          per arm and store: households and the metrics' means and CIs
    GET /api/v1/ab-tests/assignments/{id}        the household's arm at each store (each at its own step)
    GET /api/v1/ab-tests/performance/comparison  per model version, over every store (?days=90)
    GET /api/v1/analytics/performance            per category and next-purchase version, over every store
    POST /api/v1/ab-tests/{test}/stop            publish it again ending now (needs the signing key)

An experiment's definition is read from the newest published `experiment` bundle that carries it. The
scoring guardrails (CPU time, errors) stay on the stores, which decide on them; central analyses the
outcome metrics.
"""

from __future__ import annotations

import asyncio
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import asyncpg
import msgspec
import numpy as np
from aiohttp import web

from models.experiments.analysis import summarise
from models.experiments.bucketing import assign
from models.experiments.experiment import Direction, ExperimentData, MetricData, analyse
from models.experiments.rollout import challenger_weights
from models.experiments.spec import EXPERIMENT_FILE, HIGHER_IS_BETTER, Experiment, decode_experiment
from sync.model_performance import (
    basket_versions_sql,
    by_category_sql,
    category_rows,
    comparison,
    purchase_versions_sql,
    window_start,
)

T = TypeVar("T")
RunDb = Callable[[Callable[[asyncpg.Connection], Awaitable[T]]], Awaitable[T]]
DAY_MS = 86_400_000
PRE_PERIOD_MS = 56 * DAY_MS
_json = msgspec.json.Encoder()

# Per household and arm over the window (the store's `edge.experiments.tables`, in PostgreSQL).
_SINCE = "purchased >= to_timestamp($2 / 1000.0) AND purchased < to_timestamp($3 / 1000.0)"
_HOUSEHOLD_METRICS: dict[str, str] = {
    "list_hit_rate": "SELECT arm, household, sum(on_list)::float8 / sum(categories) FROM list_outcomes"  # noqa: S608
    f" WHERE experiment = $1 AND {_SINCE} AND categories > 0 GROUP BY arm, household",
    "thumbs_up_share": "SELECT arm, household, avg((vote > 0)::int)::float8 FROM list_feedback"
    " WHERE experiment = $1 AND ts_ms >= $2 AND ts_ms < $3 GROUP BY arm, household",
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


class StoreState(msgspec.Struct, frozen=True):
    store: str
    event: str  # the store's last step: started, advanced, rolled_back, promoted, stopped, ended
    step: int
    traffic: float
    ts_ms: int
    reason: str
    winner: str | None


class CentralExperimentView(msgspec.Struct, frozen=True):
    id: str
    first_seen_ms: int
    stores: list[StoreState]
    definition: Experiment | None  # None: no published bundle carries it any more


class StoreAssignment(msgspec.Struct, frozen=True):
    store: str
    arm: str | None


class CentralAssignmentView(msgspec.Struct, frozen=True):
    household: str
    experiment: str
    stores: list[StoreAssignment]


class ArmStoreMetric(msgspec.Struct, frozen=True):
    arm: str
    metric: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


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


class Stopper(Protocol):
    async def stop(self, experiment_id: str, reason: str, now_ms: int) -> int | None: ...


class StopRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = "stopped by an administrator"


class CentralExperimentRoutes:
    def __init__(
        self,
        run: RunDb[Any],
        bundle_dir: Path,
        authorised: Callable[[web.Request], bool],
        stopper: Stopper | None = None,
    ) -> None:
        self._run = run
        self._bundle_dir = bundle_dir
        self._authorised = authorised
        self._stopper = stopper

    def add_to(self, app: web.Application) -> None:
        for path, handler in (
            ("/api/v1/ab-tests", self.list_tests),
            ("/api/v1/ab-tests/performance/comparison", self.comparison),
            ("/api/v1/analytics/performance", self.performance),
            ("/api/v1/ab-tests/assignments/{id}", self.assignment),
            ("/api/v1/ab-tests/{test}/results", self.results),
            ("/api/v1/ab-tests/{test}/metrics", self.metrics),
        ):
            app.router.add_get(path, self._guarded(handler))
        app.router.add_post("/api/v1/ab-tests/{test}/stop", self._guarded(self.stop))

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            if not self._authorised(request):
                return _error(401, "missing or wrong admin token")
            try:
                return await handler(request)
            except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                return _error(503, f"central's database is unavailable: {type(exc).__name__}")

        return guarded

    async def _specs(self) -> dict[str, Experiment]:
        found = await asyncio.to_thread(newest_experiments, self._bundle_dir)
        return {key: p.spec for key, p in found.items()}

    async def list_tests(self, _request: web.Request) -> web.Response:
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT DISTINCT ON (experiment, store) experiment, store, event, step, traffic, ts_ms, reason,"
                " winner, min(ts_ms) OVER (PARTITION BY experiment) FROM experiment_events"
                " ORDER BY experiment, store, ts_ms DESC, seq DESC"
            )
        )
        specs = await self._specs()
        views: dict[str, CentralExperimentView] = {}
        for r in rows:
            state = StoreState(r[1], r[2], r[3], r[4], r[5], r[6], r[7])
            held = views.get(r[0])
            stores = [*held.stores, state] if held else [state]
            views[r[0]] = CentralExperimentView(r[0], int(r[8]), stores, specs.get(r[0]))
        return _ok(sorted(views.values(), key=lambda v: -v.first_seen_ms))

    async def _experiment(self, test: str, whole: bool = True) -> tuple[Experiment, int] | web.Response:
        """The experiment and the start of the window: its first event, or (not ``whole``, with a rollout)
        the newest change of step at any store, so every store serves constant weights in the window."""
        spec = (await self._specs()).get(test)
        if spec is None:
            return _error(404, f"no published experiment bundle carries {test!r}")
        sql = (
            "SELECT min(ts_ms) FROM experiment_events WHERE experiment = $1"
            if whole or not spec.rollout
            else "SELECT max(ts_ms) FROM experiment_events WHERE experiment = $1 AND event IN ('started', 'advanced')"
        )
        first = await self._run(lambda c: c.fetchval(sql, test))
        return spec, int(first) if first is not None else spec.start_ms

    async def results(self, request: web.Request) -> web.Response:
        scope = request.query.get("scope", "step")
        if scope not in ("step", "whole"):
            return _error(400, "scope: expected step or whole")
        found = await self._experiment(request.match_info["test"], whole=scope == "whole")
        if isinstance(found, web.Response):
            return found
        spec, started = found
        now = int(time.time() * 1000)
        data = await self._run(lambda c: experiment_data(c, spec, started, now))
        return _ok(await asyncio.to_thread(analyse, data))

    async def metrics(self, request: web.Request) -> web.Response:
        found = await self._experiment(request.match_info["test"])
        if isinstance(found, web.Response):
            return found
        spec, started = found
        now = int(time.time() * 1000)
        window = (started, now + 1)

        async def q(c: asyncpg.Connection) -> list[ArmStoreMetric]:
            out: list[ArmStoreMetric] = []
            for name in spec.metrics:
                values = await _household_values(c, name, spec, window)
                for arm, array in zip((a.key for a in spec.arms), values, strict=True):
                    s = summarise(array)
                    out.append(ArmStoreMetric(arm, name, s.n, s.mean, s.ci_low, s.ci_high))
            return out

        return _ok(await self._run(q))

    async def assignment(self, request: web.Request) -> web.Response:
        household = request.match_info["id"][:128]
        test = request.query.get("test", "")
        specs = await self._specs()
        spec = specs.get(test) if test else next(iter(specs.values()), None)
        if spec is None:
            return _error(404, "no published experiment (name one with ?test=)")
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT DISTINCT ON (store) store, event, traffic FROM experiment_events WHERE experiment = $1"
                " ORDER BY store, ts_ms DESC, seq DESC",
                spec.id,
            )
        )
        stores = []
        for store, event, traffic in rows:
            arm = None
            if event in ("started", "advanced"):
                weights = challenger_weights(traffic) if spec.rollout else tuple(a.weight for a in spec.arms)
                index = assign(spec.id, household, weights, spec.coverage)
                arm = None if index is None else spec.arms[index].key
            stores.append(StoreAssignment(store, arm))
        return _ok(CentralAssignmentView(household, spec.id, stores))

    async def stop(self, request: web.Request) -> web.Response:
        """Publish the experiment again ending now; every store ends it at its next bundle poll."""
        if self._stopper is None:
            return _error(409, "central has no signing key ([central] signing_key_file): it cannot publish")
        try:
            body = msgspec.json.decode(await request.read() or b"{}", type=StopRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, f"body: {exc}")
        version = await self._stopper.stop(request.match_info["test"], body.reason, int(time.time() * 1000))
        if version is None:
            return _error(404, f"no published experiment bundle carries {request.match_info['test']!r}")
        return _ok({"experiment": request.match_info["test"], "bundle_version": version, "state": "stopping"})

    async def comparison(self, request: web.Request) -> web.Response:
        since = _since(request)
        if isinstance(since, web.Response):
            return since

        async def q(c: asyncpg.Connection) -> Any:
            purchase = await c.fetch(purchase_versions_sql("$1"), since)
            basket = await c.fetch(basket_versions_sql("purchased >= to_timestamp($1 / 1000.0)"), since)
            return comparison(since, purchase, basket)

        return _ok(await self._run(q))

    async def performance(self, request: web.Request) -> web.Response:
        since = _since(request)
        if isinstance(since, web.Response):
            return since
        rows = await self._run(lambda c: c.fetch(by_category_sql("$1"), since))
        return _ok(category_rows(rows))


async def _household_values(
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
            return MetricData(name, direction, await _household_values(c, name, spec, window))
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


def _since(request: web.Request) -> int | web.Response:
    try:
        return window_start(request.query.get("days"), int(time.time() * 1000))
    except ValueError as exc:
        return _error(400, str(exc))


def _ok(value: object) -> web.Response:
    return web.Response(body=_json.encode(value), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.Response(body=_json.encode({"error": message}), status=status, content_type="application/json")
