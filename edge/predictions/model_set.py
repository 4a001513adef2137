"""Which models the store serves: the live `model` bundle from central, else ``[models] dir``."""

from __future__ import annotations

from pathlib import Path

from edge.config import Config
from edge.errors import ConfigError
from models import ModelsError, StoreModels, load_models
from models.inference import TRAINED_DIR


def model_directory(config: Config) -> Path:
    """Where the served models are: the live `model` bundle from central when there is one (it passed
    `edge.uplink.bundle_checks.check_store_models` before activation), else ``[models] dir`` (default: the
    models shipped in the package). Resolved, so a bundle swap shows as a new path."""
    live = config.path(config.sync.bundle_dir) / "model" / "current"
    if (live / "next_purchase" / "model.onnx").is_file():
        return live.resolve()
    return (config.path(config.models.dir) if config.models.dir else TRAINED_DIR).resolve()


def load_store_models(config: Config, directory: Path | None = None) -> StoreModels:
    """The models in ``directory`` (default: `model_directory`)."""
    try:
        return load_models(directory or model_directory(config), threads=config.models.threads)
    except ModelsError as exc:
        raise ConfigError(f"[models] dir: {exc}") from exc
