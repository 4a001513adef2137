"""Installing signed bundles from central on the store, and the poller that asks central for them.

Installing (`BundleInstaller.install`), in order, stopping at the first failure: the signature is verified
*before* anything is downloaded; the blob is streamed to ``incoming/`` with its size capped and hashed on
the way, and must match the signed sha256 and size; it is unpacked there with every member checked (no
absolute paths, no ``..``, no links or devices, bounded count and size); the kind's health check runs on
the staged directory; the directory is renamed into ``versions/`` and ``current`` is swapped to it with
one ``rename`` of a symlink (atomic); the health check runs again on the live path; if that fails,
``current`` is swapped back to what it was. An unverified blob is never unpacked into ``versions/``, let
alone made current.

The steps live in `sync.bundle_verify` (signature, unpacking), `sync.bundle_checks` (health checks) and
`sync.bundle_store` (the directory, the swap and the rollback); this module runs them in order, records
every outcome (`record_bundle_event`) and polls central (`BundlePoller`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec

from sync.bundle_checks import HealthCheck
from sync.bundle_store import BundleStore
from sync.bundle_verify import load_public_key, safe_extract, verify_manifest
from sync.errors import BundleError, BundleRefusedError, TransportError
from sync.outbox import OutboxEntry, append
from sync.schemas import BundleList, BundleManifest, BundleOutcome, BundleReport

log = logging.getLogger(__name__)

_list_decoder = msgspec.json.Decoder(BundleList)


# -- installing on the store -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstallResult:
    kind: str
    version: int
    sha256: str
    outcome: BundleOutcome
    reason: str | None = None
    detail: str | None = None


BlobFetcher = Callable[[BundleManifest, Path], Awaitable[None]]
Reporter = Callable[[InstallResult], Awaitable[None]]


async def _no_report(_result: InstallResult) -> None:
    return None


class BundleInstaller:
    """Verify -> fetch -> stage -> check -> swap -> check -> (rollback), for one manifest at a time."""

    def __init__(
        self,
        store: BundleStore,
        *,
        public_key_hex: str | None,
        checks: Mapping[str, HealthCheck],
        max_bytes: int,
        report: Reporter = _no_report,
        check_timeout_s: float = 120.0,
    ) -> None:
        self.store = store
        self._key = load_public_key(public_key_hex) if public_key_hex else None
        self.checks = dict(checks)
        self.max_bytes = max_bytes
        self._report = report
        self._check_timeout_s = check_timeout_s
        self._lock = asyncio.Lock()
        # Bundles already refused in this process, so a bad bundle is reported once, not at every poll.
        self._refused: dict[tuple[str, int, str, str], str] = {}
        self._hash_failures: dict[tuple[str, int, str, str], int] = {}

    def wanted(self, manifest: BundleManifest) -> bool:
        """A newer version of a known kind that was not refused already."""
        if (manifest.kind, manifest.version, manifest.sha256, manifest.signature) in self._refused:
            return False
        active = self.store.active(manifest.kind)
        return active is None or manifest.version > active.version

    async def install(self, manifest: BundleManifest, fetch: BlobFetcher) -> InstallResult:
        async with self._lock:
            result = await self._install(manifest, fetch)
        key = (manifest.kind, manifest.version, manifest.sha256, manifest.signature)
        if result.outcome != "activated":
            transient = result.reason in {"bad_hash", "bad_size"}
            failures = self._hash_failures[key] = self._hash_failures.get(key, 0) + 1
            if not transient or failures >= 3:  # a blob corrupted in transit gets three tries
                self._refused[key] = result.reason or "refused"
            log.error(
                "bundle_refused",
                extra={
                    "kind": result.kind,
                    "version": result.version,
                    "outcome": result.outcome,
                    "reason": result.reason,
                    "detail": result.detail,
                },
            )
        else:
            log.info("bundle_activated", extra={"kind": result.kind, "version": result.version})
        await self._report(result)
        return result

    async def _install(self, manifest: BundleManifest, fetch: BlobFetcher) -> InstallResult:
        def refused(reason: str, detail: str, outcome: BundleOutcome = "refused") -> InstallResult:
            return InstallResult(manifest.kind, manifest.version, manifest.sha256, outcome, reason, detail)

        check = self.checks.get(manifest.kind)
        if check is None:
            return refused("unknown_kind", f"this store does not accept bundles of kind {manifest.kind!r}")
        if self._key is None:
            return refused("bad_signature", "no [sync] public_key configured: cannot verify any bundle")
        try:
            verify_manifest(manifest, self._key)
        except BundleRefusedError as exc:
            return refused(exc.reason, str(exc))
        if manifest.size > self.max_bytes:
            return refused("too_large", f"{manifest.size} bytes is over [sync] bundle_max_bytes")
        work = self.store.incoming() / f"{manifest.kind}-{manifest.version}-{uuid.uuid4().hex}"
        work.mkdir()
        try:
            blob = work / "bundle.tar.gz"
            await fetch(manifest, blob)
            digest, size = await asyncio.to_thread(_sha256_file, blob)
            if size != manifest.size:
                return refused("bad_size", f"blob is {size} bytes, manifest says {manifest.size}")
            if digest != manifest.sha256:
                return refused(
                    "bad_hash", f"blob sha256 {digest} does not match the signed {manifest.sha256}"
                )
            staged = work / "staged"
            try:
                await asyncio.to_thread(safe_extract, blob, staged, max_bytes=self.max_bytes * 8)
            except BundleRefusedError as exc:
                return refused(exc.reason, str(exc))
            try:
                await self._check(check, staged)
            except Exception as exc:  # noqa: BLE001 - any failure of a health check refuses the bundle
                return refused("health_check", f"{type(exc).__name__}: {exc}")
            before = await asyncio.to_thread(self.store.activate, staged, manifest)
            try:
                await self._check(check, self.store.current_path(manifest.kind))
            except Exception as exc:  # noqa: BLE001 - as above: roll back whatever the failure
                await asyncio.to_thread(self.store.restore, manifest.kind, before, manifest.version)
                return refused(
                    "health_check", f"after activation: {type(exc).__name__}: {exc}", "rolled_back"
                )
            await asyncio.to_thread(self.store.prune, manifest.kind)
            return InstallResult(manifest.kind, manifest.version, manifest.sha256, "activated")
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _check(self, check: HealthCheck, directory: Path) -> None:
        await asyncio.wait_for(asyncio.to_thread(check, directory), self._check_timeout_s)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def record_bundle_event(conn: sqlite3.Connection, result: InstallResult, now_ms: int) -> None:
    """Inside a write transaction: the store's own record (bundle_events) and the report for central."""
    conn.execute(
        "INSERT INTO bundle_events (at_ms, kind, version, sha256, outcome, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now_ms, result.kind, result.version, result.sha256, result.outcome, result.reason, result.detail),
    )
    report = BundleReport(
        result.kind, result.version, result.sha256, result.outcome, result.reason, result.detail
    )
    append(conn, now_ms, [OutboxEntry("bundle", result.kind, msgspec.json.encode(report).decode())])


# -- polling central ----------------------------------------------------------------------------------


class BundlePoller:
    """Every ``interval_s``: ask central for the newest bundle of each kind and install what is new."""

    def __init__(
        self,
        central_url: str,
        *,
        store: str,
        token: str,
        installer: BundleInstaller,
        interval_s: float,
        timeout_s: float = 300.0,
    ) -> None:
        self._base = central_url.rstrip("/")
        self._store = store
        self._headers = {"Authorization": f"Bearer {token}"}
        self._installer = installer
        self._interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=10, sock_read=30)
        self._max_bytes = installer.max_bytes  # the same cap on download and install

    async def run(self) -> None:
        self._installer.store.recover()
        async with aiohttp.ClientSession(timeout=self._timeout, headers=self._headers) as session:
            while True:
                try:
                    await self.poll_once(session)
                except (TransportError, BundleError) as exc:
                    log.warning("bundle_poll_failed", extra={"error": str(exc)})
                await asyncio.sleep(self._interval_s)

    async def poll_once(self, session: aiohttp.ClientSession) -> list[InstallResult]:
        url = f"{self._base}/central/v1/bundles/latest"
        try:
            async with session.get(url, params={"store": self._store}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise TransportError(f"{url}: HTTP {resp.status}: {body[:200]!r}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from exc
        try:
            listing = _list_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise TransportError(f"{url}: not a bundle list: {exc}") from exc
        results = []
        for manifest in listing.bundles:
            if self._installer.wanted(manifest):

                async def fetch(m: BundleManifest, dest: Path) -> None:
                    await self._download(session, m, dest)

                try:
                    results.append(await self._installer.install(manifest, fetch))
                except TransportError as exc:
                    log.warning(
                        "bundle_fetch_failed",
                        extra={"kind": manifest.kind, "version": manifest.version, "error": str(exc)},
                    )
        return results

    async def _download(self, session: aiohttp.ClientSession, manifest: BundleManifest, dest: Path) -> None:
        url = f"{self._base}/central/v1/bundles/{manifest.kind}/{manifest.version}/blob"
        limit = min(self._max_bytes, manifest.size) + 1  # one byte over is enough to know it is too long
        try:
            async with session.get(url, params={"store": self._store}) as resp:
                if resp.status != 200:
                    raise TransportError(f"{url}: HTTP {resp.status}")
                written = 0
                with dest.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        written += len(chunk)
                        if written > limit:
                            break  # the size check refuses it; do not download a gigabyte to find out
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from exc


__all__ = [
    "BlobFetcher",
    "BundleInstaller",
    "BundlePoller",
    "InstallResult",
    "Reporter",
    "record_bundle_event",
]
