"""The SQLite store: opening and migrating it, the single writer and its batch applier, the household
hooks other capabilities register on, quarantine, the read side and housekeeping (docs/architecture.md)."""
