"""Pseudonymisation: loyalty ids become keyed hashes before anything touches disk.

HMAC-SHA256 with the chain's key, so the same card maps to the same household in every store of the
chain (central can join), but nobody without the key can go back from the hash to the card.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from edge.errors import ConfigError

log = logging.getLogger(__name__)


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key

    def household_id(self, loyalty_id: str) -> str:
        digest = hmac.new(self._key, loyalty_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()
        return f"hh_{digest[:32]}"


def load_pseudonym_key(inline: str | None, key_file: Path | None, fallback_file: Path) -> bytes:
    """The key from config, else from the key file, else a per-store key generated once (logged loudly:
    a chain must configure its shared key or central cannot join households across stores)."""
    if inline is not None:
        return inline.encode("utf-8")
    path = key_file or fallback_file
    if path.exists():
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"[privacy] pseudonym_key_file: cannot read {path}: {exc.strerror}") from exc
        if len(key) < 16:
            raise ConfigError(f"[privacy] pseudonym_key_file: {path} holds fewer than 16 bytes")
        return key
    if key_file is not None:
        raise ConfigError(f"[privacy] pseudonym_key_file: {path} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.warning(
        "pseudonym_key_generated",
        extra={"path": str(path), "hint": "set [privacy] pseudonym_key_file to the chain key"},
    )
    return key
