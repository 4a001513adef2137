"""The CDNOW cohort (Fader, Hardie & Lee 2005): 2,357 customers who first bought at the online CD store
CDNOW in January-March 1997, followed to the end of June 1998.

The data is ``CDNOW_sample.txt`` from the `lifetimes` wheel (``make cdnow`` puts it in
``var/data/cdnow/``): whitespace-separated rows of master id, sample id, date (YYYYMMDD), CDs bought and
dollars spent. Calibration is the 39 weeks to 1997-09-30 inclusive, the holdout the next 39 weeks to
1998-06-30; purchases on the same day count as one trip. Time is in weeks, as in the published fits.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from models.customers.rfm import RfmSummary, rfm_summary
from models.errors import DatasetError
from models.history import epoch_day

CDNOW = "cdnow"
CDNOW_FILE = "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 10, 1)  # first day after calibration
HOLDOUT_DAYS = 273  # 39 weeks: 1997-10-01 .. 1998-06-30
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / "var" / "data" / "cdnow"


def cdnow_path(directory: Path | None = None) -> Path:
    """Where the CDNOW sample is expected (``var/data/cdnow/CDNOW_sample.txt`` under the repository)."""
    return (directory or DEFAULT_DIR) / CDNOW_FILE


def load_cdnow_transactions(path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer id, day number, dollars) per row of the CDNOW sample file."""
    path = path or cdnow_path()
    try:
        raw = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except OSError as exc:
        raise DatasetError(f"{path}: CDNOW data not found; run `make cdnow`") from exc
    except ValueError as exc:
        raise DatasetError(f"{path}: not the CDNOW sample format: {exc}") from exc
    if raw.shape[1] != 5:
        raise DatasetError(
            f"{path}: expected 5 columns (id, sample id, date, CDs, dollars), got {raw.shape[1]}"
        )
    stamp = raw[:, 2].astype(np.int64)
    days = (
        np.array(
            [f"{s // 10000:04d}-{s // 100 % 100:02d}-{s % 100:02d}" for s in stamp], dtype="datetime64[D]"
        )
        .astype(np.int64)
        .astype(np.int64)
    )
    customers = np.char.zfill(raw[:, 1].astype(np.int64).astype(str), 4)
    return customers, days, raw[:, 4]


def load_cdnow(path: Path | None = None) -> RfmSummary:
    """The 2,357 customers' calibration summary (weeks) with their 39-week holdout trips and spend."""
    customers, days, dollars = load_cdnow_transactions(path)
    return rfm_summary(
        customers,
        days,
        dollars,
        calibration_end_day=epoch_day(CALIBRATION_END),
        holdout_days=HOLDOUT_DAYS,
        unit_days=7.0,
    )
