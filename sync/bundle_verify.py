"""Verifying a bundle on the store before anything of it is used: the manifest's Ed25519 signature with
the chain's public key (before the blob is downloaded), and a safe unpacking of the blob into the
staging directory (no absolute paths, no ``..``, no links or devices, bounded count and size).

The sha256 and size of the downloaded blob are checked against the signed manifest by
`sync.bundle_install.BundleInstaller`, which runs these steps in order.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync.bundle_signing import signed_bytes
from sync.errors import BundleError, BundleRefusedError
from sync.schemas import BundleManifest

MAX_MEMBERS = 10_000


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


__all__ = ["MAX_MEMBERS", "load_public_key", "safe_extract", "verify_manifest"]
