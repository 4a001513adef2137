"""The kiosk's errors: one root, translated from aiohttp/pyserial at the boundary."""

from __future__ import annotations


class KioskError(Exception):
    """Root of everything the kiosk raises on purpose; the CLI prints one line for it."""


class DaemonUnreachableError(KioskError):
    """The store daemon did not answer (it may be restarting)."""


class ApiError(KioskError):
    """The daemon answered with an error status; `message` is its `{"error": ...}` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class NotAuthorizedError(ApiError):
    """401 or 403: a wrong token, an expired session, or a purpose without consent."""


class ScannerError(KioskError):
    """The barcode scanner's serial port cannot be opened or went away."""
