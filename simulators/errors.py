"""Errors of the simulators package."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulators package raises."""


class SimulatorSettingsError(SimulatorError, ValueError):
    """A `SimulatorSettings` value is out of range; the message names the field."""


class SerialLinkError(SimulatorError):
    """The pseudo-terminal or its symlink could not be set up."""
