"""A `model` bundle from central goes live without a restart; a bad one is refused and never served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.metrics import IngestMetrics
from edge.predictions.model_set import load_store_models, model_directory
from edge.predictions.service import PredictionService
from edge.store.writer import StoreWriter
from edge.uplink.bundle_checks import check_layout, check_promotions, check_store_models
from models.cards import copy_model_set
from models.inference import TRAINED_DIR
from sync.errors import BundleError

DEMO_STORE = Path(__file__).resolve().parents[2] / "simulators" / "demo_store"


def model_set(root: Path, version: str, *, drop: str | None = None) -> Path:
    """A copy of the shipped models as a bundle directory, every card renamed to ``version``."""
    return copy_model_set(TRAINED_DIR, root, version, drop=drop)


def go_live(bundle_dir: Path, version: Path) -> None:
    current = bundle_dir / "model" / "current"
    current.parent.mkdir(parents=True, exist_ok=True)
    if current.is_symlink():
        current.unlink()
    current.symlink_to(version.relative_to(current.parent))


async def test_a_new_model_bundle_is_swapped_in_and_a_broken_one_is_not(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    config = parse_config(
        {"database": {"path": str(tmp_path / "store.db")}, "sync": {"bundle_dir": str(bundles)}}
    )
    assert model_directory(config) == TRAINED_DIR.resolve()  # no bundle yet: the shipped models
    service = PredictionService(
        config,
        tmp_path / "store.db",
        StoreWriter(tmp_path / "store.db", None, IngestMetrics()),  # type: ignore[arg-type]
        IngestMetrics(),
        load_store_models(config),
        models_dir=model_directory(config),
    )
    try:
        assert await service.refresh_models() is False  # nothing new
        go_live(bundles, model_set(bundles / "model" / "versions" / "2", "v2"))
        assert await service.refresh_models() is True
        assert service.models.next_purchase.card.version == "next_purchase-v2"
        assert service.models.shelf_depletion.card.version == "shelf_depletion-v2"
        # A set without its next-basket model cannot be served: the v2 models stay.
        go_live(bundles, model_set(bundles / "model" / "versions" / "3", "v3", drop="next_basket"))
        assert await service.refresh_models() is False
        assert service.models.next_basket.card.version == "next_basket-v2"
        assert await service.refresh_models() is False  # and it is not retried every poll
    finally:
        await service.close()


def test_the_daemon_checks_bundles_with_the_code_that_will_use_them(tmp_path: Path) -> None:
    check_store_models(model_set(tmp_path / "good", "v9"))
    with pytest.raises(BundleError, match="model bundle"):
        check_store_models(model_set(tmp_path / "bad", "v9", drop="shelf_depletion"))
    layout = tmp_path / "layout"
    layout.mkdir()
    shutil.copy(DEMO_STORE / "layout.toml", layout / "layout.toml")
    check_layout(layout)
    (layout / "layout.toml").write_text("[store]\nname = 'no nodes'\n")
    with pytest.raises(BundleError, match="layout bundle"):
        check_layout(layout)
    promotions = tmp_path / "promotions"
    promotions.mkdir()
    shutil.copy(DEMO_STORE / "promotions.json", promotions / "promotions.json")
    check_promotions(promotions)
    (promotions / "promotions.json").write_text('{"promotions": [{"id": "x"}]}')
    with pytest.raises(BundleError, match=r"promotions\[0\]"):
        check_promotions(promotions)
