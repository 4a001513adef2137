"""Model cards: the JSON that ships next to each `model.onnx`.

A card says what the model is (name, version, kind), what it expects (the ordered feature columns of
its single float32 input `features`), what it was trained on (source, cutoff, seed and the SHA-256 of
the training history in canonical form), how it was trained (params) and how it did on the held-out
weeks after the cutoff, next to its baseline in the same run (metrics). `onnx_sha256` ties the card to
its model file; loading refuses a pair that does not match.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec

from models.errors import ModelLoadError

CARD_FILE = "card.json"
INPUT_NAME = "features"  # the single float32 input of every exported model: rows x `ModelCard.features`
MODEL_FILE = "model.onnx"
CARD_FORMAT = 1
T = TypeVar("T")
ModelName = Literal["next_purchase", "next_basket", "shelf_depletion"]


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    """The card of one trained model (see the module docstring; docs/models.md has an example)."""

    card_format: int = CARD_FORMAT
    name: ModelName
    version: Annotated[str, msgspec.Meta(min_length=1)]
    kind: Literal["hazard", "classifier", "regressor"]
    features: tuple[str, ...]
    output: str  # what the ONNX output means, in words
    training_data_sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    source: str
    cutoff: str  # ISO date: trained on everything before it, evaluated on the days after it
    seed: int
    params: dict[str, object] = {}
    metrics: dict[str, object] = {}
    onnx_sha256: str = ""
    onnx_bytes: int = 0


def model_version(name: str, cutoff: str, data_sha256: str, onnx_sha256: str) -> str:
    """`next_purchase-2017-10-01-<data hash 8>-<model hash 8>`: same source, cutoff and seed, same version."""
    return f"{name}-{cutoff}-{data_sha256[:8]}-{onnx_sha256[:8]}"


def write_model(directory: Path, card: ModelCard, onnx_model: bytes) -> ModelCard:
    """Write `model.onnx` and `card.json` (with the model's hash and size filled in)."""
    digest = hashlib.sha256(onnx_model).hexdigest()
    card = msgspec.structs.replace(
        card,
        onnx_sha256=digest,
        onnx_bytes=len(onnx_model),
        version=model_version(card.name, card.cutoff, card.training_data_sha256, digest),
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(onnx_model)
    (directory / CARD_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(card), indent=2) + b"\n")
    return card


def read_card(path: Path) -> ModelCard:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model card: {exc.strerror}") from exc
    try:
        return msgspec.json.decode(raw, type=ModelCard)
    except msgspec.ValidationError as exc:
        text, _, where = str(exc).rpartition(" - at `")
        field = where.rstrip("`").removeprefix("$.") if where else ""
        raise ModelLoadError(f"{path}: {field + ': ' if field else ''}{text or exc}") from exc
    except msgspec.DecodeError as exc:
        raise ModelLoadError(f"{path}: not valid JSON: {exc}") from exc


def read_model(directory: Path) -> tuple[ModelCard, bytes]:
    """The card and the ONNX bytes of a model directory, checked against each other."""
    card = read_card(directory / CARD_FILE)
    path = directory / MODEL_FILE
    try:
        onnx_model = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model: {exc.strerror}") from exc
    digest = hashlib.sha256(onnx_model).hexdigest()
    if card.onnx_sha256 and digest != card.onnx_sha256:
        raise ModelLoadError(f"{path}: SHA-256 {digest[:12]}... does not match onnx_sha256 in {CARD_FILE}")
    return card, onnx_model


def copy_model_set(source: Path, destination: Path, version: str, *, drop: str | None = None) -> Path:
    """A copy of the model set in ``source`` (next_purchase/, next_basket/, shelf_depletion/) at
    ``destination``, every card's version renamed ``<name>-<version>`` (a challenger for a demo, a test
    or a benchmark, telling its rows apart); ``drop`` leaves one model out (a broken set)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    for path in destination.glob(f"*/{CARD_FILE}"):
        data = json.loads(path.read_text())
        data["version"] = f"{data['name']}-{version}"
        path.write_text(json.dumps(data))
    if drop is not None:
        shutil.rmtree(destination / drop)
    return destination


# ---------------------------------------------------------------------------------------------------
# Customer models (no ONNX: closed forms the daemon evaluates with numpy and scipy; issue #15).

CUSTOMERS_DIR = "customers"  # <model set>/customers/params.json (+ segments.json when segments ship)
CUSTOMER_PARAMS_FILE = "params.json"
SEGMENTS_FILE = "segments.json"  # `models.customers.segments.SegmentModel`


def params_version(cutoff: str, data_sha256: str, params_json: bytes) -> str:
    """`customers-2024-10-01-<data hash 8>-<params hash 8>`, like `model_version`."""
    return f"customers-{cutoff}-{data_sha256[:8]}-{hashlib.sha256(params_json).hexdigest()[:8]}"


def write_json_model(path: Path, model: msgspec.Struct) -> None:
    """Write a msgspec model (customer params, segments) as indented JSON, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(model), indent=2) + b"\n")


def read_json_model(path: Path, kind: type[T]) -> T:
    """A msgspec model written by `write_json_model`; a clear `ModelLoadError` naming file and field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ModelLoadError(f"{path}: not valid JSON: {exc}") from exc
