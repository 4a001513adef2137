"""The staff routes of A/B tests on the store (docs/experiments.md, "APIs"):

    GET  /api/v1/ab-tests                          every experiment this store has run, newest first
    GET  /api/v1/ab-tests/{test}/results           the analysis of the current step (?scope=whole: all of it)
    GET  /api/v1/ab-tests/{test}/metrics           per arm: each metric's mean and CI, scoring cost, weighted score
    POST /api/v1/ab-tests/{test}/stop              stop it: everyone back to the store's own models
    GET  /api/v1/ab-tests/assignments/{id}         a household's arm (consent-gated, audited)
    GET  /api/v1/ab-tests/performance/comparison   per model version: outcomes and list hit rate (?days=90)
    GET  /api/v1/analytics/performance             per category and version: within +-1/+-7 days, calibration

Experiments are created at central, which signs the bundle that brings the challenger's models.
"""

from __future__ import annotations

import sqlite3
import time

import msgspec
import numpy as np
from aiohttp import web

from edge.customers.tables import has_consent
from edge.experiments import tables
from edge.experiments.planner import ExperimentState, arm_index
from edge.experiments.service import ExperimentService, results_window
from edge.experiments.views import (
    ArmMetrics,
    AssignmentView,
    ExperimentView,
    MetricSummary,
    MetricsView,
    experiment_view,
)
from edge.http.access import log_access
from edge.http.responses import Handler, error_response, json_response, read_json
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter
from models.experiments.analysis import summarise, weighted_score
from models.experiments.spec import HIGHER_IS_BETTER, decode_experiment
from sync.model_performance import (
    VersionComparison,
    basket_versions_sql,
    by_category_sql,
    category_rows,
    comparison,
    purchase_versions_sql,
    window_start,
)

HOUSEHOLD_ID_MAX = 128


def since_ms(request: web.Request, now_ms: int) -> int | web.Response:
    """``?days=N``: the start of the window, or the 400 to send."""
    try:
        return window_start(request.query.get("days"), now_ms)
    except ValueError as exc:
        return error_response(400, str(exc))


class StopRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: str = "stopped by staff"


class ExperimentRoutes:
    def __init__(self, service: ExperimentService, reads: ReadThread, writer: StoreWriter) -> None:
        self._service = service
        self._reads = reads
        self._writer = writer

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/ab-tests", self.list_tests),
            ("GET", "/api/v1/ab-tests/assignments/{id}", self.assignment),
            ("GET", "/api/v1/ab-tests/{test}/results", self.results),
            ("GET", "/api/v1/ab-tests/{test}/metrics", self.metrics),
            ("POST", "/api/v1/ab-tests/{test}/stop", self.stop),
            ("GET", "/api/v1/ab-tests/performance/comparison", self.comparison),
            ("GET", "/api/v1/analytics/performance", self.performance),
        ]

    async def comparison(self, request: web.Request) -> web.Response:
        since = since_ms(request, self._service.now_ms())
        if isinstance(since, web.Response):
            return since

        def q(c: sqlite3.Connection) -> VersionComparison:
            purchase = c.execute(purchase_versions_sql("?"), (since,)).fetchall()
            basket = c.execute(basket_versions_sql("purchased_ms >= ?"), (since,)).fetchall()
            return comparison(since, purchase, basket)

        return json_response(await self._reads.run(q))

    async def performance(self, request: web.Request) -> web.Response:
        since = since_ms(request, self._service.now_ms())
        if isinstance(since, web.Response):
            return since
        rows = await self._reads.run(lambda c: c.execute(by_category_sql("?"), (since,)).fetchall())
        return json_response(category_rows(rows))

    async def list_tests(self, request: web.Request) -> web.Response:
        rows = await self._reads.run(tables.experiment_rows)
        views: list[ExperimentView] = [experiment_view(r) for r in rows]
        return json_response(views)

    async def results(self, request: web.Request) -> web.Response:
        scope = request.query.get("scope", "step")
        if scope not in ("step", "whole"):
            return error_response(400, "scope: expected step or whole")
        result = await self._service.results(request.match_info["test"], whole=scope == "whole")
        if result is None:
            return error_response(404, f"no experiment {request.match_info['test']!r} at this store")
        return json_response(result)

    async def metrics(self, request: web.Request) -> web.Response:
        test = request.match_info["test"]
        now = self._service.now_ms()
        found = await self._reads.run(lambda c: _metrics(c, test, now))
        if found is None:
            return error_response(404, f"no experiment {test!r} at this store")
        return json_response(found)

    async def stop(self, request: web.Request) -> web.Response:
        body = await read_json(request, StopRequest, '{"reason": "..."}')
        if isinstance(body, web.Response):
            return body
        test = request.match_info["test"]
        if not await self._service.stop(test, body.reason[:500]):
            return error_response(409, f"{test!r} is not the running experiment at this store")
        row = await self._reads.run(lambda c: tables.experiment_row(c, test))
        assert row is not None
        return json_response(experiment_view(row))

    async def assignment(self, request: web.Request) -> web.Response:
        household = request.match_info["id"][:HOUSEHOLD_ID_MAX]
        now = int(time.time() * 1000)
        await self._writer.run_job(
            lambda c: log_access(c, household, "GET /api/v1/ab-tests/assignments/{id}", "staff", now),
            urgent=True,
        )
        consent, cached = await self._reads.run(
            lambda c: (has_consent(c, household), tables.served_by(c, household))
        )
        live = self._service.planner.live
        if not consent:
            return json_response(
                AssignmentView(household, None, None, "no personalisation consent: in no experiment")
            )
        if live is None:
            return json_response(AssignmentView(household, None, None, "no experiment at this store"))
        if live.state is not ExperimentState.RUNNING:
            why = f"experiment {live.spec.id} is {live.state.value}"
            return json_response(AssignmentView(household, live.spec.id, None, why))
        index = arm_index(live, household)
        if index is None:
            why = f"outside the experiment's coverage ({live.spec.coverage:.0%}): the store's own models"
            return json_response(AssignmentView(household, live.spec.id, None, why))
        arm = live.spec.arms[index].key
        served = "its cached list is from this arm" if cached[1] == arm else "rescored into this arm soon"
        return json_response(AssignmentView(household, live.spec.id, arm, served))


def _metrics(c: sqlite3.Connection, test: str, now: int) -> MetricsView | None:
    row = tables.experiment_row(c, test)
    if row is None:
        return None
    spec = decode_experiment(row.definition.encode(), f"experiments[{row.id}]")
    arms = tuple(a.key for a in spec.arms)
    window = results_window(spec, row, now)
    summaries: dict[str, dict[str, MetricSummary]] = {a: {} for a in arms}
    for name in (*spec.metrics, *spec.guardrails):
        if name in ("scoring_ms", "scoring_errors"):
            found = tables.guardrail_metric(c, name, spec.id, arms, window)
        else:
            found = tables.household_metric(c, name, spec.id, arms, window)
        for arm, values in zip(arms, found.values, strict=True):
            s = summarise(values)
            higher = HIGHER_IS_BETTER[name] > 0
            summaries[arm][name] = MetricSummary(name, s.n, s.mean, s.ci_low, s.ci_high, higher)
    confidence = dict(
        c.execute(
            "SELECT arm, avg(confidence) FROM predictions WHERE experiment = ? AND confidence IS NOT NULL GROUP BY arm",
            (spec.id,),
        ).fetchall()
    )
    out = []
    for arm in arms:
        mine = summaries[arm]
        success = mine.get("list_hit_rate") or mine.get("thumbs_up_share")
        time_ms = mine.get("scoring_ms")
        score = weighted_score(
            _finite(success.mean if success else 0.0),
            _finite(float(confidence.get(arm) or 0.0)),
            _finite(time_ms.mean if time_ms else 0.0),
            0.0,
        )
        out.append(ArmMetrics(arm, list(mine.values()), score))
    return MetricsView(spec.id, spec.primary_metric, window[0], window[1], out)


def _finite(value: float) -> float:
    return value if np.isfinite(value) else 0.0
