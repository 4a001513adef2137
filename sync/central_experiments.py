"""Central's view of the chain's A/B tests (admin token; docs/experiments.md, "At central"): the same
questions the stores answer, over every store's outcomes, which gives the power a single store lacks.

    GET /api/v1/ab-tests                         every experiment the stores reported, with each store's state
    GET /api/v1/ab-tests/{test}/results          the analysis over all stores (`models.experiments.experiment`)
    GET /api/v1/ab-tests/{test}/metrics          per arm and store: households and the metrics' means and CIs
    GET /api/v1/ab-tests/assignments/{id}        the household's arm at each store (each at its own step)
    GET /api/v1/ab-tests/performance/comparison  per model version, over every store (?days=90)
    GET /api/v1/analytics/performance            per category and next-purchase version, over every store
    POST /api/v1/ab-tests                        publish a new experiment (needs the signing key)
    POST /api/v1/ab-tests/{test}/stop            publish it again ending now (needs the signing key)

An experiment's definition is read from the newest published `experiment` bundle that carries it. The
scoring guardrails (CPU time, errors) stay on the stores, which decide on them; central analyses the
outcome metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import asyncpg
import msgspec
from aiohttp import web

from models.experiments.analysis import summarise
from models.experiments.bucketing import assign
from models.experiments.experiment import analyse
from models.experiments.rollout import challenger_weights
from models.experiments.spec import Experiment, decode_experiment
from sync.central_experiment_data import experiment_data, household_values, newest_experiments
from sync.central_pool import DB_ERRORS, RunDb
from sync.model_performance import (
    basket_versions_sql,
    by_category_sql,
    category_rows,
    comparison,
    purchase_versions_sql,
    window_start,
)

DAY_MS = 86_400_000
PRE_PERIOD_MS = 56 * DAY_MS
_json = msgspec.json.Encoder()


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


class ArmMetric(msgspec.Struct, frozen=True):
    arm: str
    metric: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


class Publisher(Protocol):
    async def create(self, spec: Experiment, candidate: Path | None) -> int: ...
    async def stop(self, experiment_id: str, reason: str, now_ms: int) -> int | None: ...


CandidateName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class CreateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    experiment: msgspec.Raw  # an Experiment (models/experiments/spec.py), checked as the stores check it
    candidate: CandidateName | None = None  # a folder of [central] candidates_dir: the challenger's models


class StopRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = "stopped by an administrator"


class CentralExperimentRoutes:
    def __init__(
        self,
        run: RunDb[Any],
        bundle_dir: Path,
        authorised: Callable[[web.Request], bool],
        publisher: Publisher | None = None,
        candidates_dir: Path | None = None,
    ) -> None:
        self._run = run
        self._bundle_dir = bundle_dir
        self._authorised = authorised
        self._publisher = publisher
        self._candidates = candidates_dir

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
        app.router.add_post("/api/v1/ab-tests", self._guarded(self.create))

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            if not self._authorised(request):
                return _error(401, "missing or wrong admin token")
            try:
                return await handler(request)
            except DB_ERRORS as exc:
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

        async def q(c: asyncpg.Connection) -> list[ArmMetric]:
            out: list[ArmMetric] = []
            for name in spec.metrics:
                values = await household_values(c, name, spec, window)
                for arm, array in zip((a.key for a in spec.arms), values, strict=True):
                    s = summarise(array)
                    out.append(ArmMetric(arm, name, s.n, s.mean, s.ci_low, s.ci_high))
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

    async def create(self, request: web.Request) -> web.Response:
        """Publish a new experiment, its challenger's models from a candidate (central signs it)."""
        if self._publisher is None:
            return _error(409, "central has no signing key ([central] signing_key_file): it cannot publish")
        try:
            body = msgspec.json.decode(await request.read(), type=CreateRequest)
            spec = decode_experiment(bytes(body.experiment), "experiment")
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, f"body: {exc}")
        candidate = None
        if body.candidate is not None and self._candidates is not None:
            candidate = self._candidates / body.candidate
            if not candidate.is_dir():
                return _error(400, f"candidate: no folder {body.candidate!r} in [central] candidates_dir")
        try:
            version = await self._publisher.create(spec, candidate)
        except ValueError as exc:
            return _error(400, str(exc))
        return _ok({"experiment": spec.id, "bundle_version": version, "state": "published"}, 201)

    async def stop(self, request: web.Request) -> web.Response:
        """Publish the experiment again ending now; every store ends it at its next bundle poll."""
        if self._publisher is None:
            return _error(409, "central has no signing key ([central] signing_key_file): it cannot publish")
        try:
            body = msgspec.json.decode(await request.read() or b"{}", type=StopRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, f"body: {exc}")
        version = await self._publisher.stop(request.match_info["test"], body.reason, int(time.time() * 1000))
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


def _since(request: web.Request) -> int | web.Response:
    try:
        return window_start(request.query.get("days"), int(time.time() * 1000))
    except ValueError as exc:
        return _error(400, str(exc))


def json_reply(value: object, status: int = 200) -> web.Response:
    """A JSON response of central's admin routes (experiments, retraining)."""
    return web.Response(body=_json.encode(value), status=status, content_type="application/json")


def _ok(value: object, status: int = 200) -> web.Response:
    return json_reply(value, status)


def _error(status: int, message: str) -> web.Response:
    return json_reply({"error": message}, status)


__all__ = ["CentralExperimentRoutes", "RunDb", "json_reply"]  # RunDb: sync.central_pool's, named here too
