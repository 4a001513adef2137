"""`np.lexsort` and `np.unique` for the feature code's integer columns of millions of rows, with the
same results, cheaper on what the histories hold: rows in canonical order (`models.history`: by
household, then time), so keys that are nearly or wholly sorted already.

numpy's stable sort of one int64 key runs through sorted stretches (0.06 s for 5 M nearly sorted keys
where `np.lexsort` on two columns takes 0.7 s; `tests/models/test_sorting.py` checks the equality).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
PACKED_LIMIT = 2**62  # packed keys stay below this (int64, with room for the arithmetic)


def lexsort_pair(primary: npt.NDArray[np.integer], secondary: npt.NDArray[np.number]) -> npt.NDArray[np.intp]:
    """``np.lexsort((secondary, primary))``: by ``primary`` (integers), then ``secondary``, ties in input
    order. One stable sort of a packed int64 key when the two ranges allow it and ``secondary`` holds
    integers (floats that are whole numbers count: days, item counts), else `np.lexsort` itself."""
    if primary.size == 0:
        return np.zeros(0, dtype=np.intp)
    ints: I64
    if np.issubdtype(secondary.dtype, np.integer):
        ints = secondary.astype(np.int64, copy=False)
    else:
        whole = np.isfinite(secondary).all() and (np.abs(secondary) < PACKED_LIMIT).all()
        if not (whole and (np.floor(secondary) == secondary).all()):
            return np.lexsort((secondary, primary))
        ints = secondary.astype(np.int64)  # exact: whole numbers; -0.0 and 0.0 tie, as in lexsort
    low_p, low_s = int(primary.min()), int(ints.min())
    span_p, span_s = int(primary.max()) - low_p + 1, int(ints.max()) - low_s + 1
    if span_p * span_s >= PACKED_LIMIT:
        return np.lexsort((secondary, primary))
    key = primary.astype(np.int64)
    key -= low_p
    key *= span_s
    key += ints
    key -= low_s
    return np.argsort(key, kind="stable")


def unique_ints(keys: I64) -> I64:
    """``np.unique(keys)``, without sorting when ``keys`` are already in order."""
    if keys.size and not np.all(keys[1:] >= keys[:-1]):
        return np.unique(keys)
    first = np.ones(keys.size, dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first]
