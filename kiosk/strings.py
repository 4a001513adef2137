"""Every word a shopper sees, looked up by key in one catalogue per language (`kiosk/locales/*.toml`).

A second language is one more file: `kiosk/locales/<code>.toml` with the same keys as `en.toml`
(`tests/kiosk/test_kiosk_strings.py` checks that every key and placeholder is there). A key missing
from a translation falls back to English, so a half-done file never shows a raw key.

The app picks the language once (`use(settings.language)` in `build_app`); screens call `t(key)`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LANGUAGE",
    "Catalogue",
    "category_name",
    "current",
    "languages",
    "load",
    "money",
    "name_in",
    "t",
    "use",
    "with_currency",
]

LOCALES = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"
# The symbol shoppers know; any other ISO code is shown as itself ("CHF 1.50").
CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "PLN": "zł", "SEK": "kr", "DKK": "kr"}
DEFAULT_CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's messages (flat keys such as ``consent.title``) and category names."""

    language: str
    messages: Mapping[str, str]
    categories: Mapping[str, str]

    def text(self, key: str, **values: object) -> str:
        return self.messages[key].format(**values) if values else self.messages[key]

    def category(self, code: str) -> str:
        """A category code (`soft-drinks`) in words (`Soft drinks`); unknown codes are made readable."""
        known = self.categories.get(code)
        if known is not None:
            return known
        words = " ".join(part for part in re.split(r"[-_\s]+", code) if part)
        return words[:1].upper() + words[1:]

    def name_in(self, text: str, code: str) -> str:
        """`text` from the daemon ("you buy soft-drinks every week") with the code as words."""
        if not code or code not in text:
            return text
        name = self.category(code)
        if self.messages["format.name_in_sentence"] == "lower":
            name = name[:1].lower() + name[1:]
        return re.sub(rf"(?<![\w-]){re.escape(code)}(?![\w-])", lambda _: name, text)

    def money(self, amount: float, currency: str = DEFAULT_CURRENCY) -> str:
        """`1.5` -> "€1.50" (English) or "1,50 €" (German): the language decides the shape."""
        symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency)
        number = f"{amount:.2f}".replace(".", self.messages["format.decimal_point"])
        return self.messages["format.price"].format(symbol=symbol, amount=number)


def languages() -> list[str]:
    """The languages there is a catalogue for."""
    return sorted(path.stem for path in LOCALES.glob("*.toml"))


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _read(language: str) -> tuple[dict[str, str], dict[str, str]]:
    path = LOCALES / f"{language}.toml"
    if not path.is_file():
        raise ValueError(f"no kiosk language {language!r} (have: {', '.join(languages())})")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    categories = {str(k): str(v) for k, v in data.pop("categories", {}).items()}
    return _flatten(data), categories


@cache
def load(language: str) -> Catalogue:
    """The catalogue for `language`, with English under it for any key the file lacks."""
    messages, categories = _read(DEFAULT_LANGUAGE)
    if language != DEFAULT_LANGUAGE:
        own_messages, own_categories = _read(language)
        messages |= own_messages
        categories |= own_categories
    return Catalogue(language, messages, categories)


_current = [load(DEFAULT_LANGUAGE)]


def use(language: str) -> Catalogue:
    """Make `language` the kiosk's language (one per process: the app sets it at start)."""
    _current[0] = load(language)
    return _current[0]


def current() -> Catalogue:
    return _current[0]


def t(key: str, **values: object) -> str:
    """The current language's text for `key`, with ``{placeholders}`` filled in."""
    return _current[0].text(key, **values)


def category_name(code: str) -> str:
    return _current[0].category(code)


def money(amount: float, currency: str = DEFAULT_CURRENCY) -> str:
    return _current[0].money(amount, currency)


def name_in(text: str, code: str) -> str:
    return _current[0].name_in(text, code)


# A bare price in free text from the store's promotions file: "2 for 1.50" (not "1.5 kg", not "20%").
_BARE_PRICE = re.compile(r"(?<![\d.,€£$])(\d+[.,]\d{2})(?![\d%]|\s*(?:kg|g|l|ml|cl|%|€|£|\$))")


def with_currency(text: str, currency: str = DEFAULT_CURRENCY) -> str:
    """Prices written without a currency ("Milk: 2 for 1.80") as the store's money ("€1.80")."""
    return _BARE_PRICE.sub(lambda m: money(float(m.group(1).replace(",", ".")), currency), text)
