"""What the daemon checks before it activates a bundle from central (richer than `sync.bundle_checks`'s
defaults, because here the consumers can be asked): a `model` bundle must hold the three models this
code serves, each loading in onnxruntime against its card and scoring a canary row; a `layout` must
pass routing's full validation; `promotions` must parse as the offers file; an `experiment` must hold a
valid experiment whose challengers' models pass the model checks. A bundle that fails is
refused and the live version keeps serving (`sync.bundle_install.BundleInstaller`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edge.customers.offers import load_promotions
from edge.errors import ConfigError
from models.errors import ModelsError
from models.experiments.spec import read_experiment
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


def check_experiment(directory: Path) -> None:
    """An `experiment` bundle: ``experiment.json`` decodes and checks, and every arm that brings its own
    models holds the three models this code serves, each loading and scoring a canary row."""
    try:
        spec = read_experiment(directory)
    except ValueError as exc:
        raise BundleError(f"experiment bundle: {exc}") from exc
    for arm in spec.arms:
        if arm.models is not None:
            check_store_models(directory / arm.models)


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
    "experiment": check_experiment,
}
