"""Signed bundles from central: build and sign (central), verify, stage, swap atomically, health-check and
roll back (store).

A bundle is a gzipped tar of one directory (a model with its card, the catalog, the store layout, the
promotions) plus a `BundleManifest`: kind, version (an integer that only grows per kind), sha256 and size
of the blob, and an Ed25519 signature over those fields made with the chain's private key. The store
holds only the public key (``[sync] public_key``).

On the store, under ``[sync] bundle_dir``::

    <kind>/versions/<version>/          an unpacked bundle (never modified once there)
    <kind>/versions/<version>.manifest.json
    <kind>/current  -> versions/<version>   what is live: consumers read through this path
    <kind>/previous -> versions/<version>   what a rollback returns to
    incoming/                           downloads and staging (emptied at start)

Installing (`BundleInstaller.install`), in order, stopping at the first failure: the signature is verified
*before* anything is downloaded; the blob is streamed to ``incoming/`` with its size capped and hashed on
the way, and must match the signed sha256 and size; it is unpacked there with every member checked (no
absolute paths, no ``..``, no links or devices, bounded count and size); the kind's health check runs on
the staged directory; the directory is renamed into ``versions/`` and ``current`` is swapped to it with
one ``rename`` of a symlink (atomic); the health check runs again on the live path; if that fails,
``current`` is swapped back to what it was. An unverified blob is never unpacked into ``versions/``, let
alone made current.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import tarfile
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.errors import BundleError, BundleRefusedError, TransportError
from sync.outbox import OutboxEntry, append
from sync.schemas import BundleList, BundleManifest, BundleOutcome, BundleReport

log = logging.getLogger(__name__)

HealthCheck = Callable[[Path], None]
"""A kind's health check: called with a bundle's directory; returns if the bundle is usable, raises if not."""

SIGNING_CONTEXT = b"storeedge-bundle-v1\n"
MAX_MEMBERS = 10_000
_manifest_decoder = msgspec.json.Decoder(BundleManifest)
_list_decoder = msgspec.json.Decoder(BundleList)
_encoder = msgspec.json.Encoder(order="sorted")


# -- keys and signatures ------------------------------------------------------------------------------


class _SignedFields(msgspec.Struct, frozen=True):
    kind: str
    version: int
    sha256: str
    size: int
    created_ms: int


def signed_bytes(kind: str, version: int, sha256: str, size: int, created_ms: int) -> bytes:
    """What the signature covers: a domain-separation prefix and the fields as canonical JSON (sorted
    keys, no whitespace). Kind and version are signed so a blob cannot be replayed as another kind or as a
    newer version."""
    return SIGNING_CONTEXT + _encoder.encode(_SignedFields(kind, version, sha256, size, created_ms))


def generate_key(private_path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600) to ``private_path``; return the public key in hex."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return public_key_hex(key)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"{path}: cannot load the signing key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_public_key(hex_key: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
    except ValueError as exc:
        raise BundleError(f"public key: expected 64 hex characters (32 bytes): {exc}") from exc


def verify_manifest(manifest: BundleManifest, key: Ed25519PublicKey) -> None:
    """Raise `BundleRefusedError` ("bad_signature") unless the chain's key signed exactly these fields."""
    message = signed_bytes(
        manifest.kind, manifest.version, manifest.sha256, manifest.size, manifest.created_ms
    )
    try:
        key.verify(bytes.fromhex(manifest.signature), message)
    except (InvalidSignature, ValueError) as exc:
        raise BundleRefusedError(
            "bad_signature",
            f"{manifest.kind} v{manifest.version}: signature does not verify with the chain's public key",
        ) from exc


# -- building bundles (central) ----------------------------------------------------------------------


def build_archive(source: Path) -> bytes:
    """A reproducible tar.gz of ``source``'s regular files and directories (sorted, owner 0, mtime 0), so
    the same directory always gives the same sha256."""
    if not source.is_dir():
        raise BundleError(f"{source}: not a directory")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_symlink():
                raise BundleError(f"{path}: symlinks are not allowed in bundles")
            info = tarfile.TarInfo(rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif path.is_file():
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sign_bundle(
    key: Ed25519PrivateKey,
    kind: str,
    version: int,
    blob: bytes,
    *,
    created_ms: int | None = None,
    notes: str = "",
) -> BundleManifest:
    sha = hashlib.sha256(blob).hexdigest()
    created = int(time.time() * 1000) if created_ms is None else created_ms
    signature = key.sign(signed_bytes(kind, version, sha, len(blob), created)).hex()
    manifest = BundleManifest(
        kind=kind,
        version=version,
        sha256=sha,
        size=len(blob),
        created_ms=created,
        signature=signature,
        blob=f"/central/v1/bundles/{kind}/{version}/blob",
        notes=notes,
    )
    # Validate the constraints of the wire format (kind pattern, version range) before publishing.
    return msgspec.convert(msgspec.to_builtins(manifest), BundleManifest)


def publish_bundle(
    key: Ed25519PrivateKey, kind: str, version: int, source: Path, out_dir: Path, *, notes: str = ""
) -> BundleManifest:
    """Build, sign and write ``out_dir/<kind>/<version>/{bundle.tar.gz,manifest.json}`` (what central
    serves). Written to a temporary directory and renamed into place, so central never serves half."""
    blob = build_archive(source)
    try:
        manifest = sign_bundle(key, kind, version, blob, notes=notes)
    except msgspec.ValidationError as exc:
        raise BundleError(f"bundle {kind} v{version}: {exc}") from exc
    final = out_dir / kind / str(version)
    if final.exists():
        raise BundleError(f"{final}: version {version} of {kind} already exists; versions only grow")
    tmp = out_dir / kind / f".{version}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    _write_synced(tmp / "bundle.tar.gz", blob)
    _write_synced(tmp / "manifest.json", msgspec.json.format(msgspec.json.encode(manifest)))
    tmp.rename(final)
    _fsync_dir(final.parent)
    return manifest


def latest_bundles(bundle_dir: Path) -> list[BundleManifest]:
    """The newest published version of each kind under central's bundle directory."""
    found: list[BundleManifest] = []
    if not bundle_dir.is_dir():
        return found
    for kind_dir in sorted(p for p in bundle_dir.iterdir() if p.is_dir()):
        versions = sorted(
            (int(v.name) for v in kind_dir.iterdir() if v.name.isdigit() and (v / "manifest.json").is_file()),
            reverse=True,
        )
        if versions:
            found.append(read_published(bundle_dir, kind_dir.name, versions[0]))
    return found


def read_published(bundle_dir: Path, kind: str, version: int) -> BundleManifest:
    path = bundle_dir / kind / str(version) / "manifest.json"
    try:
        return _manifest_decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest: {exc}") from exc


def published_blob(bundle_dir: Path, kind: str, version: int) -> Path:
    return bundle_dir / kind / str(version) / "bundle.tar.gz"


# -- health checks -----------------------------------------------------------------------------------


def check_onnx_models(directory: Path) -> None:
    """Every ``*.onnx`` in the bundle loads in onnxruntime and scores a canary row with finite outputs.

    The canary is ``canary.json`` next to the model (``{"<input name>": [[...]], ...}``) when the bundle
    ships one, else zeros shaped like each input (symbolic dimensions as 1).
    """
    import numpy as np  # noqa: PLC0415 - heavy imports only where a model is checked
    import onnxruntime as ort  # noqa: PLC0415

    models = sorted(directory.rglob("*.onnx"))
    if not models:
        raise BundleError("model bundle contains no .onnx file")
    types = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(bool)": np.bool_,
    }
    for model in models:
        try:
            session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for every kind of bad file
            raise BundleError(f"{model.name}: does not load: {exc}") from exc
        canary_path = model.with_name("canary.json")
        canary: dict[str, Any] = {}
        if canary_path.is_file():
            canary = msgspec.json.decode(canary_path.read_bytes())
        feeds: dict[str, Any] = {}
        for spec in session.get_inputs():
            dtype = types.get(spec.type)
            if dtype is None:
                raise BundleError(f"{model.name}: input {spec.name} has unsupported type {spec.type}")
            if spec.name in canary:
                feeds[spec.name] = np.asarray(canary[spec.name], dtype=dtype)
            else:
                shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
                feeds[spec.name] = np.zeros(shape, dtype=dtype)
        try:
            outputs = session.run(None, feeds)
        except Exception as exc:  # as above: onnxruntime's errors are not typed
            raise BundleError(f"{model.name}: fails to score the canary row: {exc}") from exc
        for output in outputs:
            values = np.asarray(output)
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                raise BundleError(f"{model.name}: canary row scores non-finite values")


def json_file_check(name: str) -> HealthCheck:
    def check(directory: Path) -> None:
        path = directory / name
        try:
            value = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise BundleError(f"{name}: missing or not JSON: {exc}") from exc
        if not value:
            raise BundleError(f"{name}: empty")

    return check


def toml_file_check(name: str) -> HealthCheck:
    def check(directory: Path) -> None:
        path = directory / name
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BundleError(f"{name}: missing or not TOML: {exc}") from exc

    return check


# The kinds a store accepts, each with the check a bundle must pass. The daemon may replace a check
# with a richer one (the layout through routing's loader, a model through the models registry).
DEFAULT_CHECKS: Mapping[str, HealthCheck] = {
    "model": check_onnx_models,
    "catalog": json_file_check("catalog.json"),
    "layout": toml_file_check("layout.toml"),
    "promotions": json_file_check("promotions.json"),
}


# -- the store's bundle directory ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveBundle:
    kind: str
    version: int
    sha256: str
    path: Path  # the version's own directory
    activated_ms: int | None


class BundleStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def current_path(self, kind: str) -> Path:
        """The stable path consumers read a kind from (a symlink to the active version)."""
        return self.root / kind / "current"

    def active(self, kind: str) -> ActiveBundle | None:
        return self._resolve(kind, "current")

    def previous(self, kind: str) -> ActiveBundle | None:
        return self._resolve(kind, "previous")

    def active_all(self) -> list[ActiveBundle]:
        if not self.root.is_dir():
            return []
        found = []
        for kind_dir in sorted(self.root.iterdir()):
            if kind_dir.name != "incoming" and (bundle := self.active(kind_dir.name)) is not None:
                found.append(bundle)
        return found

    def _resolve(self, kind: str, link: str) -> ActiveBundle | None:
        path = self.root / kind / link
        try:
            target = os.readlink(path)
            stamp = int(path.lstat().st_mtime * 1000)
        except OSError:
            return None
        version_dir = (path.parent / target).resolve()
        try:
            manifest = _manifest_decoder.decode(
                version_dir.with_name(version_dir.name + ".manifest.json").read_bytes()
            )
        except (OSError, msgspec.DecodeError):
            return None
        return ActiveBundle(kind, manifest.version, manifest.sha256, version_dir, stamp)

    def incoming(self) -> Path:
        path = self.root / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def recover(self) -> None:
        """At start: drop half-downloaded and half-staged bundles and stray temporary links."""
        shutil.rmtree(self.root / "incoming", ignore_errors=True)
        if not self.root.is_dir():
            return
        for kind_dir in self.root.iterdir():
            for stray in kind_dir.glob(".link-*"):
                stray.unlink(missing_ok=True)

    def activate(self, staged: Path, manifest: BundleManifest) -> ActiveBundle | None:
        """Move a verified, checked staged directory into ``versions/`` and make it current atomically.
        Returns what was current before (for rollback)."""
        kind_dir = self.root / manifest.kind
        versions = kind_dir / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        final = versions / str(manifest.version)
        before = self.active(manifest.kind)
        if before is not None and before.version == manifest.version:
            raise BundleError(f"{manifest.kind} v{manifest.version} is already active")
        if final.exists():  # left by an earlier attempt that failed or crashed: it is not current
            shutil.rmtree(final)
        _write_synced(final.with_name(final.name + ".manifest.json"), _encoder.encode(manifest))
        staged.rename(final)
        _fsync_dir(versions)
        if before is not None:
            self._point(kind_dir, "previous", before.path.name)
        self._point(kind_dir, "current", final.name)
        return before

    def restore(self, kind: str, before: ActiveBundle | None, failed_version: int) -> None:
        """Roll back: make ``before`` current again (or nothing, if there was nothing) and delete the
        failed version."""
        kind_dir = self.root / kind
        if before is None:
            (kind_dir / "current").unlink(missing_ok=True)
        else:
            self._point(kind_dir, "current", before.path.name)
        failed = kind_dir / "versions" / str(failed_version)
        shutil.rmtree(failed, ignore_errors=True)
        failed.with_name(failed.name + ".manifest.json").unlink(missing_ok=True)
        _fsync_dir(kind_dir)

    def prune(self, kind: str, keep: int = 3) -> None:
        """Delete old versions, never the current or previous one."""
        versions = self.root / kind / "versions"
        live = {b.version for b in (self.active(kind), self.previous(kind)) if b is not None}
        numbers = sorted(
            (int(p.name) for p in versions.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True
        )
        for number in numbers[keep:]:
            if number not in live:
                shutil.rmtree(versions / str(number), ignore_errors=True)
                (versions / f"{number}.manifest.json").unlink(missing_ok=True)

    @staticmethod
    def _point(kind_dir: Path, name: str, version: str) -> None:
        tmp = kind_dir / f".link-{uuid.uuid4().hex}"
        tmp.symlink_to(Path("versions") / version)
        os.replace(tmp, kind_dir / name)  # rename(2) over the old link: readers see old or new, never none
        _fsync_dir(kind_dir)


def safe_extract(archive: Path, destination: Path, *, max_bytes: int, max_members: int = MAX_MEMBERS) -> None:
    """Unpack a bundle's tar.gz into ``destination`` (which must not exist), refusing anything that could
    escape it or surprise a reader: absolute names, ``..``, links, devices, too many members or bytes."""
    destination.mkdir(parents=True)
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise BundleRefusedError("unsafe_archive", f"more than {max_members} members")
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or "\\" in member.name or not member.name:
                    raise BundleRefusedError("unsafe_archive", f"member {member.name!r} escapes the bundle")
                target = destination.joinpath(*[p for p in name.parts if p not in ("", ".")])
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise BundleRefusedError(
                        "unsafe_archive", f"member {member.name!r} is not a regular file or directory"
                    )
                total += member.size
                if total > max_bytes:
                    raise BundleRefusedError("too_large", f"unpacks to more than {max_bytes} bytes")
                source = tar.extractfile(member)
                if source is None:
                    raise BundleRefusedError("unsafe_archive", f"member {member.name!r} has no data")
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("xb") as out:
                    shutil.copyfileobj(source, out)
                    out.flush()
                    os.fsync(out.fileno())
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise BundleRefusedError("unsafe_archive", f"not a readable tar.gz: {exc}") from exc


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


# -- small file helpers -------------------------------------------------------------------------------


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "DEFAULT_CHECKS",
    "ActiveBundle",
    "BundleInstaller",
    "BundlePoller",
    "BundleStore",
    "HealthCheck",
    "InstallResult",
    "build_archive",
    "check_onnx_models",
    "generate_key",
    "latest_bundles",
    "load_private_key",
    "load_public_key",
    "publish_bundle",
    "record_bundle_event",
    "safe_extract",
    "sign_bundle",
    "signed_bytes",
    "verify_manifest",
]
