"""Receipts to tills, published after the transaction's batch committed (wire format: sensors.receipts).

`MqttIngest` hands each POS transaction (or rejected message on a POS transaction topic) to
`TillReceipts.committed` from the writer's commit callback, on the event loop, with its `Fate` (stored,
duplicate, quarantined) as the writer's batch saw it. That only appends to a bounded queue: it never
blocks or fails the writer. A task per MQTT connection (`run`) publishes the queue in order, QoS 1.
When the queue is full the oldest receipt is dropped (counted and logged): the till resends that
transaction and gets a ``duplicate`` receipt instead, so nothing is lost by it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from edge.store.apply import Fate
from sensors.errors import TransportError
from sensors.receipts import PosReceipt, ReceiptStatus, receipt_topic, transaction_lane
from sensors.schemas import PosTransaction, Reading, Rejection, RejectReason

log = logging.getLogger(__name__)

RECEIPT_QUEUE_MAX = 1000  # receipts waiting for the broker; a till resends what it never hears about
RETRY_S = 1.0
_PARSE_MAX_BYTES = 65_536
_DETAIL_MAX = 200
# Runs of 6+ digits (card and loyalty numbers, with or without separators) never leave in a receipt.
_DIGIT_RUN = re.compile(r"\d(?:[\d \-]{4,}\d)")
_json = msgspec.json.Encoder()
_STATUS = {Fate.STORED: ReceiptStatus.STORED, Fate.DUPLICATE: ReceiptStatus.DUPLICATE}


@dataclass(frozen=True, slots=True)
class _Due:
    lane: str
    receipt: PosReceipt


class TillReceipts:
    def __init__(self, store_id: str, queue_max: int = RECEIPT_QUEUE_MAX) -> None:
        self._store_id = store_id
        self._queue: deque[_Due] = deque()
        self._queue_max = queue_max
        self._wakeup = asyncio.Event()
        self.published = 0
        self.dropped = 0

    def wants(self, item: Reading | Rejection) -> bool:
        """Does a till wait for a receipt for this item?"""
        if isinstance(item, PosTransaction):
            return True
        return isinstance(item, Rejection) and transaction_lane(self._store_id, item.origin) is not None

    def committed(self, item: Reading | Rejection, fate: Fate, payload: bytes) -> None:
        """From the writer's commit callback: queue the receipt. Never raises, never blocks."""
        try:
            due = self._due(item, fate, payload)
        except Exception:
            log.exception("receipt_failed")
            return
        if due is None:
            return
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("receipts_dropped", extra={"dropped": self.dropped, "queue_max": self._queue_max})
        self._queue.append(due)
        self._wakeup.set()

    def _due(self, item: Reading | Rejection, fate: Fate, payload: bytes) -> _Due | None:
        if isinstance(item, PosTransaction):
            receipt = PosReceipt(
                basket_id=item.basket_id, seq=item.seq, ts=item.ts_ms, status=ReceiptStatus.STORED
            )
            status = _STATUS.get(fate)
            if status is None:  # valid, but the writer failed to store it: quarantined for replay
                status = ReceiptStatus.REJECTED
                receipt = msgspec.structs.replace(receipt, reason=RejectReason.INTERNAL_ERROR.value)
            return _Due(item.lane, msgspec.structs.replace(receipt, status=status))
        if isinstance(item, Rejection) and (lane := transaction_lane(self._store_id, item.origin)):
            return _Due(lane, _rejected(item, payload))
        return None

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self, publish: Callable[[str, bytes], Awaitable[None]]) -> None:
        """Publish queued receipts in order while connected (cancelled when the connection ends)."""
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            due = self._queue[0]
            try:
                await publish(receipt_topic(self._store_id, due.lane), _json.encode(due.receipt))
            except TransportError as exc:
                log.warning("receipt_publish_failed", extra={"lane": due.lane, "error": str(exc)})
                await asyncio.sleep(RETRY_S)
                continue
            if self._queue and self._queue[0] is due:
                self._queue.popleft()
            self.published += 1


def _rejected(item: Rejection, payload: bytes) -> PosReceipt:
    """A rejection receipt: the reason, the ids the till can match it by, and nothing from the basket."""
    fields: object = None
    if len(payload) <= _PARSE_MAX_BYTES:
        try:
            fields = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            fields = None
    basket_id = seq = ts = None
    secrets: list[str] = []
    if isinstance(fields, dict):
        value = fields.get("basket_id")
        basket_id = value if isinstance(value, str) and 0 < len(value) <= 64 else None
        value = fields.get("seq")
        seq = value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
        value = fields.get("ts")
        ts = value if isinstance(value, int) and not isinstance(value, bool) else None
        secrets = [v for v in (fields.get("loyalty_id"),) if isinstance(v, str) and v]
    return PosReceipt(
        basket_id=basket_id,
        seq=seq,
        ts=ts,
        status=ReceiptStatus.REJECTED,
        reason=item.reason.value,
        detail=scrub(item.detail, secrets),
    )


def scrub(detail: str, secrets: list[str]) -> str:
    """The decoder's detail without the loyalty id or any card-like number in it."""
    for secret in secrets:
        detail = detail.replace(secret, "***")
    return _DIGIT_RUN.sub("***", detail)[:_DETAIL_MAX]
