"""A household's insights document (docs/customers.md, "Insights"): one msgspec structure, each part with
a ``confidence`` (0..1: how much data the figure rests on) and a ``reasoning`` in words.

Everything comes from the household's own purchases in the store's history window and the store's
anonymous figures (`edge.customers.insights_data`): consumption patterns per category (from the same
features the prediction models use, `models.features`), an economic profile from purchases only, churn
risk and lifetime value (`edge.customers.scores`), the segment, and opportunities (categories its peers
buy that it does not; offers that fit). Raw history is never part of it: only aggregates.

What the product declines to infer is listed in `NOT_INFERRED` and ships in every document
(``not_inferred``); `economics` builds the economic profile, this module the rest.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np

from edge.customers.insights_data import InsightInputs
from edge.customers.insights_economics import EconomicProfile, economic_profile
from edge.customers.offers import Offer, Promotion, active
from edge.customers.spend_forecast import BTYD
from models.customers.segments import Segment
from models.features import F, pair_features, summarise
from models.history import make_history

MS_PER_DAY = 86_400_000
MAX_CATEGORIES = 15
MAX_OPPORTUNITIES = 5
OPPORTUNITY_SHARE = 0.3  # a category bought by at least this share of the peers
WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


class NotInferred(msgspec.Struct, frozen=True):
    inference: str
    why: str


NOT_INFERRED: tuple[NotInferred, ...] = (
    NotInferred("personality", "not inferred: a psychological profile is intrusive profiling (GDPR Art. 22)"),
    NotInferred("emotional_state", "not inferred: moods read from baskets are intrusive and unreliable"),
    NotInferred("health_conditions", "not inferred: special-category data (GDPR Art. 9), never derived"),
    NotInferred("income", "not inferred: an economic status guess is profiling the shopper did not ask for"),
    NotInferred("family_composition", "not inferred: who lives in a home is not the store's to guess"),
)


class CategoryPattern(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    purchases: int  # days the household bought it in the window
    average_interval_days: float | None
    interval_sd_days: float | None
    interval_variance_days2: float | None
    trend: str | None  # "steady", "speeding up", "slowing down"
    seasonality: str | None  # a weekday habit; annual seasonality needs two years of history
    days_since_last: float | None
    confidence: float
    reasoning: str


class ConsumptionPatterns(msgspec.Struct, frozen=True, kw_only=True):
    categories: list[CategoryPattern]
    confidence: float
    reasoning: str


class ChurnRisk(msgspec.Struct, frozen=True, kw_only=True):
    band: str | None  # active, watch, at_risk, lapsed
    p_alive: float | None
    p_no_trip_56d: float | None
    confidence: float
    reasoning: str


class LifetimeValue(msgspec.Struct, frozen=True, kw_only=True):
    clv: float | None
    horizon_days: int
    expected_trips_90d: float | None
    expected_spend_90d: float | None
    confidence: float
    reasoning: str


class SegmentPart(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None
    name: str | None
    description: str | None
    confidence: float
    reasoning: str


class Opportunity(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    peer_share: float  # share of the peer group that bought it
    reasoning: str


class Opportunities(msgspec.Struct, frozen=True, kw_only=True):
    categories: list[Opportunity]
    offers: list[Offer]
    confidence: float
    reasoning: str


class CustomerInsights(msgspec.Struct, frozen=True, kw_only=True):
    customer: str
    computed_ms: int
    history_days: int
    based_on: str
    model_version: str | None
    consumption: ConsumptionPatterns
    economic_profile: EconomicProfile
    churn_risk: ChurnRisk
    lifetime_value: LifetimeValue
    segment: SegmentPart
    opportunities: Opportunities
    not_inferred: list[NotInferred]


def build_insights(
    data: InsightInputs,
    *,
    segment: Segment | None,
    promotions: tuple[Promotion, ...],
    tz: dt.tzinfo,
    clv_horizon_days: int,
    currency: str,
    spend_source: str = BTYD,
) -> CustomerInsights:
    """The document (CPU work on one household's lines: run it off the event loop); ``spend_source``
    says what produced the 90-day spend (`edge.customers.spend_forecast.forecast_description`)."""
    trips = len({(ts + data.offset_ms) // MS_PER_DAY for _, ts, _ in data.baskets})
    consumption = consumption_patterns(data)
    bought = {p.category for p in consumption.categories} | {line.category for line in data.lines}
    return CustomerInsights(
        customer=data.household,
        computed_ms=data.now_ms,
        history_days=data.history_days,
        based_on=(
            f"purchases only: {trips} trips and {len(data.lines)} basket lines in the last "
            f"{data.history_days} days, against the store's anonymous figures"
        ),
        model_version=data.score.model_version if data.score else None,
        consumption=consumption,
        economic_profile=economic_profile(data, currency),
        churn_risk=churn_risk(data, trips),
        lifetime_value=lifetime_value(data, trips, clv_horizon_days, currency, spend_source),
        segment=segment_part(data, segment),
        opportunities=opportunities(data, bought, consumption, segment, promotions, tz),
        not_inferred=list(NOT_INFERRED),
    )


def _weight(count: int, full_at: int) -> float:
    """Confidence from the amount of data: 0 with none, rising to 0.95 at ``full_at`` observations."""
    return round(min(0.95, count / full_at), 2) if count > 0 else 0.0


def consumption_patterns(data: InsightInputs) -> ConsumptionPatterns:
    if not data.lines:
        return ConsumptionPatterns(categories=[], confidence=0.0, reasoning="no purchases in the window")
    categories = tuple(sorted({line.category for line in data.lines}))
    code = {c: i for i, c in enumerate(categories)}
    local = np.asarray([line.ts_ms + data.offset_ms for line in data.lines], dtype=np.int64)
    history = make_history(
        (data.household,),
        categories,
        {
            "household": np.zeros(local.size, dtype=np.int32),
            "category": np.asarray([code[line.category] for line in data.lines], dtype=np.int32),
            "day": local // MS_PER_DAY,
            "minute": (local % MS_PER_DAY) // 60_000,
            "basket": np.asarray([line.purchase for line in data.lines], dtype=np.int64),
            "qty": np.asarray([line.qty for line in data.lines], dtype=np.float32),
            "price": np.asarray([line.unit_price for line in data.lines], dtype=np.float32),
            "promo": np.zeros(local.size, dtype=bool),
        },
        origin="insights",
    )
    today = int((data.now_ms + data.offset_ms) // MS_PER_DAY)
    stats = summarise(history, today + 1)
    cats = np.arange(len(categories))
    x = pair_features(stats, np.zeros(cats.size, dtype=np.int64), cats, float(today)).astype(np.float64)
    pairs = stats.pair_index(np.zeros(cats.size, dtype=np.int64), cats)
    patterns = [
        _pattern(categories[c], x[c], stats.dow_counts[pairs[c]], data.history_days)
        for c in np.argsort(-x[:, F["n_purchases"]], kind="stable")
        if pairs[c] >= 0
    ][:MAX_CATEGORIES]
    regular = sum(1 for p in patterns if p.average_interval_days is not None)
    return ConsumptionPatterns(
        categories=patterns,
        confidence=_weight(regular, 5),
        reasoning=(
            f"{len(categories)} categories bought, {regular} of them on two days or more (an interval needs"
            " two purchases); intervals, their spread and trend are the prediction models' own features"
        ),
    )


def _pattern(category: str, row: np.ndarray, dow: np.ndarray, history_days: int) -> CategoryPattern:
    n = int(row[F["n_purchases"]])
    mean, cv, trend_ratio = (float(row[F[k]]) for k in ("interval_mean", "interval_cv", "trend"))
    recency = float(row[F["recency_days"]])
    sd = mean * cv if np.isfinite(mean) and np.isfinite(cv) else None
    trend = None
    if np.isfinite(trend_ratio):
        trend = "speeding up" if trend_ratio < 0.8 else "slowing down" if trend_ratio > 1.25 else "steady"
    habit = None
    concentration = float(row[F["dow_concentration"]])
    if n >= 4 and np.isfinite(concentration) and concentration >= 0.5:
        habit = f"weekly: mostly on {WEEKDAYS[int(np.argmax(dow))]} ({concentration:.0%} of purchases)"
    words = [f"bought on {n} day{'s' if n != 1 else ''} in the last {history_days} days"]
    if np.isfinite(mean):
        words.append(f"about every {mean:.0f} days" + (f" (give or take {sd:.0f})" if sd is not None else ""))
    if trend is not None:
        words.append(f"the last gaps are {trend if trend != 'steady' else 'as usual'}")
    if habit is not None:
        words.append(habit)
    words.append("annual seasonality needs two years of history" if history_days < 730 else "")
    return CategoryPattern(
        category=category,
        purchases=n,
        average_interval_days=round(mean, 1) if np.isfinite(mean) else None,
        interval_sd_days=round(sd, 1) if sd is not None else None,
        interval_variance_days2=round(sd * sd, 1) if sd is not None else None,
        trend=trend,
        seasonality=habit,
        days_since_last=round(recency, 1) if np.isfinite(recency) else None,
        confidence=_weight(n - 1, 8),
        reasoning="; ".join(w for w in words if w),
    )


def churn_risk(data: InsightInputs, trips: int) -> ChurnRisk:
    s = data.score
    if s is None:
        return ChurnRisk(
            band=None, p_alive=None, p_no_trip_56d=None, confidence=0.0,
            reasoning="not scored: the served model set has no customer models, or no trip in the window",
        )  # fmt: skip
    return ChurnRisk(
        band=s.churn_band,
        p_alive=s.p_alive,
        p_no_trip_56d=s.p_churn,
        confidence=_weight(trips, 12),
        reasoning=(
            f"{s.churn_reason}; the trip model puts the chance that the household still shops here at "
            f"{s.p_alive:.0%} and of no trip in the next 8 weeks at {s.p_churn:.0%} ({s.model_version})"
        ),
    )


def lifetime_value(
    data: InsightInputs, trips: int, horizon_days: int, currency: str, spend_source: str = BTYD
) -> LifetimeValue:
    """CLV and the 90-day figures; the reasoning says what produced the 90-day spend (``spend_source``,
    `edge.customers.spend_forecast.forecast_description`) and that CLV is trips x spend per trip."""
    s = data.score
    if s is None:
        return LifetimeValue(
            clv=None, horizon_days=horizon_days, expected_trips_90d=None, expected_spend_90d=None,
            confidence=0.0, reasoning="not scored: no customer models, or no trip in the window",
        )  # fmt: skip
    return LifetimeValue(
        clv=s.clv,
        horizon_days=s.clv_horizon_days,
        expected_trips_90d=s.expected_trips_90d,
        expected_spend_90d=s.expected_spend_90d,
        confidence=round(_weight(trips, 12) * 0.8, 2),  # spend per trip adds its own uncertainty
        reasoning=(
            f"about {s.expected_trips_90d:.1f} trips and {s.expected_spend_90d:.2f} {currency} expected in the"
            f" next 90 days (the spend from {spend_source}); {s.clv:.2f} {currency} over"
            f" {s.clv_horizon_days} days from {BTYD}, discounted 10% a year"
        ),
    )


def segment_part(data: InsightInputs, segment: Segment | None) -> SegmentPart:
    if segment is None:
        why = "no segment model in the served model set" if data.score else "not scored yet"
        if data.score is not None and data.score.segment is not None:
            why = f"segment {data.score.segment!r} is not in the served segment model"
        return SegmentPart(id=None, name=None, description=None, confidence=0.0, reasoning=why)
    return SegmentPart(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        confidence=_weight(len(data.baskets), 12),
        reasoning="the nearest segment centre to the household's trips, spend, basket size, category"
        " breadth, time-of-day and weekday habit and trend (the segment model's features)",
    )


def opportunities(
    data: InsightInputs,
    bought: set[str],
    consumption: ConsumptionPatterns,
    segment: Segment | None,
    promotions: tuple[Promotion, ...],
    tz: dt.tzinfo,
) -> Opportunities:
    peers = f"segment {segment.name!r}" if data.peer_group == "segment" and segment else "this store"
    found = [
        Opportunity(
            category=c,
            peer_share=round(share, 2),
            reasoning=f"bought by {share:.0%} of the households of {peers}; not by this one in the window",
        )
        for c, share in data.peer_categories
        if c not in bought and share >= OPPORTUNITY_SHARE
    ][:MAX_OPPORTUNITIES]
    now = dt.datetime.fromtimestamp(data.now_ms / 1000, tz)
    running = active(promotions, now)
    usual = [p.category for p in consumption.categories[:5]]
    wanted = {o.category: "your peers buy it" for o in found} | {c: f"you often buy {c}" for c in usual}
    offers = [
        Offer(p.id, p.category, p.title, p.detail, p.discount_pct, _end_ms(p, tz), wanted[p.category])
        for p in running
        if p.category in wanted
    ]
    if data.peers < 10:
        why = f"fewer than 10 households with analytics consent in {peers}: no comparison is shown"
    else:
        why = (
            f"categories at least {OPPORTUNITY_SHARE:.0%} of {data.peers} households of {peers} bought,"
            " and running promotions in them or in the household's usual categories"
        )
    return Opportunities(categories=found, offers=offers, confidence=_weight(data.peers, 100), reasoning=why)


def _end_ms(p: Promotion, tz: dt.tzinfo) -> int:
    end = dt.datetime.combine(p.ends + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return int(end.timestamp() * 1000)
