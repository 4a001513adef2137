"""Which products to suggest for one category of a shopping list (docs/catalog.md), a pure function.

In order, at most ``limit``:
1. the household's usual product (its most bought of the category; only with its purchases, i.e. a
   verified session and personalisation consent), even if it lacks a stated preference (it says so);
2. one product on promotion by itself (a promotion naming products, not the whole category): the
   store's best seller of those, else the cheapest per unit;
3. one cheaper per unit than the reference (the usual one, else the store's best seller), at least 5%
   less per kg, litre or item, in the same unit;
4. the store's best sellers of the category (its own sales over the last weeks), then the catalog's
   order (most bought first).
Alternatives (2 to 4) must carry every attribute the shopper asked for; nothing is inferred. Each
suggestion names the running promotion that applies to it: one naming the product, else one for the
whole category.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from edge.catalog.load import Catalog, product_view, unit_price
from edge.catalog.schemas import WHY, Budget, Product, Suggestion

CHEAPER_BY = 0.95  # a cheaper product costs at most this share of the reference's unit price


@dataclass(frozen=True, slots=True)
class Running:
    """A promotion running today for a category: its title and the products it names (none: all)."""

    title: str
    skus: frozenset[str] = frozenset()

    def applies_to(self, sku: str) -> bool:
        return not self.skus or sku in self.skus


def promotion_of(sku: str, running: Sequence[Running]) -> str | None:
    """The promotion for one product: one naming it first, else one for the whole category."""
    named = next((r.title for r in running if sku in r.skus), None)
    return named or next((r.title for r in running if not r.skus), None)


def suggest(
    catalog: Catalog,
    category: str,
    *,
    bought: Mapping[str, int],
    popular: Mapping[str, int],
    preferences: Collection[str] = (),
    promotions: Sequence[Running] = (),
    currency: str = "EUR",
    limit: int = 3,
) -> list[Suggestion]:
    """``bought``: the household's purchases per SKU (empty without consent); ``popular``: the store's."""
    products = catalog.products(category)
    wanted = set(preferences)

    def matches(p: Product) -> bool:
        return wanted.issubset(p.attributes)

    def item(p: Product, why: WHY, reason: str, saving: float | None = None) -> Suggestion:
        return Suggestion(product_view(p), why, reason, promotion_of(p.sku, promotions), matches(p), saving)

    out: list[Suggestion] = []
    mine = sorted((p for p in products if bought.get(p.sku)), key=lambda p: (-bought[p.sku], p.price))
    usual = mine[0] if mine else None
    if usual is not None:
        times = bought[usual.sku]
        out.append(item(usual, "usual", f"your usual: bought {times} time{'s' if times != 1 else ''}"))
    alternatives = [p for p in products if matches(p) and p is not usual]
    best_sellers = sorted(
        (p for p in alternatives if popular.get(p.sku)), key=lambda p: -popular[p.sku]
    )  # stable: ties keep the catalog's order
    reference = usual or (best_sellers[0] if best_sellers else None)
    named = {sku for r in promotions for sku in r.skus}
    on_offer = [p for p in alternatives if p.sku in named]
    if on_offer:
        offer = min(on_offer, key=lambda p: (-popular.get(p.sku, 0), p.price / (p.size or 1.0)))
        out.append(item(offer, "on-offer", f"on offer: {promotion_of(offer.sku, promotions)}"))
        alternatives = [p for p in alternatives if p is not offer]
        best_sellers = [p for p in best_sellers if p is not offer]
    cheaper = _cheaper_per_unit(alternatives, reference)
    if cheaper is not None and reference is not None:
        ref_price = unit_price(reference) or 0.0
        saving = 1 - (unit_price(cheaper) or 0.0) / ref_price
        whose = "your usual" if reference is usual else "the best seller"
        out.append(
            item(
                cheaper,
                "cheaper-per-unit",
                f"{unit_price(cheaper):.2f} {currency}/{cheaper.unit}: {saving:.0%} less per {cheaper.unit}"
                f" than {whose}",
                round(saving, 4),
            )
        )
    shown = {s.product.sku for s in out}
    for p in best_sellers:
        if len(out) >= limit:
            break
        if p.sku not in shown:
            out.append(item(p, "popular", "a best seller in this store"))
            shown.add(p.sku)
    for p in alternatives:
        if len(out) >= limit:
            break
        if p.sku not in shown:
            why: WHY = "bought-before" if bought.get(p.sku) else "in-range"
            out.append(
                item(p, why, "you bought it before" if why == "bought-before" else "in this store's range")
            )
            shown.add(p.sku)
    return out[:limit]


def _cheaper_per_unit(candidates: list[Product], reference: Product | None) -> Product | None:
    """The cheapest per unit of ``candidates`` at most `CHEAPER_BY` of ``reference``'s unit price."""
    if reference is None or unit_price(reference) is None:
        return None
    ceiling = (reference.price / (reference.size or 1.0)) * CHEAPER_BY
    same = [
        p
        for p in candidates
        if p.unit == reference.unit and p.size is not None and p.price / p.size <= ceiling
    ]
    return min(same, key=lambda p: p.price / (p.size or 1.0), default=None)


def budget(lists: Sequence[Sequence[Suggestion]]) -> Budget:
    """The list's estimated total (one of each item's reference product: its usual one, else the best
    seller, else the first suggested) and what buying the same quantity cheaper per unit would save."""
    total, saving, priced, on_offer = 0.0, 0.0, 0, 0
    for found in lists:
        if not found:
            continue
        priced += 1
        on_offer += found[0].promotion is not None
        reference = next((s.product for s in found if s.why in ("usual", "popular")), found[0].product)
        total += reference.price
        cheaper = next((s.product for s in found if s.why == "cheaper-per-unit"), None)
        if cheaper is not None and reference is not cheaper and reference.unit_price and cheaper.unit_price:
            saving += max(0.0, (reference.unit_price - cheaper.unit_price) * (reference.size or 0.0))
    return Budget(round(total, 2), priced, len(lists) - priced, round(saving, 2), on_offer)
