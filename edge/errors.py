"""Errors of the daemon. CLI commands turn these into one clear line on stderr and exit code 2."""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every error the edge package raises on purpose."""


class ConfigError(EdgeError):
    """The configuration file is invalid; the message names the file and the key at fault."""


class StoreError(EdgeError):
    """The SQLite store cannot be opened or migrated."""
