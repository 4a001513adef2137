"""The purchase-history format: models' reader and the simulator's writer agree, both file kinds
round-trip, and errors name the file and the field at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import HistoryFormatError
from models.history import (
    COLUMN_DTYPES,
    CSV_HEADER,
    HISTORY_FORMAT,
    HISTORY_VERSION,
    PurchaseHistory,
    PurchaseLine,
    canonical_order,
    day_date,
    epoch_day,
    history_from_lines,
    load_history,
    make_history,
    save_history,
    weekday,
)
from simulators import household_history
from simulators.household_history import HouseholdSimulation, write_history


def _same(a: PurchaseHistory, b: PurchaseHistory) -> None:
    assert a.households == b.households
    assert a.categories == b.categories
    for name in COLUMN_DTYPES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.sha256() == b.sha256()


def _lines(h: PurchaseHistory) -> list[tuple[object, ...]]:
    return sorted(
        zip(
            [h.households[i] for i in h.household],
            [h.categories[i] for i in h.category],
            h.day.tolist(),
            h.minute.tolist(),
            h.basket.tolist(),
            h.qty.tolist(),
            h.price.tolist(),
            h.promo.tolist(),
            strict=True,
        )
    )


def test_the_simulator_writes_the_documented_format() -> None:
    assert household_history.HISTORY_FORMAT == HISTORY_FORMAT
    assert household_history.HISTORY_VERSION == HISTORY_VERSION
    assert household_history.CSV_HEADER == CSV_HEADER


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_simulator_writer_and_models_reader_agree(
    small_sim: HouseholdSimulation, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"h{suffix}"
    write_history(small_sim, path)
    loaded = load_history(path)
    assert loaded.n_lines == small_sim.n_lines
    # Every simulated line is there, on the right day, for the right household and category.
    simulated = sorted(
        zip(
            [small_sim.population.households[i].household_id for i in small_sim.household],
            [small_sim.profiles[i].name for i in small_sim.category],
            (small_sim.day + small_sim.start_epoch_day).tolist(),
            small_sim.minute.tolist(),
            small_sim.basket.tolist(),
            small_sim.qty.tolist(),
            small_sim.price.tolist(),
            small_sim.promo.tolist(),
            strict=True,
        )
    )
    assert _lines(loaded) == simulated
    # And models' own writer produces the same content again.
    again = tmp_path / f"again{suffix}"
    save_history(loaded, again)
    _same(loaded, load_history(again))


def test_npz_and_csv_hold_the_same_history(small_history: PurchaseHistory, tmp_path: Path) -> None:
    save_history(small_history, tmp_path / "a.csv")
    from_csv = load_history(tmp_path / "a.csv")
    assert _lines(from_csv) == _lines(small_history)
    # Canonical form: the same content has the same hash whichever file kind it came from (as long as
    # every household and category has a line: a CSV cannot list unused names).
    used = len(np.unique(small_history.household)) == len(small_history.households)
    assert (from_csv.sha256() == small_history.sha256()) == used


def test_history_from_the_daemons_lines() -> None:
    base = epoch_day(day_date(19_000)) * 86_400_000
    lines = [
        PurchaseLine("hA", "milk", base + 9 * 3_600_000, "b1", 2, 1.1),
        PurchaseLine("hA", "bread", base + 9 * 3_600_000, "b1", 1, 2.9, promo=True),
        PurchaseLine("hB", "milk", base + 86_400_000 + 23 * 3_600_000 + 30 * 60_000, "b1", 1, 1.1),
    ]
    history = history_from_lines(lines)
    assert history.households == ("hA", "hB")
    assert history.categories == ("bread", "milk")  # tables are sorted (canonical form)
    assert history.day.tolist() == [19_000, 19_000, 19_001]
    assert [history.categories[c] for c in history.category] == ["bread", "milk", "milk"]
    assert history.minute.tolist() == [540, 540, 1410]
    # Same basket id from two households is two baskets.
    assert len(set(history.basket.tolist())) == 2
    # Store-local time: one hour ahead of UTC moves the late basket to the next day.
    shifted = history_from_lines(lines, utc_offset_minutes=60)
    assert shifted.day.tolist() == [19_000, 19_000, 19_002]
    assert shifted.minute.tolist() == [600, 600, 30]


def test_weekday_is_monday_zero() -> None:
    from datetime import date

    days = np.array([epoch_day(date(2024, 1, 1)), epoch_day(date(2024, 1, 7))])
    assert weekday(days).tolist() == [0, 6]


def test_history_hash_ignores_row_order(small_history: PurchaseHistory) -> None:
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(small_history.n_lines)
    again = make_history(
        small_history.households,
        small_history.categories,
        {name: getattr(small_history, name)[shuffled] for name in COLUMN_DTYPES},
    )
    assert again.sha256() == small_history.sha256()
    assert small_history.before(small_history.last_day).sha256() != small_history.sha256()


def test_bad_files_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(CSV_HEADER) + "\nh1,milk,2024-13-01,10:00,1,1,1.0,0\n")
    with pytest.raises(HistoryFormatError, match=r"bad.csv line 2, field 'date'"):
        load_history(bad)
    bad.write_text(",".join(CSV_HEADER) + "\nh1,milk,2024-01-01,10:00,1,0,1.0,0\n")
    with pytest.raises(HistoryFormatError, match=r"line 2, field 'qty': must be a number > 0"):
        load_history(bad)
    bad.write_text("household,category\n")
    with pytest.raises(HistoryFormatError, match=r"bad.csv line 1: header"):
        load_history(bad)
    with pytest.raises(HistoryFormatError, match=r"missing.npz: cannot read"):
        load_history(tmp_path / "missing.npz")
    with pytest.raises(HistoryFormatError, match=r"unknown history file type '.txt'"):
        load_history(tmp_path / "x.txt")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(HistoryFormatError, match=r"garbage.npz: not a readable .npz"):
        load_history(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, household=np.zeros(1, dtype=np.int32))
    with pytest.raises(HistoryFormatError, match=r"partial.npz: missing array\(s\) category"):
        load_history(partial)


def test_codes_must_point_into_the_tables() -> None:
    columns = {name: np.zeros(1, dtype=dtype) for name, dtype in COLUMN_DTYPES.items()}
    columns["qty"] = np.ones(1, dtype=np.float32)
    columns["category"] = np.array([3])
    with pytest.raises(HistoryFormatError, match="column 'category' has codes outside categories"):
        make_history(["h"], ["milk"], columns)


@pytest.mark.parametrize("seed", range(6))
def test_canonical_order_is_lexsorts_permutation(seed: int) -> None:
    """Both fast paths (rows in order but for the categories within a basket, as the store reads them;
    any order) and the fallback for ranges too wide to pack give exactly np.lexsort's stable order."""
    rng = np.random.default_rng(seed)
    n = 5_000
    household = np.sort(rng.integers(0, 40, n)).astype(np.int32)
    day = rng.integers(-3, 6, n).astype(np.int32)
    minute = rng.integers(0, 3, n).astype(np.int16)  # many ties, down to whole duplicate rows
    basket = rng.integers(0, 30, n).astype(np.int64)
    category = rng.integers(0, 5, n).astype(np.int32)
    columns = {"household": household, "day": day, "minute": minute, "basket": basket, "category": category}
    ordered = {k: v[np.lexsort((basket, minute, day, household))] for k, v in columns.items()}
    wide = dict(columns, basket=basket * 2**56 - 2**60)  # basket x category no longer packs in int64
    for case in (columns, ordered, wide):
        expected = np.lexsort(tuple(case[k] for k in ("category", "basket", "minute", "day", "household")))
        np.testing.assert_array_equal(canonical_order(case), expected)
    assert canonical_order({k: v[:0] for k, v in columns.items()}).size == 0
