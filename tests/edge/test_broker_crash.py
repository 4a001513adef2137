"""A kill -9 of mosquitto mid-flood loses no purchase: tills resend what no receipt confirmed.

mosquitto acknowledges a QoS 1 message once it is in memory and writes its state to disk only at each
autosave, so a broker crash loses what it acknowledged since the last save (bench/broker_crash.py
measures how much). Sensors can afford that; purchases cannot. The simulated tills (`simulators/till.py`)
keep each transaction until the daemon's receipt confirms it and resend it unchanged otherwise; the
daemon's idempotent ledger stores each basket exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from edge.demo.broker import MosquittoBroker
from simulators import SimulatorSettings, run_simulation
from simulators.summary import SimulationSummary
from tests.conftest import DEMO_PLANOGRAM, DaemonProcess

pytestmark = pytest.mark.integration
# Shoppers follow the simulated time of day: start every run at noon (UTC) today.
LUNCHTIME_MS = (time.time_ns() // 1_000_000) // 86_400_000 * 86_400_000 + 12 * 3_600_000
STALL_S = 1.0  # the daemon is stopped this long before each kill: the broker queues for it


def purchases(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        rows, baskets = conn.execute("SELECT count(*), count(DISTINCT basket_id) FROM purchases").fetchone()
    return int(rows), int(baskets)


async def run_with_broker_kills(
    daemon: DaemonProcess, broker: MosquittoBroker, duration_s: float, kills_at: list[float], seed: int
) -> SimulationSummary:
    """Kill -9 the broker at each of ``kills_at`` (seconds into the run), each time while the daemon is
    stalled (SIGSTOP, as on a slow disk) so that the broker holds a queue of acknowledged messages for
    it; restart the broker on the same persistence and let the daemon carry on."""
    await asyncio.to_thread(daemon.start)
    settings = SimulatorSettings(
        store_id="demo",
        planogram_path=DEMO_PLANOGRAM,
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        seed=seed,
        speed=3_000.0,  # lunchtime rush: a basket every few hundred ms across four lanes
        start_time_ms=LUNCHTIME_MS,  # whatever the wall clock says (at 01:30 UTC the simulated store is empty)
        weight_hz=5.0,  # ~200 msg/s of shelf weights around the baskets
        duration_s=duration_s,
        till_receipts=True,
        receipt_timeout_s=1.0,
    )

    async def kill_broker() -> None:
        started = time.monotonic()
        assert daemon.process is not None
        for at in kills_at:
            await asyncio.sleep(max(0.0, at - STALL_S - (time.monotonic() - started)))
            daemon.process.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(STALL_S)
                broker.kill()  # kill -9: no final save
            finally:
                daemon.process.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(broker.start)  # same port, same persistence directory

    summary, _ = await asyncio.gather(run_simulation(settings), kill_broker())
    db = daemon.config.path(daemon.config.database.path)
    deadline = time.monotonic() + 30
    while purchases(db)[0] < summary.baskets and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    rows, distinct = purchases(db)
    context = (
        f"baskets {summary.baskets}, first sends {dict(summary.published).get('transaction')},"
        f" resent {summary.transactions_resent}, receipts {dict(summary.receipts)}"
    )
    # Enough baskets that a kill lands among them (a loaded CI box sells fewer in the same seconds); the
    # mid-flood test also requires resends, so the kill did cost the broker some.
    assert summary.baskets >= 5, context
    assert summary.published["transaction"] == summary.baskets, context
    assert summary.transactions_unconfirmed == 0, context
    assert (rows, distinct) == (summary.baskets, summary.baskets), context
    assert summary.receipts.get("rejected", 0) == 0, context
    code, _ = await asyncio.to_thread(daemon.terminate)
    assert code == 0
    return summary


async def test_broker_kill_9_mid_flood_loses_no_purchase(
    daemon_process: DaemonProcess, broker: MosquittoBroker
) -> None:
    # The worst broker: nothing saved after start, so every basket queued at the kill is lost by it.
    broker.stop()
    broker.autosave = "autosave_interval 1800\n"
    broker.start()
    summary = await run_with_broker_kills(daemon_process, broker, duration_s=5.0, kills_at=[2.5], seed=3)
    assert summary.transactions_resent > 0, "the kill lost no basket: the test did not test resends"
    # Every basket was confirmed: `stored`, or `duplicate` when the till missed that receipt and resent.
    assert summary.receipts["stored"] + summary.receipts.get("duplicate", 0) >= summary.baskets


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
async def test_broker_kill_9_soak(daemon_process: DaemonProcess, broker: MosquittoBroker, seed: int) -> None:
    # The broker as storeedge configures it (edge.demo.broker.RECOMMENDED_AUTOSAVE), four kills.
    await run_with_broker_kills(
        daemon_process, broker, duration_s=30.0, kills_at=[4.0, 11.0, 19.0, 26.0], seed=seed
    )
