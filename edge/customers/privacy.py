"""Pseudonymisation, card check codes and the daemon's keys.

Loyalty ids become keyed hashes before anything touches disk: HMAC-SHA256 with the chain's key, so the
same card maps to the same household in every store of the chain (central can join), but nobody without
the key can go back from the hash to the card.

A card's barcode carries a **check code** its printed number lacks (``LOY-000201`` printed,
``LOY-000201-K7Q2M9`` in the barcode): the first `CHECK_LENGTH` Crockford base32 characters of an HMAC
of the number, with a key derived from the chain's pseudonym key, so every store verifies a scanned card
without a database. A session opened with a valid code is "verified" (the shopper has the card);
a typed bare number is not (docs/customers.md, "Verified and unverified sessions").

Session tokens are signed with a **per-store** key of its own (`load_session_key`), never with the
chain-wide pseudonym key: a token made at one store means nothing at another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError

log = logging.getLogger(__name__)

CHECK_LENGTH = 6  # 30 bits: with [kiosk] session opening rate-limited, not guessable for one card
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key

    def household_id(self, loyalty_id: str) -> str:
        digest = hmac.new(self._key, loyalty_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()
        return f"hh_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class CardEntry:
    """What a kiosk sent, read: the card number, and whether a valid check code came with it."""

    card: str
    verified: bool


class CardCheck:
    """Check codes of loyalty cards (module docstring). Keyed by the chain's pseudonym key."""

    def __init__(self, pseudonym_key: bytes) -> None:
        self._key = hmac.new(pseudonym_key, b"storeedge card check v1", hashlib.sha256).digest()

    def code(self, card: str) -> str:
        digest = hmac.new(self._key, card.strip().encode("utf-8"), hashlib.sha256).digest()
        value = int.from_bytes(digest[:8], "big")
        return "".join(_CROCKFORD[(value >> (59 - 5 * i)) & 31] for i in range(CHECK_LENGTH))

    def barcode(self, card: str) -> str:
        """What a chain prints in the card's barcode: ``<number>-<code>``."""
        return f"{card.strip()}-{self.code(card)}"

    def matches(self, card: str, code: str) -> bool:
        given = code.strip().upper().translate(_CONFUSABLE)
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.code(card).encode("ascii"))

    def read(self, entered: str) -> CardEntry:
        """A scanned barcode (``<number>-<code>`` with a valid code) is verified; anything else is a
        typed number, taken as it is (a wrong code makes it a number no card has)."""
        text = entered.strip()
        number, dash, code = text.rpartition("-")
        if dash and number.strip() and len(code) == CHECK_LENGTH and self.matches(number, code):
            return CardEntry(number.strip(), True)
        return CardEntry(text, False)


def load_pseudonym_key(inline: str | None, key_file: Path | None, fallback_file: Path) -> bytes:
    """The key from config, else from the key file, else a per-store key generated once (logged loudly:
    a chain must configure its shared key or central cannot join households across stores)."""
    if inline is not None:
        return inline.encode("utf-8")
    path = key_file or fallback_file
    if path.exists():
        return _read_key(path, "[privacy] pseudonym_key_file")
    if key_file is not None:
        raise ConfigError(f"[privacy] pseudonym_key_file: {path} does not exist")
    key = _create_key(path)
    log.warning(
        "pseudonym_key_generated",
        extra={"path": str(path), "hint": "set [privacy] pseudonym_key_file to the chain key"},
    )
    return key


def load_session_key(key_file: Path | None, fallback_file: Path) -> bytes:
    """This store's key for session tokens: ``[privacy] session_key_file``, else ``session.key`` next to
    the database; created (0600) the first time. Per store on purpose: never share it."""
    path = key_file or fallback_file
    if path.exists():
        return _read_key(path, "[privacy] session_key_file")
    try:
        key = _create_key(path)
    except OSError as exc:
        raise ConfigError(f"[privacy] session_key_file: cannot create {path}: {exc.strerror}") from exc
    log.info("session_key_generated", extra={"path": str(path)})
    return key


def _read_key(path: Path, name: str) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from exc
    if len(key) < 16:
        raise ConfigError(f"{name}: {path} holds fewer than 16 bytes")
    return key


def _create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
