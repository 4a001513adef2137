"""The daemon's side of sync with central: the changes feed, acks, bundle downlink and the erasure feed.

`SyncService` is what the daemon wires in: HTTP routes for central to pull from and background tasks.
The logic lives in `sync` (paging, cursors, acks, compaction, bundles); this module only wires it to the
daemon: pages are read on a read-only connection on its own thread, every write (acks, compaction,
bundle reports) goes through the single writer.

Routes: ``GET /sync/v1/changes``, ``POST /sync/v1/ack``, ``GET /sync/v1/status`` (bearer ``[sync] token``)
and ``GET /api/v1/sync`` (the same status for staff, behind the staff token).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import msgspec
from aiohttp import web

from edge.config import Config
from edge.http.sessions import SessionSigner
from edge.metrics import Counter, Gauge, IngestMetrics
from edge.store.db import ReadThread, connect
from edge.store.hooks import HouseholdHooks
from edge.store.writer import StoreWriter
from edge.uplink.bundle_checks import DAEMON_CHECKS
from edge.uplink.erasures import ErasurePoller, store_household_hooks
from sync import feed
from sync.bundle_install import BundleInstaller, BundlePoller, InstallResult, record_bundle_event
from sync.bundle_store import BundleStore
from sync.compaction import CompactionPolicy, compact_step
from sync.errors import FeedError
from sync.outbox import OutboxStatus, status
from sync.schemas import ActiveBundleView, BundleEventView, SyncStatusView

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
_json = msgspec.json.Encoder()
# Acked rows are deleted in steps of TRIM_ROWS, one writer job each (a bare primary-key range delete since
# schema v8: ~1 ms), with a pause between steps so that live ingest batches mostly commit on their own
# instead of each carrying a trim; at most ~2,000 rows / 12 ms, still faster than a catch-up acks rows.
TRIM_ROWS = 2000
TRIM_PAUSE_S = 0.01
# While trimming, the WAL is checkpointed PASSIVE from a connection on its own thread at most this often.
# Deleting tens of thousands of acked rows a second fills the WAL fast, and SQLite's automatic checkpoint
# (every 1,000 WAL pages) runs inside whichever commit crosses the mark: the writer's, so an ingest
# batch waited for the copy and the database fsync (100-200 ms on the 2-core box: the p99 of live ingest
# during a catch-up). A PASSIVE checkpoint never blocks the writer or readers; the writer's automatic
# one then finds the frames already copied. (Writer-wide, this belongs next to the writer: see the
# docs, "Benchmark".)
CHECKPOINT_EVERY_S = 0.25


class SyncMetrics:
    """Sync's series, registered on the daemon's registry (docs/sync.md lists them)."""

    def __init__(self, metrics: IngestMetrics, current: Callable[[], OutboxStatus | None]) -> None:
        r = metrics.registry

        def read(field: Callable[[OutboxStatus], float]) -> Callable[[], float]:
            return lambda: field(s) if (s := current()) is not None else 0.0

        r.register(
            Gauge(
                "storeedge_sync_pending_rows", "Changes central has not acked.", read=read(lambda s: s.rows)
            )
        )
        r.register(
            Gauge(
                "storeedge_sync_pending_bytes",
                "Bytes of changes central has not acked.",
                read=read(lambda s: s.pending_bytes),
            )
        )
        r.register(
            Gauge(
                "storeedge_sync_oldest_pending_seconds",
                "Age of the oldest change central has not acked.",
                read=read(lambda s: s.oldest_age_s() or 0.0),
            )
        )
        r.register(
            Gauge("storeedge_sync_acked_seq", "The durable ack cursor.", read=read(lambda s: s.acked_seq))
        )
        self.pages = r.register(Counter("storeedge_sync_pages_served_total", "Changes pages served."))
        self.changes = r.register(Counter("storeedge_sync_changes_served_total", "Changes served in pages."))
        self.acks = r.register(Counter("storeedge_sync_acks_total", "Acks that moved the cursor."))
        self.refused = r.register(
            Counter("storeedge_sync_requests_refused_total", "Feed/ack requests refused, by code.", ("code",))
        )
        self.compacted = r.register(
            Counter("storeedge_sync_compacted_rows_total", "Raw readings folded into aggregates.")
        )
        self.bundles = r.register(
            Counter(
                "storeedge_bundle_outcomes_total",
                "Bundles activated, refused or rolled back, by kind and outcome.",
                ("kind", "outcome"),
            )
        )


class SyncService:
    def __init__(
        self,
        config: Config,
        db_path: Path,
        writer: StoreWriter,
        metrics: IngestMetrics,
        *,
        hooks: HouseholdHooks | None = None,
        sessions: SessionSigner | None = None,
    ) -> None:
        self._config = config
        # What other capabilities do when a household is erased, and the kiosk sessions to end: erasures
        # from central (`edge.uplink.erasures`) do what a "forget me" here does. Without the daemon's own
        # hooks, the same registrations as the daemon's; without its signer, sessions end in the database
        # (writes refused at once) and in memory at the next start.
        self._hooks = hooks if hooks is not None else store_household_hooks()
        self.sessions = sessions
        self._sync = config.sync
        self._db_path = db_path
        self._writer = writer
        self._reader = ReadThread(db_path, "sync-reader")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._status: OutboxStatus | None = None
        self._trim_wanted = asyncio.Event()
        self._warned_over_bound = False
        self._metrics = SyncMetrics(metrics, lambda: self._status)
        self._policy = CompactionPolicy(
            max_bytes=self._sync.outbox_max_bytes, max_age_ms=int(self._sync.outbox_max_age_s * 1000)
        )
        self.bundles = BundleStore(config.path(self._sync.bundle_dir))
        self._installer = BundleInstaller(
            self.bundles,
            public_key_hex=self._sync.public_key,
            checks=dict(DAEMON_CHECKS),
            max_bytes=self._sync.bundle_max_bytes,
            report=self._report_bundle,
        )

    # -- wiring ------------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler]]:
        """Routes added to the daemon's HTTP app (their own auth: the [sync] token)."""
        return [
            ("GET", "/sync/v1/changes", self._changes),
            ("POST", "/sync/v1/ack", self._ack),
            ("GET", "/sync/v1/status", self._status_sync),
            ("GET", "/api/v1/sync", self._status_staff),
        ]

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Long-running tasks the daemon supervises: the outbox watch (status, compaction) and, when
        ``[sync] central_url`` is set, the bundle poller and the erasure feed poller
        (`edge.uplink.erasures`)."""
        tasks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("outbox", self.watch_outbox),
            ("trim", self.trim_acked),
        ]
        if self._sync.central_url is not None and self._sync.token is not None:
            poller = BundlePoller(
                self._sync.central_url,
                store=self._config.store.id,
                token=self._sync.token,
                installer=self._installer,
                interval_s=self._sync.bundle_poll_s,
            )
            tasks.append(("bundles", poller.run))
            erasures = ErasurePoller(
                self._sync.central_url,
                store=self._config.store.id,
                token=self._sync.token,
                writer=self._writer,
                hooks=self._hooks,
                interval_s=self._sync.erasure_poll_s,
                session_lifetime_s=self._config.kiosk.session_s,
                sessions=self.sessions,
            )
            tasks.append(("erasures", erasures.run))
        return tasks

    async def close(self) -> None:
        await self._reader.close()

        def close_checkpoint_conn() -> None:
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None

        await asyncio.get_running_loop().run_in_executor(self._checkpointer, close_checkpoint_conn)
        self._checkpointer.shutdown(wait=True)

    # -- HTTP --------------------------------------------------------------------------------------
    def _authorize(self, request: web.Request) -> None:
        token = self._sync.token
        if token is None:
            raise FeedError(403, "disabled", "sync feed disabled: set [sync] token in the store's config")
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        # surrogatepass: raw non-UTF-8 header bytes arrive as surrogate escapes; a wrong token, not a 500.
        presented = value.strip().encode("utf-8", "surrogatepass")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, token.encode()):
            raise FeedError(401, "unauthorized", "missing or wrong bearer token for /sync/v1/*")

    def _refuse(self, exc: FeedError) -> web.Response:
        self._metrics.refused.inc(exc.code)
        log.warning("sync_request_refused", extra={"code": exc.code, "reason": exc.message})
        headers = {"WWW-Authenticate": 'Bearer realm="storeedge-sync"'} if exc.status == 401 else None
        return web.Response(
            body=feed.encode_error(exc), status=exc.status, content_type="application/json", headers=headers
        )

    async def _changes(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorize(request)
            cursor = feed.parse_cursor(request.query, self._sync.page_max)
            gzip_level = (
                self._sync.gzip_level if "gzip" in request.headers.get("Accept-Encoding", "") else None
            )
            store, max_bytes = self._config.store.id, self._sync.page_max_bytes

            def build(conn: sqlite3.Connection) -> tuple[bytes, int]:
                # Both steps run with the GIL released nearly throughout (SQLite builds the JSON, zlib
                # compresses it), so a catch-up does not stall the writer thread or the event loop.
                page = feed.read_page_json(conn, cursor, store=store, max_bytes=max_bytes)
                return feed.compress(page.data, gzip_level), page.count

            body, count = await self._reader.run(build)
        except FeedError as exc:
            return self._refuse(exc)
        self._metrics.pages.inc()
        self._metrics.changes.inc(amount=count)
        response = web.Response(body=body, content_type="application/json")
        if gzip_level is not None:
            response.headers["Content-Encoding"] = "gzip"
        return response

    async def _ack(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorize(request)
            ack = feed.parse_ack(await request.read())
            outcome = await self._job(lambda conn: feed.apply_ack(conn, ack, _now_ms(), delete_max=0))
            if outcome.error is not None:
                raise outcome.error
        except FeedError as exc:
            return self._refuse(exc)
        if outcome.moved:
            self._metrics.acks.inc()
            self._trim_wanted.set()
            log.debug("sync_acked", extra={"through": outcome.acked, "deleted": outcome.deleted})
        return web.Response(
            body=_json.encode({"acked": outcome.acked, "moved": outcome.moved, "feed": outcome.feed}),
            content_type="application/json",
        )

    async def _status_sync(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorize(request)
        except FeedError as exc:
            return self._refuse(exc)
        return await self._status_staff(request)

    async def _status_staff(self, _request: web.Request) -> web.StreamResponse:
        view = await self.status_view()
        return web.Response(body=_json.encode(view), content_type="application/json")

    async def status_view(self) -> SyncStatusView:
        def q(conn: sqlite3.Connection) -> tuple[OutboxStatus, list[BundleEventView]]:
            events = [
                BundleEventView(*row)
                for row in conn.execute(
                    "SELECT at_ms, kind, version, sha256, outcome, reason FROM bundle_events"
                    " ORDER BY id DESC LIMIT 20"
                )
            ]
            return status(conn), events

        current, events = await self._reader.run(q)
        self._status = current
        now = _now_ms()
        active = [
            ActiveBundleView(b.kind, b.version, b.sha256, b.activated_ms) for b in self.bundles.active_all()
        ]
        return SyncStatusView(
            store=self._config.store.id,
            feed=current.feed,
            head=current.last_seq,
            acked=current.acked_seq,
            acked_ms=current.acked_ms,
            pending_rows=current.rows,
            pending_bytes=current.pending_bytes,
            oldest_pending_ms=current.oldest_created_ms,
            oldest_pending_age_s=current.oldest_age_s(now),
            last_ack_age_s=None if current.acked_ms is None else max(0.0, (now - current.acked_ms) / 1000),
            compacted_rows=current.compacted_rows,
            aggregates_written=current.aggregates_written,
            over_bound=self._policy.over_bound(current, now),
            bundles=active,
            bundle_events=events,
        )

    async def _job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer's transaction and return its result once committed."""
        return await self._writer.run_job(fn)

    # -- background --------------------------------------------------------------------------------
    async def watch_outbox(self) -> None:
        """Refresh the status gauges and compact when the outbox is past its bounds."""
        while True:
            current = await self._reader.run(status)
            self._status = current
            if self._policy.over_bound(current, _now_ms()):
                await self.compact()
            await asyncio.sleep(self._sync.compact_interval_s)

    async def trim_acked(self) -> None:
        """Delete acked rows in steps of `TRIM_ROWS`, one small writer job each, whenever acks arrive."""
        # At start, only if a crash left acked rows behind: no writer job otherwise.
        if await self._reader.run(feed.acked_rows_left):
            self._trim_wanted.set()
        while True:
            await self._trim_wanted.wait()
            self._trim_wanted.clear()
            checkpointed = time.monotonic()
            while True:
                deleted = await self._job(lambda conn: feed.trim_acked(conn, TRIM_ROWS))
                if time.monotonic() - checkpointed >= CHECKPOINT_EVERY_S or deleted < TRIM_ROWS:
                    await self.checkpoint()  # awaited: trims never outrun the checkpoints
                    checkpointed = time.monotonic()
                if deleted < TRIM_ROWS:
                    break
                await asyncio.sleep(TRIM_PAUSE_S)

    async def checkpoint(self) -> None:
        """Copy committed WAL frames into the database (PASSIVE: skips frames it cannot copy yet, never
        waits for or blocks the writer and readers), off the writer's thread; see `CHECKPOINT_EVERY_S`."""

        def run() -> None:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = connect(self._db_path)
            self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        try:
            await asyncio.get_running_loop().run_in_executor(self._checkpointer, run)
        except sqlite3.Error as exc:  # best effort: the writer's automatic checkpoint still runs
            log.warning("sync_checkpoint_failed", extra={"error": str(exc)})

    async def compact(self) -> int:
        """Compact in small steps (one writer transaction each), so ingest never waits long behind it."""
        total = 0
        started = time.monotonic()
        before = await self._reader.run(status)
        for_size = before.pending_bytes > self._policy.max_bytes
        while True:
            result = await self._job(
                lambda conn: compact_step(conn, self._policy, _now_ms(), for_size=for_size)
            )
            if result == 0:
                break
            total += result - 1
            self._metrics.compacted.inc(amount=result - 1)
            await asyncio.sleep(0)  # let ingest batches interleave
        self._status = await self._reader.run(status)
        if total:
            log.warning(
                "outbox_compacted",
                extra={
                    "raw_rows": total,
                    "pending_rows": self._status.rows,
                    "pending_bytes": self._status.pending_bytes,
                    "seconds": round(time.monotonic() - started, 2),
                },
            )
        over = self._policy.over_bound(self._status, _now_ms())
        if over and not self._warned_over_bound:
            log.warning(
                "outbox_over_bound",
                extra={
                    "pending_bytes": self._status.pending_bytes,
                    "max_bytes": self._policy.max_bytes,
                    "note": "what is left is never compacted (purchases, consent, erasure, aggregates)",
                },
            )
        self._warned_over_bound = over
        return total

    async def _report_bundle(self, result: InstallResult) -> None:
        """Record what happened to a bundle durably (bundle_events) and for central (an outbox row)."""
        self._metrics.bundles.inc(result.kind, result.outcome)
        await self._job(lambda conn: record_bundle_event(conn, result, _now_ms()))


def _now_ms() -> int:
    return int(time.time() * 1000)
