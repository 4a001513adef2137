"""What the store keeps of inputs it refused (quarantine) or stored with doubts (suspicious), and how
card numbers are kept out of both.

**Card numbers never reach a quarantine row.** `CardRedactor.redact` runs on every rejection the applier
writes (the payload and the text columns), whatever rejected it (the decoder, or the writer isolating
a poisoned reading, whose payload is the encoded reading with its raw ``loyalty_id``):

- a payload that parses as JSON (an object or array, nested or not) keeps its structure: every
  ``loyalty_id`` value, at any depth, becomes the household pseudonym (`Pseudonymiser.household_id`),
  so staff can still tell whose basket failed and "forget me" finds the row; in every other string,
  text matching ``[privacy] card_number_pattern`` becomes the pseudonym of the match. Numbers are left
  alone (a ``ts`` in epoch milliseconds is a 13-digit number);
- anything else (byte-mutated JSON, a Python repr, a serial line, invalid UTF-8) is redacted as bytes:
  the value after any ``loyalty_id`` key, then every pattern match;
- a payload the decoder cut at 4 KiB may end in part of a card: the token at the cut (up to 40 letters,
  digits, ``-``, ``_`` or spaces) is dropped before anything else. Redacted payloads are kept up to
  8 KiB (a pseudonym is longer than a card).

The cost of matching by pattern: outside JSON, a 13-digit timestamp looks like a card number, so a
serial frame's timestamp is redacted too (a mangled JSON payload's ``"ts": <digits>`` is kept).

`forget_household_quarantine` deletes the rows that name a household ("forget me").

**Suspicious** rows are readings stored as they are but flagged for staff: today a till total that
disagrees with the sum of its lines (`check_pos_total`). They reference the purchase, are counted in
``storeedge_suspicious_total{reason}`` and are bounded like quarantine.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from edge.config import DEFAULT_CARD_PATTERN
from edge.store.hooks import HouseholdErased, HouseholdHooks
from sensors.schemas import PosTransaction, Rejection

QUARANTINE_PAYLOAD_MAX = 4096  # what the decoder keeps of a rejected payload (sensors/decode.py)
CUT_MARK = "[card]"  # what replaces a card that cannot be pseudonymised (cut short, no key)

# Till totals are rounded per line and per basket: anything within this of the sum of the lines is fine.
POS_TOTAL_TOLERANCE_ABS = 0.05  # currency units
POS_TOTAL_TOLERANCE_REL = 0.01  # of the sum of the lines

_LOYALTY_VALUE = re.compile(rb"""(loyalty_id['"]?\s*[:=]\s*)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;}\]]+)""")
# The end of a token cut short (at most 40 bytes of it: a card number with separators is shorter).
_CUT_TOKEN = re.compile(rb"[\w -]{1,40}\Z")
# Kept as they are, never matched as a card: a pseudonym (`Pseudonymiser.household_id`: its hex may hold
# a run of digits) and a number under a ``ts`` key (epoch milliseconds, 13 digits) in mangled JSON.
_KEEP = r"""hh_[0-9a-f]{32}|(?<![\w-])["']?ts["']?\s*:\s*\d+"""
_json_encode = msgspec.json.Encoder().encode


class Pseudonymiser(Protocol):
    """What the store needs of `edge.customers.privacy.Pseudonymiser` (the customers capability owns the key)."""

    def household_id(self, loyalty_id: str) -> str: ...


class CardRedactor:
    """Redacts card numbers from what is about to be stored (module docstring).

    Without a pseudonymiser (migrating old rows: no key at hand), cards become `CUT_MARK`."""

    def __init__(self, pseudonymiser: Pseudonymiser | None, pattern: str = DEFAULT_CARD_PATTERN) -> None:
        if re.fullmatch(pattern, ""):
            raise ValueError("card number pattern matches the empty string")
        self._pseudonymiser = pseudonymiser
        # Pseudonyms first: a card pattern must not match digits inside a pseudonym put there before.
        self._bytes_pattern = re.compile(f"({_KEEP})|(?:{pattern})".encode())
        self._text_pattern = re.compile(f"({_KEEP})|(?:{pattern})")

    def redact(self, payload: bytes) -> bytes:
        if len(payload) >= QUARANTINE_PAYLOAD_MAX:
            # Possibly cut by the decoder: whatever was being written at the cut may be part of a card.
            payload = _CUT_TOKEN.sub(b"", payload[:QUARANTINE_PAYLOAD_MAX])
        redacted = self._redact_json(payload)
        if redacted is None:
            redacted = self._redact_bytes(payload)
        if len(redacted) > 2 * QUARANTINE_PAYLOAD_MAX:
            # Pseudonyms are longer than cards, and the writer's payloads are whole readings: cut again,
            # dropping a pseudonym cut in half with the token at the cut.
            redacted = _CUT_TOKEN.sub(b"", redacted[: 2 * QUARANTINE_PAYLOAD_MAX])
        return redacted

    def redact_text(self, text: str) -> str:
        """A short text column (topic, device, detail): the byte rules, without the cut."""
        return self._redact_bytes(text.encode("utf-8", "replace")).decode("utf-8", "replace")

    # -- the two ways ---------------------------------------------------------------------------------
    def _redact_json(self, payload: bytes) -> bytes | None:
        try:
            document = msgspec.json.decode(payload)
            if not isinstance(document, dict | list):
                return None
            return _json_encode(self._walk(document))
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError, TypeError):
            return None

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                self._string(k): self._loyalty(v) if k == "loyalty_id" else self._walk(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str):
            return self._string(value)
        return value

    def _loyalty(self, value: Any) -> Any:
        if isinstance(value, bool) or value is None or value == "":
            return value
        if isinstance(value, str | int | float):
            return self._pseudonym(str(value))
        return CUT_MARK  # a structure where a card number belongs: nothing in it is kept

    def _string(self, text: str) -> str:
        return self._text_pattern.sub(lambda m: m.group(1) or self._pseudonym(m.group()), text)

    def _redact_bytes(self, payload: bytes) -> bytes:
        payload = _LOYALTY_VALUE.sub(self._loyalty_bytes, payload)
        return self._bytes_pattern.sub(
            lambda m: m.group(1) or self._pseudonym(m.group().decode("utf-8", "replace")).encode("ascii"),
            payload,
        )

    def _loyalty_bytes(self, match: re.Match[bytes]) -> bytes:
        key, value = match.group(1), match.group(2)
        quote = value[:1] if value[:1] in (b'"', b"'") else b""
        inner = value[1:] if quote else value
        if quote and inner.endswith(quote) and not inner.endswith(b"\\" + quote):
            inner = inner[:-1]
        elif quote:  # unterminated: cut short, or mangled; no card to pseudonymise
            return key + b'"' + CUT_MARK.encode("ascii") + b'"'
        if not inner.strip() or inner in (b"null", b"None"):
            return match.group()
        pseudonym = self._pseudonym(inner.decode("utf-8", "replace"))
        return key + b'"' + pseudonym.encode("ascii") + b'"'

    def _pseudonym(self, card: str) -> str:
        if self._pseudonymiser is None or not card.strip():
            return CUT_MARK
        return self._pseudonymiser.household_id(card)


def quarantine(
    conn: sqlite3.Connection, redactor: CardRedactor, rejection: Rejection, received_ms: int
) -> None:
    """Keep a rejected input, card numbers redacted. The caller bounds the table (`trim`)."""
    r = rejection
    conn.execute(
        "INSERT INTO quarantine (received_ms, source, origin, device, reason, detail, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            received_ms,
            r.source.value,
            redactor.redact_text(r.origin),
            None if r.device is None else redactor.redact_text(r.device),
            r.reason.value,
            redactor.redact_text(r.detail[:1000]),
            redactor.redact(r.payload),
        ),
    )


def register_hooks(hooks: HouseholdHooks) -> None:
    """ "Forget me" also forgets the rejected till messages that name the household."""
    hooks.on_erasure(_household_erased)


def _household_erased(conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
    return {"quarantine": forget_household_quarantine(conn, event.household)}


def forget_household_quarantine(conn: sqlite3.Connection, household: str) -> int:
    """Delete the quarantine rows that name ``household`` ("forget me"); returns how many."""
    return conn.execute(
        "DELETE FROM quarantine WHERE instr(payload, ?) > 0 OR instr(detail, ?) > 0"
        " OR instr(origin, ?) > 0 OR instr(coalesce(device, ''), ?) > 0",
        (household.encode("ascii"), household, household, household),
    ).rowcount


def trim(conn: sqlite3.Connection, table: str, max_rows: int) -> int:
    """Keep the newest ``max_rows`` rows of quarantine or suspicious; returns how many went."""
    if table not in ("quarantine", "suspicious"):
        raise ValueError(table)
    return conn.execute(
        f"DELETE FROM {table} WHERE id <= (SELECT max(id) FROM {table}) - ?",  # noqa: S608 - one of two names
        (max_rows,),
    ).rowcount


# -- suspicious ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suspicion:
    reason: str  # a stable label: metrics and rows
    detail: str


def check_pos_total(r: PosTransaction) -> Suspicion | None:
    """A total that disagrees with its lines by more than the tills' rounding (module constants)."""
    lines = sum(item.qty * item.unit_price for item in r.items)
    tolerance = POS_TOTAL_TOLERANCE_ABS + POS_TOTAL_TOLERANCE_REL * lines
    if abs(r.total - lines) <= tolerance:
        return None
    return Suspicion(
        "total_mismatch",
        f"total {r.total:.2f} but {len(r.items)} line(s) sum to {lines:.2f}"
        f" (off by {r.total - lines:+.2f}, tolerance {tolerance:.2f})",
    )


def record_suspicious(
    conn: sqlite3.Connection,
    suspicion: Suspicion,
    r: PosTransaction,
    purchase_id: int | None,
    now_ms: int,
    max_rows: int,
) -> None:
    """Flag a stored purchase, in the purchase's transaction, keeping the table bounded."""
    conn.execute(
        "INSERT INTO suspicious (received_ms, ts_ms, device, kind, reason, detail, purchase_id)"
        " VALUES (?, ?, ?, 'pos_transaction', ?, ?, ?)",
        (now_ms, r.ts_ms, r.device, suspicion.reason, suspicion.detail, purchase_id),
    )
    trim(conn, "suspicious", max_rows)
