"""A till's receipt book: a receipt that arrives while a resend of its basket is already queued makes
that resend a repeat, not a new transaction (it was counted as a second basket before)."""

from __future__ import annotations

import json

from simulators.messages import MessageKind, MqttOut
from simulators.till import TillReceiptBook


def transaction(seq: int) -> MqttOut:
    body = {"ts": 1_795_514_400_000 + seq, "seq": seq, "basket_id": f"b-{seq}", "total": 1.5,
            "items": [{"sku": "1001", "qty": 1, "unit_price": 1.5}]}  # fmt: skip
    return MqttOut(
        "pos-1", "store/demo/pos/1/transaction", json.dumps(body).encode(), MessageKind.TRANSACTION
    )


def receipt(seq: int) -> bytes:
    return json.dumps(
        {"basket_id": f"b-{seq}", "seq": seq, "ts": 1_795_514_400_000 + seq, "status": "stored"}
    ).encode()


async def test_a_receipt_for_a_basket_whose_resend_is_queued_makes_the_resend_a_repeat() -> None:
    book = TillReceiptBook("store/demo/pos/1/receipt", timeout_s=0.0)
    out = transaction(7)
    assert book.sent(out) is True  # the first send
    assert book.due() == [out]  # overdue: a resend is queued
    book.on_receipt(receipt(7))  # ... and the first send's receipt arrives
    assert book.sent(out) is False  # the queued resend goes out: not a new transaction
    assert len(book) == 0  # and nothing waits for a receipt
    assert book.sent(transaction(8)) is True  # a new basket still counts


async def test_a_receipt_without_a_queued_resend_simply_confirms() -> None:
    book = TillReceiptBook("store/demo/pos/1/receipt", timeout_s=60.0)
    assert book.sent(transaction(1)) is True
    book.on_receipt(receipt(1))
    assert len(book) == 0
    assert book.sent(transaction(1)) is True  # sent again later (a new session of the till): tracked anew
