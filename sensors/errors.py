"""Errors of the sensors package: transport failures and rejected input."""

from __future__ import annotations


class SensorError(Exception):
    """Root of every error the sensors package raises."""


class TransportError(SensorError):
    """A transport (MQTT connection, serial port) failed; the caller reconnects."""
