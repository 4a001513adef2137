"""Central's operations page, rendered on the server: pure functions from facts to HTML.

The facts come from `sync.central_ops` (queries) and `Central.status()`; nothing here touches the
database or the network. The page loads nothing from anywhere (no script, font or stylesheet; inline CSS
and inline SVG only), and every string that came from the database or the config is escaped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html import escape

from sync.central_svg import ChartStyle, Point, Series, XAxis, format_number, line_chart
from sync.schemas import CentralStatusView, CentralStoreView

SALES_DAYS = 14
LAG_WINDOW_MS = 24 * 3600 * 1000
LAG_BUCKET_MS = 5 * 60 * 1000  # the lag chart shows each store's worst sample per 5 minutes
REFRESH_S = 60
_NONE = "\u2013"  # an en dash: no value
_KNOWN_STATES = {"in_sync", "catching_up", "never", "unreachable", "diverged", "unauthorized", "error"}


@dataclass(frozen=True, slots=True)
class DaySales:
    store: str
    day: dt.date  # UTC
    total: float
    baskets: int


@dataclass(frozen=True, slots=True)
class LagSample:
    store: str
    at_ms: int
    behind: int
    lag_s: float | None  # None: central holds no change of the store yet


@dataclass(frozen=True, slots=True)
class ExperimentStep:
    """A store's latest step of an experiment (its last `experiment` event)."""

    experiment: str
    store: str
    event: str
    traffic: float
    ts_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class ArmOutcome:
    """An experiment's arm over every store since the experiment's first event: the list hit rate."""

    experiment: str
    arm: str
    households: int
    trips: int
    hit_rate: float | None


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What the page shows beyond ``GET /central/v1/status``."""

    now_ms: int
    open_alerts: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    sales: tuple[DaySales, ...] = ()
    lag: tuple[LagSample, ...] = ()
    sample_every_s: float = 60.0
    experiments: tuple[ExperimentStep, ...] = ()
    arms: tuple[ArmOutcome, ...] = ()


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 1.5rem; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
.meta { color: #666; font-size: .85rem; margin: 0 0 1rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .3rem .55rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap;
  vertical-align: top; }
th { background: #f3f3f3; } td.store, th.store, td.bundles, th.bundles { text-align: left; }
tfoot td { font-weight: 600; border-top: 2px solid #999; }
.state { font-weight: 600; } .ok { color: #17723a; } .warn { color: #9a5b00; } .bad { color: #b00020; }
.error { color: #8a1c2b; font-size: .75rem; white-space: normal; min-width: 16rem; max-width: 24rem;
  overflow-wrap: anywhere; }
.nonzero { color: #b00020; font-weight: 600; }
.scroll { overflow-x: auto; }
svg.chart { display: block; max-width: 100%; height: auto; }
"""


def render_page(status: CentralStatusView, facts: PageFacts) -> str:
    """The whole page: the stores table with a chain totals row, then the sales and lag charts."""
    now = dt.datetime.fromtimestamp(facts.now_ms / 1000, dt.UTC)
    body = [
        "<h1>storeedge central: operations</h1>",
        f'<p class="meta">{len(status.stores)} stores · generated {now:%Y-%m-%d %H:%M:%S} UTC · '
        f"refreshes every {REFRESH_S} s · JSON: /central/v1/status</p>",
        "<h2>Stores</h2>",
        stores_table(status.stores, facts),
        f"<h2>Daily sales, last {SALES_DAYS} days (UTC)</h2>",
        sales_chart(facts.sales, now.date()),
        "<h2>Lag, last 24 hours</h2>",
        lag_chart(facts.lag, facts.now_ms, facts.sample_every_s),
        "<h2>A/B tests of model versions</h2>",
        experiments_table(facts),
    ]
    return _document("storeedge central: operations", "\n".join(body), refresh=True)


def render_unauthorized() -> str:
    return _document(
        "Unauthorized",
        "<h1>401 Unauthorized</h1><p>This page needs central's admin token (<code>[central] "
        "admin_token</code>): open <code>/?token=…</code> or send <code>Authorization: Bearer …</code>.</p>",
    )


def render_unavailable(reason: str) -> str:
    return _document(
        "Database unavailable",
        "<h1>503 Database unavailable</h1><p>Central cannot read its database right now; the page "
        f'works again once it can.</p><p class="meta">{escape(reason)}</p>',
    )


def stores_table(stores: list[CentralStoreView], facts: PageFacts) -> str:
    head = (
        "<thead><tr><th class=store>Store</th><th>State</th><th>Lag (s)</th><th>Behind (changes)</th>"
        "<th>Last pull</th><th>Gaps</th><th class=bundles>Bundles</th><th>Open alerts</th>"
        "<th>Quarantined</th></tr></thead>"
    )
    rows = []
    for view in stores:
        alerts = facts.open_alerts.get(view.store, 0)
        quarantined = facts.quarantined.get(view.store, 0)
        error = f'<div class="error">{escape(_clip(view.last_error, 160))}</div>' if view.last_error else ""
        rows.append(
            f'<tr data-store="{escape(view.store)}">'
            f'<td class="store">{escape(view.store)}{error}</td>'
            f'<td class="state {_state_class(view.state)}">{escape(view.state)}</td>'
            f'<td class="lag">{_seconds(view.lag_s)}</td>'
            f'<td class="behind{_flag(view.behind)}">{view.behind:,}</td>'
            f'<td class="last-pull">{_age(view.last_pull_ms, facts.now_ms)}</td>'
            f'<td class="gaps{_flag(view.gaps)}">{view.gaps:,}</td>'
            f'<td class="bundles">{_bundles(view.bundles)}</td>'
            f'<td class="alerts{_flag(alerts)}">{alerts:,}</td>'
            f'<td class="quarantined{_flag(quarantined)}">{quarantined:,}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td class="store" colspan="9">no stores configured</td></tr>')
    table = f'<table class="stores">{head}<tbody>{"".join(rows)}</tbody>{_totals_row(stores, facts)}</table>'
    return f'<div class="scroll">{table}</div>'


def experiments_table(facts: PageFacts) -> str:
    """Each experiment's state at each store, and its arms' list hit rate over every store (the analysis
    with confidence intervals is at /api/v1/ab-tests/{test}/results)."""
    if not facts.experiments:
        return '<p class="meta">No A/B test has been reported by any store.</p>'
    head = (
        "<thead><tr><th class=store>Test</th><th class=store>Store</th><th>State</th><th>Challenger share</th>"
        "<th>Since</th><th class=store>Why</th></tr></thead>"
    )
    rows = [
        f'<tr data-experiment="{escape(e.experiment)}"><td class="store">{escape(e.experiment)}</td>'
        f'<td class="store">{escape(e.store)}</td><td class="state">{escape(e.event)}</td>'
        f"<td>{e.traffic:.0%}</td><td>{_age(e.ts_ms, facts.now_ms)}</td>"
        f'<td class="store">{escape(_clip(e.reason, 120))}</td></tr>'
        for e in facts.experiments
    ]
    arms_head = (
        "<thead><tr><th class=store>Test</th><th class=store>Arm</th><th>Households</th><th>Trips</th>"
        "<th>List hit rate</th></tr></thead>"
    )
    arm_rows = [
        f'<tr data-arm="{escape(a.arm)}"><td class="store">{escape(a.experiment)}</td>'
        f'<td class="store">{escape(a.arm)}</td><td>{a.households:,}</td><td>{a.trips:,}</td>'
        f"<td>{_NONE if a.hit_rate is None else f'{a.hit_rate:.1%}'}</td></tr>"
        for a in facts.arms
    ]
    return (
        f'<div class="scroll"><table class="experiments">{head}<tbody>{"".join(rows)}</tbody></table></div>'
        f'<div class="scroll"><table class="arms">{arms_head}<tbody>{"".join(arm_rows)}</tbody></table></div>'
    )


def _totals_row(stores: list[CentralStoreView], facts: PageFacts) -> str:
    names = {v.store for v in stores}
    in_sync = sum(v.state == "in_sync" for v in stores)
    lags = [v.lag_s for v in stores if v.lag_s is not None]
    pulls = [v.last_pull_ms for v in stores]
    oldest = None if not pulls or None in pulls else min(p for p in pulls if p is not None)
    alerts = sum(n for s, n in facts.open_alerts.items() if s in names)
    quarantined = sum(n for s, n in facts.quarantined.items() if s in names)
    return (
        '<tfoot><tr class="totals">'
        f'<td class="store">Chain ({len(stores)} stores)</td>'
        f'<td class="state">{in_sync}/{len(stores)} in sync</td>'
        f'<td class="lag" title="worst">{_seconds(max(lags) if lags else None)}</td>'
        f'<td class="behind">{sum(v.behind for v in stores):,}</td>'
        f'<td class="last-pull" title="oldest">{_age(oldest, facts.now_ms)}</td>'
        f'<td class="gaps">{sum(v.gaps for v in stores):,}</td><td class="bundles"></td>'
        f'<td class="alerts">{alerts:,}</td><td class="quarantined">{quarantined:,}</td></tr></tfoot>'
    )


def sales_chart(sales: tuple[DaySales, ...], today: dt.date) -> str:
    """One line per store through the last `SALES_DAYS` days (a day without purchases is 0)."""
    days = [today - dt.timedelta(days=SALES_DAYS - 1 - i) for i in range(SALES_DAYS)]
    index = {day: i for i, day in enumerate(days)}
    by_store: dict[str, dict[int, DaySales]] = {}
    for row in sales:
        if row.day in index:
            by_store.setdefault(row.store, {})[index[row.day]] = row
    series = []
    for store in sorted(by_store):
        points = []
        for i, day in enumerate(days):
            found = by_store[store].get(i)
            total, baskets = (found.total, found.baskets) if found else (0.0, 0)
            label = (
                f"{store} · {day:%a %Y-%m-%d}: {total:,.2f} ({baskets:,} basket{'' if baskets == 1 else 's'})"
            )
            points.append(Point(float(i), total, label))
        series.append(Series(store, tuple(points)))
    ticks = tuple((float(i), f"{day:%b %d}") for i, day in enumerate(days) if (SALES_DAYS - 1 - i) % 2 == 0)
    axis = XAxis(lo=-0.5, hi=SALES_DAYS - 0.5, ticks=ticks, title="day (UTC)")
    return line_chart(series, axis, "sales (sum of totals)", "Daily sales per store", "no sales recorded yet")


def lag_chart(samples: tuple[LagSample, ...], now_ms: int, sample_every_s: float) -> str:
    """Each store's sampled lag (seconds behind its newest change) over the last 24 hours."""
    lo = now_ms - LAG_WINDOW_MS
    by_store: dict[str, list[LagSample]] = {}
    for sample in sorted(samples, key=lambda s: (s.store, s.at_ms)):
        if sample.lag_s is not None and sample.at_ms >= lo:
            by_store.setdefault(sample.store, []).append(sample)
    series = []
    for store, rows in sorted(by_store.items()):
        worst = max(rows, key=lambda s: s.lag_s or 0.0)
        note = f"{store}: now {_seconds(rows[-1].lag_s)} s, worst {_seconds(worst.lag_s)} s in 24 h"
        points = tuple(
            Point(
                float(s.at_ms),
                s.lag_s or 0.0,
                f"{store} {_clock(s.at_ms)}: {s.lag_s:.1f} s, {s.behind:,} behind",
            )
            for s in rows
        )
        series.append(Series(store, points, note=note))
    hour_ms = 3600 * 1000
    first_tick = -(-lo // (4 * hour_ms)) * 4 * hour_ms
    ticks = tuple((float(t), _clock(t)) for t in range(first_tick, now_ms + 1, 4 * hour_ms))
    gap = 3 * max(LAG_BUCKET_MS, sample_every_s * 1000)  # missing samples (central was down) break the line
    return line_chart(
        series,
        XAxis(lo=float(lo), hi=float(now_ms), ticks=ticks, title="time (UTC)"),
        "lag (s)",
        "Lag per store, last 24 hours",
        "no lag samples yet",
        ChartStyle(markers=False, break_over=gap),
    )


def _document(title: str, body: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer">{meta}<title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _state_class(state: str) -> str:
    if state == "in_sync":
        return "ok"
    if state in {"catching_up", "never"}:
        return "warn"
    return "bad" if state in _KNOWN_STATES else "other"


def _flag(count: int) -> str:
    return " nonzero" if count else ""


def _seconds(value: float | None) -> str:
    return _NONE if value is None else format_number(round(value, 1))


def _age(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    age = max(0.0, (now_ms - ms) / 1000)
    if age < 120:
        return f"{age:.0f} s ago"
    if age < 7200:
        return f"{age / 60:.0f} min ago"
    return f"{age / 3600:.1f} h ago"


def _bundles(bundles: dict[str, int]) -> str:
    return escape(", ".join(f"{kind} v{version}" for kind, version in sorted(bundles.items()))) or _NONE


def _clock(ms: int) -> str:
    return f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%H:%M}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
