"""`models.sorting`: exactly `np.lexsort`'s permutation and `np.unique`'s result, on sorted, nearly
sorted and shuffled keys, with ties, negative values and ranges too wide to pack."""

from __future__ import annotations

import numpy as np
import pytest

from models.sorting import lexsort_pair, unique_ints


@pytest.mark.parametrize("seed", range(4))
def test_lexsort_pair_is_lexsorts_permutation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    primary = rng.integers(-50, 50, 4_000)
    secondary = rng.integers(-3, 4, 4_000)  # many whole ties: their input order must be kept
    in_order = np.lexsort((secondary, primary))
    cases: list[tuple[np.ndarray, np.ndarray]] = [
        (primary, secondary),
        (primary[in_order], secondary[in_order]),  # sorted already
        (np.sort(primary), secondary),  # sorted by the first key only, as the histories' lines are
        (primary * 2**40, secondary * 2**30),  # too wide to pack: np.lexsort itself
        (primary.astype(np.int32), secondary.astype(np.int16)),
        (primary, secondary * 1.0),  # whole floats (days, counts): packed
        (primary, secondary * 0.5),  # fractions: np.lexsort
        (primary, np.where(secondary == 0, -0.0, secondary * 1.0)),  # -0.0 ties with 0.0
        (primary, np.where(secondary == 1, np.nan, secondary * 1.0)),  # NaN last: np.lexsort
    ]
    for p, s in cases:
        np.testing.assert_array_equal(lexsort_pair(p, s), np.lexsort((s, p)))
    assert lexsort_pair(primary[:0], secondary[:0]).size == 0


@pytest.mark.parametrize("seed", range(3))
def test_unique_ints_is_uniques(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = rng.integers(-(2**40), 2**40, 3_000) // 2**36  # repeats
    for case in (keys, np.sort(keys), keys[:1], keys[:0], np.sort(keys)[::-1]):
        np.testing.assert_array_equal(unique_ints(case), np.unique(case))
