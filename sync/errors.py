"""Errors of the sync package. Third-party errors (aiohttp, sqlite3, cryptography) are translated at the
boundary with ``raise ... from exc`` so callers catch one root: `SyncError`."""

from __future__ import annotations


class SyncError(Exception):
    """Root of every error the sync package raises on purpose."""


class FeedError(SyncError):
    """A request to the changes feed or the ack endpoint that the store refuses.

    ``status`` is the HTTP status the feed answers with, ``code`` a stable machine-readable reason
    (``bad_request``, ``feed_mismatch``, ``cursor_ahead``, ``cursor_gone``, ``ack_ahead``, ``unauthorized``,
    ``disabled``) and ``details`` extra fields for the JSON body (the store's feed id, head, acked seq).
    """

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class TransportError(SyncError):
    """The other side could not be reached or answered garbage; the caller retries with backoff."""


class MalformedPage(TransportError):
    """The store answered a changes request with a page central cannot read at all (its envelope, or an
    entry without a seq). ``body`` is what it sent; central quarantines it and retries with backoff."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class BundleError(SyncError):
    """A bundle could not be built, fetched or installed."""


class BundleRefusedError(BundleError):
    """A bundle failed verification or its health check and was not (or no longer) activated.

    ``reason`` is stable (``bad_signature``, ``bad_hash``, ``bad_size``, ``unsafe_archive``, ``unknown_kind``,
    ``health_check``, ``stale``, ``too_large``) and labels metrics and outbox reports.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CentralConfigError(SyncError):
    """Central's configuration file is invalid; the message names the file and the key at fault."""
