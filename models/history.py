"""Purchase history: the one record type training and the edge share, and its file format.

A history is columnar: one row per basket line, in numpy arrays of equal length.

| column      | dtype   | meaning                                                                  |
|-------------|---------|--------------------------------------------------------------------------|
| `household` | int32   | index into `households` (pseudonymous ids, never loyalty numbers)         |
| `category`  | int32   | index into `categories` (category names as the store uses them)           |
| `day`       | int32   | calendar day of the basket, days since 1970-01-01 in store-local time     |
| `minute`    | int16   | minute of that day, 0..1439                                               |
| `basket`    | int64   | basket (trip) id, unique within the history                               |
| `qty`       | float32 | quantity (items or packs; > 0)                                            |
| `price`     | float32 | unit price paid (>= 0)                                                    |
| `promo`     | bool    | the line was on promotion                                                 |

On disk it is either an `.npz` (numpy's zip of arrays, loaded with `allow_pickle=False`) holding those
eight columns plus `households` and `categories` (unicode arrays), `format` (the text
`storeedge-purchase-history`) and `version` (1); or a `.csv` with the header
`household,category,date,time,basket,qty,price,promo`, where `date` is ISO (`2017-10-01`), `time` is
`HH:MM`, `promo` is `0`/`1` and household/category are the names themselves. Both load to the same
`PurchaseHistory`, in canonical form (name tables sorted, rows sorted by household, day, minute, basket,
category) so that the training-data hash does not depend on file kind or row order.

`simulators.household_history` writes this format with its own writer (simulators may not import
models); `tests/models/test_models_history.py` round-trips the two.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import HistoryFormatError
from models.sorting import PACKED_LIMIT

HISTORY_FORMAT = "storeedge-purchase-history"
HISTORY_VERSION = 1
CSV_HEADER = ("household", "category", "date", "time", "basket", "qty", "price", "promo")
COLUMN_DTYPES: dict[str, np.dtype[Any]] = {
    "household": np.dtype(np.int32),
    "category": np.dtype(np.int32),
    "day": np.dtype(np.int32),
    "minute": np.dtype(np.int16),
    "basket": np.dtype(np.int64),
    "qty": np.dtype(np.float32),
    "price": np.dtype(np.float32),
    "promo": np.dtype(np.bool_),
}
EPOCH = date(1970, 1, 1)
MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def epoch_day(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def day_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def weekday(days: npt.NDArray[np.integer[Any]] | npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int64]:
    """Monday = 0 .. Sunday = 6 for epoch days (1970-01-01 was a Thursday)."""
    return np.asarray((np.floor(days).astype(np.int64) + 3) % 7, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    """One basket line as the daemon stores it: the input to `history_from_lines`."""

    household: str
    category: str
    ts_ms: int
    basket: str
    qty: float
    unit_price: float
    promo: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class PurchaseHistory:
    """Basket lines in columns (see the module docstring). Build with `make_history` or a loader."""

    households: tuple[str, ...]
    categories: tuple[str, ...]
    household: IntArray
    category: IntArray
    day: IntArray
    minute: npt.NDArray[np.int16]
    basket: npt.NDArray[np.int64]
    qty: FloatArray
    price: FloatArray
    promo: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        _validate(self, "history")

    @property
    def n_lines(self) -> int:
        return int(self.household.shape[0])

    @property
    def first_day(self) -> int:
        if not self.n_lines:
            raise HistoryFormatError("history: empty, it has no first day")
        return int(self.day.min())

    @property
    def last_day(self) -> int:
        if not self.n_lines:
            raise HistoryFormatError("history: empty, it has no last day")
        return int(self.day.max())

    def select(self, mask: npt.NDArray[np.bool_]) -> PurchaseHistory:
        """The lines where ``mask`` is true, with the same household and category tables."""
        return PurchaseHistory(
            self.households,
            self.categories,
            self.household[mask],
            self.category[mask],
            self.day[mask],
            self.minute[mask],
            self.basket[mask],
            self.qty[mask],
            self.price[mask],
            self.promo[mask],
        )

    def before(self, day: int) -> PurchaseHistory:
        """Lines on days strictly before ``day`` (the training side of a cutoff)."""
        return self.select(self.day < day)

    def sha256(self) -> str:
        """A hash of the content (tables and columns in canonical order): the model card's data hash."""
        digest = hashlib.sha256()
        digest.update(f"{HISTORY_FORMAT}/{HISTORY_VERSION}\n".encode())
        digest.update("\x1f".join(self.households).encode())
        digest.update(b"\x1e")
        digest.update("\x1f".join(self.categories).encode())
        digest.update(b"\x1e")
        for name, dtype in COLUMN_DTYPES.items():
            digest.update(np.ascontiguousarray(getattr(self, name), dtype=dtype.newbyteorder("<")).tobytes())
        return digest.hexdigest()


def make_history(
    households: Sequence[str],
    categories: Sequence[str],
    columns: Mapping[str, npt.ArrayLike],
    origin: str = "history",
) -> PurchaseHistory:
    """Validate ``columns`` (the eight of `COLUMN_DTYPES`), convert them to the documented dtypes and
    sort them canonically."""
    missing = [name for name in COLUMN_DTYPES if name not in columns]
    unknown = [name for name in columns if name not in COLUMN_DTYPES]
    if missing or unknown:
        raise HistoryFormatError(f"{origin}: columns missing {missing}, unknown {unknown}")
    raw = {name: columns[name] for name in COLUMN_DTYPES}
    converted: dict[str, npt.NDArray[Any]] = {}
    for name, value in raw.items():
        array = np.asarray(value)
        if array.ndim != 1:
            raise HistoryFormatError(f"{origin}: column {name!r} must be one-dimensional")
        if array.size and name != "promo" and not np.issubdtype(array.dtype, np.number):
            raise HistoryFormatError(f"{origin}: column {name!r} must be numeric, got {array.dtype}")
        integral = name in {"household", "category", "day", "minute", "basket"}
        if (
            integral
            and array.size
            and not np.issubdtype(array.dtype, np.integer)
            and not np.all(np.floor(array) == array)
        ):
            raise HistoryFormatError(f"{origin}: column {name!r} must hold integers")
        converted[name] = array.astype(COLUMN_DTYPES[name], copy=False)
    lengths = {name: array.shape[0] for name, array in converted.items()}
    if len(set(lengths.values())) > 1:
        raise HistoryFormatError(f"{origin}: columns differ in length: {lengths}")
    # Canonical form: name tables sorted, rows sorted; the same content always gives the same arrays.
    households, converted["household"] = _sorted_table(
        households, converted["household"], "households", origin
    )
    categories, converted["category"] = _sorted_table(categories, converted["category"], "categories", origin)
    order = canonical_order(converted)
    s = {name: np.ascontiguousarray(array[order]) for name, array in converted.items()}
    history = PurchaseHistory(
        tuple(households),
        tuple(categories),
        s["household"],
        s["category"],
        s["day"],
        s["minute"],
        s["basket"],
        s["qty"],
        s["price"],
        s["promo"],
    )
    _validate(history, origin)
    return history


def canonical_order(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.intp]:
    """The permutation that sorts rows by household, day, minute, basket, category (stable): that of
    ``np.lexsort`` on the five, as `np.lexsort` on two packed int64 keys where their ranges allow it
    (or one, when the rows are in order but for the categories within a basket, as the store's reads
    are: 1.45 s -> about 0.2 s at 5 M lines), else ``np.lexsort`` itself."""
    keys = [np.asarray(columns[name]) for name in ("household", "day", "minute", "basket", "category")]
    if not keys[0].size:
        return np.arange(0, dtype=np.intp)
    low = [int(k.min()) for k in keys]
    span = [int(k.max()) - lo + 1 for k, lo in zip(keys, low, strict=True)]
    if span[0] * span[1] * span[2] >= PACKED_LIMIT or span[3] * span[4] >= PACKED_LIMIT:
        return np.lexsort(keys[::-1])
    household, day, minute, basket, category = keys
    # Packed in place (each temporary of 5 M int64 is 40 MB of fresh pages, which cost as much as the
    # arithmetic): household, day, minute in one key.
    first = household.astype(np.int64)
    first -= low[0]
    first *= span[1]
    first += day
    first -= low[1]
    first *= span[2]
    first += minute
    first -= low[2]
    step, basket_step = np.diff(first), np.diff(basket)
    if np.all((step > 0) | ((step == 0) & (basket_step >= 0))) and category.size * span[4] < PACKED_LIMIT:
        # Already in order but for the categories within a basket (the store's reads): one stable sort
        # of (basket's rank, category), nearly in order.
        key = np.zeros(category.size, dtype=np.int64)
        np.cumsum((step != 0) | (basket_step != 0), out=key[1:])
        del step, basket_step
        key *= span[4]
        key += category
        key -= low[4]
        return np.argsort(key, kind="stable")
    del step, basket_step
    second = basket.astype(np.int64)  # basket, category
    second -= low[3]
    second *= span[4]
    second += category
    second -= low[4]
    return np.lexsort((second, first))


def _sorted_table(
    names: Sequence[str], codes: npt.NDArray[np.int32], table: str, origin: str
) -> tuple[list[str], npt.NDArray[np.int32]]:
    listed = [str(name) for name in names]
    if len(set(listed)) != len(listed):
        raise HistoryFormatError(f"{origin}: {table} has duplicate names")
    if codes.size and (codes.min() < 0 or codes.max() >= len(listed)):
        column = "household" if table == "households" else "category"
        raise HistoryFormatError(
            f"{origin}: column {column!r} has codes outside {table} (0..{len(listed) - 1})"
        )
    order = sorted(range(len(listed)), key=listed.__getitem__)
    new_code = np.empty(len(listed), dtype=np.int32)
    new_code[order] = np.arange(len(listed), dtype=np.int32)
    return [listed[i] for i in order], new_code[codes] if codes.size else codes


def _validate(history: PurchaseHistory, origin: str) -> None:
    n = history.household.shape[0]
    for name, dtype in COLUMN_DTYPES.items():
        array = getattr(history, name)
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != (n,):
            raise HistoryFormatError(f"{origin}: column {name!r} must be a {dtype} array of length {n}")
    for table, column in (("households", "household"), ("categories", "category")):
        names: tuple[str, ...] = getattr(history, table)
        if len(set(names)) != len(names):
            raise HistoryFormatError(f"{origin}: {table} has duplicate names")
        codes = getattr(history, column)
        if n and (codes.min() < 0 or codes.max() >= len(names)):
            raise HistoryFormatError(
                f"{origin}: column {column!r} has codes outside {table} (0..{len(names) - 1})"
            )
    if n:
        if history.minute.min() < 0 or history.minute.max() > 1439:
            raise HistoryFormatError(f"{origin}: column 'minute' must be within 0..1439")
        if not np.all(history.qty > 0):
            raise HistoryFormatError(f"{origin}: column 'qty' must be > 0")
        if not np.all(history.price >= 0) or not np.all(np.isfinite(history.price)):
            raise HistoryFormatError(f"{origin}: column 'price' must be finite and >= 0")


def empty_history(households: Sequence[str] = (), categories: Sequence[str] = ()) -> PurchaseHistory:
    return make_history(
        households, categories, {name: np.zeros(0, dtype=dtype) for name, dtype in COLUMN_DTYPES.items()}
    )


def history_from_lines(lines: Iterable[PurchaseLine], *, utc_offset_minutes: int = 0) -> PurchaseHistory:
    """Build a history from the daemon's basket lines (ts in epoch ms, shifted to store-local time)."""
    households: dict[str, int] = {}
    categories: dict[str, int] = {}
    baskets: dict[tuple[str, str], int] = {}
    rows: list[tuple[int, int, int, int, int, float, float, bool]] = []
    for line in lines:
        local_ms = line.ts_ms + utc_offset_minutes * MS_PER_MINUTE
        day, rest = divmod(local_ms, MS_PER_DAY)
        rows.append(
            (
                households.setdefault(line.household, len(households)),
                categories.setdefault(line.category, len(categories)),
                day,
                rest // MS_PER_MINUTE,
                baskets.setdefault((line.household, line.basket), len(baskets)),
                line.qty,
                line.unit_price,
                line.promo,
            )
        )
    if not rows:
        return empty_history(list(households), list(categories))
    h, c, d, m, b, q, p, promo = (np.asarray(values) for values in zip(*rows, strict=True))
    return make_history(
        list(households),
        list(categories),
        {
            "household": h,
            "category": c,
            "day": d,
            "minute": m,
            "basket": b,
            "qty": q,
            "price": p,
            "promo": promo,
        },
        origin="purchase lines",
    )


# ---------------------------------------------------------------------------------------------------
# Files.


def save_history(history: PurchaseHistory, path: Path) -> None:
    """Write ``history`` as `.npz` or `.csv` (by the file's suffix)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays: dict[str, Any] = {name: getattr(history, name) for name in COLUMN_DTYPES}
        arrays["households"] = np.asarray(history.households, dtype=np.str_)
        arrays["categories"] = np.asarray(history.categories, dtype=np.str_)
        arrays["format"] = np.asarray(HISTORY_FORMAT)
        arrays["version"] = np.asarray(HISTORY_VERSION)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for i in range(history.n_lines):
                minute = int(history.minute[i])
                writer.writerow(
                    (
                        history.households[history.household[i]],
                        history.categories[history.category[i]],
                        day_date(int(history.day[i])).isoformat(),
                        f"{minute // 60:02d}:{minute % 60:02d}",
                        int(history.basket[i]),
                        _number(float(history.qty[i])),
                        _number(float(history.price[i])),
                        int(history.promo[i]),
                    )
                )
    else:
        raise HistoryFormatError(f"{path}: unknown history file type {suffix!r} (use .npz or .csv)")


def _number(value: float) -> str:
    # float32 values printed with enough digits to round-trip exactly.
    return np.format_float_positional(np.float32(value), trim="-")


def load_history(path: Path) -> PurchaseHistory:
    """Read a history file (`.npz` or `.csv`); errors name the file and the field at fault."""
    suffix = path.suffix.lower()
    if suffix not in {".npz", ".csv"}:
        raise HistoryFormatError(f"{path}: unknown history file type {suffix!r} (use .npz or .csv)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryFormatError(f"{path}: cannot read history file: {exc.strerror}") from exc
    if suffix == ".npz":
        return _load_npz(data, str(path))
    return _load_csv(data, str(path))


def _load_npz(data: bytes, origin: str) -> PurchaseHistory:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise HistoryFormatError(f"{origin}: not a readable .npz file: {exc}") from exc
    missing = [
        name
        for name in (*COLUMN_DTYPES, "households", "categories", "format", "version")
        if name not in arrays
    ]
    if missing:
        raise HistoryFormatError(f"{origin}: missing array(s) {', '.join(missing)}")
    if str(arrays["format"]) != HISTORY_FORMAT:
        raise HistoryFormatError(
            f"{origin}: field 'format' is {str(arrays['format'])!r}, expected {HISTORY_FORMAT!r}"
        )
    if int(arrays["version"]) != HISTORY_VERSION:
        raise HistoryFormatError(
            f"{origin}: field 'version' is {int(arrays['version'])}, this code reads {HISTORY_VERSION}"
        )
    for table in ("households", "categories"):
        if arrays[table].dtype.kind != "U":
            raise HistoryFormatError(f"{origin}: array {table!r} must hold text")
    return make_history(
        [str(name) for name in arrays["households"]],
        [str(name) for name in arrays["categories"]],
        {name: arrays[name] for name in COLUMN_DTYPES},
        origin=origin,
    )


def _load_csv(data: bytes, origin: str) -> PurchaseHistory:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HistoryFormatError(f"{origin}: not UTF-8 text: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise HistoryFormatError(f"{origin} line 1: header must be {','.join(CSV_HEADER)}")
    households: dict[str, int] = {}
    categories: dict[str, int] = {}
    columns: dict[str, list[Any]] = {name: [] for name in COLUMN_DTYPES}
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(CSV_HEADER):
            raise HistoryFormatError(
                f"{origin} line {number}: expected {len(CSV_HEADER)} fields, got {len(row)}"
            )
        fields = dict(zip(CSV_HEADER, row, strict=True))
        for name in ("household", "category"):
            if not fields[name]:
                raise HistoryFormatError(f"{origin} line {number}, field {name!r}: empty")
        columns["household"].append(households.setdefault(fields["household"], len(households)))
        columns["category"].append(categories.setdefault(fields["category"], len(categories)))
        columns["day"].append(_csv_field(origin, number, "date", fields, _parse_date))
        columns["minute"].append(_csv_field(origin, number, "time", fields, _parse_time))
        columns["basket"].append(_csv_field(origin, number, "basket", fields, int))
        columns["qty"].append(_csv_field(origin, number, "qty", fields, _parse_positive))
        columns["price"].append(_csv_field(origin, number, "price", fields, _parse_price))
        columns["promo"].append(_csv_field(origin, number, "promo", fields, _parse_flag))
    return make_history(
        list(households),
        list(categories),
        {name: np.asarray(values, dtype=COLUMN_DTYPES[name]) for name, values in columns.items()},
        origin=origin,
    )


def _csv_field(origin: str, number: int, name: str, fields: dict[str, str], parse: Any) -> Any:
    try:
        return parse(fields[name].strip())
    except ValueError as exc:
        raise HistoryFormatError(f"{origin} line {number}, field {name!r}: {exc}") from exc


def _parse_date(text: str) -> int:
    try:
        return epoch_day(date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _parse_time(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return int(hours) * 60 + int(minutes)


def _parse_positive(text: str) -> float:
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"must be a number > 0, got {text!r}")
    return value


def _parse_price(text: str) -> float:
    value = float(text)
    if not value >= 0 or not np.isfinite(value):
        raise ValueError(f"must be a number >= 0, got {text!r}")
    return value


def _parse_flag(text: str) -> bool:
    if text not in {"0", "1"}:
        raise ValueError(f"must be 0 or 1, got {text!r}")
    return text == "1"
