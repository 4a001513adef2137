"""What a scoring run reports: households and rows written, where the time went, and the prediction
metrics on ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from edge.metrics import Counter, Gauge, IngestMetrics


@dataclass(frozen=True, slots=True)
class RescoreReport:
    households: int  # scored and written (with consent at write time)
    rows: int
    seconds: float
    stages: StageSeconds | None = None  # where a full run's time went


@dataclass(slots=True)
class StageSeconds:
    """Wall time spent reading history, scoring and writing (reads overlap scoring in a full run)."""

    read_s: float = 0.0
    score_s: float = 0.0
    write_s: float = 0.0


class PredictionMetrics:
    def __init__(self, metrics: IngestMetrics) -> None:
        r = metrics.registry
        self.scored = r.register(
            Counter(
                "storeedge_predictions_households_scored_total",
                "Households scored, by trigger (full, change, demand).",
                ("trigger",),
            )
        )
        self.full_seconds = r.register(
            Gauge("storeedge_predictions_full_rescore_seconds", "Duration of the last full rescore.")
        )
        self.lists = r.register(
            Counter(
                "storeedge_shopping_lists_total",
                "Shopping lists served, by kind (personalised, generic).",
                ("kind",),
            )
        )
        self.shelf_runs = r.register(
            Counter("storeedge_shelf_forecast_runs_total", "Shelf forecast passes over every shelf.")
        )
