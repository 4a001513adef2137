"""bench/kiosk.py still runs (three samples each; the figures are not checked here: speed lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_kiosk_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "kiosk.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "kiosk.py"), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["scan_to_list"]["screen"]["samples"] == 3
    assert report["alert_to_staff_screen"]["screen"]["samples"] == 3
    assert "scan -> shopping list on screen" in result.stdout
