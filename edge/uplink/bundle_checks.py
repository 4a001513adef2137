"""What the daemon checks before it activates a bundle from central (richer than `sync.bundle_checks`'s
defaults, because here the consumers can be asked): a `model` bundle must hold the three models this
code serves, each loading in onnxruntime against its card and scoring a canary row, and its optional
customer models (``customers/``) must decode and score a canary household; a `layout` must
pass routing's full validation; `promotions` must parse as the offers file; an `experiment` must hold a
valid experiment whose challengers' models pass the model checks. A bundle that fails is
refused and the live version keeps serving (`sync.bundle_install.BundleInstaller`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge.catalog.load import load_catalog
from edge.customers.offers import load_promotions
from edge.customers.scores import Trips, load_customer_models, score_trips
from edge.errors import ConfigError
from models.customers.segments import assign
from models.errors import DatasetError, ModelsError
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
    check_customer_models(directory)


def check_customer_models(directory: Path) -> None:
    """The optional ``customers/`` of a model set: params (and segments) decode and score a canary
    household with finite figures. Absent is fine (the feature is off)."""
    try:
        found = load_customer_models(directory)
    except ModelsError as exc:
        raise BundleError(f"model bundle: {exc}") from exc
    if found is None:
        return
    canary = Trips(
        ("canary",),
        np.zeros(4, dtype=np.int64),
        np.array([0, 7, 14, 21], dtype=np.int64),
        np.array([20.0, 25.0, 30.0, 22.0]),
        None,
    )
    try:
        scores = score_trips(found, canary, today=28, now_ms=0, clv_days=365)
    except (ArithmeticError, ValueError) as exc:
        raise BundleError(f"model bundle: customers/: the canary household does not score: {exc}") from exc
    figures = [(s.expected_trips_90d, s.p_alive, s.clv) for s in scores]
    if len(figures) != 1 or not all(math.isfinite(v) and v >= 0 for v in figures[0]) or figures[0][1] == 0:
        raise BundleError(f"model bundle: customers/: the canary household scores {figures}, not finite")
    if found.segments is not None:
        try:
            assign(found.segments, np.zeros((1, len(found.segments.features))))
        except DatasetError as exc:
            raise BundleError(f"model bundle: customers/segments.json: {exc}") from exc
        if len(found.segments.centres) != len(found.segments.segments):
            raise BundleError("model bundle: customers/segments.json: centres and segments differ in number")


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


def check_catalog(directory: Path) -> None:
    try:
        load_catalog(directory / "catalog.json")
    except ConfigError as exc:
        raise BundleError(f"catalog bundle: {exc}") from exc


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
    "catalog": check_catalog,
    "experiment": check_experiment,
}
