"""Assignment is GrowthBook's, bit for bit: its published test vectors (``cases.json`` of the GrowthBook
SDKs, spec 0.7.1: "hash", "getBucketRange", "chooseVariation" and assignment cases of "run"), the split
of many households, stability across processes, and independence of concurrent experiments."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from models.experiments import (
    ExperimentError,
    assign,
    bucket_ranges,
    choose_arm,
    fnv1a32,
    hash_v1,
    hash_v2,
    srm,
)

# cases.json "hash": [seed, value, version, expected]
HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_growthbook_hash_vectors(seed: str, value: str, version: int, expected: float) -> None:
    got = hash_v2(seed, value) if version == 2 else hash_v1(seed, value)
    assert got == pytest.approx(expected, abs=1e-12)


def test_unknown_hash_version_is_refused() -> None:  # cases.json: ["abc", "def", 99, null]
    with pytest.raises(ExperimentError, match="hash_version"):
        assign("abc", "def", [0.5, 0.5], hash_version=99)


# cases.json "getBucketRange": [name, [n, coverage, weights], expected ranges]
BUCKET_RANGE_VECTORS = [
    ("normal 50/50", 2, 1, None, [(0, 0.5), (0.5, 1)]),
    ("reduced coverage", 2, 0.5, None, [(0, 0.25), (0.5, 0.75)]),
    ("zero coverage", 2, 0, None, [(0, 0), (0.5, 0.5)]),
    ("4 variations", 4, 1, None, [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("uneven weights", 2, 1, [0.4, 0.6], [(0, 0.4), (0.4, 1)]),
    ("uneven, 3 variations", 3, 1, [0.2, 0.3, 0.5], [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ("uneven, reduced coverage, 3", 3, 0.2, [0.2, 0.3, 0.5], [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ("negative coverage", 2, -0.2, None, [(0, 0), (0.5, 0.5)]),
    ("coverage above 1", 2, 1.5, None, [(0, 0.5), (0.5, 1)]),
    ("weights sum below 1", 2, 1, [0.4, 0.1], [(0, 0.5), (0.5, 1)]),
    ("weights sum above 1", 2, 1, [0.7, 0.6], [(0, 0.5), (0.5, 1)]),
    ("weights length wrong", 4, 1, [0.4, 0.4, 0.2], [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("weights sum almost 1", 2, 1, [0.4, 0.5999], [(0, 0.4), (0.4, 0.9999)]),
]


@pytest.mark.parametrize(("name", "n", "coverage", "weights", "expected"), BUCKET_RANGE_VECTORS)
def test_growthbook_bucket_ranges(
    name: str, n: int, coverage: float, weights: list[float] | None, expected: list[tuple[float, float]]
) -> None:
    got = bucket_ranges(n, coverage, weights)
    assert len(got) == len(expected), name
    for (low, high), (want_low, want_high) in zip(got, expected, strict=True):
        assert low == pytest.approx(want_low, abs=1e-9), name
        assert high == pytest.approx(want_high, abs=1e-9), name


EVEN, REDUCED = [(0, 0.5), (0.5, 1)], [(0, 0.25), (0.5, 0.75)]
CHOOSE_VECTORS = [
    (0.2, EVEN, 0), (0.4, EVEN, 0), (0.6, EVEN, 1), (0.8, EVEN, 1), (0, EVEN, 0), (0.5, EVEN, 1),
    (0.2, REDUCED, 0), (0.4, REDUCED, -1), (0.6, REDUCED, 1), (0.8, REDUCED, -1), (0.25, REDUCED, -1),
    (0.5, REDUCED, 1), (0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),
]  # fmt: skip


@pytest.mark.parametrize(("n", "ranges", "expected"), CHOOSE_VECTORS)
def test_growthbook_choose_variation(n: float, ranges: list[tuple[float, float]], expected: int) -> None:
    assert choose_arm(n, ranges) == expected


# cases.json "run": experiment "my-test" (hash version 1, the SDKs' default; seed = key), users "1".."9".
# None: not in the experiment (outside coverage).
RUN_VECTORS = [
    ("default weights", None, 1.0, 2, [1, 0, 0, 1, 1, 1, 0, 1, 0]),
    ("uneven weights", [0.1, 0.9], 1.0, 2, [1, 1, 0, 1, 1, 1, 0, 1, 1]),
    ("coverage", None, 0.4, 2, [None, 0, 0, None, 1, None, 0, 1, None]),
    ("three way test", None, 1.0, 3, [2, 0, 0, 2, 1, 2, 0, 1, 0]),
]


@pytest.mark.parametrize(("name", "weights", "coverage", "arms", "expected"), RUN_VECTORS)
def test_growthbook_run_assignments(
    name: str, weights: list[float] | None, coverage: float, arms: int, expected: list[int | None]
) -> None:
    w = weights or [1 / arms] * arms
    got = [assign("my-test", str(user), w, coverage, hash_version=1) for user in range(1, 10)]
    assert got == expected, name


def test_growthbook_run_with_seed_and_hash_version_2() -> None:
    # "Uses seed and hash version" / "... with weights/coverage": seed "foo", v2, user "1" -> arm 1
    assert assign("foo", "1", [0.5, 0.5]) == 1
    assert assign("foo", "1", [0.5, 0.5], 0.99) == 1
    assert assign("my-test-3", "1", [0.5, 0.5], hash_version=1) == 0  # "test name - my-test-3"


def reference_fnv1a32(units: list[int]) -> int:
    h = 0x811C9DC5
    for unit in units:
        h = ((h ^ unit) * 0x01000193) % 2**32
    return h


def test_fnv_hashes_utf16_code_units_like_javascript() -> None:
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C  # the FNV-1a 32 reference value for "a"
    assert fnv1a32("é") == reference_fnv1a32([0xE9])  # BMP: one unit = the code point
    emoji = "\U0001f600"  # charCodeAt gives the surrogate pair D83D DE00
    assert fnv1a32(emoji) == reference_fnv1a32([0xD83D, 0xDE00])
    assert fnv1a32(emoji) != reference_fnv1a32([ord(emoji)])  # what hashing code points would give
    assert fnv1a32("x\ud800y") == reference_fnv1a32([0x78, 0xD800, 0x79])  # lone surrogate, as JS


def households(n: int, salt: str = "") -> list[str]:
    """Pseudonyms shaped like the daemon's (`hh_` + 32 hex digits of an HMAC)."""
    return [f"hh_{hashlib.sha256(f'{salt}{i}'.encode()).hexdigest()[:32]}" for i in range(n)]


@pytest.mark.parametrize("weights", [[0.1, 0.9], [1 / 3, 1 / 3, 1 / 3]])
def test_many_households_split_as_weighted(weights: list[float]) -> None:
    arms = [assign("list-ranker-v2", h, weights) for h in households(100_000)]
    counts = np.bincount(np.asarray(arms), minlength=len(weights))
    shares = counts / counts.sum()
    assert np.all(np.abs(shares - weights) < 0.01), f"shares {shares} vs weights {weights}"
    check = srm(counts.tolist(), weights)
    assert not check.mismatch, f"chi2 {check.chi2:.2f}, p {check.p_value:.3g}"


def test_coverage_leaves_households_out_and_growing_it_moves_nobody() -> None:
    pool = households(20_000, "cov")
    small = [assign("exp-cov", h, [0.5, 0.5], 0.2) for h in pool]
    large = [assign("exp-cov", h, [0.5, 0.5], 0.6) for h in pool]
    inside = sum(a is not None for a in small) / len(pool)
    assert abs(inside - 0.2) < 0.01, inside
    assert all(b == a for a, b in zip(small, large, strict=True) if a is not None)


def test_assignment_is_the_same_in_another_process() -> None:
    pool = households(2_000, "proc")
    here = [assign("exp-proc", h, [0.25, 0.75]) for h in pool]
    code = (
        "import json, sys\nfrom models.experiments import assign\n"
        "pool = json.load(sys.stdin)\n"
        "print(json.dumps([assign('exp-proc', h, [0.25, 0.75]) for h in pool]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(pool),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": "."},
    )
    assert json.loads(out.stdout) == here


def test_concurrent_experiments_assign_independently() -> None:
    pool = households(30_000, "indep")
    first = np.asarray([assign("exp-list", h, [0.5, 0.5]) for h in pool])
    second = np.asarray([assign("exp-hazard", h, [0.2, 0.3, 0.5]) for h in pool])
    table = np.zeros((2, 3), dtype=np.int64)
    np.add.at(table, (first, second), 1)
    result = stats.chi2_contingency(table)
    assert result.pvalue > 0.001, (
        f"chi2 {result.statistic:.2f}, p {result.pvalue:.3g}, table {table.tolist()}"
    )
    # and the check has teeth: a second "experiment" that copies the first is caught
    copied = np.zeros((2, 2), dtype=np.int64)
    np.add.at(copied, (first, first), 1)
    assert stats.chi2_contingency(copied).pvalue < 1e-9


@pytest.mark.parametrize(
    ("weights", "household"), [([1.0], "hh_1"), ([0.5, -0.1, 0.6], "hh_1"), ([0.5, 0.5], "")]
)
def test_bad_inputs_are_refused(weights: list[float], household: str) -> None:
    with pytest.raises(ExperimentError):
        assign("exp", household, weights)
