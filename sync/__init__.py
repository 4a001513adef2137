"""Edge-to-central sync: the transactional outbox, the changes feed and acks, compaction, signed bundles,
and the reference central service. Never imports `edge` (the daemon wires this in `edge.sync_service`).

docs/sync.md describes the protocol; the modules:

- `sync.outbox`: the outbox table, `append` (used by every change's transaction), `status`
- `sync.feed`: cursor validation, pages, acks over a sqlite3 connection
- `sync.compaction`: raw readings -> per-minute aggregates when the outbox is past its bounds
- `sync.bundles`: sign, verify, stage, activate and roll back bundles; the store's poller
- `sync.central`, `sync.central_db`, `sync.client`: the reference central; `sync.cli`: its commands
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
