"""The next-basket ranker's store-wide features, kept by the daemon (docs/models.md, "Serving in the daemon").

When the served models have a ranker (`<model set>/next_basket_ranker/`), `RankerNeighbours.refresh`
computes `models.ranker_serving.NeighbourState` from the store's own purchases: every consenting
household's lines of the last ``[models] history_days`` from the packed history (one read), then, in an
executor thread, their TIFU-KNN vectors with the parameters on the ranker's card, each household's
nearest neighbours (float32 cosine in blocks of 1,000 households on ``[models] batch_workers``
threads) and their mean, and the store trend. The prediction service calls it before every full rescore
(the nightly run, and once at start); it recomputes only when the state is older than
``[models] ranker_refresh_days`` days or was computed for other TIFU-KNN parameters (a model swap). The
scoring steps only read the state (`edge.predictions.scoring.ranking_scores`). The refresh's read and
the history built from it are kept for the full rescore that follows (`take_read`), whose steps take
their lines from it instead of reading them again where that is exact (`edge.predictions.store_read`).

Without a ranker, or until a state is computed (or when computing it failed), the pointwise next-basket
model orders the lists as before; the log says which one serves (`next_basket_served`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from edge.config import ModelsSection
from edge.predictions.aggregates import store_aggregates
from edge.predictions.clock import StoreClock
from edge.predictions.scoring import lines_history, local_day
from edge.predictions.store_read import StoreRead, read_store
from edge.predictions.tables import MS_PER_DAY, HouseholdLines, consented_households, load_lines_cached
from edge.store.db import ReadThread
from models import StoreModels
from models.ranker_serving import NEIGHBOUR_BLOCK, NeighbourState, neighbour_state

log = logging.getLogger(__name__)


def read_store_lines(conn: sqlite3.Connection, since_ms: int) -> tuple[tuple[str, ...], HouseholdLines]:
    """The store's categories and every consenting household's lines since ``since_ms`` (packed history),
    as the full rescore reads them."""
    categories, _counts = store_aggregates(conn, since_ms)
    return categories, load_lines_cached(conn, consented_households(conn), categories, since_ms)


class RankerNeighbours:
    """Holds the ranker's `NeighbourState` for the scoring steps; `refresh` recomputes it when due."""

    def __init__(
        self,
        reads: ReadThread,
        pool: ThreadPoolExecutor,
        clock: StoreClock,
        settings: ModelsSection,
        *,
        block: int = NEIGHBOUR_BLOCK,
    ) -> None:
        self._reads = reads
        self._pool = pool
        self._clock = clock
        self._history_days = settings.history_days
        self._refresh_days = settings.ranker_refresh_days
        self._workers = settings.batch_workers
        self._block = block
        self._lock = asyncio.Lock()
        self.state: NeighbourState | None = None
        self.served: str | None = None  # the model version that orders the lists, once logged
        # The latest refresh's read, for the full rescore that follows it (`take_read`).
        self._store_read: StoreRead | None = None

    def take_read(self) -> StoreRead | None:
        """The read of the latest refresh, once (the full rescore's steps use it where it is still
        exact, `edge.predictions.store_read`); None when none is kept."""
        read, self._store_read = self._store_read, None
        return read

    def state_for(self, models: StoreModels) -> NeighbourState | None:
        """The state, if ``models`` have a ranker whose TIFU-KNN parameters it was computed with."""
        ranker, state = models.next_basket_ranker, self.state
        return state if ranker is not None and state is not None and state.tifu == ranker.tifu else None

    def due(self, models: StoreModels, today: int) -> bool:
        ranker, state = models.next_basket_ranker, self.state
        if ranker is None:
            return False
        return state is None or state.tifu != ranker.tifu or today - state.until_day >= self._refresh_days

    async def refresh(self, models: StoreModels, now_ms: int) -> NeighbourState | None:
        """Recompute the state for ``today`` if `due`; a failure is logged and leaves the pointwise model
        serving (the state is dropped). Returns the state the scoring steps will use."""
        utc_offset_min = self._clock.utc_offset_min(now_ms)
        async with self._lock:
            today = local_day(now_ms, utc_offset_min)
            ranker = models.next_basket_ranker
            if ranker is not None and self.due(models, today):
                self._store_read = None
                began = time.perf_counter()
                try:
                    self.state, read_s = await self._compute(models, now_ms, utc_offset_min, today)
                except Exception:  # the ranker is an improvement, not a dependency: keep serving
                    self.state = None
                    log.exception("ranker_neighbours_failed")
                else:
                    if self.state is None:  # a new store: nothing to rank yet, the pointwise model serves
                        log.info("ranker_waiting_for_purchases", extra={"day": today})
                        self._log_served(models)
                        return None
                    log.info(
                        "ranker_neighbours_refreshed",
                        extra={
                            "households": len(self.state.households),
                            "day": today,
                            "neighbours": ranker.tifu.neighbours,
                            "megabytes": round(self.state.nbytes / 1e6, 1),
                            "read_seconds": round(read_s, 2),
                            "seconds": round(time.perf_counter() - began, 2),
                        },
                    )
            self._log_served(models)
            return self.state_for(models)

    async def _compute(
        self, models: StoreModels, now_ms: int, utc_offset_min: int, today: int
    ) -> tuple[NeighbourState | None, float]:
        """The state (None while the store has no purchases in the window) and the seconds its read took."""
        ranker = models.next_basket_ranker
        assert ranker is not None
        since = now_ms - self._history_days * MS_PER_DAY
        began = time.perf_counter()
        categories, lines, token = await self._reads.run(lambda c: read_store(c, since))
        read_s = time.perf_counter() - began
        loop = asyncio.get_running_loop()

        def compute() -> NeighbourState | None:
            history = lines_history(lines, categories, utc_offset_min)
            if not history.n_lines:
                return None
            state = neighbour_state(history, today, ranker.tifu, block=self._block, workers=self._workers)
            if token is not None:
                self._store_read = StoreRead.build(token, since, utc_offset_min, categories, lines, history)
            return state

        return await loop.run_in_executor(self._pool, compute), read_s

    def _log_served(self, models: StoreModels) -> None:
        ranker = models.next_basket_ranker
        by_ranker = ranker is not None and self.state_for(models) is not None
        served = ranker.card.version if ranker is not None and by_ranker else models.next_basket.card.version
        if served != self.served:
            self.served = served
            log.info(
                "next_basket_served",
                extra={
                    "model": "ranker" if by_ranker else "pointwise",
                    "version": served,
                    "probability_from": models.next_basket.card.version,
                },
            )
