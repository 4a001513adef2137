"""`storeedge models train|evaluate --task shelf`: the shelf-depletion model alone, on the simulated
store's picks, with the same options, seeds and card as in `--task models` (so retraining the shipped
shelf model leaves the household models alone)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from models.datasets import SIMULATED
from models.history import PurchaseHistory, day_date
from models.holiday_calendar import DEFAULT_COUNTRY
from models.pipeline import TrainOptions
from models.progress import NO_PROGRESS, Progress
from models.shelf import pick_stream_from_history
from models.shelf_pipeline import ShelfProvenance, evaluate_shelf, export_shelf, train_shelf


def run_shelf_task(
    history: PurchaseHistory,
    cutoff: int,
    *,
    seed: int,
    out_dir: Path | None = None,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Train before ``cutoff``, evaluate after it and, with ``out_dir``, write
    ``out_dir``/shelf_depletion/; the report has the `shelf_depletion` part of `models evaluate`'s."""
    options = TrainOptions(seed=seed)
    # The simulated store is in the simulator's default country (its public holidays shape the picks).
    stream = pick_stream_from_history(history, country=DEFAULT_COUNTRY)
    trained = train_shelf(
        stream,
        cutoff,
        params=options.params,
        seed=seed,
        samples=options.shelf_samples,
        max_stock=options.shelf_max_stock,
        progress=progress,
    )
    began = time.perf_counter()
    progress.stage("evaluating shelf depletion")
    report: dict[str, Any] = {"shelf_depletion": evaluate_shelf(stream, trained, seed=seed)}
    report["timing_seconds"] = {
        "train": round(trained.seconds, 1),
        "evaluate": round(time.perf_counter() - began, 1),
    }
    if out_dir is not None:
        progress.stage("exporting the shelf model")
        card = export_shelf(
            trained,
            stream,
            out_dir / "shelf_depletion",
            report["shelf_depletion"],
            ShelfProvenance(SIMULATED, history.sha256(), day_date(cutoff).isoformat(), seed),
            asdict(options.params),
        )
        report["written"] = {"shelf_depletion": {"version": card.version, "onnx_bytes": card.onnx_bytes}}
    return report
