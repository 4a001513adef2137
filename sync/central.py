"""The reference central service: pulls every store's changes into one database and serves signed bundles.

For tests, the demo and small chains; the edge side is the product. One `StorePuller` per store pulls
pages after its committed cursor (prefetching the next page while the current one commits), applies each
page in one PostgreSQL transaction (`sync.central_db.apply_page`: idempotent per (store, feed, seq)) and
acks the store only after that commit. A failure of any kind restarts from the committed cursor after a jittered
backoff, so a crash of either side, a cut WAN, a restarted PostgreSQL or a duplicated page costs time, never
data.

HTTP (aiohttp): ``GET /`` (the operations page, `sync.central_ops`), ``GET /healthz``,
``GET /central/v1/status`` (per-store lag), ``GET /central/v1/bundles/latest?store=ID`` and
``GET /central/v1/bundles/{kind}/{version}/blob?store=ID`` (the store's bearer token);
``GET /central/v1/erasures?store=ID&after=N`` (the same token: the erasure feed, `sync.central_erasures`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import aiohttp
import msgspec
from aiohttp import web

from sync import central_db, central_ops
from sync.bundle_signing import latest_bundles, load_private_key, published_blob
from sync.central_config import CentralConfig, CentralSection, StoreSection
from sync.central_erasures import ErasureFeedRoute
from sync.central_experiments import CentralExperimentRoutes
from sync.central_pool import DB_ERRORS, CentralDb
from sync.central_retrain_routes import RetrainRoutes
from sync.central_rollout import CentralRollout, run_rollouts
from sync.client import Backoff, StoreClient
from sync.errors import BundleError, CentralConfigError, FeedError, MalformedPage, TransportError
from sync.schemas import BundleList, CentralStatusView, CentralStoreView, ChangesPage

log = logging.getLogger(__name__)
T = TypeVar("T")
_json = msgspec.json.Encoder()

# -- pulling one store -------------------------------------------------------------------------------


@dataclass(slots=True)
class PullState:
    """What the puller knows beyond the database, for the status page."""

    state: str = "never"  # never, catching_up, in_sync, unreachable, diverged, unauthorized
    last_error: str | None = None
    head: int = 0
    last_ok_ms: int | None = None


class StorePuller:
    def __init__(
        self, store: StoreSection, db: CentralDb, session: aiohttp.ClientSession, settings: CentralSection
    ) -> None:
        self.store = store
        self._db = db
        self._client = StoreClient(session, store.url, store.token)
        self._settings = settings
        self._backoff = Backoff(settings.backoff_min_s, settings.backoff_max_s)
        self.state = PullState()
        self.pages = 0
        self.applied = 0

    async def run(self) -> None:
        """Pull forever: catch up, wait ``poll_interval_s``, again; any failure backs off and resumes from
        the committed cursor."""
        while True:
            try:
                delay = await self._round()
            except DB_ERRORS as exc:  # recording a refusal or a bad page needs the database too
                delay = self._failed("error", str(exc))
            await asyncio.sleep(delay)

    async def _round(self) -> float:
        """One catch-up and what its failure means; returns how long to wait before the next."""
        try:
            await self.catch_up()
        except MalformedPage as exc:
            return await self._on_malformed(exc)
        except FeedError as exc:
            return await self._on_refusal(exc)
        except (TransportError, *DB_ERRORS) as exc:
            return self._failed("unreachable" if isinstance(exc, TransportError) else "error", str(exc))
        self._backoff.reset()
        return self._settings.poll_interval_s

    async def catch_up(self) -> int:
        """Pull until the store has nothing more; return the changes applied.

        Three things overlap: the next page is fetched while this one commits, and the ack of what has
        committed travels while the next page is applied (at most one ack in flight; acks are cumulative,
        so the next one covers whatever was committed meanwhile). Nothing is acked before its commit.
        """
        name = self.store.id
        committed = await self._db.run(partial(central_db.load_cursor, store=name))
        feed, cursor = committed.feed, committed.cursor
        limit = self._settings.page_limit
        applied = pages = 0
        started = time.monotonic()
        fetch_wait = apply_s = 0.0
        acked_through = -1
        ack: asyncio.Task[object] | None = None
        fetch: asyncio.Task[ChangesPage] | None = asyncio.create_task(
            self._client.changes(cursor, limit, feed)
        )
        try:
            while fetch is not None:
                t0 = time.monotonic()
                page = await fetch
                fetch_wait += time.monotonic() - t0
                fetch = None
                pages += 1
                self.pages += 1
                self.state.head = page.head
                if page.more:  # prefetch the next page while this one commits
                    fetch = asyncio.create_task(self._client.changes(page.next, limit, page.feed))
                self.state.state = "catching_up" if page.more else "in_sync"
                if page.changes or feed is None:
                    t0 = time.monotonic()
                    result = await self._db.run(
                        partial(central_db.apply_page, store=name, page=page, now_ms=_now_ms())
                    )
                    apply_s += time.monotonic() - t0
                    applied += result.inserted
                    self.applied += result.inserted
                    cursor, feed = result.cursor, page.feed
                acked_through = max(acked_through, page.acked)
                if acked_through < cursor and (ack is None or ack.done()):
                    if ack is not None:
                        ack.result()  # a failed ack fails the round: resume from the committed cursor
                    ack = asyncio.create_task(self._client.ack(cursor, feed))
                    acked_through = cursor
                self._succeeded()
            if ack is not None:
                await ack
            if acked_through < cursor:  # committed while the last ack was in flight
                await self._client.ack(cursor, feed)
        finally:
            for task in (fetch, ack):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TransportError, FeedError):
                        await task
        if applied:
            self._log_round(applied, pages, cursor, time.monotonic() - started, fetch_wait, apply_s)
        return applied

    def _succeeded(self) -> None:
        self.state.last_ok_ms = _now_ms()
        self.state.last_error = None
        self._backoff.reset()

    def _log_round(
        self, applied: int, pages: int, cursor: int, elapsed: float, fetch_wait: float, apply_s: float
    ) -> None:
        log.info(
            "central_pulled",
            extra={
                "store": self.store.id,
                "changes": applied,
                "pages": pages,
                "cursor": cursor,
                "seconds": round(elapsed, 3),
                "per_s": round(applied / elapsed) if elapsed else None,
                "fetch_wait_s": round(
                    fetch_wait, 3
                ),  # waiting for the store: the network or the store is slower
                "apply_s": round(apply_s, 3),  # committing here: central is slower
            },
        )

    async def _on_refusal(self, exc: FeedError) -> float:
        name = self.store.id
        details = exc.details
        if exc.code == "feed_mismatch" and isinstance(details.get("feed"), str):
            new_feed = str(details["feed"])
            log.warning("central_store_feed_changed", extra={"store": name, "feed": new_feed})
            await self._db.run(
                partial(central_db.switch_feed, store=name, new_feed=new_feed, now_ms=_now_ms())
            )
            return 0.0
        if exc.code == "cursor_gone" and isinstance(details.get("acked"), int):
            acked = int(str(details["acked"]))
            log.error(
                "central_store_gap", extra={"store": name, "resume_after": acked, "reason": exc.message}
            )
            await self._db.run(
                partial(
                    central_db.skip_to, store=name, resume_after=acked, reason="cursor_gone", now_ms=_now_ms()
                )
            )
            return 0.0
        state = {"cursor_ahead": "diverged", "unauthorized": "unauthorized", "disabled": "unauthorized"}
        return self._failed(state.get(exc.code, "refused"), f"{exc.code}: {exc.message}")

    async def _on_malformed(self, exc: MalformedPage) -> float:
        """A page central cannot read: quarantined (once per distinct error, not at every retry), then
        retried with backoff from the committed cursor; the store keeps everything until it is fixed."""
        error = str(exc)
        if self.state.last_error != error:
            await self._db.run(
                partial(central_db.quarantine_page, store=self.store.id, reason=error, body=exc.body,
                        now_ms=_now_ms())
            )  # fmt: skip
        return self._failed("refused", error)

    def _failed(self, state: str, error: str) -> float:
        delay = self._backoff.next_delay()
        if self.state.last_error != error:
            log.warning(
                "central_pull_failed",
                extra={"store": self.store.id, "error": error, "retry_s": round(delay, 2)},
            )
        self.state.state, self.state.last_error = state, error
        return delay


# -- the service ---------------------------------------------------------------------------------------


class Central:
    """``async with Central(config) as central:`` runs the pullers and the HTTP server until the block ends."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self.db = CentralDb(config.central.dsn, config.origin, config.central.connect_timeout_s)
        self.bundle_dir = config.path(config.central.bundle_dir)
        self.pullers: dict[str, StorePuller] = {}
        self.port: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._tokens = {s.id: s.token for s in config.stores}
        self.rollout: CentralRollout | None = None
        self._key = None
        if config.central.signing_key_file:
            try:
                self._key = load_private_key(config.path(config.central.signing_key_file))
            except BundleError as exc:
                raise CentralConfigError(f"{config.origin}: [central] signing_key_file: {exc}") from exc
            self.rollout = CentralRollout(self.db.run, self.bundle_dir, self._key)
        self.retrains: RetrainRoutes | None = None

    async def __aenter__(self) -> Central:
        c = self.config.central
        await self.db.open()  # connect and migrate before anything else
        timeout = aiohttp.ClientTimeout(
            total=c.request_timeout_s, connect=c.connect_timeout_s, sock_read=c.request_timeout_s
        )
        connector = aiohttp.TCPConnector(limit_per_host=4)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/", self._ops_page)
        app.router.add_get("/central/v1/status", self._status)
        app.router.add_get("/central/v1/bundles/latest", self._bundles_latest)
        app.router.add_get("/central/v1/bundles/{kind}/{version}/blob", self._bundle_blob)
        app.router.add_get("/central/v1/erasures", ErasureFeedRoute(self.db, self._store_auth).handle)
        candidates = self.config.path(c.candidates_dir)
        CentralExperimentRoutes(
            self.db.run, self.bundle_dir, self._admin_ok, self.rollout, candidates
        ).add_to(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, c.host, c.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1]) if self._runner.addresses else c.port
        for store in self.config.stores:
            puller = self.pullers[store.id] = StorePuller(store, self.db, self._session, c)
            self._tasks.append(asyncio.create_task(puller.run(), name=f"pull:{store.id}"))
        sampler = central_ops.sample_lag_forever(self.status, self.db.run, c.lag_sample_s)
        self._tasks.append(asyncio.create_task(sampler, name="lag-sampler"))
        if self.rollout is not None:
            task = run_rollouts(self.rollout, c.experiment_check_s)
            self._tasks.append(asyncio.create_task(task, name="experiment-rollouts"))
        log.info("central_started", extra={"port": self.port, "stores": len(self.config.stores)})
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.retrains is not None:
            await self.retrains.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        await self.db.close()
        log.info("central_stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        async with self:
            await stop.wait()

    # -- status -----------------------------------------------------------------------------------
    async def status(self) -> CentralStatusView:
        rows = {r.store: r for r in await self.db.run(central_db.store_rows)}
        now = _now_ms()
        views = []
        for store in self.config.stores:
            row = rows.get(store.id)
            puller = self.pullers.get(store.id)
            state = puller.state if puller else PullState()
            cursor = row.cursor if row else 0
            head = max(state.head, row.head if row else 0)
            views.append(
                CentralStoreView(
                    store=store.id,
                    url=store.url,
                    state=state.state,
                    feed=row.feed if row else None,
                    cursor=cursor,
                    head=head,
                    behind=max(0, head - cursor),
                    changes=row.changes if row else 0,
                    last_pull_ms=state.last_ok_ms,
                    last_applied_ms=row.last_applied_ms if row else None,
                    lag_s=(now - row.newest_created_ms) / 1000 if row and row.newest_created_ms else None,
                    last_error=state.last_error,
                    gaps=row.gaps if row else 0,
                    bundles=row.bundles if row else {},
                )
            )
        return CentralStatusView(stores=views)

    # -- HTTP -------------------------------------------------------------------------------------
    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "stores": len(self.config.stores)})

    async def _ops_page(self, request: web.Request) -> web.Response:
        c = self.config.central
        return await central_ops.ops_page(request, c.admin_token, self.status, self.db.run, c.lag_sample_s)

    async def _status(self, request: web.Request) -> web.Response:
        token = self.config.central.admin_token
        if token is not None and not _bearer_ok(request, token):
            return web.json_response(
                {"error": "unauthorized", "message": "missing or wrong admin token"}, status=401
            )
        return web.Response(body=_json.encode(await self.status()), content_type="application/json")

    def _admin_ok(self, request: web.Request) -> bool:
        token = self.config.central.admin_token
        return token is None or _bearer_ok(request, token)

    def _store_auth(self, request: web.Request) -> web.Response | None:
        store = request.query.get("store", "")
        token = self._tokens.get(store)
        if token is None or not _bearer_ok(request, token):
            return web.json_response(
                {"error": "unauthorized", "message": "unknown store or wrong bearer token"}, status=401
            )
        return None

    async def _bundles_latest(self, request: web.Request) -> web.Response:
        if (refused := self._store_auth(request)) is not None:
            return refused
        try:
            manifests = await asyncio.to_thread(latest_bundles, self.bundle_dir)
        except BundleError as exc:
            log.exception("central_bundle_dir_unreadable", extra={"error": str(exc)})
            return web.json_response(
                {"error": "internal", "message": "bundle directory unreadable"}, status=500
            )
        return web.Response(body=_json.encode(BundleList(manifests)), content_type="application/json")

    async def _bundle_blob(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._store_auth(request)) is not None:
            return refused
        kind, version = request.match_info["kind"], request.match_info["version"]
        if not kind.isidentifier() or not version.isdigit():
            return web.json_response({"error": "not_found", "message": "no such bundle"}, status=404)
        path = published_blob(self.bundle_dir, kind, int(version))
        if not path.is_file():
            return web.json_response({"error": "not_found", "message": "no such bundle"}, status=404)
        # Not web.FileResponse: it would label a .tar.gz "Content-Encoding: gzip" and clients would inflate
        # the blob on the way, so its sha256 would no longer match the signed one.
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = path.stat().st_size
        await response.prepare(request)
        with path.open("rb") as blob:
            while chunk := await asyncio.to_thread(blob.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _now_ms() -> int:
    return int(time.time() * 1000)


# CentralDb and DB_ERRORS live in sync.central_pool; named here too for callers that know them from here.
__all__ = ["DB_ERRORS", "Central", "CentralDb", "PullState", "StorePuller"]
