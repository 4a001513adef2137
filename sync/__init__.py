"""Edge-to-central sync: the transactional outbox now; the changes feed and bundles come next."""

from sync.outbox import OUTBOX_DDL, OutboxEntry, OutboxStatus, append, status

__all__ = ["OUTBOX_DDL", "OutboxEntry", "OutboxStatus", "append", "status"]
