"""The catalog's wire formats: the ``catalog.json`` a `catalog` bundle (or ``[store] catalog``) holds, and
what the catalog routes return (docs/catalog.md)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Sku = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Unit = Literal["kg", "l", "each"]
Storage = Literal["ambient", "chilled", "frozen"]
# Labels a product carries; a shopper may ask for them at the kiosk ("prefer"). Never inferred.
Attribute = Literal["organic", "vegetarian", "gluten-free", "lactose-free", "own-brand"]
WHY = Literal["usual", "on-offer", "bought-before", "cheaper-per-unit", "popular", "in-range"]


class Product(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Sku
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    category: Category
    price: Annotated[float, msgspec.Meta(gt=0, le=100_000)]  # shelf price of one item, store currency
    brand: Annotated[str, msgspec.Meta(max_length=80)] = ""
    size: Annotated[float, msgspec.Meta(gt=0)] | None = None  # in ``unit``; None: not known
    unit: Unit | None = None
    storage: Storage = "ambient"
    attributes: list[Attribute] = []


class CatalogFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    products: list[Product]
    version: Literal[1] = 1
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None  # informative


class ProductView(msgspec.Struct, frozen=True):
    """A product as the kiosk shows it: with its price per kg, litre or item."""

    sku: str
    name: str
    brand: str
    category: str
    price: float
    size: float | None
    unit: str | None
    unit_price: float | None  # price / size, per ``unit``
    storage: str
    attributes: list[str]


class Suggestion(msgspec.Struct, frozen=True):
    product: ProductView
    why: WHY
    reason: str
    promotion: str | None  # the running promotion for this product (naming it, else its category's)
    matches_preferences: bool  # has every attribute the shopper asked for
    saving: float | None = None  # cheaper-per-unit: the share less per unit than the reference


class CategorySuggestions(msgspec.Struct, frozen=True):
    category: str
    suggestions: list[Suggestion]


class Budget(msgspec.Struct, frozen=True):
    """The list in money: one of each item's reference product (its usual one, else the best seller)."""

    estimated_total: float
    priced: int  # items with a product in the catalog
    unpriced: int  # items the catalog does not stock
    saving: float  # switching every item to its cheaper-per-unit product, buying the same quantity
    on_offer: int  # items whose category has a running promotion


class SuggestionsView(msgspec.Struct, frozen=True):
    customer: str
    personalised: bool  # the household's own purchases were used (verified session and consent)
    currency: str
    preferences: list[str]
    categories: list[CategorySuggestions]
    budget: Budget


class CatalogPage(msgspec.Struct, frozen=True):
    currency: str
    total: int  # products matching, before offset and limit
    products: list[ProductView]
