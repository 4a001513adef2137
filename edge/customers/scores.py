"""Customer lifetime value, churn risk and segment of every household with ``analytics`` consent
(docs/customers.md, "Insights"; the models: docs/customer_models.md).

The customer models ship in the model set next to the ONNX models (``customers/params.json``: the
buy-till-you-die params with their card; ``customers/segments.json``: the behavioural segments). They are
optional: a set without them turns the feature off (said once in the log), and insights then say that
no CLV, churn or segment is available.

`CustomerScoring` runs after the nightly full rescore (`edge.predictions.service.PredictionService`'s
``after_full_rescore`` hook, wired in `edge.daemon`) and on demand for one household (an insights read
with nothing scored yet, or ``POST .../analyze``): reads on a read-only connection, scores in an executor
thread (numpy and scipy closed forms), writes through the store's one writer, with the consent checked
again in the writing transaction (`edge.customers.score_tables`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from edge.customers import score_tables
from edge.customers.score_tables import CustomerScore
from edge.customers.spend_forecast import served_spend
from edge.store.db import ReadThread
from edge.store.history_read import read_history
from edge.store.history_refresh import HistoryCache
from edge.store.steps import run_steps, steps_in_flight
from edge.store.writer import StoreWriter
from models.cards import CUSTOMER_PARAMS_FILE, CUSTOMERS_DIR, SEGMENTS_FILE, read_json_model
from models.customers.scoring import CustomerModelParams, churn_band, score_households, spend_inputs
from models.customers.segments import (
    FEATURE_NAMES,
    BasketLines,
    SegmentModel,
    assign,
    missing_features,
    segment_features,
    segment_model_from_json,
)
from models.errors import DatasetError, ModelLoadError

log = logging.getLogger(__name__)
MS_PER_DAY = 86_400_000
HORIZON_DAYS = 90.0  # expected trips and spend over the next 90 days
CHURN_DAYS = 56.0  # P(no trip in the next 8 weeks): the churn window the models were measured on


@dataclass(frozen=True, slots=True)
class CustomerModels:
    """The customer models of one model set."""

    params: CustomerModelParams
    version: str
    segments: SegmentModel | None
    directory: Path
    segments_version: str | None = None  # segments-<end>-k<k>-<file hash 8>


def load_customer_models(directory: Path, *, segments: bool = True) -> CustomerModels | None:
    """The customer models in a model set (None: the set has none; ``segments=False``: without the
    segments). A file that is there but does not load, or segments over other features than this code
    computes, raises `ModelLoadError` naming the file and the field."""
    folder = directory / CUSTOMERS_DIR
    params_path = folder / CUSTOMER_PARAMS_FILE
    if not params_path.is_file():
        return None
    params = read_json_model(params_path, CustomerModelParams)
    model: SegmentModel | None = None
    segments_version: str | None = None
    segments_path = folder / SEGMENTS_FILE
    if segments and segments_path.is_file():
        try:
            raw = segments_path.read_bytes()
            model = segment_model_from_json(raw)
        except (OSError, DatasetError, msgspec.DecodeError) as exc:
            raise ModelLoadError(f"{segments_path}: {exc}") from exc
        digest = hashlib.sha256(raw).hexdigest()[:8]
        segments_version = f"segments-{model.card.end[:10] or model.card.trained}-k{model.card.k}-{digest}"
        if list(model.features) != list(FEATURE_NAMES):
            raise ModelLoadError(
                f"{segments_path}: features {list(model.features)} are not this code's {list(FEATURE_NAMES)}"
            )
    version = str(params.card.get("version") or f"customers-{params.card.get('trained', 'unknown')}")
    return CustomerModels(params, version, model, directory, segments_version)


@dataclass(frozen=True, slots=True, eq=False)
class Trips:
    """Purchases (household, local day, total) of some households, and their basket lines when segments
    are scored (None otherwise)."""

    households: tuple[str, ...]
    owner: npt.NDArray[np.int64]  # per purchase, index into households
    day: npt.NDArray[np.int64]  # store-local day number
    total: npt.NDArray[np.float64]
    lines: BasketLines | None


def score_trips(
    models: CustomerModels, trips: Trips, today: int, now_ms: int, clv_days: int
) -> list[CustomerScore]:
    """Scores of every household in ``trips`` with a purchase (CPU work: run it in an executor)."""
    from models.customers.rfm import rfm_summary  # noqa: PLC0415 - scipy-free but heavy: off the loop

    params = models.params
    keep = np.ones(trips.day.size, dtype=bool)
    if params.window_days is not None:  # fitted on the last days only: summarise that window
        keep = trips.day >= today + 1 - params.window_days
    if not keep.any():
        return []
    names = np.asarray(trips.households, dtype=str)[trips.owner[keep]]
    summary = rfm_summary(
        names, trips.day[keep], trips.total[keep], calibration_end_day=today + 1, unit_days=params.unit_days
    )
    if summary.size == 0:
        return []
    owners = np.asarray(trips.households, dtype=str)[trips.owner]  # the household of every purchase
    # The spend model may look at other days than the trip model (its card says which it was chosen on).
    spend = (
        spend_inputs(
            params,
            summary.customers,
            customer=owners,
            day=trips.day,
            spend=trips.total,
            end_day=today + 1,
        )
        if params.spend_window_days != params.window_days
        else None  # the trip summary's own x and zbar: no second summary of every purchase
    )
    scores = score_households(
        params,
        x=summary.x,
        spend_x=None if spend is None else spend[0],
        spend_zbar=None if spend is None else spend[1],
        t_x_days=summary.t_x * params.unit_days,
        T_days=summary.T * params.unit_days,
        zbar=summary.zbar,
        first_spend=summary.first_spend,
        horizon_days=HORIZON_DAYS,
        churn_days=CHURN_DAYS,
        clv_days=float(clv_days),
    )
    # The 90-day spend: the bundle's direct forecast when it has one (edge.customers.spend_forecast).
    spend_90d = served_spend(
        params.spend_forecast, scores, summary.customers, (owners, trips.day, trips.total), today + 1
    )
    segment_of = _segments(models, trips, today) if trips.lines is not None else {}
    out: list[CustomerScore] = []
    for i, household in enumerate(summary.customers.tolist()):
        interval = float(summary.mean_interval_days[i])
        band, reason = churn_band(
            p_alive=float(scores.p_alive[i]),
            p_churn=float(scores.p_churn[i]),
            days_since_last=max(0.0, float(summary.last_gap_days[i]) - 1.0),
            mean_interval_days=interval if np.isfinite(interval) else None,
        )
        out.append(
            CustomerScore(
                household=household,
                expected_trips_90d=_round(scores.expected_trips[i]),
                expected_spend_90d=_round(spend_90d[i]),
                p_alive=_round(scores.p_alive[i], 4),
                p_churn=_round(scores.p_churn[i], 4),
                churn_band=band,
                churn_reason=reason,
                clv=_round(scores.clv[i]),
                clv_horizon_days=clv_days,
                segment=segment_of.get(household),
                model_version=models.version,
                segments_version=models.segments_version if household in segment_of else None,
                scored_ms=now_ms,
            )
        )
    return out


def _segments(models: CustomerModels, trips: Trips, today: int) -> dict[str, str]:
    if models.segments is None or trips.lines is None or trips.lines.size == 0:
        return {}
    end = float(today + 1) * 86_400.0
    try:
        ids, features = segment_features(trips.lines, end)
    except DatasetError as exc:  # e.g. no line before the end: no segment, the scores still count
        log.warning("segments_not_scored", extra={"error": str(exc)})
        return {}
    model = models.segments
    # A feature the store's lines cannot inform (the till sends no promotion flag) is set to the
    # training population's mean: neutral in the distance, rather than "never on promotion".
    for name in missing_features(trips.lines.lacks):
        if name in model.features:
            j = model.features.index(name)
            features[:, j] = np.expm1(model.mean[j]) if model.log_scaled[j] else model.mean[j]
    index = assign(model, features)
    segments = models.segments.segments
    names = trips.households  # the lines name households by their index into it (`_read_lines`)
    return {names[int(h)]: segments[int(k)].id for h, k in zip(ids.tolist(), index.tolist(), strict=True)}


def _round(value: object, digits: int = 2) -> float:
    number = float(value)  # type: ignore[arg-type]
    return round(number, digits) if np.isfinite(number) else 0.0


def read_trips(
    conn: sqlite3.Connection, households: Sequence[str], since_ms: int, offset_ms: int, with_lines: bool
) -> Trips:
    """The households' purchases since ``since_ms`` (and their lines when ``with_lines``), local days."""
    names = tuple(sorted(set(households)))
    code = {h: i for i, h in enumerate(names)}
    rows = score_tables.trips_since(conn, names, since_ms)
    owner = np.fromiter((code[h] for h, _, _ in rows), np.int64, len(rows))
    ts = np.fromiter((t for _, t, _ in rows), np.int64, len(rows))
    total = np.fromiter((v for _, _, v in rows), np.float64, len(rows))
    lines = _read_lines(conn, names, since_ms, offset_ms) if with_lines else None
    return Trips(names, owner, (ts + offset_ms) // MS_PER_DAY, total, lines)


def _read_lines(conn: sqlite3.Connection, names: Sequence[str], since_ms: int, offset_ms: int) -> BasketLines:
    """The households' lines as `BasketLines`, households as short code strings (the index into
    ``names``): the segment features only need identities, and short strings sort several times faster
    than the pseudonyms. One query per household (the household index), so no per-row lookup."""
    owners: list[npt.NDArray[np.int64]] = []
    times: list[int] = []
    categories: list[str] = []
    spend: list[float] = []
    for index, household in enumerate(names):
        rows = conn.execute(
            "SELECT p.ts_ms, i.category, i.qty * i.unit_price FROM purchases p JOIN purchase_items i"
            " ON i.purchase_id = p.id WHERE p.household = ? AND p.ts_ms >= ? AND i.category IS NOT NULL",
            (household, since_ms),
        ).fetchall()
        if rows:
            owners.append(np.full(len(rows), index, dtype=np.int64))
            ts, category, value = zip(*rows, strict=True)
            times += ts
            categories += category
            spend += value
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    return BasketLines(
        household=owner.astype(str),
        ts=(np.asarray(times, dtype=np.float64) + offset_ms) / 1000.0,  # store-local wall-clock seconds
        category=np.asarray(categories, dtype=str),
        spend=np.asarray(spend, dtype=np.float64),
        promoted=np.zeros(owner.size, dtype=bool),  # the till sends no promotion flag
        lacks=("promoted",),
    )


def read_trips_packed(
    conn: sqlite3.Connection, households: Sequence[str], since_ms: int, offset_ms: int, with_lines: bool
) -> Trips:
    """`read_trips` through the packed history (`edge.store.history_cache`; the nightly scores, after
    refreshing it). Households and categories are integer codes in the lines: they sort fastest."""
    conn.execute("BEGIN")
    try:
        history = read_history(conn, households, since_ms)
    finally:
        conn.execute("COMMIT")
    lines = None
    if with_lines:
        lines = BasketLines(
            household=history.line_owner,
            ts=(history.line_ts + offset_ms).astype(np.float64) / 1000.0,
            category=history.line_category,
            spend=history.line_qty * history.line_price,
            promoted=np.zeros(history.line_ts.size, dtype=bool),  # the till sends no promotion flag
            lacks=("promoted",),
        )
    day = (history.trip_ts + offset_ms) // MS_PER_DAY
    return Trips(history.households, history.trip_owner, day, history.trip_total, lines)


def _load(directory: Path) -> CustomerModels | None:
    """`load_customer_models`, logged; a set whose customer models do not load serves without them."""
    try:
        models = load_customer_models(directory)
    except ModelLoadError as exc:
        log.error("customer_models_not_loaded", extra={"dir": str(directory), "error": str(exc)})  # noqa: TRY400
        models = None
        if SEGMENTS_FILE in str(exc):  # the trip and spend models alone still serve CLV and churn
            with contextlib.suppress(ModelLoadError):
                models = load_customer_models(directory, segments=False)
    if models is None:
        log.info("customer_models_absent", extra={"dir": str(directory), "feature": "off"})
    else:
        log.info(
            "customer_models_loaded",
            extra={"version": models.version, "segments": models.segments_version or "none"},
        )
    return models


class CustomerScoring:
    """Loads the customer models of the served model set and scores households (module docstring)."""

    def __init__(
        self,
        db_path: Path,
        writer: StoreWriter,
        model_dir: Callable[[], Path],
        *,
        timezone: dt.tzinfo,
        history_days: int,
        clv_horizon_days: int,
        batch_households: int,
        batch_workers: int,
        now_ms: Callable[[], int] | None = None,
        history: HistoryCache | None = None,
    ) -> None:
        self._own_history = history is None  # the daemon shares the prediction service's
        self._history = history or HistoryCache(db_path, writer)
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))  # a benchmark replays a past night
        self._writer = writer
        self._model_dir = model_dir
        self._tz = timezone
        self._history_days = history_days
        self.clv_horizon_days = clv_horizon_days
        self._batch = batch_households
        self._reads = ReadThread(db_path, "customers-scores")
        self._workers = batch_workers
        self._pool = ThreadPoolExecutor(max_workers=batch_workers, thread_name_prefix="customers-score")
        self._lock = asyncio.Lock()
        # Loaded with the model set at start (a small JSON file), so the log says at once if it is off.
        self._loaded: tuple[Path, CustomerModels | None] = (model_dir(), _load(model_dir()))

    async def close(self) -> None:
        if self._own_history:
            await self._history.close()
        await self._reads.close()
        self._pool.shutdown(wait=True)

    async def models(self) -> CustomerModels | None:
        """The customer models of the model set served now (reloaded when the set changes)."""
        directory = self._model_dir()
        if self._loaded[0] != directory:
            models = await asyncio.get_running_loop().run_in_executor(self._pool, _load, directory)
            self._loaded = (directory, models)
        return self._loaded[1]

    def _clock(self) -> tuple[int, int, int]:
        """(now_ms, store-local offset ms, store-local day number)."""
        now_ms = self._now_ms()
        offset = dt.datetime.fromtimestamp(now_ms / 1000, self._tz).utcoffset()
        offset_ms = int(offset.total_seconds() * 1000) if offset else 0
        return now_ms, offset_ms, (now_ms + offset_ms) // MS_PER_DAY

    async def score(self, households: Sequence[str], *, packed: bool = False) -> list[CustomerScore]:
        """Read and score ``households`` (no write); [] without models. ``packed``: read through the
        history cache (`rescore_all` refreshed it)."""
        models = await self.models()
        if models is None or not households:
            return []
        now_ms, offset_ms, today = self._clock()
        since = now_ms - self._history_days * MS_PER_DAY
        with_lines = models.segments is not None
        read = read_trips_packed if packed else read_trips
        trips = await self._reads.run(lambda c: read(c, households, since, offset_ms, with_lines))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, score_trips, models, trips, today, now_ms, self.clv_horizon_days
        )

    async def rescore(self, household: str) -> CustomerScore | None:
        """Score one household now and write it (with analytics consent at write time)."""
        scored = await self.score([household])
        if scored:
            await self._writer.run_job(lambda c: score_tables.write_scores(c, scored), urgent=True)
        return await self._reads.run(lambda c: score_tables.score_of(c, household))

    async def _write(self, scored: list[CustomerScore]) -> int:
        return await self._writer.run_job(lambda c: score_tables.write_scores(c, scored))

    async def _step(self, households: Sequence[str]) -> int:
        return await self._write(await self.score(households, packed=True))

    async def rescore_all(self) -> int:
        """Every household with analytics consent, in steps; stale documents dropped. Returns rows."""
        if await self.models() is None:
            return 0
        async with self._lock:
            began, started_ms = time.perf_counter(), self._now_ms()
            await self._writer.run_job(score_tables.drop_without_analytics)
            households = await self._reads.run(score_tables.analytics_households)
            await self._history.refresh(self._now_ms() - self._history_days * MS_PER_DAY)
            written = sum(
                await run_steps(households, self._batch, self._step, in_flight=steps_in_flight(self._workers))
            )
            await self._writer.run_job(lambda c: score_tables.clear_documents(c, started_ms))
        log.info(
            "customer_scores_done",
            extra={"households": written, "seconds": round(time.perf_counter() - began, 2)},
        )
        return written
