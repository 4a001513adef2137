"""The catalog routes (docs/catalog.md):

- ``GET /api/v1/catalog/products?category=&q=&prefer=&offset=&limit=``: browse and search the catalog
  (kiosk token or any session: nothing about a household).
- ``GET /api/v1/customers/{id}/product-suggestions?categories=milk,bread&prefer=organic&limit=3``:
  products for each category of a list (`edge.catalog.suggest`). With a verified session (or staff) and
  personalisation consent, the household's usual product leads (the read is audited like every read of
  its data); otherwise only the store's best sellers and prices are used. ``prefer`` names attributes the
  shopper asked for at the kiosk; they are used for this answer and never stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from aiohttp import web

from edge.catalog.load import EMPTY, Catalog, load_catalog, product_view
from edge.catalog.reads import MS_PER_DAY, household_skus, store_skus
from edge.catalog.schemas import Attribute, CatalogPage, CategorySuggestions, SuggestionsView
from edge.catalog.suggest import Running, budget, suggest
from edge.config import Config
from edge.customers import tables
from edge.customers.offers import Promotion, active
from edge.customers.routes import AuditedReads
from edge.http.app import PRINCIPAL
from edge.http.responses import Handler, error_response, json_response
from edge.live_file import LiveFile
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter

ATTRIBUTES: tuple[str, ...] = get_args(Attribute)
HISTORY_DAYS = 365  # the household's purchases a usual product is taken from
POPULAR_DAYS = 28  # the store's sales that make a best seller
POPULAR_TTL_S = 300.0
MAX_CATEGORIES = 60
MAX_PAGE = 200


def catalog_source(paths: Sequence[Path]) -> LiveFile[Catalog]:
    return LiveFile(paths, load_catalog, EMPTY, "catalog_invalid")


class CatalogApi:
    def __init__(
        self,
        catalog: LiveFile[Catalog],
        promotions: LiveFile[tuple[Promotion, ...]],
        audit: AuditedReads,
        reads: ReadThread,
        currency: str,
        timezone: dt.tzinfo,
    ) -> None:
        self._catalog = catalog
        self._promotions = promotions
        self._audit = audit
        self._reads = reads
        self._currency = currency
        self._timezone = timezone
        self._popular: tuple[float, dict[str, int]] | None = None

    async def close(self) -> None:
        await self._reads.close()
        await self._audit.close()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/catalog/products", self.get_products),
            ("GET", "/api/v1/customers/{id}/product-suggestions", self.get_suggestions),
        ]

    async def get_products(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            prefer = _preferences(q.get("prefer", ""))
            offset = _int(q.get("offset", "0"), "offset", 0, 10**6)
            limit = _int(q.get("limit", "50"), "limit", 1, MAX_PAGE)
        except ValueError as exc:
            return error_response(400, str(exc))
        catalog = await asyncio.to_thread(self._catalog.current)
        category = q.get("category", "")
        if category and category not in catalog.by_category:
            return error_response(404, f"category {category!r}: not in the catalog")
        products = catalog.products(category) if category else tuple(catalog.by_sku.values())
        words = q.get("q", "").casefold().split()
        chosen = [
            p
            for p in products
            if set(prefer).issubset(p.attributes)
            and all(w in f"{p.name} {p.brand} {p.category}".casefold() for w in words)
        ]
        page = [product_view(p) for p in chosen[offset : offset + limit]]
        return json_response(CatalogPage(self._currency, len(chosen), page))

    async def get_suggestions(self, request: web.Request) -> web.Response:
        household, q = request.match_info["id"], request.query
        raw = q.get("categories", "")
        categories = [c.strip() for c in raw.split(",") if c.strip()]
        if not categories:
            return error_response(400, "categories: expected comma-separated categories, e.g. milk,bread")
        if len(categories) > MAX_CATEGORIES:
            return error_response(400, f"categories: at most {MAX_CATEGORIES}")
        try:
            prefer, limit = _preferences(q.get("prefer", "")), _int(q.get("limit", "3"), "limit", 1, 10)
        except ValueError as exc:
            return error_response(400, str(exc))
        catalog = await asyncio.to_thread(self._catalog.current)
        now_ms = int(time.time() * 1000)
        bought: dict[str, int] = {}
        personal = request[PRINCIPAL].personal
        if personal:
            since = now_ms - HISTORY_DAYS * MS_PER_DAY
            consented, bought = await self._audit.read(
                request, household, lambda c: _own_purchases(c, household, since)
            )
            personal = consented
        popular = await self._store_best_sellers(now_ms)
        running: dict[str, list[Running]] = {}
        for p in active(await asyncio.to_thread(self._promotions.current), dt.datetime.now(self._timezone)):
            running.setdefault(p.category, []).append(Running(p.title, frozenset(p.skus)))

        def products(category: str) -> CategorySuggestions:
            chosen = suggest(
                catalog,
                category,
                bought=bought,
                popular=popular,
                preferences=prefer,
                promotions=running.get(category, ()),
                currency=self._currency,
                limit=limit,
            )
            return CategorySuggestions(category, chosen)

        found = [products(c) for c in categories]
        money = budget([c.suggestions for c in found])
        return json_response(SuggestionsView(household, personal, self._currency, list(prefer), found, money))

    async def _store_best_sellers(self, now_ms: int) -> dict[str, int]:
        cached = self._popular
        if cached is not None and time.monotonic() - cached[0] < POPULAR_TTL_S:
            return cached[1]
        since = now_ms - POPULAR_DAYS * MS_PER_DAY
        counts = await self._reads.run(lambda c: store_skus(c, since))
        self._popular = (time.monotonic(), counts)
        return counts


def _own_purchases(conn: sqlite3.Connection, household: str, since_ms: int) -> tuple[bool, dict[str, int]]:
    if not tables.has_consent(conn, household):
        return False, {}
    return True, household_skus(conn, household, since_ms)


def _preferences(raw: str) -> tuple[str, ...]:
    """``?prefer=organic,gluten-free``: attributes from `ATTRIBUTES`; `ValueError` names a wrong one."""
    wanted = tuple(dict.fromkeys(w.strip() for w in raw.split(",") if w.strip()))
    wrong = [w for w in wanted if w not in ATTRIBUTES]
    if wrong:
        raise ValueError(f"prefer: {wrong[0][:40]!r} is not one of {', '.join(ATTRIBUTES)}")
    return wanted


def _int(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {raw[:20]!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: expected {low} to {high}, got {value}")
    return value


def catalog_paths(config: Config) -> list[Path]:
    """Central's `catalog` bundle when one is live, else ``[store] catalog``."""
    paths = [config.path(config.sync.bundle_dir) / "catalog" / "current" / "catalog.json"]
    if config.store.catalog:
        paths.append(config.path(config.store.catalog))
    return paths


def catalog_api(
    config: Config,
    db_path: Path,
    writer: StoreWriter,
    promotions: LiveFile[tuple[Promotion, ...]],
    catalog: LiveFile[Catalog],
) -> CatalogApi:
    """The catalog routes as the daemon wires them (``catalog``: `catalog_source` of `catalog_paths`,
    which the store also files till lines by; ``promotions``: the shopper routes' live promotions)."""
    return CatalogApi(
        catalog,
        promotions,
        AuditedReads(db_path, writer, "sqlite-catalog-audit"),
        ReadThread(db_path, "catalog-reader"),
        config.store.currency,
        config.tz,
    )
