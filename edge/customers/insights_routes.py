"""Insights over HTTP (docs/customers.md, "Insights"): per household, with ``analytics`` consent only.

    GET  /api/v1/customers/{id}/insights         the household's document (cached; built when missing)
    POST /api/v1/customers/{id}/analyze          rescore the household now and rebuild the document
    GET  /api/v1/analytics/customer-segments     staff: size, mean CLV and churn share per segment

Who may call them is `edge.http.access`: staff, or a verified shopper session for its own household.
Every read of a household's insights writes an ``access_log`` row (`AuditedReads`), committed alongside
the read. Without analytics consent the answer is 403 and nothing is computed or kept. The document
is `edge.customers.insights_document.CustomerInsights`; it is cached in ``customer_insights`` until the
household buys again, its consent changes or the nightly scores are renewed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
from aiohttp import web

from edge.config import Config
from edge.customers import score_tables
from edge.customers.insights_data import MIN_PEERS, InsightInputs, promotion_windows, read_inputs
from edge.customers.insights_document import CustomerInsights, build_insights
from edge.customers.offers import Promotion
from edge.customers.routes import AuditedReads, promotions_source
from edge.customers.scores import HORIZON_DAYS, CustomerModels, CustomerScoring
from edge.customers.spend_forecast import forecast_description
from edge.http.responses import Handler, error_response, json_response
from edge.live_file import LiveFile
from edge.store.db import ReadThread
from edge.store.history_refresh import HistoryCache
from edge.store.writer import StoreWriter
from models.customers.segments import Segment

NO_CONSENT = "consent: the household has not consented to analytics (insights need the analytics purpose)"
CHURNING = ("at_risk", "lapsed")
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class InsightSettings:
    timezone: dt.tzinfo
    currency: str
    history_days: int


class SegmentSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    households: int | None  # None: fewer than `MIN_PEERS` (suppressed)
    mean_clv: float | None
    churn_share: float | None  # share in the at_risk or lapsed band
    suppressed: bool


class SegmentsView(msgspec.Struct, frozen=True, kw_only=True):
    available: bool
    segments_version: str | None
    clv_horizon_days: int
    min_households: int
    households_scored: int | None  # None when a segment is suppressed (it could be told by difference)
    segments: list[SegmentSummary]
    reasoning: str


class InsightsApi:
    def __init__(
        self,
        scoring: CustomerScoring,
        audit: AuditedReads,
        writer: StoreWriter,
        promotions: LiveFile[tuple[Promotion, ...]],
        settings: InsightSettings,
        reads: ReadThread,
    ) -> None:
        self._scoring = scoring
        self._audit = audit
        self._writer = writer
        self._promotions = promotions
        self._settings = settings
        self._reads = reads

    @property
    def scoring(self) -> CustomerScoring:
        return self._scoring

    async def close(self) -> None:
        await self._audit.close()
        await self._reads.close()
        await self._scoring.close()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/customers/{id}/insights", self.get_insights),
            ("POST", "/api/v1/customers/{id}/analyze", self.analyze),
            ("GET", "/api/v1/analytics/customer-segments", self.get_segments),
        ]

    async def get_insights(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]

        def read(c: sqlite3.Connection) -> tuple[bool, bytes | None]:
            return score_tables.has_analytics(c, household), score_tables.cached_document(c, household)

        allowed, cached = await self._audit.read(request, household, read)
        if not allowed:
            return error_response(403, NO_CONSENT)
        if cached is not None:
            return web.Response(body=cached, content_type="application/json")
        return await self._respond(household, rescore=False)

    async def analyze(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        allowed = await self._audit.read(
            request, household, lambda c: score_tables.has_analytics(c, household)
        )
        if not allowed:
            return error_response(403, NO_CONSENT)
        return await self._respond(household, rescore=True)

    async def _respond(self, household: str, *, rescore: bool) -> web.Response:
        document = await self.insights(household, rescore=rescore)
        if document is None:  # consent withdrawn while it was built: nothing was kept
            return error_response(403, NO_CONSENT)
        return json_response(document)

    async def insights(self, household: str, *, rescore: bool) -> CustomerInsights | None:
        """Build (and cache) the household's document; with ``rescore`` its scores are renewed first,
        otherwise only when it has none. None: no analytics consent at write time (nothing kept)."""
        models = await self._scoring.models()
        if models is not None:
            has_score = await self._reads.run(lambda c: score_tables.score_of(c, household) is not None)
            if rescore or not has_score:
                await self._scoring.rescore(household)
        now_ms = int(time.time() * 1000)
        offset = dt.datetime.fromtimestamp(now_ms / 1000, self._settings.timezone).utcoffset()
        offset_ms = int(offset.total_seconds() * 1000) if offset else 0
        promotions = await asyncio.to_thread(self._promotions.current)
        windows = promotion_windows(promotions, self._settings.timezone)
        data = await self._reads.run(
            lambda c: read_inputs(
                c,
                household,
                now_ms=now_ms,
                offset_ms=offset_ms,
                history_days=self._settings.history_days,
                promotions=windows,
            )
        )

        def build() -> tuple[CustomerInsights, bytes]:
            document = build_insights(
                data,
                segment=_segment(models, data),
                promotions=promotions,
                tz=self._settings.timezone,
                clv_horizon_days=self._scoring.clv_horizon_days,
                currency=self._settings.currency,
                spend_source=_spend_source(models, data),
            )
            return document, _encode.encode(document)

        document, body = await asyncio.get_running_loop().run_in_executor(None, build)
        kept = await self._writer.run_job(
            lambda c: score_tables.store_document(c, household, body, now_ms), urgent=True
        )
        return document if kept else None

    async def get_segments(self, request: web.Request) -> web.Response:
        del request  # staff only (edge.http.access): aggregates, no household is read
        models = await self._scoring.models()
        horizon = self._scoring.clv_horizon_days
        return json_response(await self._reads.run(lambda c: segment_summaries(c, models, horizon)))


def _segment(models: CustomerModels | None, data: InsightInputs) -> Segment | None:
    if models is None or models.segments is None or data.score is None or data.score.segment is None:
        return None
    return next((s for s in models.segments.segments if s.id == data.score.segment), None)


def _spend_source(models: CustomerModels | None, data: InsightInputs) -> str:
    """What produced the household's 90-day spend: the served set's forecast if it scored the row."""
    scored_by_served = (
        models is not None and data.score is not None and data.score.model_version == models.version
    )
    forecast = models.params.spend_forecast if models is not None and scored_by_served else None
    return forecast_description(forecast, HORIZON_DAYS)


def segment_summaries(
    conn: sqlite3.Connection, models: CustomerModels | None, clv_horizon_days: int
) -> SegmentsView:
    """Each segment's size, mean CLV and churn share over the scored households; a segment with fewer
    than `MIN_PEERS` households shows no figures (and then no total either)."""
    if models is None or models.segments is None:
        return SegmentsView(
            available=False, segments_version=None, clv_horizon_days=clv_horizon_days, min_households=MIN_PEERS,
            households_scored=None, segments=[],
            reasoning="no segment model in the served model set (customers/segments.json)",
        )  # fmt: skip
    version = models.segments_version
    marks = ",".join("?" * len(CHURNING))
    rows = {
        str(segment): (int(n), float(clv), float(churn))
        for segment, n, clv, churn in conn.execute(
            "SELECT segment, count(*), avg(clv), avg(churn_band IN"  # noqa: S608 - placeholders only
            f" ({marks})) FROM customer_scores WHERE segments_version = ? AND clv_horizon_days = ?"
            " GROUP BY segment",
            (*CHURNING, version, clv_horizon_days),
        )
    }
    out: list[SegmentSummary] = []
    for segment in models.segments.segments:
        n, clv, churn = rows.get(segment.id, (0, 0.0, 0.0))
        shown = n >= MIN_PEERS
        out.append(
            SegmentSummary(
                id=segment.id,
                name=segment.name,
                description=segment.description,
                households=n if shown else None,
                mean_clv=round(clv, 2) if shown else None,
                churn_share=round(churn, 3) if shown else None,
                suppressed=not shown,
            )
        )
    suppressed = any(s.suppressed for s in out)
    return SegmentsView(
        available=True,
        segments_version=version,
        clv_horizon_days=clv_horizon_days,
        min_households=MIN_PEERS,
        households_scored=None if suppressed else sum(s.households or 0 for s in out),
        segments=out,
        reasoning=(
            "households with analytics consent, scored by the nightly rescore; segments with fewer than"
            f" {MIN_PEERS} households show no figures so that no one is singled out"
        ),
    )


def insights_api(
    config: Config,
    db_path: Path,
    writer: StoreWriter,
    model_dir: Callable[[], Path],
    promotion_paths: Sequence[Path],
    history: HistoryCache | None = None,
) -> InsightsApi:
    """The customer scores and the insights routes as the daemon wires them (`edge.daemon`; ``history``:
    the packed purchase history it shares with the prediction service)."""
    m = config.models
    scoring = CustomerScoring(
        db_path,
        writer,
        model_dir,
        timezone=config.tz,
        history_days=m.history_days,
        clv_horizon_days=m.clv_horizon_days,
        batch_households=m.batch_households,
        batch_workers=m.batch_workers,
        history=history,
    )
    return InsightsApi(
        scoring,
        AuditedReads(db_path, writer, "sqlite-insights"),
        writer,
        promotions_source(promotion_paths),
        InsightSettings(config.tz, config.store.currency, m.history_days),
        ReadThread(db_path, "insights-reader"),
    )
