"""The economic profile of an insights document, from purchases only (docs/customers.md, "Insights"):
price sensitivity, brand loyalty (when the catalogue allows: it records no brand, so it says so),
product loyalty, promotion responsiveness, average basket value and spending consistency. Each is a
`Measure` with a value, a level in words, a confidence and the reasoning; nothing here estimates what a
household earns or who lives in it."""

from __future__ import annotations

from collections import Counter, defaultdict

import msgspec
import numpy as np

from edge.customers.insights_data import MS_PER_DAY, InsightInputs, Line

PERIOD_DAYS = 28  # spending consistency: spend per 4-week period


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    value: float | None
    level: str | None
    confidence: float
    reasoning: str


class EconomicProfile(msgspec.Struct, frozen=True, kw_only=True):
    price_sensitivity: Measure
    brand_loyalty: Measure
    product_loyalty: Measure
    promotion_responsiveness: Measure
    average_basket_value: Measure
    spending_consistency: Measure


def _weight(count: int, full_at: int) -> float:
    return round(min(0.95, count / full_at), 2) if count > 0 else 0.0


def _unknown(reasoning: str) -> Measure:
    return Measure(value=None, level=None, confidence=0.0, reasoning=reasoning)


def economic_profile(data: InsightInputs, currency: str) -> EconomicProfile:
    return EconomicProfile(
        price_sensitivity=price_sensitivity(data),
        brand_loyalty=_unknown(
            "the store's catalogue records no brand (a product is a SKU, a name and a category), so brand"
            " loyalty cannot be measured; product loyalty is the nearest measurable figure"
            if not data.catalogue_has_brand
            else "brands are in the catalogue but not yet used here; product loyalty is measured instead"
        ),
        product_loyalty=product_loyalty(data.lines, data.skus_per_category),
        promotion_responsiveness=promotion_responsiveness(data),
        average_basket_value=basket_value(data, currency),
        spending_consistency=spending_consistency(data),
    )


def price_sensitivity(data: InsightInputs) -> Measure:
    """Paid / what the same quantities cost at the store's mean unit price of their categories, over
    categories with a choice (two SKUs or more). Below 1: the household picks the cheaper items."""
    paid = reference = 0.0
    lines = 0
    for line in data.lines:
        mean = data.category_price.get(line.category)
        if mean and data.skus_per_category.get(line.category, 0) >= 2:
            paid += line.qty * line.unit_price
            reference += line.qty * mean
            lines += 1
    if lines == 0 or reference <= 0:
        return _unknown("no purchase in a category where the store sells more than one product: no choice")
    index = paid / reference
    level = "picks cheaper items" if index < 0.9 else "picks pricier items" if index > 1.1 else "average"
    return Measure(
        value=round(index, 3),
        level=level,
        confidence=_weight(lines, 40),
        reasoning=f"over {lines} lines in categories with a choice, it paid {index:.0%} of the store's mean"
        " price of the same categories",
    )


def product_loyalty(lines: tuple[Line, ...], skus_per_category: dict[str, int]) -> Measure:
    """Share of its lines, in categories with a choice and bought 3 times or more, on its usual SKU."""
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        if skus_per_category.get(line.category, 0) >= 2:
            by_category[line.category][line.sku] += 1
    counted = {c: skus for c, skus in by_category.items() if sum(skus.values()) >= 3}
    total = sum(sum(s.values()) for s in counted.values())
    if total == 0:
        return _unknown("needs 3 purchases in a category where the store sells more than one product")
    top = sum(max(s.values()) for s in counted.values())
    share = top / total
    level = (
        "sticks to one product" if share >= 0.8 else "mixes products" if share < 0.5 else "mostly one product"
    )
    return Measure(
        value=round(share, 3),
        level=level,
        confidence=_weight(total, 30),
        reasoning=f"in {len(counted)} categories, {share:.0%} of its {total} lines were its usual product",
    )


def promotion_responsiveness(data: InsightInputs) -> Measure:
    """Share of its lines in promoted categories bought while a promotion ran, against the store's share
    for the same categories (the lift; 1 = like everyone)."""
    mine = [line for line in data.lines if line.category in data.store_promoted_share]
    if not mine:
        return _unknown("no promotion ran in the categories it buys, in the store's promotions file")
    expected = float(np.mean([data.store_promoted_share[line.category] for line in mine]))
    if expected >= 0.95 or expected <= 0.05:
        return _unknown(
            f"promotions in its categories ran {'all' if expected >= 0.95 else 'almost none'} of the time:"
            " buying during one says nothing about responding to it"
        )
    spans = [(w.category, w.start_ms, w.end_ms) for w in data.promotions]
    during = sum(1 for line in mine if any(c == line.category and s <= line.ts_ms < e for c, s, e in spans))
    lift = (during / len(mine)) / expected
    level = (
        "responds to promotions"
        if lift >= 1.3
        else "buys regardless of promotions"
        if lift > 0.7
        else "less during promotions"
    )
    return Measure(
        value=round(lift, 3),
        level=level,
        confidence=_weight(len(mine), 30),
        reasoning=f"{during} of its {len(mine)} lines in promoted categories fell in a promotion, where the"
        f" store's shoppers would have {expected:.0%}",
    )


def basket_value(data: InsightInputs, currency: str) -> Measure:
    if not data.baskets:
        return _unknown("no basket in the window")
    mean = float(np.mean([total for _, _, total in data.baskets]))
    store = data.store_basket_mean
    versus = ""
    level = None
    if store:
        level = (
            "above the store's average"
            if mean > 1.2 * store
            else "below the store's average"
            if mean < 0.8 * store
            else "around the store's average"
        )
        versus = f"; the store's loyalty baskets average {store:.2f} {currency}"
    return Measure(
        value=round(mean, 2),
        level=level,
        confidence=_weight(len(data.baskets), 10),
        reasoning=f"{len(data.baskets)} baskets averaging {mean:.2f} {currency}{versus}",
    )


def spending_consistency(data: InsightInputs) -> Measure:
    """Coefficient of variation of spend per 4-week period, over the full periods since its first basket."""
    if not data.baskets:
        return _unknown("no basket in the window")
    first = min(ts for _, ts, _ in data.baskets)
    periods = int((data.now_ms - first) // (PERIOD_DAYS * MS_PER_DAY))
    if periods < 3:
        return _unknown(f"needs three full {PERIOD_DAYS}-day periods of shopping; it has {periods}")
    spend = np.zeros(periods)
    for _, ts, total in data.baskets:
        k = int((ts - first) // (PERIOD_DAYS * MS_PER_DAY))
        if k < periods:
            spend[k] += total
    mean = float(spend.mean())
    cv = float(spend.std() / mean) if mean > 0 else float("inf")
    level = "steady" if cv < 0.35 else "variable" if cv > 0.75 else "fairly steady"
    return Measure(
        value=round(cv, 3) if np.isfinite(cv) else None,
        level=level,
        confidence=_weight(periods, 8),
        reasoning=f"spend per {PERIOD_DAYS} days varied by {cv:.0%} around its mean over {periods} periods",
    )
