"""What actually happened after a cutoff: the ground truth the models are trained and scored on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.history import PurchaseHistory

I64 = npt.NDArray[np.int64]


def first_purchase_days(
    history: PurchaseHistory, household: npt.ArrayLike, category: npt.ArrayLike, start_day: int, end_day: int
) -> I64:
    """Days from ``start_day`` to each pair's first purchase in [start_day, end_day); -1 if none."""
    h = np.asarray(household, dtype=np.int64)
    c = np.asarray(category, dtype=np.int64)
    n_cat = len(history.categories)
    window = (history.day >= start_day) & (history.day < end_day)
    keys = history.household[window].astype(np.int64) * n_cat + history.category[window]
    days = history.day[window].astype(np.int64)
    out = np.full(h.shape, -1, dtype=np.int64)
    if keys.size == 0:
        return out
    order = np.lexsort((days, keys))
    keys, days = keys[order], days[order]
    first = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    uniq, first_day = keys[first], days[first]
    wanted = h * n_cat + c
    pos = np.minimum(np.searchsorted(uniq, wanted), uniq.size - 1)
    hit = uniq[pos] == wanted
    out[hit] = first_day[pos[hit]] - start_day
    return out


def snapshot_days(
    first_day: int, cutoff: int, *, step_days: int = 28, min_history_days: int = 56
) -> list[int]:
    """Training snapshots before ``cutoff``: cutoff - step, cutoff - 2 step, ... while at least
    ``min_history_days`` of history precede them. Their labels come from the days up to the cutoff."""
    found = []
    day = cutoff - step_days
    while day - first_day >= min_history_days:
        found.append(day)
        day -= step_days
    return found
