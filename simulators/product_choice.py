"""Which catalog product a simulated basket line names, and its price (`HouseholdSimConfig.catalog`).

Without a catalog the household simulator sells the planogram's shelf products (one per category) at
prices of its own. With one, every line names a product of its category from the store's catalog
(`simulators.store_catalog`) at the catalog's price:

- Each household has a **usual product** per category, drawn once with popularity weights: the k-th
  product of the category in catalog order (most bought first) with weight ``1 / k`` (`POPULARITY_EXPONENT`).
- It buys its usual product on a share of its lines drawn per household within `USUAL_SHARE`
  (about 80%). Otherwise one of its `ALTERNATES` **substitutes** (also fixed per household: popularity
  weights, times `CHEAPER_PULL` for a product at least 5% cheaper per kg, litre or item than its usual
  one), or, on `NEW_SHARE` of those lines, a product drawn afresh from the whole category: rarely
  something new.
- The price is the catalog's, less the simulation's promotion depth when the category is on promotion.

The draws come from their own random stream (seeded from the simulation's seed), so the simulation's
categories, days and quantities are exactly those of a run without a catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from simulators.store_catalog import CatalogError, CatalogProduct, StoreCatalog

USUAL_SHARE = (0.75, 0.85)
NEW_SHARE = 0.15
ALTERNATES = 2
POPULARITY_EXPONENT = 1.0
CHEAPER_PULL = 3.0
CHEAPER_BY = 0.95  # the same as the kiosk's "cheaper per unit" (edge/catalog/suggest.py)
STREAM = 0x5C0D  # mixed into the seed: the product choice's own random stream


class ProductChooser:
    """Per household and category: its usual product and substitutes; per line: the product bought."""

    def __init__(self, catalog: StoreCatalog, categories: Sequence[str], households: int, seed: int) -> None:
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM]))
        products = []
        for name in categories:
            found = catalog.products(name)
            if not found:
                raise CatalogError(f"catalog: no product of category {name!r} (every category needs one)")
            products.append(found)
        self.skus: tuple[tuple[str, ...], ...] = tuple(tuple(p.sku for p in found) for found in products)
        self._count = np.array([len(found) for found in products])
        self._offset = np.concatenate([[0], np.cumsum(self._count)[:-1]])
        self._price = np.array([p.price for found in products for p in found])
        weights = [np.arange(1, len(found) + 1, dtype=float) ** -POPULARITY_EXPONENT for found in products]
        # Category c's products occupy (c, c + 1] of one sorted key: a uniform u in category c is found
        # by one searchsorted of c + u, for lines of every category at once.
        self._key = np.concatenate([c + np.cumsum(w) / w.sum() for c, w in enumerate(weights)])
        n_cat = len(products)
        self.usual = self._popular(np.tile(np.arange(n_cat), (households, 1)))
        self.loyalty = self._rng.uniform(*USUAL_SHARE, households)
        self.alternates = np.empty((households, n_cat, ALTERNATES), dtype=np.int64)
        for c, found in enumerate(products):
            self.alternates[:, c] = self._substitutes(found, weights[c], self.usual[:, c])

    def choose(
        self, household: npt.NDArray[np.intp], category: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int64]:
        """The product (index into ``skus[category]``) each line buys."""
        n = household.size
        loyal = self._rng.random(n) < self.loyalty[household]
        new = self._rng.random(n) < NEW_SHARE
        which = self._rng.integers(0, ALTERNATES, n)
        fresh = self._popular(category)
        substitute = self.alternates[household, category, which]
        return np.where(loyal, self.usual[household, category], np.where(new, fresh, substitute))

    def prices(
        self, category: npt.NDArray[np.intp], product: npt.NDArray[np.int64], depth: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Each line's unit price: the catalog's, less ``depth`` (the category's promotion cut, 0 = none)."""
        price: npt.NDArray[np.float64] = np.round(
            self._price[self._offset[category] + product] * (1 - depth), 2
        )
        return price

    def _popular(self, category: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """One product per entry of ``category``, drawn with the popularity weights."""
        found = np.searchsorted(self._key, category + self._rng.random(category.shape), side="right")
        # A draw a hair below 1 can round up to the next category's start: keep it in its own.
        local: npt.NDArray[np.int64] = np.minimum(
            found - self._offset[category], self._count[category] - 1
        ).astype(np.int64)
        return local

    def _substitutes(
        self,
        products: Sequence[CatalogProduct],
        popularity: npt.NDArray[np.float64],
        usual: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """`ALTERNATES` distinct products per household other than its usual one (the usual one again
        where the category has too few), cheaper per unit than the usual more likely."""
        cheaper = _cheaper_per_unit(products)
        weight = popularity[None, :] * np.where(cheaper[usual], CHEAPER_PULL, 1.0)
        weight[np.arange(usual.size), usual] = 0.0
        with np.errstate(divide="ignore"):
            keys = np.log(weight) + self._rng.gumbel(
                size=weight.shape
            )  # Gumbel top-k: sampling without replacement
        picked = np.argsort(-keys, axis=1, kind="stable")[:, :ALTERNATES]
        usable = np.take_along_axis(weight, picked, axis=1) > 0
        chosen: npt.NDArray[np.int64] = np.where(usable, picked, usual[:, None]).astype(np.int64)
        return chosen


def _cheaper_per_unit(products: Sequence[CatalogProduct]) -> npt.NDArray[np.bool_]:
    """``[i, j]``: product j costs at most `CHEAPER_BY` of product i's price per unit, in the same unit."""
    unit = np.array([p.unit or "" for p in products])
    per_unit = np.array([np.nan if p.unit_price is None else p.unit_price for p in products])
    same_unit = (unit[:, None] == unit[None, :]) & (unit[:, None] != "")
    with np.errstate(invalid="ignore"):
        cheaper: npt.NDArray[np.bool_] = same_unit & (per_unit[None, :] <= CHEAPER_BY * per_unit[:, None])
    return cheaper
