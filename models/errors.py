"""Errors of the models package. Every message names the file, source or field at fault."""

from __future__ import annotations


class ModelsError(Exception):
    """Root of every error the models package raises."""


class HistoryFormatError(ModelsError, ValueError):
    """A purchase-history file or array set does not follow the documented format."""


class DatasetError(ModelsError):
    """A training source cannot be loaded (unknown name, missing optional package, bad cutoff)."""


class ModelLoadError(ModelsError):
    """A trained model directory is missing its ONNX file or card, or they do not agree."""


class TrainingError(ModelsError):
    """Training cannot proceed: too little history before the cutoff, no test weeks after it."""
