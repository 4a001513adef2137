"""Store-state benchmark and accuracy report (not a test: it asserts nothing).

1. Shelf accuracy against simulator ground truth (simulators/shelf_trace.py): every demo shelf over a
   trading day with noise, drift, hands, misplaced items and restocks; share of settled readings whose
   count is exact, pick/put/restock event precision and recall, at 1 Hz and 10 Hz.
2. Fridge excursions: simulated probes (door openings, real excursions) through the real applier on
   SQLite; excursions caught, false alarms.
3. Throughput of the signal-processing path for 200 shelves at 10 Hz on one core: the pure tracker,
   and the full applier path (ledger, state, alerts, outbox) in write batches of 500.
4. Alert latency from the MQTT reading that empties a shelf to the alert on the WebSocket (p50/p99),
   through a real daemon and mosquitto.

    python bench/state.py [--quick]       # writes bench/results/state.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import aiomqtt  # noqa: E402

from bench.stats import pct  # noqa: E402
from edge.customers.privacy import Pseudonymiser  # noqa: E402
from edge.demo.broker import MosquittoBroker  # noqa: E402
from edge.state.rules import StoreRules  # noqa: E402
from edge.state.shelf_signal import ShelfCalibration, ShelfTracker  # noqa: E402
from edge.store.apply import BatchApplier, Received, load_planogram_job  # noqa: E402
from edge.store.db import open_store  # noqa: E402
from sensors.planogram import load_planogram  # noqa: E402
from sensors.schemas import FridgeTemperature, ShelfWeight  # noqa: E402
from simulators.devices import FridgeThermometer  # noqa: E402
from simulators.shelf_trace import TraceSpec, shelf_trace  # noqa: E402
from tests.conftest import STAFF_TOKEN, DaemonProcess, write_config  # noqa: E402

PLANOGRAM = load_planogram(REPO / "simulators" / "demo_store" / "planogram.toml")


def shelf_accuracy(hz: float, hours: float) -> dict[str, float]:
    settled = exact = tp = fp = fn = 0
    for index, shelf in enumerate(PLANOGRAM.shelves.values()):
        spec = TraceSpec(
            unit_grams=shelf.unit_grams,
            capacity=shelf.capacity,
            duration_s=hours * 3600,
            hz=hz,
            picks_per_hour=15,
        )
        points, truth = shelf_trace(spec, seed=index)
        tracker = ShelfTracker(ShelfCalibration(unit_grams=shelf.unit_grams, capacity=shelf.capacity))
        detected = []
        for p in points:
            detected += [(c.kind, c.ts_ms) for c in tracker.feed(p.ts_ms, p.grams)]
            if tracker.settled and not p.disturbed:
                settled += 1
                exact += tracker.items == p.true_items
        unmatched = [e for e in truth if e.kind in ("pick", "put", "restock")]
        for kind, ts in detected:
            if kind not in ("pick", "put", "restock"):
                continue
            hit = next((e for e in unmatched if e.kind == kind and 0 <= ts - e.ts_ms <= 8000), None)
            if hit is None:
                fp += 1
            else:
                unmatched.remove(hit)
                tp += 1
        fn += len(unmatched)
    return {
        "hz": hz, "shelves": len(PLANOGRAM.shelves), "hours": hours, "settled_readings": settled,
        "exact_share": round(exact / settled, 5), "events_true": tp + fn,
        "precision": round(tp / max(1, tp + fp), 5), "recall": round(tp / max(1, tp + fn), 5),
    }  # fmt: skip


def fridge_accuracy(hours: float, tmp: Path) -> dict[str, float]:
    rules = StoreRules()
    conn = open_store(tmp / "fridge.db")
    applier = BatchApplier(PLANOGRAM, Pseudonymiser(b"k" * 32), rules=rules)
    t0 = 1_795_514_400_000
    applier.apply(conn, [Received(load_planogram_job(PLANOGRAM), t0)], t0)
    rng = random.Random(5)
    caught = missed = false_alarms = door_openings = long_excursions = 0
    for fridge in PLANOGRAM.fridges.values():
        probe = FridgeThermometer.for_fridge(
            fridge, random.Random(fridge.id), excursion_mean_interval_s=2 * 3600
        )
        out_for = 0.0  # true seconds out of range in the current excursion
        last_excursion_s = -1e9
        alert_open = False
        seq = 0
        t = 0.0
        while t < hours * 3600:
            if rng.random() < (20 / 3600) * 5:  # ~20 door openings per hour
                probe.open_door(t)
                door_openings += 1
            celsius = probe.read(t)
            seq += 1
            ts = t0 + int(t * 1000)
            outcome = applier.apply(
                conn,
                [Received(FridgeTemperature(f"fridge-{fridge.id}", fridge.id, seq, ts, celsius), ts)],
                ts,
            )
            for alert in outcome.alerts:
                if alert.kind != "fridge_excursion":
                    continue
                if alert.state == "open":
                    alert_open = True
                    # A real excursion: still in it, or its recovery tail (the air takes minutes to cool).
                    if probe.in_excursion(t) or out_for > 0 or t - last_excursion_s <= 600:
                        caught += 1
                    else:
                        false_alarms += 1
            in_excursion = probe.in_excursion(t)
            if in_excursion:
                last_excursion_s = t
            out_for = (
                out_for + 5
                if (in_excursion and not fridge.min_c <= celsius <= fridge.max_c)
                else (out_for if in_excursion else 0)
            )
            if not in_excursion and out_for == 0 and alert_open:
                alert_open = False
            if in_excursion and out_for >= rules.fridge_excursion_s + 15 and not alert_open:
                missed += 1
                alert_open = True  # count each missed excursion once
            if not in_excursion and out_for:
                out_for = 0
            long_excursions += int(in_excursion and out_for == rules.fridge_excursion_s)
            t += 5
    return {
        "fridges": len(PLANOGRAM.fridges), "hours": hours, "door_openings": door_openings,
        "excursions_over_threshold": long_excursions, "alerts_caught": caught, "missed": missed,
        "false_alarms": false_alarms,
    }  # fmt: skip


def throughput(seconds: float, tmp: Path) -> dict[str, float]:
    shelves = list(PLANOGRAM.shelves.values())
    traces = []
    for i in range(200):
        shelf = shelves[i % len(shelves)]
        spec = TraceSpec(
            unit_grams=shelf.unit_grams, capacity=shelf.capacity, duration_s=seconds, hz=10, picks_per_hour=60
        )
        traces.append((shelf, shelf_trace(spec, seed=i)[0]))
    readings = sum(len(points) for _, points in traces)
    trackers = [
        ShelfTracker(ShelfCalibration(unit_grams=s.unit_grams, capacity=s.capacity)) for s, _ in traces
    ]
    started = time.perf_counter()
    for tracker, (_, points) in zip(trackers, traces, strict=True):
        for p in points:
            tracker.feed(p.ts_ms, p.grams)
    pure = readings / (time.perf_counter() - started)
    # The full path: 200 shelves map onto the 40 demo shelves (5 cells each, as distinct seq ranges).
    conn = open_store(tmp / "throughput.db")
    applier = BatchApplier(PLANOGRAM, Pseudonymiser(b"k" * 32))
    applier.apply(conn, [Received(load_planogram_job(PLANOGRAM), 0)], 0)
    interleaved = sorted(
        (
            (p.ts_ms, i, n, p.grams, shelf.id)
            for i, (shelf, points) in enumerate(traces)
            for n, p in enumerate(points)
        ),
    )
    items = [ShelfWeight(f"shelf-{sid}", sid, i * 10_000_000 + n, ts, g) for ts, i, n, g, sid in interleaved]
    started = time.perf_counter()
    for start in range(0, len(items), 500):
        applier.apply(conn, [Received(r, r.ts_ms) for r in items[start : start + 500]], items[start].ts_ms)
    full = len(items) / (time.perf_counter() - started)
    return {"shelves": 200, "hz": 10, "readings": readings, "tracker_readings_per_s": round(pure), "applier_readings_per_s": round(full),
            "needed_per_s": 2000}  # fmt: skip


async def alert_latency(samples: int, tmp: Path) -> dict[str, float]:
    with MosquittoBroker(tmp / "broker") as broker:
        config = write_config(
            tmp, broker, thresholds={"silent_after_periods": 100000.0}, log={"level": "warning"}
        )
        daemon = DaemonProcess(config, tmp / "daemon.log")
        daemon.start()
        latencies: list[float] = []
        try:
            async with aiohttp.ClientSession() as http, aiomqtt.Client("127.0.0.1", broker.port) as device:
                socket = await http.ws_connect(f"{daemon.url}/api/v1/events?token={STAFF_TOKEN}")
                shelves = list(PLANOGRAM.shelves.values())
                last_ts: dict[str, int] = {}
                for n in range(samples):
                    shelf = shelves[n % len(shelves)]
                    # timestamps move forward for every round (a shelf ignores readings older than its last)
                    base = max(int(time.time() * 1000), last_ts.get(shelf.id, 0) + 1000)
                    last_ts[shelf.id] = base + 4000 + 1200
                    seq = n * 100
                    for k in range(3):
                        seq += 1
                        await device.publish(
                            f"store/demo/shelf/{shelf.id}/weight",
                            json.dumps({"ts": base + k * 600, "seq": seq, "grams": 5 * shelf.unit_grams}),
                            qos=1,
                        )
                    for k in range(2):
                        seq += 1
                        await device.publish(
                            f"store/demo/shelf/{shelf.id}/weight",
                            json.dumps({"ts": base + 2000 + k * 600, "seq": seq, "grams": 1.0}),
                            qos=1,
                        )
                    seq += 1
                    sent = time.perf_counter()
                    await device.publish(
                        f"store/demo/shelf/{shelf.id}/weight",
                        json.dumps({"ts": base + 3200, "seq": seq, "grams": 1.0}),
                        qos=1,
                    )
                    while True:
                        message = json.loads((await socket.receive(timeout=10)).data)["alert"]
                        if (
                            message["kind"] == "empty_shelf"
                            and message["subject"] == shelf.id
                            and message["state"] == "open"
                        ):
                            latencies.append((time.perf_counter() - sent) * 1000)
                            break
                    # refill so the next round on this shelf starts clean
                    base2 = base + 4000
                    for k in range(3):
                        seq += 1
                        await device.publish(
                            f"store/demo/shelf/{shelf.id}/weight",
                            json.dumps({"ts": base2 + k * 600, "seq": seq, "grams": 5 * shelf.unit_grams}),
                            qos=1,
                        )
                await socket.close()
        finally:
            daemon.terminate()
    return {
        "samples": len(latencies),
        "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run that only checks the benchmark works"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "state.json")
    args = parser.parse_args()
    hours = 0.05 if args.smoke else 2 if args.quick else 8
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-state-") as tmp_name:
        tmp = Path(tmp_name)
        report = {
            "shelf_accuracy": [shelf_accuracy(1.0, hours), shelf_accuracy(10.0, hours / 2)],
            "fridge": fridge_accuracy(0.5 if args.smoke else 8 if args.quick else 24, tmp),
            "throughput": throughput(2 if args.smoke else 30 if args.quick else 60, tmp),
            "alert_latency": asyncio.run(alert_latency(3 if args.smoke else 20 if args.quick else 60, tmp)),
        }
    print("shelf accuracy (40 demo shelves, simulator ground truth)")
    print(
        f"  {'Hz':>4} {'hours':>5} {'settled':>9} {'exact':>8} {'events':>7} {'precision':>9} {'recall':>7}"
    )
    for row in report["shelf_accuracy"]:
        print(
            f"  {row['hz']:>4.0f} {row['hours']:>5} {row['settled_readings']:>9} {row['exact_share']:>8.4f} {row['events_true']:>7} {row['precision']:>9.4f} {row['recall']:>7.4f}"
        )
    f = report["fridge"]
    print(
        f"fridges: {f['fridges']} x {f['hours']} h, {f['door_openings']} door openings, {f['excursions_over_threshold']} excursions past the limit: "
        f"{f['alerts_caught']} caught, {f['missed']} missed, {f['false_alarms']} false alarms"
    )
    t = report["throughput"]
    print(
        f"throughput (200 shelves at 10 Hz = {t['needed_per_s']} readings/s needed): tracker {t['tracker_readings_per_s']}/s, "
        f"full applier path {t['applier_readings_per_s']}/s on one core"
    )
    a = report["alert_latency"]
    print(
        f"alert latency reading -> WebSocket: p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms over {a['samples']} alerts"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
