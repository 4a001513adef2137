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

from sync.errors import FeedError, TransportError
from sync.schemas import AckRequest, AckResponse, ChangesPage, ErrorBody

_page_decoder = msgspec.json.Decoder(ChangesPage)
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
        try:
            return _page_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise TransportError(f"{self._base}: changes page is not valid: {exc}") from exc

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
