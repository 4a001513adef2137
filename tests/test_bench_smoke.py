"""The benchmarks still run (tiny sizes; the figures are not checked here: speed lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("ingest.py", ["--smoke", "--out"]),
        # Two broker settings, one kill -9 of mosquitto each under the real daemon.
        ("broker_crash.py", ["--smoke", "--out"]),
        ("state.py", ["--smoke", "--out"]),
        ("routing.py", ["--quick", "--output"]),
        # Three runs of `python -c pass`, `storeedge --help`, `config check` and a 15-stop route.
        ("cli_startup.py", ["--quick", "--out"]),
        # The nightly sorts against the numpy calls they replace, 1,000 simulated households.
        ("sorting.py", ["--quick", "--out"]),
        # 4 stores, 20,000 changes through central's apply path into a throwaway PostgreSQL, the COPY
        # ceiling and a 6-minute outage with live pulls.
        ("central.py", ["--smoke", "--out"]),
    ],
)
def test_benchmark_runs_and_writes_json(script: str, args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args, str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report


@pytest.mark.parametrize(
    ("script", "args", "table", "key"),
    [
        # A 20-minute backlog (60,000 changes) through the real daemon, mosquitto, proxy and central.
        (
            "sync.py",
            ["--quick", "--warmup-s", "0.5", "--offline-s", "1", "--out"],
            "catch-up rate (changes/s)",
            "live_ingest_during_catch_up",
        ),
        # 200 households instead of 20,000: every stage, the daemon-side rescore and the RSS probe.
        ("models.py", ["--quick", "--households", "200", "--output"], "full rescore", "stages"),
        # Issue #14: one arm against two (a 50/50 experiment) on 200 households: full rescores, the
        # shopping list on demand and cached, and the RSS of one and two sets of models (fresh processes).
        ("experiments.py", ["--smoke", "--out"], "two/one", "full_rescore"),
        # The nightly jobs on 200 households: next purchase and customer scores, read line by line from
        # the tables, then through the packed history built (cold) and refreshed (warm).
        ("customers.py", ["--nightly", "--households", "200", "--out"], "warm_over_uncached", "results"),
        # The next-basket study on 80 Complete Journey households, a training day every 4 weeks.
        (
            "next_basket_study.py",
            ["--sample-households", "80", "--train-every", "28", "--max-iter", "20", "--output"],
            "GP-TopFreq",
            "results",
        ),
        # Issue #16 item 3: product-level next basket on 200 Complete Journey households, one cutoff.
        ("next_product.py", ["--smoke", "--out"], "P-TopFreq", "runs"),
    ],
)
def test_benchmark_prints_its_table_and_writes_json(
    script: str, args: list[str], table: str, key: str, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args, str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert table in result.stdout, result.stdout[-2000:]
    report = json.loads(out.read_text())
    assert isinstance(report, dict)
    assert report[key]
