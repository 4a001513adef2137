"""Building and signing bundles: central's side (``storeedge central keygen`` / ``sign-bundle``, and what
central serves).

A bundle is a gzipped tar of one directory (a model with its card, the catalog, the store layout, the
promotions) plus a `BundleManifest`: kind, version (an integer that only grows per kind), sha256 and size
of the blob, and an Ed25519 signature over those fields made with the chain's private key. The store
holds only the public key (``[sync] public_key``) and checks the signature with `sync.bundle_verify`.

Central's bundle directory: ``<kind>/<version>/{bundle.tar.gz,manifest.json}``, published atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import time
import uuid
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.durable_files import fsync_dir, write_synced
from sync.errors import BundleError
from sync.schemas import BundleManifest

SIGNING_CONTEXT = b"storeedge-bundle-v1\n"
_manifest_decoder = msgspec.json.Decoder(BundleManifest)
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
    write_synced(tmp / "bundle.tar.gz", blob)
    write_synced(tmp / "manifest.json", msgspec.json.format(msgspec.json.encode(manifest)))
    tmp.rename(final)
    fsync_dir(final.parent)
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


__all__ = [
    "SIGNING_CONTEXT",
    "build_archive",
    "generate_key",
    "latest_bundles",
    "load_private_key",
    "public_key_hex",
    "publish_bundle",
    "published_blob",
    "read_published",
    "sign_bundle",
    "signed_bytes",
]
