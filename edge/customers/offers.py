"""The store's promotions and which of them fit a household (docs/customers.md, Offers).

Promotions come from ``promotions.json``: central's `promotions` bundle when one is live, else the file
named by ``[store] promotions``. A bad file is a clear error naming the file and the field, and the
daemon keeps the offers it had.

    {"promotions": [{"id": "p-milk", "category": "milk", "title": "Milk: 2 for 1.50",
                     "detail": "Any 1 l carton", "discount_pct": 25,
                     "starts": "2026-01-01", "ends": "2026-12-31"}]}

``starts`` and ``ends`` are store-local dates, both days included. ``skus`` (optional) names the
products on offer; without it the whole category is (the kiosk's product suggestions put a named
product on offer right after the household's usual one, `edge.catalog.suggest`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import msgspec

from edge.errors import ConfigError, decode_json_file

PromotionId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Sku = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]  # as in catalog.json


class Promotion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: PromotionId
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    title: Text
    starts: dt.date
    ends: dt.date
    detail: Annotated[str, msgspec.Meta(max_length=500)] = ""
    discount_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    skus: Annotated[list[Sku], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)


class PromotionsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    promotions: list[Promotion]


class Offer(msgspec.Struct, frozen=True):
    """A promotion as the kiosk shows it."""

    id: str
    category: str
    title: str
    detail: str
    discount_pct: float | None
    ends_ms: int
    reason: str | None
    skus: list[str] = []  # the products on offer; empty: the whole category


class OffersView(msgspec.Struct, frozen=True):
    personalised: bool
    offers: list[Offer]


def load_promotions(path: Path) -> tuple[Promotion, ...]:
    parsed = decode_json_file(path, PromotionsFile, "promotions")
    problems = [
        f"{path}: promotions[{i}].ends: before starts"
        for i, p in enumerate(parsed.promotions)
        if p.ends < p.starts
    ]
    seen: set[str] = set()
    for i, p in enumerate(parsed.promotions):
        if p.id in seen:
            problems.append(f"{path}: promotions[{i}].id: duplicate {p.id!r}")
        seen.add(p.id)
    if problems:
        raise ConfigError("\n".join(problems))
    return tuple(parsed.promotions)


def _end_ms(p: Promotion, tz: dt.tzinfo) -> int:
    end = dt.datetime.combine(p.ends + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return int(end.timestamp() * 1000)


def active(promotions: Iterable[Promotion], now: dt.datetime) -> list[Promotion]:
    """The promotions running on ``now``'s store-local date (``now`` must be timezone-aware)."""
    today = now.date()
    return [p for p in promotions if p.starts <= today <= p.ends]


def offers_for(
    promotions: Sequence[Promotion],
    now: dt.datetime,
    on_list: Sequence[str] | None,
    usual: Sequence[str] = (),
) -> OffersView:
    """Offers for a household: with its list (``on_list`` not None: personalisation consented), the
    active promotions for categories on its list, then for its usual categories, each with why; without,
    every active promotion with no reason (nothing about the household is used)."""
    running = active(promotions, now)
    tz = now.tzinfo or dt.UTC
    if on_list is None:
        return OffersView(False, [_offer(p, tz, None) for p in sorted(running, key=lambda p: (p.ends, p.id))])
    listed, habitual = set(on_list), set(usual) - set(on_list)
    chosen = [_offer(p, tz, f"{p.category} is on your list") for p in running if p.category in listed]
    chosen += [_offer(p, tz, f"you often buy {p.category}") for p in running if p.category in habitual]
    return OffersView(True, chosen)


def _offer(p: Promotion, tz: dt.tzinfo, reason: str | None) -> Offer:
    return Offer(p.id, p.category, p.title, p.detail, p.discount_pct, _end_ms(p, tz), reason, list(p.skus))
