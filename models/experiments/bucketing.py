"""Deterministic assignment of households to experiment arms, bit-for-bit GrowthBook's.

GrowthBook's SDKs hash ``seed + value`` with 32-bit FNV-1a, hash the decimal string of that hash again
(hash version 2), and keep the last four decimal digits as a number in [0, 1). The number falls into
one arm's bucket range or into none (outside the experiment's coverage). Here the seed is the
experiment id and the value is the household pseudonym, so an assignment needs no storage and no
coordination: the store, central and GrowthBook itself all compute the same arm. docs/experiments.md
has a worked example; the tests check GrowthBook's published test vectors (its SDKs' ``cases.json``).
"""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import ModelsError

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
_UINT32 = 0xFFFFFFFF


class ExperimentError(ModelsError, ValueError):
    """An experiment's inputs are unusable: fewer than two arms, arrays of different lengths, a share or
    alpha outside its range. The message names the argument at fault."""


def utf16_code_units(s: str) -> Sequence[int]:
    """The UTF-16 code units of ``s``, as JavaScript's ``charCodeAt`` sees them: a character outside the
    Basic Multilingual Plane is two units (a surrogate pair). Lone surrogates pass through unchanged."""
    if s.isascii():
        return s.encode("ascii")  # iterating bytes yields ints, one per character
    data = s.encode("utf-16-le", errors="surrogatepass")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def fnv1a32(s: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units of ``s`` (GrowthBook's JavaScript SDK, which iterates
    ``charCodeAt``). For ASCII and all of the BMP this equals hashing code points, which is what
    GrowthBook's Python SDK does; the two differ only for characters such as emoji, where this one
    agrees with the JavaScript SDK and therefore with GrowthBook's web UI and documentation."""
    h = FNV_OFFSET_BASIS
    for unit in utf16_code_units(s):
        h = ((h ^ unit) * FNV_PRIME) & _UINT32
    return h


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook's hash version 2: ``fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``, in [0, 1)
    with four decimal places. Hashing twice removes version 1's correlation between experiments whose
    seeds share a suffix."""
    return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


def hash_v1(seed: str, value: str) -> float:
    """GrowthBook's original hash: ``fnv1a32(value + seed) % 1000 / 1000`` (three decimal places). Kept
    for compatibility with experiments defined with ``hashVersion: 1``; new experiments use version 2."""
    return (fnv1a32(value + seed) % 1000) / 1000


def equal_weights(n_arms: int) -> list[float]:
    return [1.0 / n_arms] * n_arms if n_arms >= 1 else []


def bucket_ranges(
    n_arms: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's ``getBucketRanges``: arm ``i`` owns ``[start_i, start_i + coverage * weight_i)`` where
    ``start_i`` is the sum of the earlier weights. Coverage is clamped to [0, 1]; weights that are
    missing, of the wrong length, or not summing to 1 (within 0.01) fall back to equal weights.

    Because each arm's range starts at the same place whatever the coverage, raising the coverage only
    adds households: nobody already in an arm moves to another one."""
    coverage = min(max(coverage, 0.0), 1.0)
    if weights is None or len(weights) != n_arms or not 0.99 <= sum(weights) <= 1.01:
        weights = equal_weights(n_arms)
    ranges: list[tuple[float, float]] = []
    start = 0.0
    for weight in weights:
        ranges.append((start, start + coverage * weight))
        start += weight
    return ranges


def choose_arm(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the first range with ``low <= n < high``, or -1 when ``n`` is in none of them."""
    for i, (low, high) in enumerate(ranges):
        if low <= n < high:
            return i
    return -1


def assign(
    experiment_id: str,
    household: str,
    weights: Sequence[float],
    coverage: float = 1.0,
    *,
    hash_version: int = 2,
) -> int | None:
    """The arm (index into ``weights``; 0 is the control) of ``household`` in ``experiment_id``, or
    ``None`` when the household falls outside ``coverage`` (callers serve it the control and leave it
    out of the analysis). Deterministic: the same inputs give the same arm in every process.

    >>> assign("seed", "a", [0.5, 0.5])  # hash_v2("seed", "a") = 0.0505
    0
    """
    if len(weights) < 2:
        raise ExperimentError(f"weights: an experiment needs at least two arms, got {len(weights)}")
    if any(w < 0 for w in weights):
        raise ExperimentError(f"weights: must not be negative, got {list(weights)}")
    if not household:
        raise ExperimentError("household: an empty pseudonym cannot be assigned")
    if hash_version == 2:
        n = hash_v2(experiment_id, household)
    elif hash_version == 1:
        n = hash_v1(experiment_id, household)
    else:
        raise ExperimentError(f"hash_version: 1 or 2, got {hash_version}")
    arm = choose_arm(n, bucket_ranges(len(weights), coverage, weights))
    return None if arm < 0 else arm
