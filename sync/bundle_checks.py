"""Health checks of bundles by kind: what a bundle's directory must pass before it goes live and again
once it is live (`sync.bundle_install.BundleInstaller`). The daemon registers richer ones
(`edge.uplink.bundle_checks`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from sync.errors import BundleError

HealthCheck = Callable[[Path], None]
"""A kind's health check: called with a bundle's directory; returns if the bundle is usable, raises if not."""


def check_onnx_models(directory: Path) -> None:
    """Every ``*.onnx`` in the bundle loads in onnxruntime and scores a canary row with finite outputs.

    The canary is ``canary.json`` next to the model (``{"<input name>": [[...]], ...}``) when the bundle
    ships one, else zeros shaped like each input (symbolic dimensions as 1).
    """
    import numpy as np  # noqa: PLC0415 - heavy imports only where a model is checked
    import onnxruntime as ort  # noqa: PLC0415

    models = sorted(directory.rglob("*.onnx"))
    if not models:
        raise BundleError("model bundle contains no .onnx file")
    types = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(bool)": np.bool_,
    }
    for model in models:
        try:
            session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for every kind of bad file
            raise BundleError(f"{model.name}: does not load: {exc}") from exc
        canary_path = model.with_name("canary.json")
        canary: dict[str, Any] = {}
        if canary_path.is_file():
            canary = msgspec.json.decode(canary_path.read_bytes())
        feeds: dict[str, Any] = {}
        for spec in session.get_inputs():
            dtype = types.get(spec.type)
            if dtype is None:
                raise BundleError(f"{model.name}: input {spec.name} has unsupported type {spec.type}")
            if spec.name in canary:
                feeds[spec.name] = np.asarray(canary[spec.name], dtype=dtype)
            else:
                shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
                feeds[spec.name] = np.zeros(shape, dtype=dtype)
        try:
            outputs = session.run(None, feeds)
        except Exception as exc:  # as above: onnxruntime's errors are not typed
            raise BundleError(f"{model.name}: fails to score the canary row: {exc}") from exc
        for output in outputs:
            values = np.asarray(output)
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                raise BundleError(f"{model.name}: canary row scores non-finite values")


def json_file_check(name: str) -> HealthCheck:
    def check(directory: Path) -> None:
        path = directory / name
        try:
            value = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise BundleError(f"{name}: missing or not JSON: {exc}") from exc
        if not value:
            raise BundleError(f"{name}: empty")

    return check


def toml_file_check(name: str) -> HealthCheck:
    def check(directory: Path) -> None:
        path = directory / name
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BundleError(f"{name}: missing or not TOML: {exc}") from exc
        except RecursionError as exc:  # tomllib runs out of stack a few hundred levels down
            raise BundleError(f"{name}: not TOML this store reads: nested too deeply") from exc

    return check


# The kinds a store accepts, each with the check a bundle must pass. The daemon may replace a check
# with a richer one (the layout through routing's loader, a model through the models registry).
DEFAULT_CHECKS: Mapping[str, HealthCheck] = {
    "model": check_onnx_models,
    "catalog": json_file_check("catalog.json"),
    "layout": toml_file_check("layout.toml"),
    "promotions": json_file_check("promotions.json"),
    "experiment": json_file_check("experiment.json"),
}


__all__ = ["DEFAULT_CHECKS", "HealthCheck", "check_onnx_models", "json_file_check", "toml_file_check"]
