"""Unit tests of the daemon's small parts: supervision, backoff, metrics exposition, structured logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random

import pytest

from edge.logs import bind, configure_logging
from edge.metrics import Counter, Gauge, Histogram, IngestMetrics, Registry
from edge.supervisor import supervise
from sensors.backoff import Backoff


async def test_a_failing_task_is_restarted_until_it_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.supervisor.Backoff", lambda **_: Backoff(minimum=0.001, maximum=0.002))
    metrics = IngestMetrics()
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("sensor sent garbage")

    await asyncio.wait_for(supervise("flaky", flaky, metrics), 5)
    assert calls == 3
    assert metrics.task_restarts.value("flaky") == 2


async def test_supervise_propagates_cancellation() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise("forever", forever, IngestMetrics()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_grows_with_jitter_caps_and_resets() -> None:
    backoff = Backoff(minimum=0.5, maximum=8.0, _rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_prometheus_exposition_format() -> None:
    registry = Registry()
    counter = registry.register(Counter("x_total", "Things.", ("reason",)))
    gauge = registry.register(Gauge("depth", "Depth.", read=lambda: 7))
    histogram = registry.register(Histogram("lat_seconds", "Latency.", (0.1, 1.0)))
    counter.inc('we"ird\n')
    counter.inc("ok", amount=2)
    histogram.observe(0.05)
    histogram.observe(0.5)
    histogram.observe(5)
    text = registry.render()
    assert '# TYPE x_total counter\nx_total{reason="ok"} 2\nx_total{reason="we\\"ird\\n"} 1' in text
    assert "depth 7" in text
    assert (
        'lat_seconds_bucket{le="0.1"} 1\nlat_seconds_bucket{le="1"} 2\nlat_seconds_bucket{le="+Inf"} 3'
        in text
    )
    assert "lat_seconds_count 3" in text
    assert gauge.value() == 7
    with pytest.raises(ValueError, match="twice"):
        registry.register(Counter("x_total", "again"))


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_logs_are_one_event_per_line_with_fields(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("info", fmt, stream)
    bind(store_id="s-1")
    logging.getLogger("t").info("mqtt_connected", extra={"host": "broker a", "port": 1883})
    logging.getLogger("t").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    if fmt == "json":
        record = json.loads(lines[0])
        assert (record["event"], record["host"], record["port"], record["store_id"]) == (
            "mqtt_connected",
            "broker a",
            1883,
            "s-1",
        )
    else:
        assert "event=mqtt_connected" in lines[0]
        assert 'host="broker a"' in lines[0]
        assert "store_id=s-1" in lines[0]
