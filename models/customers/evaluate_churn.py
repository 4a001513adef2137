"""Held-out churn evaluation of the customer models: `evaluate_churn` (no trip in the weeks after a
cutoff), with its baselines in the same run and seeded bootstrap CIs over customers
(`models.customers.report` prints them). The trip model is chosen on calibration only, as
`models.customers.evaluate` chooses it for `evaluate_clv`; the holdout never fits or tunes anything.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers import btyd
from models.customers.btyd_selection import (
    CANDIDATES,
    Candidates,
    covariate_values,
    fit_candidates,
    select_model,
)
from models.customers.evaluate import Role, _calibration
from models.customers.intervals import Estimate, auc_rows, estimate
from models.customers.rfm import load_purchases
from models.customers.segments_breakdown import SegmentChurnRow, churn_by_segment
from models.customers.segments_evaluate import segment_source
from models.history import PurchaseHistory, day_date
from models.metrics import ece

F64 = npt.NDArray[np.float64]


class ChurnRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    auc: Estimate
    auc_minus_baseline: dict[str, Estimate] = {}  # model rows only
    ece: float | None = None  # probabilities only
    brier: float | None = None


class ChurnReport(msgspec.Struct, frozen=True, kw_only=True):
    task: Literal["churn"] = "churn"
    source: str
    cutoff: str
    window_days: float
    households: int
    churners: int
    churn_rate: Estimate
    seed: int
    bootstrap: int
    selected: str
    rows: list[ChurnRow]
    goal_met: bool  # the selected model's P(churn) beats every baseline with the CI of the gap above 0
    seconds: float
    by_segment: list[SegmentChurnRow] = []  # AUCs per segment (the selected model's P(no trip))


def evaluate_churn(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    cutoff: date | None = None,
    window_days: float = 56.0,
    candidates: Candidates = CANDIDATES,
    seed: int = 0,
    bootstrap: int = 1000,
    by_segment: bool = True,
) -> ChurnReport:
    """Churn = no trip in the ``window_days`` after the cutoff (default: 90 days before the data's end,
    the CLV task's cutoff; CDNOW: 1997-10-01). Scores of customers with a trip before the cutoff:
    the selected model's P(no trip in the window) and 1 - P(alive), every candidate's P(no trip), and the
    baselines days since the last trip and that over the customer's own mean interval (for one-trip
    customers the median of everyone's mean interval)."""
    began = time.perf_counter()
    p = load_purchases(source, history)
    start, end = _calibration(p, cutoff, window_days, 90.0)
    selected, _ = select_model(p, start, end, candidates)
    s = p.summary(end, window_days, window_days)
    label = s.holdout_trips == 0
    t_window = window_days / s.unit_days
    interval = np.where(
        np.isfinite(s.mean_interval_days), s.mean_interval_days, np.nanmedian(s.mean_interval_days)
    )
    scores: dict[str, F64] = {}
    for name, fitted in fit_candidates(p, end, window_days, candidates).items():
        m, own, z = fitted.model, fitted.summary, covariate_values(fitted.summary)
        scores[f"{name} P(no trip)"] = fitted.aligned(
            btyd.p_no_trip(m, t_window, own.x, own.t_x, own.T, z), s, 1.0
        )
        if name == selected:
            dead = 1.0 - btyd.p_alive(m, own.x, own.t_x, own.T, z)
            scores[f"{name} 1 - P(alive)"] = fitted.aligned(dead, s, 1.0)
    baselines = {
        "days since last trip": s.last_gap_days,
        "days since last / own mean interval": s.last_gap_days / np.maximum(interval, 1.0),
    }
    n = s.size
    idx = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
    boot_label = label[idx]
    boot_auc = {name: auc_rows(score[idx], boot_label) for name, score in baselines.items()}
    rows = [
        ChurnRow(name=name, role="baseline", auc=estimate(float(auc_rows(score, label)), boot_auc[name]))
        for name, score in baselines.items()
    ]
    for name, score in scores.items():
        auc = auc_rows(score[idx], boot_label)
        point = float(auc_rows(score, label))
        gaps = {
            b: estimate(point - float(auc_rows(v, label)), auc - boot_auc[b]) for b, v in baselines.items()
        }
        brier = float(np.mean((score - label) ** 2))
        rows.append(
            ChurnRow(
                name=name,
                role="model",
                auc=estimate(point, auc),
                auc_minus_baseline=gaps,
                ece=ece(score, label),
                brier=brier,
            )
        )
    chosen = next(r for r in rows if r.name == f"{selected} P(no trip)")
    segment_rows = []
    if by_segment:
        segment_rows = churn_by_segment(
            segment_source(source, history, end, seed),
            s.customers,
            churned=label,
            model_score=scores[f"{selected} P(no trip)"],
            baseline_scores=baselines,
        )
    return ChurnReport(
        source=source,
        cutoff=day_date(end).isoformat(),
        window_days=window_days,
        households=n,
        churners=int(label.sum()),
        churn_rate=estimate(float(label.mean()), boot_label.mean(1)),
        seed=seed,
        bootstrap=bootstrap,
        selected=selected,
        rows=rows,
        goal_met=all(g.low > 0 for g in chosen.auc_minus_baseline.values()),
        seconds=round(time.perf_counter() - began, 2),
        by_segment=segment_rows,
    )
