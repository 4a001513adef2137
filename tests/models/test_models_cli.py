"""`storeedge models train|evaluate`: errors name what is at fault; a small run prints the metrics table
or the documented JSON and writes loadable models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from models.cli import configure_parser, run
from models.history import PurchaseHistory, day_date, save_history
from models.inference import load_models
from simulators.household_history import write_simulated_history


def _parser(simulate: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storeedge models")
    configure_parser(parser, simulate=write_simulated_history if simulate else None)
    return parser


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], simulate: bool = True) -> tuple[int, str, str]:
    code = run(_parser(simulate).parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_cutoff_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["evaluate", "--source", "simulated", "--cutoff", "2024-13-01"])
    assert exc.value.code == 2
    assert "argument --cutoff: not a date (YYYY-MM-DD): '2024-13-01'" in capsys.readouterr().err


def test_unknown_source_and_unreadable_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(["evaluate", "--source", "nonsense", "--cutoff", "2024-06-01"], capsys)
    assert code == 2
    assert "--source 'nonsense': unknown source" in err
    code, _, err = _run(
        ["evaluate", "--source", str(tmp_path / "gone.npz"), "--cutoff", "2024-06-01"], capsys
    )
    assert code == 2
    assert "gone.npz: history file not found" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("household,category\n")
    code, _, err = _run(["evaluate", "--source", str(bad), "--cutoff", "2024-06-01"], capsys)
    assert code == 2
    assert "bad.csv line 1: header must be" in err


def test_customer_tasks_name_what_is_at_fault(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["evaluate", "--task", "clv", "--source", "history.csv"], capsys)
    assert code == 2
    assert "--source: --task clv takes completejourney, cdnow or simulated" in err
    code, _, err = _run(["evaluate", "--source", "simulated"], capsys)  # the household models need a cutoff
    assert code == 2
    assert "--cutoff: required" in err
    with pytest.raises(SystemExit):
        _parser().parse_args(["evaluate", "--task", "insights", "--source", "cdnow"])
    assert "invalid choice: 'insights'" in capsys.readouterr().err


@pytest.mark.slow  # a minute: every candidate model fitted, 1,000 bootstrap rounds
def test_churn_on_cdnow_prints_the_table_and_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["evaluate", "--task", "churn", "--source", "cdnow", "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["task"] == "churn"
    assert report["households"] == 2357


def test_simulated_needs_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        ["evaluate", "--source", "simulated", "--cutoff", "2024-06-01"], capsys, simulate=False
    )
    assert code == 2
    assert "python -m simulators.household_history --out FILE" in err


def test_cutoff_outside_the_history(
    capsys: pytest.CaptureFixture[str], small_history: PurchaseHistory, tmp_path: Path
) -> None:
    path = tmp_path / "h.npz"
    save_history(small_history, path)
    code, _, err = _run(["evaluate", "--source", str(path), "--cutoff", "2030-01-01"], capsys)
    assert code == 2
    assert "--cutoff 2030-01-01: need at least 14 test days after it" in err
    code, _, err = _run(["evaluate", "--source", str(path), "--cutoff", "2024-01-10"], capsys)
    assert "--cutoff 2024-01-10: need at least 16 weeks of history before it" in err


def test_evaluate_json_and_train_on_a_history_file(
    capsys: pytest.CaptureFixture[str], small_history: PurchaseHistory, tmp_path: Path
) -> None:
    path = tmp_path / "h.npz"
    save_history(small_history, path)
    cutoff = day_date(small_history.first_day + 180).isoformat()
    out = tmp_path / "trained"
    common = ["--source", str(path), "--cutoff", cutoff, "--sim-households", "150", "--sim-days", "90"]
    code, text, err = _run(["train", *common, "--out", str(out), "--json"], capsys)
    assert code == 0, err
    report = json.loads(text)
    for model in ("next_purchase", "next_basket"):
        assert set(report[model]) >= {"model", "baseline"}
    for side in ("model", "baseline"):
        assert {"mae_days", "within_7d", "within_2d", "ece"} <= set(report["next_purchase"][side])
        assert {"recall@10", "ndcg@10", "ece"} <= set(report["next_basket"][side])
    ranking_keys = {"recall@10", "ndcg@10", "recall_repeat@10", "recall_new@10", "baskets", "households"}
    for protocol in ("next_basket", "next_basket_rolling"):
        part = report[protocol]
        assert set(part["baseline_tifu_knn"]) == ranking_keys
        assert part["baseline_tifu_knn"]["baskets"] == part["model"]["baskets"]
        assert set(part["tifu_knn_tuning"]["params"]) == {
            "grouping",
            "group_size",
            "within_decay",
            "group_decay",
            "neighbours",
            "alpha",
        }
    assert report["next_basket_rolling"]["tifu_knn_tuning"] == report["next_basket"]["tifu_knn_tuning"]
    probability = {"brier_7d", "brier_14d", "log_loss_7d", "log_loss_14d", "ece_7d", "ece_14d"}
    for side in ("model", "baseline", "baseline_empirical"):
        assert probability <= set(report["next_purchase"][side])
    assert set(report["next_purchase"]["improvement_over_empirical"]) == probability - {"ece_7d", "ece_14d"}
    models = load_models(out)
    assert models.next_purchase.card.source == "h.npz"
    assert models.shelf_depletion.card.source == "simulated"
    code, text, _ = _run(["evaluate", *common], capsys)
    assert code == 0
    assert "median interval" in text
    assert "empirical intervals" in text
    assert "model vs empirical intervals, (baseline - model) / baseline: brier_7d" in text
    assert "GP-TopFreq" in text
    assert text.count("TIFU-KNN (tuned)") == 2  # frozen and rolling
    tuning = report["next_basket"]["tifu_knn_tuning"]
    assert f"TIFU-KNN tuned on the {tuning['validation_days']} days before the cutoff" in text
    assert "recall_vs_gp" in text
    assert "last-hour linear" in text
