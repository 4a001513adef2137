"""Till receipts (wire format): the daemon's answer to each `store/{store}/pos/{lane}/transaction`.

After the transaction's batch has committed, the daemon publishes on `store/{store}/pos/{lane}/receipt`
(QoS 1) whether it stored the basket, already had it (a resend or a redelivery), or rejected it and
why. A till keeps each transaction until a receipt confirms it and resends it (same ``seq``, ``ts`` and
``basket_id``) when none arrives in time: idempotent ingest drops the copies, so a broker crash that
loses messages it had acknowledged cannot lose a purchase. docs/protocols.md has examples.
"""

from __future__ import annotations

import enum

import msgspec


class ReceiptStatus(enum.StrEnum):
    STORED = "stored"  # committed now
    DUPLICATE = "duplicate"  # committed earlier (a resend or a redelivery): nothing more to do
    REJECTED = "rejected"  # quarantined with ``reason``: fix the till, resending will not help


class PosReceipt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One receipt. ``basket_id``, ``seq`` and ``ts`` echo the transaction's (absent when a rejected
    payload did not carry them readably). Never carries the loyalty id or anything else from the basket."""

    basket_id: str | None = None
    seq: int | None = None
    ts: int | None = None  # the transaction's ts, epoch milliseconds
    status: ReceiptStatus
    reason: str | None = None  # a `RejectReason` value when rejected
    detail: str | None = None  # what the decoder said, card-like digit runs removed


def receipt_topic(store_id: str, lane: str) -> str:
    return f"store/{store_id}/pos/{lane}/receipt"


def transaction_lane(store_id: str, topic: str) -> str | None:
    """The lane of a `store/{store}/pos/{lane}/transaction` topic, else None."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["store", store_id, "pos"] and parts[4] == "transaction":
        return parts[3] or None
    return None
