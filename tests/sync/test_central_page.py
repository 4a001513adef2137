"""Central's operations page: the pure rendering (escaping, empty data, scaling), the lag sampler, and the
page itself in a real headless Chromium against a real central on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import make_mocked_request

from sync import central_ops, central_schema
from sync.central import Central
from sync.central_config import parse_central_config
from sync.central_page import (
    ArmOutcome,
    DaySales,
    ExperimentStep,
    LagSample,
    PageFacts,
    lag_chart,
    render_page,
    sales_chart,
)
from sync.central_svg import ChartStyle, Point, Series, XAxis, line_chart, nice_ceiling
from sync.errors import CentralConfigError
from sync.schemas import CentralStatusView, CentralStoreView
from tests.sync.sync_helpers import SYNC_TOKEN, pg_rows, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = "admin-token-0123456789"
NOW_MS = 1_796_558_400_000  # 2026-12-06 12:00 UTC
EVIL = '<img src="http://evil.example/x.png" onerror="alert(1)">'
browser = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (`make chromium`)"
)


# -- parsing what the browser (or the renderer) produced -------------------------------------------------


class Dom(HTMLParser):
    """Elements with their attributes, and the text of every element."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.markup = markup
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **where: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in where.items())
        ]

    def row(self, store: str) -> dict[str, str]:
        """The table row of a store: {column class: cell text}."""
        cells: dict[str, str] = {}
        pattern = rf'<tr data-store="{re.escape(store)}">(.*?)</tr>'
        match = re.search(pattern, self.markup, re.S)
        assert match, f"no row for {store}"
        for cls, content in re.findall(r'<td class="([^"]*)">(.*?)</td>', match.group(1), re.S):
            cells[cls.split()[0]] = re.sub(r"<[^>]+>", " ", content).strip()
        return cells


def store_view(store: str, **fields: Any) -> CentralStoreView:
    values: dict[str, Any] = {
        "store": store,
        "url": "http://127.0.0.1:9",
        "state": "in_sync",
        "feed": "f",
        "cursor": 10,
        "head": 10,
        "behind": 0,
        "changes": 10,
        "last_pull_ms": NOW_MS - 5000,
        "last_applied_ms": NOW_MS - 5000,
        "lag_s": 1.5,
        "last_error": None,
        "gaps": 0,
        "bundles": {},
        **fields,
    }
    return CentralStoreView(**values)


# -- pure rendering ------------------------------------------------------------------------------------


def test_every_text_from_the_database_is_escaped() -> None:
    status = CentralStatusView(
        stores=[store_view(EVIL, state="<b>odd</b>", last_error=EVIL, bundles={"<i>k</i>": 3})]
    )
    facts = PageFacts(
        now_ms=NOW_MS,
        sales=(DaySales(EVIL, dt.date(2026, 12, 6), 12.5, 2),),
        lag=(LagSample(EVIL, NOW_MS - 60_000, 3, 2.0),),
        experiments=(ExperimentStep(EVIL, EVIL, EVIL, 0.1, NOW_MS, EVIL),),
        arms=(ArmOutcome(EVIL, EVIL, 3, 4, 0.5),),
    )
    page = render_page(status, facts)
    dom = Dom(page)
    assert not dom.all("img")
    assert not dom.all("b")
    assert not dom.all("i")
    assert not dom.all("script")
    assert all("onerror" not in attrs for _, attrs in dom.elements)
    assert EVIL in "".join(dom.text)  # shown as text
    assert [a["data-series"] for a in dom.all("g", **{"class": "series"})] == [EVIL, EVIL]


def test_empty_data_renders_the_empty_states() -> None:
    page = render_page(CentralStatusView(stores=[]), PageFacts(now_ms=NOW_MS))
    text = " ".join(Dom(page).text)
    assert "no stores configured" in text
    assert "no sales recorded yet" in text
    assert "no lag samples yet" in text
    assert "No A/B test has been reported by any store." in text
    assert page.count("<svg") == 2
    assert 'class="series"' not in page


def test_table_row_and_chain_totals() -> None:
    status = CentralStatusView(
        stores=[
            store_view("s1", behind=30, gaps=2, bundles={"model": 3, "promotions": 1}, lag_s=12.25),
            store_view("s2", state="unreachable", last_pull_ms=None, lag_s=None, last_error="refused"),
        ]
    )
    facts = PageFacts(now_ms=NOW_MS, open_alerts={"s1": 3, "gone": 9}, quarantined={"s2": 4})
    dom = Dom(render_page(status, facts))
    s1, s2 = dom.row("s1"), dom.row("s2")
    assert (s1["state"], s1["lag"], s1["behind"], s1["gaps"], s1["alerts"], s1["quarantined"]) == (
        "in_sync",
        "12.2",
        "30",
        "2",
        "3",
        "0",
    )
    assert s1["last-pull"] == "5 s ago"
    assert s1["bundles"] == "model v3, promotions v1"
    assert (s2["state"], s2["last-pull"], s2["quarantined"]) == ("unreachable", "never", "4")
    assert "refused" in s2["store"]
    totals = re.search(r'<tr class="totals">(.*?)</tr>', dom.markup, re.S)
    assert totals
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", totals.group(1))]
    # the alerts of a store no longer configured are not counted
    assert cells == ["Chain (2 stores)", "1/2 in sync", "12.2", "30", "never", "2", "", "3", "4"]


def test_sales_chart_fills_missing_days_and_ignores_older_ones() -> None:
    today = dt.date(2026, 12, 6)
    sales = (
        DaySales("s1", today, 100.0, 4),
        DaySales("s1", today - dt.timedelta(days=13), 50.0, 2),
        DaySales("s1", today - dt.timedelta(days=14), 999.0, 9),  # outside the window
        DaySales("s2", today - dt.timedelta(days=1), 20.0, 1),
    )
    dom = Dom(sales_chart(sales, today))
    assert [(a["data-series"], a["data-points"]) for a in dom.all("g", **{"class": "series"})] == [
        ("s1", "14"),
        ("s2", "14"),
    ]
    titles = " | ".join(dom.text)
    assert "s1 · Sun 2026-12-06: 100.00 (4 baskets)" in titles
    assert "s1 · Sat 2026-12-05: 0.00 (0 baskets)" in titles
    assert "999" not in titles
    assert ">100<" in sales_chart(sales, today)  # the y axis tops out at the round maximum


def test_scaling_puts_the_maximum_at_the_top_and_zero_at_the_bottom() -> None:
    assert [nice_ceiling(v) for v in (0, -3, 0.7, 1, 1.2, 3, 7, 12.4, 240, 1001)] == [
        1,
        1,
        1,
        1,
        2,
        5,
        10,
        20,
        250,
        2000,
    ]
    chart = line_chart(
        [Series("a", (Point(0, 0, "zero"), Point(5, 40, "middle"), Point(10, 100, "top")))],
        XAxis(lo=0, hi=10, ticks=(), title="x"),
        "y",
        "t",
        "empty",
        ChartStyle(width=400, height=200),
    )
    for top, labels in (
        (500, "0 100 200 300 400 500"),
        (20, "0 5 10 15 20"),
        (0.25, "0 0.05 0.1 0.15 0.2 0.25"),
    ):
        axis = line_chart(
            [Series("a", (Point(0, top, "top"),))], XAxis(0, 1, (), "x"), "y", "t", "empty", ChartStyle()
        )
        assert " ".join(re.findall(r'text-anchor="end" font-size="11">([^<]+)<', axis)) == labels
    circles = re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"', chart)
    # plot area: x 64..250, y 16..156 (central_svg's margins); 100 is already a round maximum
    assert circles == [("64.0", "156.0"), ("157.0", "100.0"), ("250.0", "16.0")]


def test_lag_chart_breaks_the_line_where_samples_are_missing() -> None:
    samples = tuple(LagSample("s1", NOW_MS - m * 60_000, 0, 1.0 + m) for m in (300, 299, 298, 10, 9, 8))
    samples += (LagSample("s1", NOW_MS - 90_000_000, 1, 5.0), LagSample("s2", NOW_MS, 0, None))
    chart = lag_chart(samples, NOW_MS, sample_every_s=60)
    assert chart.count("<polyline") == 2  # one gap; the old sample and the sample without a lag left out
    dom = Dom(chart)
    assert [(a["data-series"], a["data-points"]) for a in dom.all("g", **{"class": "series"})] == [
        ("s1", "6")
    ]
    assert "s1: now 9 s, worst 301 s in 24 h" in dom.text


def test_lag_sample_s_is_validated_and_named() -> None:
    raw: dict[str, Any] = {"central": {"lag_sample_s": 0}, "stores": []}
    with pytest.raises(CentralConfigError, match=r"\[central\] lag_sample_s"):
        parse_central_config(raw, origin="central.toml")
    assert parse_central_config({"stores": []}).central.lag_sample_s == 60.0


def test_token_from_header_or_query() -> None:
    def ok(path: str, headers: dict[str, str] | None = None) -> bool:
        return central_ops.token_ok(make_mocked_request("GET", path, headers=headers or {}), ADMIN)

    assert ok(f"/?token={ADMIN}")
    assert ok("/", {"Authorization": f"Bearer {ADMIN}"})
    assert not ok("/")
    assert not ok("/?token=wrong")
    assert not ok("/", {"Authorization": f"Basic {ADMIN}"})
    assert not ok("/?token=%C3%A9")


async def test_page_is_503_while_the_database_is_down() -> None:
    async def status() -> CentralStatusView:
        raise ConnectionRefusedError("connection refused")

    async def run(_fn: Any) -> Any:
        raise AssertionError("not reached")

    response = await central_ops.ops_page(make_mocked_request("GET", "/"), None, status, run, 60.0)
    assert response.status == 503
    assert response.content_type == "text/html"
    assert response.text
    assert "Database unavailable" in response.text


async def test_sampler_logs_database_errors_and_keeps_sampling(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def status() -> CentralStatusView:
        return CentralStatusView(stores=[store_view("s1")])

    async def run(_fn: Any) -> None:
        calls.append(len(calls))
        if len(calls) <= 3:
            raise asyncpg.CannotConnectNowError("the database system is starting up")

    task = asyncio.create_task(central_ops.sample_lag_forever(status, run, 0.01))
    await wait_for(lambda: len(calls) >= 5, timeout=5, what="sampling after the errors")
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failures = [r for r in caplog.records if r.getMessage() == "central_lag_sample_failed"]
    assert len(failures) == 1  # once per outage, not once per tick


# -- against a real central --------------------------------------------------------------------------


def central_config(tmp_path: Path, dsn: str, stores: list[str], **central: Any) -> Any:
    raw: dict[str, Any] = {
        "central": {
            "dsn": dsn,
            "port": 0,
            "bundle_dir": str(tmp_path / "bundles"),
            "backoff_min_s": 1.0,
            "backoff_max_s": 2.0,
            "admin_token": ADMIN,
            "lag_sample_s": 3600.0,
            **central,
        },
        # nothing listens on port 9: the pullers fail quietly, the page shows them unreachable
        "stores": [{"id": s, "url": "http://127.0.0.1:9", "token": SYNC_TOKEN} for s in stores],
    }
    return parse_central_config(raw)


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def seed(dsn: str, now_ms: int) -> None:
    """Two stores' status rows, alerts, quarantine, 14 days of sales (s1) and 3 days (s2), lag samples."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    days = [today - dt.timedelta(days=d) for d in range(14)]
    async with connected(dsn) as conn:
        months = {(d.year, d.month) for d in days}
        await central_schema.ensure_partitions(conn, {"purchases": months})
        for store, cursor, head in (("s1", 100, 130), ("s2", 50, 50)):
            await conn.execute(
                "INSERT INTO stores (id, feed, cursor, head, changes, newest_created_ms) VALUES ($1, 'f', $2, $3,"
                " $2, $4) ON CONFLICT (id) DO UPDATE SET feed = 'f', cursor = $2, head = $3, changes = $2,"
                " newest_created_ms = $4",
                store,
                cursor,
                head,
                now_ms - 42_000,
            )
        await conn.execute(
            "INSERT INTO store_bundles VALUES ('s1', 'model', 3, 'activated', NULL, 7),"
            " ('s1', 'promotions', 2, 'activated', NULL, 8), ('s2', 'model', 2, 'refused', 'bad', 9)"
        )
        await conn.execute(
            "INSERT INTO gaps (store, reason, detected_ms) VALUES ('s2', 'cursor_gone', 1), ('s2', 'x', 2)"
        )
        alerts = [("s1", 1, "open"), ("s1", 2, "acknowledged"), ("s1", 3, "open"), ("s1", 4, "resolved")]
        alerts += [("s2", 1, "open")]
        await conn.executemany(
            "INSERT INTO alerts VALUES ($1, $2, 'low_stock', 'A1-1', 'warning', $3, 'low', 1, 1, NULL)",
            alerts,
        )
        await conn.executemany(
            "INSERT INTO quarantine (store, reason, received_ms) VALUES ($1, 'unknown_kind', 1)",
            [("s2",)] * 4,
        )
        purchases = [("s1", f"b{i}-{j}", d, 10.0 * (i + 1) + j) for i, d in enumerate(days) for j in range(2)]
        purchases += [("s2", f"c{i}", d, 7.5) for i, d in enumerate(days[:3])]
        purchases += [(EVIL, "e1", days[0], 1.0)]  # a store id from the database is text, never markup
        await conn.executemany(
            "INSERT INTO purchases (store, basket_id, ts, ts_ms, total, lines) VALUES ($1, $2, $3, 0, $4, 1)",
            [(s, b, dt.datetime.combine(d, dt.time(0, 30), dt.UTC), t) for s, b, d, t in purchases],
        )
        samples = [("s1", now_ms - k * 600_000, k, 2.0 * k) for k in range(12)]
        samples += [("s2", now_ms - k * 600_000, 0, 1.0) for k in range(6)]
        await conn.executemany("INSERT INTO lag_samples VALUES ($1, $2, $3, $4)", samples)
        # an A/B test: s1 advanced to 25%, s2 still at 10%; trips in both arms at s1
        started = now_ms - 3 * 86_400_000
        await conn.executemany(
            "INSERT INTO experiment_events VALUES ($1, 1, $2, $3, 'exp-1', $4, $5, $6, $7, NULL)",
            [("s1", 1, started, "started", 0, 0.1, "loaded"), ("s1", 2, started + 9, "advanced", 1, 0.25, "no harm"),
             ("s2", 3, started, "started", 0, 0.1, "loaded")],
        )  # fmt: skip
        when = dt.datetime.fromtimestamp((started + 60_000) / 1000, dt.UTC)
        await central_schema.ensure_partitions(conn, {"list_outcomes": {(when.year, when.month)}})
        await conn.executemany(
            "INSERT INTO list_outcomes VALUES ('s1', 1, $1, $2, $3, 10, $4, 10, 'nb', 'exp-1', $5)",
            [(i, when, f"hh-{i % 4}", 5 + (i % 2), ("control", "challenger")[i % 2]) for i in range(8)],
        )


async def chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``url``; returns its stdout and the URLs the page's context requested
    (from Chromium's net log: Chromium's own background traffic has another network isolation key)."""
    netlog = tmp_path / "net.json"
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'chromium'}",
        f"--log-net-log={netlog}",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"chromium exited {proc.returncode}"
    log = json.loads(netlog.read_text())
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    requested = [
        e.get("params", {}).get("url", "")
        for e in log["events"]
        if kinds.get(e["type"]) == "URL_REQUEST_START_JOB"
        and "127.0.0.1" in e.get("params", {}).get("network_isolation_key", "")
    ]
    return out.decode(), requested


def assert_loads_nothing_from_outside(dom: Dom, requested: list[str], port: int) -> None:
    assert requested, "the net log shows no request of the page at all"
    for url in requested:
        assert url.startswith(f"http://127.0.0.1:{port}/"), f"the page requested {url}"
    for tag in ("script", "link", "img", "iframe", "object", "embed", "image", "use"):
        assert not dom.all(tag), f"<{tag}> in the page"
    for tag, attrs in dom.elements:
        for name in ("src", "href", "xlink:href", "action", "srcset", "poster"):
            assert name not in attrs, f"<{tag} {name}=...>"
    styles = " ".join(t for t in dom.text if "{" in t)
    assert "url(" not in styles
    assert "@import" not in styles


@pytest.mark.integration
@browser
async def test_browser_shows_stores_figures_and_charts(tmp_path: Path, central_dsn: str) -> None:
    async with Central(central_config(tmp_path, central_dsn, ["s1", "s2"])) as central:
        await seed(central_dsn, int(time.time() * 1000))
        await wait_for(
            lambda: all(p.state.state == "unreachable" for p in central.pullers.values()),
            what="pullers failed",
        )
        started = time.monotonic()
        out, requested = await chromium(
            tmp_path, f"http://127.0.0.1:{central.port}/?token={ADMIN}", "--dump-dom"
        )
        assert time.monotonic() - started < 10
        port = central.port
    dom = Dom(out)
    s1, s2 = dom.row("s1"), dom.row("s2")
    assert (s1["state"], s1["behind"], s1["gaps"], s1["alerts"], s1["quarantined"]) == (
        "unreachable",
        "30",
        "0",
        "3",
        "0",
    )
    assert float(s1["lag"]) >= 42
    assert s1["bundles"] == "model v3, promotions v2"
    assert (s2["behind"], s2["gaps"], s2["alerts"], s2["quarantined"], s2["bundles"]) == (
        "0",
        "2",
        "1",
        "4",
        "\u2013",
    )
    assert "Chain (2 stores)" in out
    assert "0/2 in sync" in out
    charts = re.findall(r"<svg.*?</svg>", out, re.S)
    assert len(charts) == 2
    sales, lag = Dom(charts[0]), Dom(charts[1])
    assert [(a["data-series"], a["data-points"]) for a in sales.all("g", **{"class": "series"})] == [
        (EVIL, "14"),
        ("s1", "14"),
        ("s2", "14"),
    ]
    assert len(sales.all("circle", **{"class": "point"})) == 42  # each with its <title> for hover
    assert charts[0].count("<title>") == 1 + 3 + 42
    assert [(a["data-series"], a["data-points"]) for a in lag.all("g", **{"class": "series"})] == [
        ("s1", "12"),
        ("s2", "6"),
    ]
    assert "day (UTC)" in sales.text
    assert "time (UTC)" in lag.text
    assert "no sales recorded yet" not in out
    tests = re.findall(r'<tr data-experiment="exp-1">(.*?)</tr>', out, re.S)
    cells = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in tests]
    assert [c[:4] for c in cells] == [["exp-1", "s1", "advanced", "25%"], ["exp-1", "s2", "started", "10%"]]
    arms = re.findall(r'<tr data-arm="[a-z]+">(.*?)</tr>', out, re.S)
    arm_cells = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in arms]
    assert arm_cells == [["exp-1", "challenger", "2", "4", "60.0%"], ["exp-1", "control", "2", "4", "50.0%"]]
    assert_loads_nothing_from_outside(Dom(out), requested, port)


@pytest.mark.integration
@browser
async def test_browser_shows_the_empty_states(tmp_path: Path, central_dsn: str) -> None:
    async with Central(central_config(tmp_path, central_dsn, ["s1"], admin_token=None)) as central:
        out, requested = await chromium(tmp_path, f"http://127.0.0.1:{central.port}/", "--dump-dom")
        port = central.port
    dom = Dom(out)
    assert dom.row("s1")["behind"] == "0"
    assert dom.row("s1")["last-pull"] == "never"
    assert "no sales recorded yet" in dom.text
    assert "no lag samples yet" in dom.text
    assert "data-series" not in out
    assert_loads_nothing_from_outside(dom, requested, port)


@pytest.mark.integration
@browser
async def test_browser_screenshot(tmp_path: Path, central_dsn: str) -> None:
    shot = tmp_path / "page.png"
    async with Central(central_config(tmp_path, central_dsn, ["s1", "s2"])) as central:
        await seed(central_dsn, int(time.time() * 1000))
        url = f"http://127.0.0.1:{central.port}/?token={ADMIN}"
        await chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1100,1300", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000


@pytest.mark.integration
async def test_wrong_or_missing_token_is_401(tmp_path: Path, central_dsn: str) -> None:
    async with (
        Central(central_config(tmp_path, central_dsn, ["s1"])) as central,
        aiohttp.ClientSession() as session,
    ):
        base = f"http://127.0.0.1:{central.port}/"
        for params, headers in (({}, {}), ({"token": "wrong"}, {}), ({}, {"Authorization": "Bearer wrong"})):
            async with session.get(base, params=params, headers=headers) as response:
                body = await response.text()
                assert response.status == 401
                assert response.content_type == "text/html"
                assert "401 Unauthorized" in body
                assert "s1" not in body
        for params, headers in (({"token": ADMIN}, {}), ({}, {"Authorization": f"Bearer {ADMIN}"})):
            async with session.get(base, params=params, headers=headers) as response:
                assert response.status == 200
                assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.integration
async def test_lag_sampler_records_every_store_and_forgets_old_samples(
    tmp_path: Path, central_dsn: str
) -> None:
    config = central_config(tmp_path, central_dsn, ["s1", "s2"], lag_sample_s=0.1)
    async with Central(config):
        old = int(time.time() * 1000) - 3 * 24 * 3600 * 1000
        await asyncio.to_thread(
            pg_rows, central_dsn, "INSERT INTO lag_samples VALUES ('s1', $1, 5, 1.0)", old
        )

        def sampled() -> bool:
            rows = pg_rows(
                central_dsn, "SELECT store, count(*) FROM lag_samples GROUP BY store ORDER BY store"
            )
            return len(rows) == 2 and all(n >= 2 for _, n in rows)

        await wait_for(sampled, timeout=8, what="two samples per store")
    assert not pg_rows(central_dsn, "SELECT 1 FROM lag_samples WHERE at_ms = $1", old)
    assert pg_rows(central_dsn, "SELECT DISTINCT behind, lag_s FROM lag_samples") == [(0, None)]
