"""Serving the next-basket ranker: the store-wide part computed once per refresh, the rest per step.

The ranker (`models.basket_ranker`) reads, besides `BASKET_FEATURES`, TIFU-KNN's own and neighbour
vectors and the store trend (`models.ranker_features`). Offline they are computed from the whole history
for every query; the daemon splits the work:

* `neighbour_state(history, until_day, tifu)`, once per refresh (before the nightly rescore), from the
  store's own baskets before ``until_day``: every household's TIFU-KNN vector, its ``tifu.neighbours``
  nearest households by cosine (`nearest_means`: float32 similarity in blocks of `NEIGHBOUR_BLOCK`
  households, never the whole households x households matrix; the blocks run on ``workers`` threads)
  and the mean of their vectors, and the store's basket shares per category and day (`StoreTrend`).
* `ranker_features(state, history, stats, cands, groups, base)`, per scoring step: the household's own
  vector from its own history up to the origin (cheap, per household), its neighbours' mean from the
  state (as of the refresh, also for a household rescored after a purchase later that day or on a day
  after the refresh; a household not in the state, e.g. consenting since, gets its neighbours found
  there and then among the state's households from its own vector), the trend at the origin, and the
  ranks within each household's candidates.

For the same history and trips on ``until_day`` (the nightly run) the columns are those of
`models.ranker_features.ranker_groups`, up to the float32 similarity: two households whose float64
cosines to the query differ by less than float32 resolves (about 1e-7) may swap places at the k-th
neighbour (tests/models/test_ranker_serving.py compares them with the full float64 matrix).
numpy and scipy.sparse only: the daemon imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse

from models.basket_baselines import TifuParams, tifu_vectors
from models.basket_protocol import basket_sequences
from models.features import PairStats
from models.history import PurchaseHistory
from models.next_basket import Candidates, top_frequency_scores
from models.ranker_features import TREND_FEATURES, StoreTrend, within_query_rank

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
NEIGHBOUR_BLOCK = 1000  # query households per similarity block: 1,000 x 20,000 float32 = 80 MB
SAMPLE_EVERY = 10  # `_top_k`'s threshold comes from every 10th column
WIDE = 8  # `_top_k` ranks a row in full when its threshold keeps WIDE times more candidates than usual


@dataclass(frozen=True, slots=True, eq=False)
class NeighbourState:
    """What the ranker needs from the whole store, as of the start of ``until_day`` (store-local)."""

    until_day: int
    tifu: TifuParams
    households: tuple[str, ...]  # sorted: row i of `vectors` and `neighbour_mean`
    categories: tuple[str, ...]  # column j
    vectors: F64  # households x categories: TIFU-KNN's vector from the baskets before until_day
    neighbour_mean: F64  # households x categories: the mean vector of each one's nearest neighbours
    has_vector: npt.NDArray[np.bool_]  # per household: baskets before until_day (else no neighbours)
    trend: StoreTrend  # the store's baskets per category and day (its codes: `categories`)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.neighbour_mean.nbytes + self.trend.cumulative.nbytes)


def neighbour_state(
    history: PurchaseHistory,
    until_day: int,
    tifu: TifuParams,
    *,
    block: int = NEIGHBOUR_BLOCK,
    workers: int = 1,
) -> NeighbourState:
    """The store-wide part of the ranker's features from ``history`` (the store's households) before
    ``until_day``: TIFU-KNN vectors, each household's neighbours' mean, the store trend."""
    vectors = tifu_vectors(
        basket_sequences(history, until_day),
        tifu.group_size,
        tifu.within_decay,
        tifu.group_decay,
        tifu.grouping,
    )
    everyone = np.arange(vectors.shape[0], dtype=np.int64)
    means = nearest_means(vectors, vectors, everyone, everyone, tifu.neighbours, block=block, workers=workers)
    has = np.linalg.norm(vectors, axis=1) > 0
    return NeighbourState(
        until_day,
        tifu,
        history.households,
        history.categories,
        vectors,
        means,
        has,
        StoreTrend.from_canonical(history),
    )


def _unit32(vectors: F64) -> tuple[F32, npt.NDArray[np.bool_]]:
    norm = np.linalg.norm(vectors, axis=1)
    unit = (vectors / np.maximum(norm, 1e-12)[:, None]).astype(np.float32)
    return unit, norm > 0


def nearest_means(
    query: F64,
    pool: F64,
    query_ids: I64,
    pool_ids: I64,
    k: int,
    *,
    block: int = NEIGHBOUR_BLOCK,
    workers: int = 1,
) -> F64:
    """For each row of ``query``: the mean of the ``k`` rows of ``pool`` most cosine-similar to it (pool
    rows with a vector only, never the row with its own id), as `models.basket_baselines` ranks them; rows
    with no vector get zeros. Similarity in float32, ``block`` query rows at a time on ``workers``
    threads (`_top_k` picks the k; numpy's comparisons and products and scipy's sparse product release
    the GIL)."""
    pool_unit, has = _unit32(pool)
    members = np.flatnonzero(has)
    unit, ids, vectors = pool_unit[members], pool_ids[members], pool[members]
    order = np.argsort(ids, kind="stable")
    q_unit, q_has = _unit32(query)
    out = np.zeros(query.shape, dtype=np.float64)
    most = min(k, max(members.size - 1, 0))
    if most == 0:
        return out

    def one(start: int) -> None:
        rows = np.arange(start, min(start + block, query.shape[0]))
        rows = rows[q_has[rows]]
        if not rows.size:
            return
        similarity = q_unit[rows] @ unit.T
        at = np.minimum(np.searchsorted(ids, query_ids[rows], sorter=order), ids.size - 1)
        own = order[at]
        self_row = ids[own] == query_ids[rows]
        similarity[np.flatnonzero(self_row), own[self_row]] = -np.inf
        columns = _top_k(similarity, most)  # exactly `most` a row, row after row
        weights = scipy.sparse.csr_matrix(
            (np.full(columns.size, 1.0 / most), columns, np.arange(0, columns.size + 1, most)),
            shape=(rows.size, members.size),
        )
        out[rows] = weights @ vectors

    starts = range(0, query.shape[0], block)
    if workers <= 1:
        for start in starts:
            one(start)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ranker-neighbours") as pool_threads:
            list(pool_threads.map(one, starts))
    return out


def _top_k(similarity: F32, k: int) -> I64:
    """Per row of ``similarity``, the columns of its ``k`` largest entries, ties at the k-th value by lower
    column (a stable sort's choice), row after row (``k`` a row; their mean is all the caller needs, so
    within a row they are not ranked). Exact, without partitioning every row in full (`np.argpartition`
    took 4.0 s at 20,000 households and holds the GIL): a threshold from every `SAMPLE_EVERY`-th column
    (its 3k / `SAMPLE_EVERY`-th largest, below the row's k-th largest but for rare rows) keeps a few times
    k candidates a row; the k-th largest of those decides, ties filled by column. A row with fewer than k
    candidates, or `WIDE` times more than the sample promises (ties at its threshold), is ranked in full."""
    b = similarity.shape[0]
    sample = similarity[:, ::SAMPLE_EVERY]
    m = min(sample.shape[1], 3 * k // SAMPLE_EVERY + 8)
    threshold = np.partition(sample, sample.shape[1] - m, axis=1)[:, sample.shape[1] - m]
    # By row, columns ascending (`np.flatnonzero` and a division: a quarter of `np.nonzero`'s time in 2-D).
    flat = np.flatnonzero(similarity >= threshold[:, None])
    row = flat // similarity.shape[1]
    column = flat - row * similarity.shape[1]
    counts = np.bincount(row, minlength=b)
    # Rows with fewer than k candidates, or with very many (a threshold among ties), are ranked in full.
    full = (counts < k) | (counts > WIDE * max(k, m * SAMPLE_EVERY))
    if full.any():
        keep_rows = ~full[row]
        flat, row, column, counts[full] = flat[keep_rows], row[keep_rows], column[keep_rows], 0
    value = similarity.ravel()[flat]
    starts = np.cumsum(counts) - counts
    width = max(int(counts.max()), k)
    padded = np.full((b, width), -np.inf, dtype=similarity.dtype)
    padded[row, np.arange(row.size) - starts[row]] = value
    kth = np.partition(padded, width - k, axis=1)[:, width - k][row]  # exact where counts >= k
    greater = value > kth
    tie = value == kth
    ties_before = np.cumsum(tie) - tie  # ties in earlier positions, this row's and earlier rows'
    tie_rank = ties_before - ties_before[starts[row]]  # within the row, by column
    wanted = k - np.bincount(row, weights=greater, minlength=b).astype(np.int64)
    keep = greater | (tie & (tie_rank < wanted[row]))
    short = np.flatnonzero(full)
    if not short.size:
        return np.asarray(column[keep], dtype=np.int64)
    exact = np.argsort(-similarity[short], axis=1, kind="stable")[:, :k]
    rows = np.concatenate((row[keep], np.repeat(short, k)))
    columns = np.concatenate((column[keep], exact.ravel()))
    return columns[np.argsort(rows, kind="stable")].astype(np.int64)


def category_columns(state: NeighbourState, categories: Sequence[str]) -> I64:
    """Per category of ``categories`` (a scoring step's table): its column in the state, -1 if new."""
    index = {c: i for i, c in enumerate(state.categories)}
    return np.array([index.get(c, -1) for c in categories] or [0], dtype=np.int64)[: len(categories)]


def ranker_features(
    state: NeighbourState,
    history: PurchaseHistory,
    stats: PairStats,
    cands: Candidates,
    groups: Sequence[str],
    base: F32,
) -> F32:
    """The ranker's input for candidate rows of ``history``'s households (a scoring step) ranked from
    ``stats`` for a trip on ``stats.until_day`` (the origin): ``base`` is their `BASKET_FEATURES`, the
    ``tifu`` and ``trend`` groups come from the state (see the module docstring)."""
    origin = stats.until_day  # the trend is read at the origin even when the state is older
    column = category_columns(state, history.categories)
    parts: dict[str, F32] = {"base": base}
    if "tifu" in groups:
        parts["tifu"] = _tifu_group(state, history, stats, cands, column)
    if "trend" in groups:
        state_cat = column[cands.category]
        trend = state.trend.at(np.maximum(state_cat, 0), origin)
        trend[state_cat < 0] = np.array([0.0, 0.0, 0.0, np.nan, np.nan], dtype=np.float32)
        assert trend.shape[1] == len(TREND_FEATURES)
        parts["trend"] = trend
    return np.hstack([parts[g] for g in groups]).astype(np.float32)


def _tifu_group(
    state: NeighbourState, history: PurchaseHistory, stats: PairStats, cands: Candidates, column: I64
) -> F32:
    tifu, origin = state.tifu, stats.until_day
    own_all = tifu_vectors(
        basket_sequences(history, origin), tifu.group_size, tifu.within_decay, tifu.group_decay, tifu.grouping
    )
    households = np.unique(cands.household)
    # The step's vectors in the state's columns (a category new since the refresh has no column there).
    known = column >= 0
    own = np.zeros((households.size, len(state.categories)))
    own[:, column[known]] = own_all[households][:, known]
    names = np.asarray(history.households, dtype=object)[households]
    row = np.searchsorted(np.asarray(state.households, dtype=object), names) if state.households else None
    neighbours = np.zeros_like(own)
    fresh = np.ones(households.size, dtype=bool)
    if row is not None:
        row = np.minimum(row, len(state.households) - 1)
        # In the state with baskets before its day (a household whose first basket came later has none).
        fresh = ~((np.asarray(state.households, dtype=object)[row] == names) & state.has_vector[row])
        neighbours[~fresh] = state.neighbour_mean[row[~fresh]]
    if fresh.any():
        # Neighbours found now among the state's households from its current vector (it is not among
        # them: not in the state, or there with no vector, which the pool leaves out).
        pool_ids = np.arange(len(state.households), dtype=np.int64)
        strangers = np.full(int(fresh.sum()), -1, dtype=np.int64)
        neighbours[fresh] = nearest_means(own[fresh], state.vectors, strangers, pool_ids, tifu.neighbours)
    at = np.searchsorted(households, cands.household)
    cat = np.maximum(column[cands.category], 0)
    has = column[cands.category] >= 0
    mine = np.where(has, own[at, cat], 0.0)
    theirs = np.where(has, neighbours[at, cat], 0.0)
    score = tifu.alpha * mine + (1 - tifu.alpha) * theirs
    base_score, base_tiebreak = top_frequency_scores(stats, cands)
    gp_rank = within_query_rank(cands.query, base_score - 1e-6 * base_tiebreak)
    return np.column_stack((mine, theirs, score, within_query_rank(cands.query, score), gp_rank)).astype(
        np.float32
    )
