"""`storeedge models train|evaluate --task ranker`: the next-basket ranker alone, written next to the
other models of ``--out`` (left as they are), with the card the daemon loads it from."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from models.basket_baselines import TifuParams
from models.basket_ranker import RankerParams, ranker_onnx_bytes, train_basket_ranker
from models.cli import configure_parser, run
from models.history import PurchaseHistory, day_date, save_history
from models.inference import RANKER_DIR, TRAINED_DIR, load_models
from models.ranker_features import feature_names


def test_train_writes_the_ranker_beside_the_other_models(
    capsys: pytest.CaptureFixture[str], small_history: PurchaseHistory, tmp_path: Path
) -> None:
    path = tmp_path / "h.npz"
    save_history(small_history, path)
    out = tmp_path / "models"
    shutil.copytree(TRAINED_DIR, out, ignore=shutil.ignore_patterns("__pycache__", RANKER_DIR))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    cutoff = day_date(small_history.first_day + 180).isoformat()
    parser = argparse.ArgumentParser(prog="storeedge models")
    configure_parser(parser)
    args = ["train", "--source", str(path), "--cutoff", cutoff, "--task", "ranker", "--out", str(out)]
    assert run(parser.parse_args(args)) == 0
    text = capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before  # the other models are left alone
    models = load_models(out)
    ranker = models.next_basket_ranker
    assert ranker is not None
    card = ranker.card
    assert f"'version': '{card.version}'" in text
    assert card.source == "h.npz"
    assert card.features == feature_names(ranker.groups)
    assert TifuParams(**card.params["tifu_knn"]) == ranker.tifu  # type: ignore[arg-type]
    # The table: ranker, GP-TopFreq and TIFU-KNN in both protocols, the card's held-out metrics.
    assert text.count("GP-TopFreq") == text.count("TIFU-KNN (tuned)") == 2
    assert "next-basket ranker ('model'), rolling protocol" in text
    rolling = card.metrics["rolling"]
    assert isinstance(rolling, dict)
    assert f"{rolling['model']['recall@10']:.3f}" in text
    # On the small simulated store the served ranker beats both baselines in the daemon's protocol.
    assert rolling["model"]["recall@10"] > rolling["baseline"]["recall@10"]
    assert rolling["model"]["recall@10"] > rolling["baseline_tifu_knn"]["recall@10"]
    assert card.metrics["model"]["baskets"] == card.metrics["baseline"]["baskets"] > 0  # type: ignore[index]
    assert run(parser.parse_args(["evaluate", "--source", str(path), "--task", "ranker"])) == 2
    assert "--cutoff: required (YYYY-MM-DD) for --task ranker" in capsys.readouterr().err


def test_the_same_fit_exports_to_the_same_bytes(small_history: PurchaseHistory) -> None:
    """The model's version is its bytes' hash: two exports of one fit must not differ (onnxmltools names
    the graph by a random UUID unless told)."""
    cutoff = small_history.first_day + 180
    ranker = train_basket_ranker(small_history, cutoff, train_every=14, params=RankerParams(n_estimators=5))
    assert ranker_onnx_bytes(ranker) == ranker_onnx_bytes(ranker)
