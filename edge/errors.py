"""Errors of the daemon. CLI commands turn these into one clear line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

T = TypeVar("T")


class EdgeError(Exception):
    """Root of every error the edge package raises on purpose."""


class ConfigError(EdgeError):
    """The configuration file is invalid; the message names the file and the key at fault."""


class StoreError(EdgeError):
    """The SQLite store cannot be opened or migrated."""


def field_error(message: str) -> tuple[str, str]:
    """A msgspec validation message as (field path, problem): "Object missing required field `ends`
    - at `$.promotions[0]`" becomes ("promotions[0].ends", "missing (required)"); unknown fields and
    plain "... - at `$.x.y`" messages likewise. The path is "" for the document itself."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text, where = message, "$"
    path = where.rstrip("`").removeprefix("$.").removeprefix("$")
    for marker, problem in (
        ("unknown field `", "unknown key (typo?)"),
        ("missing required field `", "missing (required)"),
    ):
        name = text.partition(marker)[2].rstrip("`")
        if name:
            return (f"{path}.{name}" if path else name), problem
    return path, text


def decode_json_file(path: Path, kind: type[T], what: str) -> T:
    """``path`` decoded as ``kind``; a `ConfigError` naming the file and the field if it cannot be."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        field, problem = field_error(str(exc))
        raise ConfigError(f"{path}: {field or 'document'}: {problem}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
