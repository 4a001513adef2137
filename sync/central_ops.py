"""Central's operations page (``GET /``) and the lag sampler behind its lag chart: the queries and the
wiring. The rendering is `sync.central_page` (HTML) and `sync.central_svg` (charts), pure functions.

`Central` hands this module its ``status()`` and ``db.run``, so nothing here builds connections or
knows the pullers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import asyncpg
from aiohttp import web

from sync.central_page import (
    LAG_BUCKET_MS,
    LAG_WINDOW_MS,
    SALES_DAYS,
    ArmOutcome,
    DaySales,
    ExperimentStep,
    LagSample,
    PageFacts,
    render_page,
    render_unauthorized,
    render_unavailable,
)
from sync.central_pool import DB_ERRORS
from sync.schemas import CentralStatusView

log = logging.getLogger(__name__)
T = TypeVar("T")
Status = Callable[[], Awaitable[CentralStatusView]]
RunDb = Callable[[Callable[[asyncpg.Connection], Awaitable[T]]], Awaitable[T]]

LAG_KEEP_MS = 2 * 24 * 3600 * 1000  # lag samples older than this are deleted
EXPERIMENT_WINDOW_MS = 90 * 24 * 3600 * 1000  # the page shows experiments with a step in the last 90 days

# The page loads nothing: the policy makes a browser refuse anything but its inline style and SVG.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the token may be in the URL
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


# -- queries -------------------------------------------------------------------------------------------


async def page_facts(conn: asyncpg.Connection, now_ms: int, sample_every_s: float = 60.0) -> PageFacts:
    """Open alerts and quarantined changes per store, daily sales of the last `SALES_DAYS` UTC days, and
    the lag samples of the last 24 hours (each store's worst per `LAG_BUCKET_MS`)."""
    alerts = await conn.fetch("SELECT store, count(*) FROM alerts WHERE state != 'resolved' GROUP BY store")
    quarantined = await conn.fetch("SELECT store, count(*) FROM quarantine GROUP BY store")
    today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    since = dt.datetime.combine(today - dt.timedelta(days=SALES_DAYS - 1), dt.time(), dt.UTC)
    sales = await conn.fetch(
        "SELECT store, (ts AT TIME ZONE 'UTC')::date AS day, sum(total), count(*) FROM purchases"
        " WHERE ts >= $1 GROUP BY store, day ORDER BY store, day",
        since,
    )
    lag = await conn.fetch(
        "SELECT store, max(at_ms), max(behind), max(lag_s) FROM lag_samples WHERE at_ms >= $1"
        " GROUP BY store, at_ms / $2 ORDER BY store, 2",
        now_ms - LAG_WINDOW_MS,
        LAG_BUCKET_MS,
    )
    steps = await conn.fetch(
        "SELECT DISTINCT ON (experiment, store) experiment, store, event, traffic, ts_ms, reason"
        " FROM experiment_events WHERE ts_ms >= $1 ORDER BY experiment, store, ts_ms DESC, seq DESC",
        now_ms - EXPERIMENT_WINDOW_MS,
    )
    arms = await conn.fetch(
        "SELECT o.experiment, o.arm, count(DISTINCT o.household), count(*),"
        " sum(o.on_list)::float8 / nullif(sum(o.categories), 0) FROM list_outcomes o"
        " JOIN (SELECT experiment, min(ts_ms) AS first FROM experiment_events WHERE ts_ms >= $1"
        " GROUP BY experiment) e ON e.experiment = o.experiment"
        " WHERE o.purchased >= to_timestamp(e.first / 1000.0) GROUP BY o.experiment, o.arm ORDER BY 1, 2",
        now_ms - EXPERIMENT_WINDOW_MS,
    )
    return PageFacts(
        now_ms=now_ms,
        open_alerts={r[0]: int(r[1]) for r in alerts},
        quarantined={r[0]: int(r[1]) for r in quarantined},
        sales=tuple(DaySales(r[0], r[1], float(r[2]), int(r[3])) for r in sales),
        lag=tuple(LagSample(r[0], int(r[1]), int(r[2]), r[3]) for r in lag),
        sample_every_s=sample_every_s,
        experiments=tuple(ExperimentStep(r[0], r[1], r[2], float(r[3]), int(r[4]), r[5]) for r in steps),
        arms=tuple(ArmOutcome(r[0], r[1], int(r[2]), int(r[3]), r[4]) for r in arms),
    )


async def record_lag(conn: asyncpg.Connection, status: CentralStatusView, now_ms: int) -> None:
    """One sample per store, and forget samples older than `LAG_KEEP_MS`, in one transaction."""
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO lag_samples (store, at_ms, behind, lag_s) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (store, at_ms) DO NOTHING",
            [(v.store, now_ms, v.behind, v.lag_s) for v in status.stores],
        )
        await conn.execute("DELETE FROM lag_samples WHERE at_ms < $1", now_ms - LAG_KEEP_MS)


# -- the sampler -----------------------------------------------------------------------------------------


async def sample_lag_forever(
    status: Status, run: RunDb[None], every_s: float, clock: Callable[[], int] | None = None
) -> None:
    """Every ``every_s`` (``[central] lag_sample_s``): record each store's lag. A database error is
    logged once per outage and the next tick tries again; it never ends the task."""
    now = clock or _now_ms
    failing = False
    while True:
        await asyncio.sleep(every_s)
        try:
            view = await status()
            await run(partial(record_lag, status=view, now_ms=now()))
        except DB_ERRORS as exc:
            if not failing:
                log.warning("central_lag_sample_failed", extra={"error": str(exc), "retry_s": every_s})
            failing = True
        else:
            if failing:
                log.info("central_lag_sample_recovered")
            failing = False


# -- the page ------------------------------------------------------------------------------------------


def token_ok(request: web.Request, token: str) -> bool:
    """``Authorization: Bearer <token>`` or ``?token=<token>`` (so a browser can open the page)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return True
    return hmac.compare_digest(request.query.get("token", "").encode(), token.encode())


async def ops_page(
    request: web.Request,
    admin_token: str | None,
    status: Status,
    run: RunDb[PageFacts],
    sample_every_s: float,
) -> web.Response:
    """``GET /``: 401 without the admin token (when one is set), 503 while the database is unreachable."""
    if admin_token is not None and not token_ok(request, admin_token):
        return _html(render_unauthorized(), 401, {"WWW-Authenticate": 'Bearer realm="storeedge central"'})
    try:
        view = await status()
        facts = await run(partial(page_facts, now_ms=_now_ms(), sample_every_s=sample_every_s))
    except DB_ERRORS as exc:
        log.warning("central_ops_page_unavailable", extra={"error": str(exc)})
        return _html(render_unavailable(type(exc).__name__), 503)
    return _html(render_page(view, facts), 200)


def _html(text: str, status: int, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**_HEADERS, **(extra or {})},
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
