"""Edge-to-central sync: the transactional outbox, the changes feed and acks, compaction, signed bundles,
and the reference central service. Never imports `edge` (the daemon wires this in `edge.uplink.service`).

docs/sync.md describes the protocol; the modules:

- `sync.outbox`: the outbox table, `append` (used by every change's transaction), `status`
- `sync.feed`: cursor validation, pages, acks over a sqlite3 connection
- `sync.compaction`: raw readings -> per-minute aggregates when the outbox is past its bounds
- `sync.bundle_signing`: keys, building, signing and publishing bundles (central's side)
- `sync.bundle_verify`, `sync.bundle_checks`: signature and archive checks, health checks by kind
- `sync.bundle_store`, `sync.bundle_install`: staging, atomic activation and rollback; the store's poller
- `sync.durable_files`: fsynced writes shared by central's and the store's bundle directories
- `sync.central`, `sync.client`: the reference central (pullers, HTTP); `sync.central_config`: its
  ``central.toml``; its PostgreSQL side: `sync.central_db` (applying pages), `sync.central_schema`
  (migrations, ``[central] dsn``), `sync.central_effects` (per-store totals); `sync.cli`: its commands
"""

from sync.errors import BundleError, BundleRefusedError, FeedError, SyncError, TransportError
from sync.outbox import OUTBOX_DDL, SYNC_DDL, OutboxEntry, OutboxStatus, append, status

__all__ = [
    "OUTBOX_DDL",
    "SYNC_DDL",
    "BundleError",
    "BundleRefusedError",
    "FeedError",
    "OutboxEntry",
    "OutboxStatus",
    "SyncError",
    "TransportError",
    "append",
    "status",
]
