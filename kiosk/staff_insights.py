"""What staff see of customers at a kiosk (the "Customers" tab of the staff screen): the store's segments
(`GET /api/v1/analytics/customer-segments`) and, for the household a shopper has opened at this kiosk,
its insights (`GET /api/v1/customers/{id}/insights`, analytics consent) aggregated and worded: the
reasoning of each part, never the purchase history. The structs read only what is shown; the daemon's
other fields are ignored.
"""

from __future__ import annotations

import msgspec

from kiosk.strings import DEFAULT_CURRENCY, money

__all__ = ["Insights", "Segments", "insights_text", "segment_rows"]


class Part(msgspec.Struct, frozen=True):
    reasoning: str
    confidence: float = 0.0


class SegmentPart(Part, frozen=True):
    name: str | None = None


class ChurnPart(Part, frozen=True):
    band: str | None = None


class ValuePart(Part, frozen=True):
    clv: float | None = None
    horizon_days: int = 0


class Economic(msgspec.Struct, frozen=True):
    average_basket_value: Part
    price_sensitivity: Part
    promotion_responsiveness: Part
    spending_consistency: Part


class Habit(msgspec.Struct, frozen=True):
    category: str
    purchases: int
    reasoning: str


class Habits(Part, frozen=True):
    categories: list[Habit] = []


class Insights(msgspec.Struct, frozen=True):
    customer: str
    based_on: str
    segment: SegmentPart
    churn_risk: ChurnPart
    lifetime_value: ValuePart
    economic_profile: Economic
    consumption: Habits
    opportunities: Part


class SegmentRow(msgspec.Struct, frozen=True):
    name: str
    households: int | None
    mean_clv: float | None
    churn_share: float | None
    suppressed: bool = False


class Segments(msgspec.Struct, frozen=True):
    available: bool
    segments: list[SegmentRow]
    reasoning: str = ""


def segment_rows(segments: Segments, currency: str = DEFAULT_CURRENCY) -> list[tuple[str, str, str, str]]:
    """(segment, households, mean CLV, churn share) per segment; suppressed counts stay hidden."""
    rows = []
    for s in segments.segments:
        if s.suppressed or s.households is None:
            rows.append((s.name, "fewer than 10", "-", "-"))
            continue
        clv = "-" if s.mean_clv is None else money(s.mean_clv, currency)
        churn = "-" if s.churn_share is None else f"{s.churn_share:.0%}"
        rows.append((s.name, str(s.households), clv, churn))
    return rows


def insights_text(i: Insights, currency: str = DEFAULT_CURRENCY, habits: int = 4) -> str:
    """The shopper's insights in a few worded lines (each part's own reasoning)."""
    value = i.lifetime_value
    clv = "unknown" if value.clv is None else f"{money(value.clv, currency)} over {value.horizon_days} days"
    lines = [
        f"Segment: {i.segment.name or 'none yet'}. {i.segment.reasoning}",
        f"Churn risk: {i.churn_risk.band or 'unknown'}. {i.churn_risk.reasoning}",
        f"Lifetime value: {clv}. {value.reasoning}",
        f"Basket: {i.economic_profile.average_basket_value.reasoning}",
        f"Prices: {i.economic_profile.price_sensitivity.reasoning}",
        f"Promotions: {i.economic_profile.promotion_responsiveness.reasoning}",
        f"Spending: {i.economic_profile.spending_consistency.reasoning}",
    ]
    top = sorted(i.consumption.categories, key=lambda h: -h.purchases)[:habits]
    lines += [f"Habit: {h.reasoning}" for h in top]
    lines.append(f"Opportunities: {i.opportunities.reasoning}")
    lines.append(f"({i.based_on}; worded from purchases, no purchase history is shown.)")
    return "\n".join(lines)
