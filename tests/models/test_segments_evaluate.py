"""The segments' evaluation: eta squared by hand, the report on a small simulated history, the per-segment
breakdown of the CLV and churn reports, and `storeedge models evaluate --task segments` (text and JSON)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from models.cli import configure_parser, run
from models.customers.btyd_selection import Candidates
from models.customers.evaluate import evaluate_clv
from models.customers.evaluate_churn import evaluate_churn
from models.customers.report import format_churn, format_clv, format_segments
from models.customers.segment_naming import forbidden_in
from models.customers.segments_breakdown import UNSEGMENTED
from models.customers.segments_evaluate import eta_squared, evaluate_segments
from models.history import PurchaseHistory
from simulators.household_history import write_simulated_history


def test_eta_squared_by_hand() -> None:
    y = np.array([1.0, 3.0, 10.0, 14.0])
    # group means 2 and 12, grand mean 7: between SS = 4 * 25 = 100; total SS = 36 + 16 + 9 + 49 = 110
    assert eta_squared(y, np.array([0, 0, 1, 1]))[0] == pytest.approx(100 / 110)
    assert eta_squared(y, np.array([0, 1, 0, 1]))[0] == pytest.approx(9 / 110)  # means 5.5 and 8.5
    np.testing.assert_allclose(eta_squared(np.ones(4), np.array([[0, 0, 1, 1]])), [0.0])


def test_report_on_a_small_simulation(small_history: PurchaseHistory) -> None:
    report = evaluate_segments("simulated", history=small_history, rounds=2, permutations=200)
    assert report.k == len(report.segments)
    assert len(report.stability_rounds) == 2
    assert sum(s.households for s in report.segments) == report.households
    assert all(-1.0 <= a <= 1.0 for a in report.stability_rounds)
    assert report.missing_features == []  # the simulator records everything
    assert report.unused_features == ["trend"]  # 240 days are too short for a 13-week trend before a cutoff
    # Segments differ in next-quarter spend far beyond what shuffled labels give.
    assert report.spend.eta_squared > report.spend.chance_p95
    assert report.spend.p_value == pytest.approx(1 / 201, abs=1e-5)
    text = format_segments(report)
    for s in report.segments:
        assert s.id in text
        assert s.name in text
        assert forbidden_in(s.name + " " + s.description) == []


FAST: Candidates = (("bgnbd", False, None),)


def test_clv_and_churn_reports_break_down_by_segment(small_history: PurchaseHistory) -> None:
    clv = evaluate_clv("simulated", history=small_history, candidates=FAST, bootstrap=50)
    assert clv.by_segment
    assert sum(r.customers for r in clv.by_segment) == clv.customers
    assert UNSEGMENTED not in {r.segment for r in clv.by_segment}  # everyone in the summary has history
    total = sum(r.holdout_trips_mean * r.customers for r in clv.by_segment)
    assert total == pytest.approx(clv.holdout_trips, rel=1e-3)
    assert "by segment" in format_clv(clv)
    churn = evaluate_churn("simulated", history=small_history, candidates=FAST, bootstrap=50)
    assert sum(r.households for r in churn.by_segment) == churn.households
    assert sum(r.churners for r in churn.by_segment) == churn.churners
    for r in churn.by_segment:
        assert set(r.baseline_auc) == {"days since last trip", "days since last / own mean interval"}
        assert (r.auc is None) == (r.churners in (0, r.households))
    assert "by segment" in format_churn(churn)
    quiet = evaluate_clv("simulated", history=small_history, candidates=FAST, bootstrap=50, by_segment=False)
    assert quiet.by_segment == []


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="storeedge models")
    configure_parser(parser, simulate=write_simulated_history)
    code = run(parser.parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


SMALL_SIM = ["--source", "simulated", "--sim-households", "300", "--sim-days", "240", "--seed", "3"]


def test_cli_prints_the_table_and_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["evaluate", "--task", "segments", *SMALL_SIM, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["task"] == "segments"
    assert report["source"] == "simulated"
    assert report["k"] == len(report["segments"])
    assert sum(s["households"] for s in report["segments"]) == report["households"]
    assert set(report["goals"]) == {"stability_ge_0.8", "spend_explained_beyond_chance"}
    assert 0.0 <= report["spend"]["eta_squared"] <= 1.0
    assert len({s["id"] for s in report["segments"]}) == report["k"]
    code, out, _ = _run(["evaluate", "--task", "segments", *SMALL_SIM], capsys)
    assert code == 0
    assert out.startswith(f"Segments on simulated: {report['households']} households")
    assert "next 90 days' spend explained by segment: eta^2" in out


def test_cli_names_what_is_at_fault(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["evaluate", "--task", "segments", "--source", "history.npz"], capsys)
    assert code == 2
    assert "--task segments takes completejourney, cdnow or simulated" in err
    code, _, err = _run(["evaluate", "--task", "segments", *SMALL_SIM, "--cutoff", "2024-01-10"], capsys)
    assert code == 2
    assert "less than four weeks of history to segment" in err


@pytest.mark.slow  # about a minute: 2,447 households, k chosen over 2..8 with five halvings each
def test_completejourney_segments_explain_spend_and_name_the_measure() -> None:
    report = evaluate_segments("completejourney")
    assert report.households == 2447
    assert report.missing_features == []
    assert report.k == len(report.segments)
    assert report.stability_by_k[str(report.k)] >= 0.85 or report.k_rule.endswith("(else the most stable k)")
    assert report.spend.eta_squared > report.spend.chance_p95
    assert report.goals["stability_ge_0.8"] == (report.stability >= 0.8)
    for s in report.segments:
        assert forbidden_in(s.name + " " + s.description) == []
