"""Central's client for one store's feed: ``GET /sync/v1/changes`` and ``POST /sync/v1/ack`` over aiohttp.

Network failures and unparseable answers raise `TransportError` (retry with backoff); answers the store
gives on purpose (a refused cursor, a wrong token) raise `FeedError` with the store's status, code and
details, so the puller can act on them (adopt a new feed, resume after a gap).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import aiohttp
import msgspec

from sync.change_bodies import MALFORMED_KIND
from sync.errors import FeedError, MalformedPage, TransportError
from sync.schemas import AckRequest, AckResponse, Change, ChangesPage, ErrorBody


class _Envelope(msgspec.Struct, frozen=True):
    """A `ChangesPage` whose changes are decoded one by one (`_read_page`)."""

    store: str
    feed: str
    changes: list[msgspec.Raw]
    next: int
    more: bool
    head: int
    acked: int


class _SeqOnly(msgspec.Struct, frozen=True):
    seq: int


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_change_decoder = msgspec.json.Decoder(Change)
_seq_decoder = msgspec.json.Decoder(_SeqOnly)
_ack_decoder = msgspec.json.Decoder(AckResponse)
_error_decoder = msgspec.json.Decoder(ErrorBody)
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter between half and all of the ceiling; `reset()` after success."""

    minimum: float
    maximum: float
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


class StoreClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}

    async def changes(self, after: int, limit: int, feed: str | None) -> ChangesPage:
        params = {"after": str(after), "limit": str(limit)}
        if feed is not None:
            params["feed"] = feed
        body = await self._request("GET", "/sync/v1/changes", params=params)
        return read_page(body, where=self._base)

    async def ack(self, through: int, feed: str | None) -> AckResponse:
        body = await self._request("POST", "/sync/v1/ack", data=_encoder.encode(AckRequest(through, feed)))
        try:
            return _ack_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise TransportError(f"{self._base}: ack answer is not valid: {exc}") from exc

    async def _request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, data: bytes | None = None
    ) -> bytes:
        url = self._base + path
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(method, url, params=params, data=data, headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if status == 200:
            return body
        try:
            error = _error_decoder.decode(body)
        except msgspec.DecodeError:
            raise TransportError(f"{url}: HTTP {status}: {body[:200]!r}") from None
        raise FeedError(
            status, error.error, error.message, feed=error.feed, head=error.head, acked=error.acked
        )


def read_page(body: bytes, where: str = "store") -> ChangesPage:
    """A changes page, read change by change: a change entry that is not a `Change` but has a ``seq``
    comes through as kind `MALFORMED_KIND` with the entry as its body (central quarantines it and moves
    on); a page whose envelope is unreadable, or an entry without a seq, raises `MalformedPage`."""
    try:
        envelope = _envelope_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedPage(f"{where}: changes page is not valid: {exc}", body) from exc
    changes = []
    for raw in envelope.changes:
        try:
            changes.append(_change_decoder.decode(raw))
        except msgspec.DecodeError as exc:
            try:
                seq = _seq_decoder.decode(raw).seq
            except msgspec.DecodeError:
                raise MalformedPage(f"{where}: a change without a seq: {exc}", body) from exc
            changes.append(Change(seq, 0, MALFORMED_KIND, "", raw))
    e = envelope
    return ChangesPage(e.store, e.feed, changes, next=e.next, more=e.more, head=e.head, acked=e.acked)
