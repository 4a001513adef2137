"""The nightly run's sorts against the numpy calls they replace, alternating in one run.

    .venv/bin/python bench/sorting.py            # 20,000 simulated households x 365 days (~5 M lines)
    .venv/bin/python bench/sorting.py --quick    # 1,000 households (seconds)

On a simulated store's purchase lines, in the order the daemon reads them (by household and time, the
categories within a basket in no order: `edge.store.history_read`):

* `models.history.canonical_order` against the five-key `np.lexsort` it stands for;
* `models.features.summarise` (every scoring step's pair statistics) with `models.sorting` against the
  same function with `np.lexsort` / `np.unique` put back.

Each pair is checked equal (the same permutation; every field of the statistics), then timed
``--repeats`` times, alternating. Prints a table of medians and their ratio (new / numpy) and writes
JSON (default bench/results/sorting.json). The whole nightly run is `bench/customers.py --nightly`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_BENCH_DIR = Path(__file__).resolve().parent
if str(_BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH_DIR.parent))

from bench.models import history_of, simulate  # noqa: E402
from models import features  # noqa: E402
from models.history import PurchaseHistory, canonical_order  # noqa: E402

KEYS = ("household", "day", "minute", "basket", "category")


def as_read(history: PurchaseHistory, seed: int) -> dict[str, np.ndarray]:
    """The history's key columns as the store reads them: categories shuffled within each basket."""
    rng = np.random.default_rng(seed)
    order = np.lexsort(
        (rng.random(history.n_lines), history.basket, history.minute, history.day, history.household)
    )
    return {k: getattr(history, k)[order] for k in KEYS}


@contextmanager
def numpy_sorts() -> Iterator[None]:
    """`models.features` with the numpy calls `models.sorting` replaced."""
    saved = features.lexsort_pair, features.unique_ints
    features.lexsort_pair = lambda primary, secondary: np.lexsort((secondary, primary))  # type: ignore[assignment]
    features.unique_ints = np.unique  # type: ignore[assignment]
    try:
        yield
    finally:
        features.lexsort_pair, features.unique_ints = saved


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="1,000 households")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/sorting.json"))
    args = parser.parse_args()
    households = 1_000 if args.quick else args.households
    history = history_of(simulate(households, 30, 365, seed=0))
    read = as_read(history, seed=0)
    until = history.last_day + 1

    def statistics_with_numpy() -> Any:
        with numpy_sorts():
            return features.summarise(history, until)

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "canonical order": (
            lambda: np.lexsort(tuple(read[k] for k in KEYS[::-1])),
            lambda: canonical_order(read),
        ),
        "pair statistics": (statistics_with_numpy, lambda: features.summarise(history, until)),
    }
    rows = {}
    for name, (baseline, new) in cases.items():
        seconds: dict[str, list[float]] = {"numpy": [], "new": []}
        for _ in range(args.repeats):
            t_base, expected = timed(baseline)
            t_new, got = timed(new)
            seconds["numpy"].append(t_base)
            seconds["new"].append(t_new)
        if isinstance(expected, np.ndarray):
            assert np.array_equal(expected, got), name
        else:
            for field in expected.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(expected, field), getattr(got, field), err_msg=field)
        numpy_s, new_s = statistics.median(seconds["numpy"]), statistics.median(seconds["new"])
        rows[name] = {
            "numpy_s": round(numpy_s, 3),
            "new_s": round(new_s, 3),
            "ratio": round(new_s / numpy_s, 3),
        }
        rows[name]["runs"] = {k: [round(x, 3) for x in v] for k, v in seconds.items()}
    print(f"{history.n_lines:,} lines of {households:,} households; medians of {args.repeats}, alternating")
    print(f"{'':18}{'numpy s':>10}{'new s':>10}{'new/numpy':>11}")
    for name, row in rows.items():
        print(f"{name:18}{row['numpy_s']:>10.3f}{row['new_s']:>10.3f}{row['ratio']:>10.3f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"lines": history.n_lines, "households": households, "results": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
