"""The CLV and churn evaluations broken down by segment: which segments the models serve well.

`SegmentedHouseholds` is a fitted segmentation of the households before a cutoff; `clv_by_segment` and
`churn_by_segment` take per-customer results of `models.customers.evaluate` and report them per segment
(point estimates; a segment's figures rest on its own, smaller, count of customers, which is reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from models.customers.segments import SegmentModel

F64 = npt.NDArray[np.float64]
UNSEGMENTED = "none"  # customers the segmentation does not know (no line before the cutoff)


@dataclass(frozen=True, slots=True, eq=False)
class SegmentedHouseholds:
    """Households (sorted ids) with their segment index into ``model.segments`` and their features."""

    ids: npt.NDArray[np.str_]
    labels: npt.NDArray[np.int64]
    model: SegmentModel
    features: F64

    def align(self, household: npt.ArrayLike, value: npt.ArrayLike) -> F64:
        """Sum ``value`` per household of ``ids`` (households not in ``ids`` are dropped)."""
        names = np.asarray(household).astype(str)
        v = np.asarray(value, dtype=np.float64)
        pos = np.clip(np.searchsorted(self.ids, names), 0, max(self.ids.size - 1, 0))
        known = self.ids[pos] == names
        return np.asarray(
            np.bincount(pos[known], weights=v[known], minlength=self.ids.size), dtype=np.float64
        )

    def segment_ids(self, customers: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """The segment id of each customer (`UNSEGMENTED` for one the segmentation does not know)."""
        names = np.asarray(customers).astype(str)
        pos = np.clip(np.searchsorted(self.ids, names), 0, max(self.ids.size - 1, 0))
        known = self.ids[pos] == names
        seg = np.asarray([s.id for s in self.model.segments] + [UNSEGMENTED])
        return np.asarray(seg[np.where(known, self.labels[pos], len(self.model.segments))], dtype=str)

    def names(self) -> dict[str, str]:
        return {s.id: s.name for s in self.model.segments} | {UNSEGMENTED: "not segmented"}


class SegmentClvRow(msgspec.Struct, frozen=True, kw_only=True):
    segment: str
    name: str
    customers: int
    holdout_trips_mean: float
    predicted_trips_mean: float  # the selected model
    trips_mae: float  # the selected model
    baseline_trips_mae: float  # own trips before the cutoff
    spend_mae: float  # the selected model with Gamma-Gamma spend per trip
    baseline_spend_mae: float  # own spend before the cutoff


class SegmentChurnRow(msgspec.Struct, frozen=True, kw_only=True):
    segment: str
    name: str
    households: int
    churners: int
    auc: (
        float | None
    )  # the selected model's P(no trip); None when the segment has no churner or only churners
    baseline_auc: dict[str, float | None]


def _order(segmented: SegmentedHouseholds, present: npt.NDArray[np.str_]) -> list[str]:
    ids = [s.id for s in segmented.model.segments] + [UNSEGMENTED]
    return [i for i in ids if i in set(present.tolist())]


def clv_by_segment(
    segmented: SegmentedHouseholds,
    customers: npt.ArrayLike,
    *,
    actual_trips: F64,
    predicted_trips: F64,
    baseline_trips: F64,
    actual_spend: F64,
    predicted_spend: F64,
    baseline_spend: F64,
) -> list[SegmentClvRow]:
    """The CLV evaluation's figures per segment."""
    seg = segmented.segment_ids(customers)
    names = segmented.names()
    rows = []
    for sid in _order(segmented, seg):
        m = seg == sid
        rows.append(
            SegmentClvRow(
                segment=sid,
                name=names[sid],
                customers=int(m.sum()),
                holdout_trips_mean=round(float(actual_trips[m].mean()), 4),
                predicted_trips_mean=round(float(predicted_trips[m].mean()), 4),
                trips_mae=round(float(np.abs(predicted_trips[m] - actual_trips[m]).mean()), 4),
                baseline_trips_mae=round(float(np.abs(baseline_trips[m] - actual_trips[m]).mean()), 4),
                spend_mae=round(float(np.abs(predicted_spend[m] - actual_spend[m]).mean()), 2),
                baseline_spend_mae=round(float(np.abs(baseline_spend[m] - actual_spend[m]).mean()), 2),
            )
        )
    return rows


def _auc(score: F64, label: npt.NDArray[np.bool_]) -> float | None:
    positives = int(label.sum())
    negatives = label.size - positives
    if positives == 0 or negatives == 0:
        return None
    u = float((rankdata(score) * label).sum()) - positives * (positives + 1) / 2.0
    return round(u / (positives * negatives), 4)


def churn_by_segment(
    segmented: SegmentedHouseholds,
    customers: npt.ArrayLike,
    *,
    churned: npt.NDArray[np.bool_],
    model_score: F64,
    baseline_scores: dict[str, F64],
) -> list[SegmentChurnRow]:
    """The churn evaluation's AUCs per segment."""
    seg = segmented.segment_ids(customers)
    names = segmented.names()
    rows = []
    for sid in _order(segmented, seg):
        m = seg == sid
        rows.append(
            SegmentChurnRow(
                segment=sid,
                name=names[sid],
                households=int(m.sum()),
                churners=int(churned[m].sum()),
                auc=_auc(model_score[m], churned[m]),
                baseline_auc={b: _auc(v[m], churned[m]) for b, v in baseline_scores.items()},
            )
        )
    return rows
