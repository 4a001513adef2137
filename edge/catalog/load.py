"""Reading ``catalog.json`` into a `Catalog`: products by SKU and by category, each category's in file
order (the file lists a category's products most bought first). A bad file is a clear error naming the
file and the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.catalog.schemas import CatalogFile, Product, ProductView
from edge.config import Config
from edge.errors import ConfigError, decode_json_file


@dataclass(frozen=True, slots=True)
class Catalog:
    by_sku: Mapping[str, Product]
    by_category: Mapping[str, tuple[Product, ...]]
    categories: Mapping[str, str]  # sku -> category: how the store files a till's lines beyond the planogram

    def products(self, category: str) -> tuple[Product, ...]:
        return self.by_category.get(category, ())


EMPTY = Catalog({}, {}, {})


def unit_price(product: Product) -> float | None:
    return None if product.size is None or product.unit is None else round(product.price / product.size, 2)


def product_view(product: Product) -> ProductView:
    return ProductView(
        product.sku,
        product.name,
        product.brand,
        product.category,
        product.price,
        product.size,
        product.unit,
        unit_price(product),
        product.storage,
        list(product.attributes),
    )


def load_catalog(path: Path) -> Catalog:
    parsed = decode_json_file(path, CatalogFile, "the catalog")
    by_sku: dict[str, Product] = {}
    by_category: dict[str, list[Product]] = {}
    problems = []
    for i, product in enumerate(parsed.products):
        if product.sku in by_sku:
            problems.append(f"{path}: products[{i}].sku: duplicate {product.sku!r}")
            continue
        if (product.size is None) != (product.unit is None):
            problems.append(f"{path}: products[{i}]: size and unit go together (one is missing)")
            continue
        by_sku[product.sku] = product
        by_category.setdefault(product.category, []).append(product)
    if problems:
        raise ConfigError("\n".join(problems[:20]))
    return Catalog(
        by_sku,
        {c: tuple(found) for c, found in by_category.items()},
        {sku: p.category for sku, p in by_sku.items()},
    )


def store_catalog_file(config: Config) -> Path | None:
    """The catalog file ``[store] catalog`` names, if it is there (the default names the demo's, which a
    config kept elsewhere does not have; the daemon then waits for central's bundle)."""
    if not config.store.catalog:
        return None
    path = config.path(config.store.catalog)
    return path if path.is_file() else None
