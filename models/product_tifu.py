"""TIFU-KNN (Hu et al., SIGIR 2020) at product level: the category-level algorithm of
`models.basket_baselines`, with sparse household vectors (2,469 households x ~60,000 bought products
on Complete Journey would not fit dense).

A basket's weight in its household's vector is `basket_baselines.tifu_vectors`'s (both groupings; a
test checks the two agree on a small history); neighbours are the k most cosine-similar households with
history (never itself); the score mixes alpha * own + (1 - alpha) * mean of the neighbours' vectors;
products by score, ties by popularity, short lists filled by popularity (`product_level.top_products`).
The neighbours' mean is formed a block of households at a time (sparse); only the entries that can
reach a row's top k (at least alpha times its k-th largest own score) are sorted.
`tune_product_tifu` picks the parameters on a validation window that ends before the test window, as
`basket_baselines.tune_tifu` does at category level (it reuses its `TifuParams` and `TifuTuning`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from models.basket_baselines import MIN_TUNING_HISTORY_DAYS, Grouping, TifuParams, TifuTuning
from models.basket_protocol import TOP_K, BasketSequences, HeldOutBaskets, ranking_metrics
from models.errors import TrainingError
from models.history import PurchaseHistory
from models.product_level import (
    ProductRanker,
    ProductSequences,
    held_out_products,
    p_top_freq,
    product_sequences,
    top_products,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BLOCK_ROWS = 256  # households whose neighbour means are formed at once


@dataclass(frozen=True, slots=True)
class ProductTifuGrid:
    """Smaller than the category grid (each combination ranks ~60,000 products per household); its
    ranges follow the category-level choice on this data (authors' grouping, many slowly decayed
    groups) and the paper's product-level settings (k up to 900 on Dunnhumby, alpha 0.7-0.9)."""

    grouping: tuple[Grouping, ...] = ("count", "size")
    group_size: tuple[int, ...] = (7, 30)
    within_decay: tuple[float, ...] = (1.0,)
    group_decay: tuple[float, ...] = (0.8, 0.95)
    neighbours: tuple[int, ...] = (100, 300)
    alpha: tuple[float, ...] = (0.7, 0.9, 1.0)

    @property
    def size(self) -> int:
        vectors = len(self.grouping) * len(self.group_size) * len(self.within_decay) * len(self.group_decay)
        return vectors * len(self.neighbours) * len(self.alpha)


def tifu_weights(s: BasketSequences, params: TifuParams) -> F64:
    """Per (household, item, age) row: its basket's weight in TIFU-KNN's household vector (the arithmetic
    of `basket_baselines.tifu_vectors`, per row instead of summed into a dense array)."""
    m, r_b, r_g = params.group_size, params.within_decay, params.group_decay
    n = s.n_baskets[s.household]
    if params.grouping == "size":
        n_groups = -(-n // m)
        group, position = s.age // m, s.age % m
        in_group = np.where(group < n_groups - 1, m, n - m * (n_groups - 1))
        return np.asarray(r_g**group * r_b**position / in_group / n_groups, dtype=np.float64)
    first = n - 1 - s.age
    base = n // m
    small = m - (n - base * m)
    cut = small * base
    group = np.where(first < cut, first // np.maximum(base, 1), small + (first - cut) // (base + 1))
    in_group = np.where(group < small, base, base + 1)
    few = n < m
    group, in_group = np.where(few, first, group), np.where(few, 1, in_group)
    return np.asarray(r_b**s.age * r_g ** (m - 1 - group) / in_group / np.minimum(n, m), dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class TifuMatrix:
    """Households x bought products (compact columns; ``products[c]`` is column c's product code)."""

    vectors: sparse.csr_matrix
    products: I64
    popularity: I64  # per column

    @classmethod
    def build(cls, sequences: ProductSequences, params: TifuParams) -> TifuMatrix:
        s = sequences.baskets
        products, column = np.unique(s.category, return_inverse=True)
        vectors = sparse.csr_matrix(
            (tifu_weights(s, params), (s.household, column)), shape=(s.n_households, products.size)
        )
        vectors.sum_duplicates()
        return cls(vectors, products.astype(np.int64), sequences.popularity()[products])

    def neighbour_order(self, households: I64, most: int) -> I64:
        """For each of ``households``: the other households with history, most cosine-similar first."""
        norm = np.sqrt(np.asarray(self.vectors.multiply(self.vectors).sum(axis=1)).ravel())
        pool = np.flatnonzero(norm > 0)
        most = min(most, max(pool.size - 1, 0))
        if most == 0:
            return np.zeros((households.size, 0), dtype=np.int64)
        unit = sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ self.vectors
        similarity = np.asarray((unit[households] @ unit[pool].T).toarray())
        similarity[pool[None, :] == households[:, None]] = -np.inf
        nearest = np.argpartition(-similarity, most - 1, axis=1)[:, :most]
        ranked = np.take_along_axis(nearest, np.argsort(-np.take_along_axis(similarity, nearest, 1), 1), 1)
        return np.asarray(pool[ranked], dtype=np.int64)

    def neighbour_means(self, order: I64, k: int) -> Iterator[tuple[slice, Any]]:
        """Blocks of rows of ``order`` with the (sparse) mean vector of each row's first k neighbours."""
        k = min(k, order.shape[1])
        for start in range(0, order.shape[0], BLOCK_ROWS):
            block = slice(start, min(start + BLOCK_ROWS, order.shape[0]))
            if k == 0:
                yield block, None
                continue
            rows = order[block, :k]
            weights = sparse.csr_matrix(
                (np.full(rows.size, 1.0 / k), (np.repeat(np.arange(rows.shape[0]), k), rows.ravel())),
                shape=(rows.shape[0], self.vectors.shape[0]),
            )
            yield block, weights @ self.vectors

    def top(self, households: I64, order: I64, neighbours: int, alpha: float, k: int = TOP_K) -> I64:
        """TIFU-KNN's top ``k`` product codes for each of ``households`` (rows in that order)."""
        return self.tops(households, order, neighbours, (alpha,), k)[0]

    def tops(
        self, households: I64, order: I64, neighbours: int, alphas: tuple[float, ...], k: int = TOP_K
    ) -> list[I64]:
        """`top` for several alphas at once (one neighbour mean per block for all). Only entries at
        least the row's k-th largest own score can make its top k (the mix adds to alpha * own), so
        only those are sorted."""
        tops = [np.empty((households.size, k), dtype=np.int64) for _ in alphas]
        mixing = [a < 1.0 for a in alphas]
        for block, mean in self.neighbour_means(order, neighbours if any(mixing) else 0):
            own = self.vectors[households[block]].tocoo()
            own_kth = _kth_largest(own.row.astype(np.int64), own.data, own.shape[0], k)
            for top, alpha, mixes in zip(tops, alphas, mixing, strict=True):
                if mean is None or not mixes:
                    row, column, score = own.row, own.col, own.data
                else:
                    mixed = (alpha * own.tocsr() + (1 - alpha) * mean).tocoo()
                    keep = (mixed.data >= alpha * own_kth[mixed.row]) & (mixed.data > 0)
                    row, column, score = mixed.row[keep], mixed.col[keep], mixed.data[keep]
                top[block] = top_products(
                    row.astype(np.int64), column.astype(np.int64), score, own.shape[0], self.popularity, k
                )
        return [self._codes(top) for top in tops]

    def _codes(self, top: I64) -> I64:
        return np.where(top >= 0, self.products[np.maximum(top, 0)], -1)


def _kth_largest(row: I64, value: F64, n_rows: int, k: int) -> F64:
    """Per row: the k-th largest of its values (0 where it has fewer than k)."""
    order = np.lexsort((-value, row))
    first = np.searchsorted(row[order], np.arange(n_rows))
    rank = np.arange(row.size) - first[row[order]]
    kth = np.zeros(n_rows)
    at_k = rank == k - 1
    kth[row[order][at_k]] = value[order][at_k]
    return kth


def product_tifu_top(sequences: ProductSequences, households: I64, params: TifuParams, k: int = TOP_K) -> I64:
    matrix = TifuMatrix.build(sequences, params)
    order = matrix.neighbour_order(households, 0 if params.alpha >= 1.0 else params.neighbours)
    return matrix.top(households, order, params.neighbours, params.alpha, k)


def product_tifu_ranker(params: TifuParams, k: int = TOP_K) -> ProductRanker:
    return lambda sequences, households: product_tifu_top(sequences, households, params, k)


def tune_product_tifu(
    train: ProductSequences, validation: HeldOutBaskets, grid: ProductTifuGrid, k: int = TOP_K
) -> TifuTuning:
    """The grid's best parameters by validation Recall@k (first on ties), ranked from ``train`` (the
    baskets before the validation window). Give it only data from before the test window."""
    if train.until_day > validation.start_day:
        raise ValueError("tune_product_tifu: the training baskets overlap the validation window")
    households, basket_row = np.unique(validation.household, return_inverse=True)
    best: tuple[float, TifuParams] | None = None
    for grouping, m, r_b, r_g in itertools.product(
        grid.grouping, grid.group_size, grid.within_decay, grid.group_decay
    ):
        matrix = TifuMatrix.build(train, TifuParams(grouping, m, r_b, r_g, 0, 1.0))
        order = matrix.neighbour_order(households, max(grid.neighbours))
        for neighbours in grid.neighbours:
            tops = matrix.tops(households, order, neighbours, grid.alpha, k)
            for alpha, top in zip(grid.alpha, tops, strict=True):
                value = ranking_metrics(top[basket_row], validation).recall
                if best is None or value > best[0]:
                    best = (value, TifuParams(grouping, m, r_b, r_g, neighbours, alpha))
    if best is None:
        raise ValueError("tune_product_tifu: the grid is empty")
    return TifuTuning(
        best[1],
        ranking_metrics(product_tifu_top(train, households, best[1], k)[basket_row], validation),
        ranking_metrics(p_top_freq(train, households, k)[basket_row], validation),
        train.until_day,
        validation.start_day,
        validation.end_day,
        grid.size,
    )


def validation_window(history: PurchaseHistory, cutoff: int, end_day: int) -> tuple[int, int]:
    """The validation days before ``cutoff``: as many as the test window's, leaving at least 8 weeks
    of history before them (as `basket_baselines.tuned_tifu`)."""
    room = cutoff - history.first_day - MIN_TUNING_HISTORY_DAYS
    days = min(end_day - cutoff, room)
    if days < 1:
        raise TrainingError("product TIFU-KNN: no room for a validation window before the cutoff")
    return cutoff - days, cutoff


def tuned_product_tifu(
    history: PurchaseHistory, cutoff: int, end_day: int, grid: ProductTifuGrid | None = None
) -> TifuTuning:
    """TIFU-KNN tuned for the test window [cutoff, end_day) on `validation_window`, frozen protocol;
    only lines before the cutoff are handed to the tuner."""
    start, _ = validation_window(history, cutoff, end_day)
    before = history.select(history.day < cutoff)
    return tune_product_tifu(
        product_sequences(before, start),
        held_out_products(before, start, cutoff),
        ProductTifuGrid() if grid is None else grid,
    )
