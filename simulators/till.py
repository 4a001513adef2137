"""A till that is certain: it keeps each transaction until the daemon's receipt confirms it.

The daemon publishes a receipt on `store/{store}/pos/{lane}/receipt` once a transaction committed
(`sensors.receipts`). A transaction the broker acknowledged but that no receipt confirmed within
``timeout_s`` is sent again, unchanged (same ``seq``, ``ts`` and ``basket_id``): the daemon's ledger
key is ``(device, seq, ts)``, so a copy of a stored basket is dropped and answered ``duplicate``. That
covers what a broker crash loses (messages it acknowledged but had not saved or delivered), a receipt
lost on the way back, and the daemon being down. ``rejected`` also ends the wait: resending a message
the daemon cannot accept would never end; it is counted for the summary instead.

The book is bounded (``capacity`` transactions per till); when full the oldest unconfirmed transaction
is given up and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass

import msgspec

from sensors.receipts import PosReceipt, ReceiptStatus
from sensors.schemas import PosTransactionPayload
from simulators.messages import MessageKind, MqttOut

logger = logging.getLogger(__name__)

RECEIPT_TIMEOUT_S = 5.0
RESEND_CAPACITY = 1_000  # unconfirmed transactions one till keeps (a day of one lane is ~500 baskets)

_transaction = msgspec.json.Decoder(PosTransactionPayload)
_receipt = msgspec.json.Decoder(PosReceipt)


@dataclass(slots=True)
class _Unconfirmed:
    out: MqttOut
    basket_id: str
    ts: int
    due: float  # loop time when it is resent unless confirmed
    queued: bool = False  # a resend is waiting in the device's outbox


class TillReceiptBook:
    """One till's transactions awaiting a receipt."""

    def __init__(
        self, topic: str, timeout_s: float = RECEIPT_TIMEOUT_S, capacity: int = RESEND_CAPACITY
    ) -> None:
        self.topic = topic  # where the daemon publishes this till's receipts
        self._timeout_s = timeout_s
        self._capacity = capacity
        self._unconfirmed: OrderedDict[int, _Unconfirmed] = OrderedDict()
        # Confirmed while a resend of it was already queued: that resend is not a new transaction.
        self._confirmed_in_queue: set[int] = set()
        self._changed = asyncio.Event()
        self.receipts: Counter[str] = Counter()
        self.resent = 0
        self.given_up = 0

    def __len__(self) -> int:
        return len(self._unconfirmed)

    @staticmethod
    def tracks(out: MqttOut) -> bool:
        return out.kind is MessageKind.TRANSACTION and out.fault is None

    def sent(self, out: MqttOut) -> bool:
        """The broker acknowledged ``out``; start (or restart) its clock. True if it was its first send."""
        payload = _transaction.decode(out.payload)
        due = asyncio.get_running_loop().time() + self._timeout_s
        entry = self._unconfirmed.get(payload.seq)
        if entry is not None:
            entry.due, entry.queued = due, False
            return False
        if payload.seq in self._confirmed_in_queue:
            self._confirmed_in_queue.discard(payload.seq)
            return False
        if len(self._unconfirmed) >= self._capacity:
            self._unconfirmed.popitem(last=False)
            self.given_up += 1
        ts = payload.ts if isinstance(payload.ts, int) else 0
        self._unconfirmed[payload.seq] = _Unconfirmed(out, payload.basket_id, ts, due)
        return True

    def on_receipt(self, payload: bytes) -> None:
        try:
            receipt = _receipt.decode(payload)
        except msgspec.DecodeError:
            logger.warning("till got an unreadable receipt: %r", payload[:200])
            return
        self.receipts[receipt.status.value] += 1
        entry = self._unconfirmed.get(receipt.seq) if receipt.seq is not None else None
        if entry is None or entry.basket_id != receipt.basket_id:
            return  # a receipt for a malformed message, or a second receipt for a confirmed one
        if receipt.ts is not None and entry.ts and receipt.ts != entry.ts:
            return
        if receipt.status is ReceiptStatus.REJECTED:
            logger.warning("basket %s rejected by the daemon: %s", receipt.basket_id, receipt.reason)
        seq = receipt.seq
        assert seq is not None  # an entry was found by it
        if entry.queued:
            self._confirmed_in_queue.add(seq)
        del self._unconfirmed[seq]
        self._changed.set()

    def due(self) -> list[MqttOut]:
        """Transactions whose receipt is overdue and not already waiting to be resent: mark and return."""
        now = asyncio.get_running_loop().time()
        overdue = [e for e in self._unconfirmed.values() if not e.queued and e.due <= now]
        for entry in overdue:
            entry.queued = True
        self.resent += len(overdue)
        return [e.out for e in overdue]

    def next_due(self) -> float:
        waiting = [e.due for e in self._unconfirmed.values() if not e.queued]
        return min(waiting) if waiting else float("inf")

    async def wait_change(self, until: float) -> None:
        """Until a receipt arrives or loop time ``until``."""
        self._changed.clear()
        delay = until - asyncio.get_running_loop().time()
        if delay <= 0:
            return
        try:
            async with asyncio.timeout(delay):
                await self._changed.wait()
        except TimeoutError:
            pass
