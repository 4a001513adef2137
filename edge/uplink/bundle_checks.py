"""What the daemon checks before it activates a bundle from central (richer than `sync.bundle_checks`'s
defaults, because here the consumers can be asked): a `model` bundle must hold the three models this
code serves, each loading in onnxruntime against its card and scoring a canary row; a `layout` must
pass routing's full validation; `promotions` must parse as the offers file. A bundle that fails is
refused and the live version keeps serving (`sync.bundle_install.BundleInstaller`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edge.customers.offers import load_promotions
from edge.errors import ConfigError
from models.errors import ModelsError
from models.inference import load_models
from routing import RoutingError, load_layout
from sync.bundle_checks import DEFAULT_CHECKS, HealthCheck, check_onnx_models
from sync.errors import BundleError


def check_store_models(directory: Path) -> None:
    check_onnx_models(directory)  # every .onnx loads and scores a canary row with finite outputs
    try:
        load_models(directory)  # next_purchase/, next_basket/, shelf_depletion/: model + card, features match
    except ModelsError as exc:
        raise BundleError(f"model bundle: {exc}") from exc


def check_layout(directory: Path) -> None:
    try:
        load_layout(directory / "layout.toml")
    except RoutingError as exc:
        raise BundleError(f"layout bundle: {exc}") from exc


def check_promotions(directory: Path) -> None:
    try:
        load_promotions(directory / "promotions.json")
    except ConfigError as exc:
        raise BundleError(f"promotions bundle: {exc}") from exc


DAEMON_CHECKS: Mapping[str, HealthCheck] = {
    **DEFAULT_CHECKS,
    "model": check_store_models,
    "layout": check_layout,
    "promotions": check_promotions,
}
