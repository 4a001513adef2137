"""The store's product catalog as the simulators need it: each category's products and every SKU's price.

The file is the daemon's ``catalog.json`` (docs/catalog.md; `simulators/demo_store/catalog.json` for the
demo store). Simulators may not import ``edge``, so this decodes only the fields they use, with its own
struct, and ignores the rest. A category's products keep the file's order (most bought first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from simulators.errors import SimulatorError

DEMO_CATALOG = Path(__file__).resolve().parent / "demo_store" / "catalog.json"


class CatalogError(SimulatorError, ValueError):
    """The catalog file cannot be read or decoded; the message names the file and the field."""


class CatalogProduct(msgspec.Struct, frozen=True):
    """One product: what the till sends, where it belongs, what it costs and how much it holds."""

    sku: str
    category: str
    price: float
    size: float | None = None
    unit: str | None = None

    @property
    def unit_price(self) -> float | None:
        """Price per kg, litre or item, when the size is known."""
        return None if self.size is None or self.unit is None or self.size <= 0 else self.price / self.size


class _CatalogFile(msgspec.Struct, frozen=True):
    products: list[CatalogProduct]


@dataclass(frozen=True, slots=True)
class StoreCatalog:
    by_category: Mapping[str, tuple[CatalogProduct, ...]]  # in the file's order: most bought first
    prices: Mapping[str, float]  # sku -> shelf price

    def products(self, category: str) -> tuple[CatalogProduct, ...]:
        return self.by_category.get(category, ())


def load_store_catalog(path: Path) -> StoreCatalog:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror}") from exc
    try:
        parsed = msgspec.json.decode(raw, type=_CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CatalogError(f"{path}: not JSON: {exc}") from exc
    by_category: dict[str, list[CatalogProduct]] = {}
    prices: dict[str, float] = {}
    for i, product in enumerate(parsed.products):
        if product.sku in prices:
            raise CatalogError(f"{path}: products[{i}].sku: duplicate {product.sku!r}")
        if not product.price > 0:
            raise CatalogError(f"{path}: products[{i}].price: must be > 0, got {product.price}")
        prices[product.sku] = product.price
        by_category.setdefault(product.category, []).append(product)
    return StoreCatalog({c: tuple(found) for c, found in by_category.items()}, prices)
