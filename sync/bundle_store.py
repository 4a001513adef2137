"""The store's bundle directory, under ``[sync] bundle_dir``::

    <kind>/versions/<version>/          an unpacked bundle (never modified once there)
    <kind>/versions/<version>.manifest.json
    <kind>/current  -> versions/<version>   what is live: consumers read through this path
    <kind>/previous -> versions/<version>   what a rollback returns to
    incoming/                           downloads and staging (emptied at start)

`BundleStore.activate` renames a verified, checked staged directory into ``versions/`` and swaps
``current`` to it with one ``rename`` of a symlink (atomic); `BundleStore.restore` swaps it back.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from sync.durable_files import fsync_dir, write_synced
from sync.errors import BundleError
from sync.schemas import BundleManifest

_manifest_decoder = msgspec.json.Decoder(BundleManifest)
_encoder = msgspec.json.Encoder(order="sorted")


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
        write_synced(final.with_name(final.name + ".manifest.json"), _encoder.encode(manifest))
        staged.rename(final)
        fsync_dir(versions)
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
        fsync_dir(kind_dir)

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


__all__ = ["ActiveBundle", "BundleStore"]
