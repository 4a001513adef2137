"""Ingest benchmark: MQTT messages through mosquitto into committed SQLite rows.

Compares, on this machine in this run:
  ceiling   a bare paho subscriber that does nothing (the transport's ceiling)
  storeedge the real daemon (`storeedge run`), acks after commit, synchronous=FULL
for a flood of N messages from P publisher processes (rate) and a steady 1,000 msg/s stream
(latency from publish to receipt / to the committed batch). Prints a table, writes JSON to
bench/results/ingest.json. Not a test: nothing here asserts a speed.

    python bench/ingest.py            # full: 20,000 messages, 4 publishers, 10 s steady
    python bench/ingest.py --quick    # a smaller run, ~30 s
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemon_process import start_daemon  # noqa: E402
from bench.stats import pct  # noqa: E402
from edge.demo.broker import MosquittoBroker  # noqa: E402

SHELVES = [f"A{a}-{s}" for a in (1, 2, 3, 4, 5, 7, 8) for s in range(1, 6)]


def publisher(port: int, index: int, count: int, stride: int, rate: float | None, ready: mp.Event) -> None:  # type: ignore[valid-type]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait()
    interval = 1.0 / rate if rate else 0.0
    next_at = time.monotonic()
    infos = []
    for k in range(count):
        n = index + k * stride
        shelf = SHELVES[n % len(SHELVES)]
        body = json.dumps(
            {"ts": int(time.time() * 1000), "seq": n // len(SHELVES) + 1, "grams": 1000.0, "t": time.time()}
        )
        infos.append(client.publish(f"store/demo/shelf/{shelf}/weight", body, qos=1))
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    for info in infos:
        info.wait_for_publish(timeout=120)
    client.loop_stop()
    client.disconnect()


def bare_subscriber(port: int, expected: int, result: mp.Queue, subscribed: mp.Event) -> None:  # type: ignore[valid-type]
    latencies: list[float] = []
    state = {"first": 0.0, "last": 0.0}

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        now = time.time()
        if not latencies:
            state["first"] = time.monotonic()
        latencies.append(now - json.loads(msg.payload)["t"])
        state["last"] = time.monotonic()
        if len(latencies) >= expected:
            client.disconnect()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe("store/demo/shelf/+/weight", qos=1)
    client.loop_forever(timeout=0.1)
    result.put((len(latencies), state["first"], state["last"], latencies))


def run_publishers(port: int, total: int, publishers: int, rate: float | None) -> float:
    ready = mp.Event()
    per = total // publishers
    procs = [
        mp.Process(
            target=publisher, args=(port, i, per, publishers, rate / publishers if rate else None, ready)
        )
        for i in range(publishers)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let them connect
    started = time.monotonic()
    ready.set()
    for p in procs:
        p.join()
    return started


def measure_ceiling(
    broker: MosquittoBroker, total: int, publishers: int, rate: float | None
) -> dict[str, float]:
    result: mp.Queue = mp.Queue()
    subscribed = mp.Event()
    sub = mp.Process(target=bare_subscriber, args=(broker.port, total, result, subscribed))
    sub.start()
    subscribed.wait(10)
    started = run_publishers(broker.port, total, publishers, rate)
    received, _first, last, latencies = result.get(timeout=300)
    sub.join()
    elapsed = last - started
    return {
        "messages": received,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(received / elapsed, 1),
        "latency_p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "latency_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
    }


def count_readings(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])


def measure_storeedge(
    broker: MosquittoBroker, workdir: Path, total: int, publishers: int, rate: float | None
) -> dict[str, float]:
    proc, db, http_port = start_daemon(workdir, broker.port)
    try:
        started = run_publishers(broker.port, total, publishers, rate)
        deadline = time.monotonic() + 300
        while count_readings(db) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        done = time.monotonic()
        with sqlite3.connect(db) as conn:
            # outbox.created_ms is stamped when the batch holding the reading is applied, just before
            # its COMMIT; ts is the publisher's clock at publish (same machine).
            lat = [
                row[0] / 1000
                for row in conn.execute(
                    "SELECT o.created_ms - r.ts_ms FROM readings r JOIN outbox o"
                    " ON o.entity = r.device AND json_extract(o.body, '$.seq') = r.seq AND json_extract(o.body, '$.ts_ms') = r.ts_ms"
                )
            ]
            stored = count_readings(db)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        commit_count = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("storeedge_batch_commit_seconds_count")
        )
        commit_sum = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("storeedge_batch_commit_seconds_sum")
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    elapsed = done - started
    return {
        "messages": stored,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(stored / elapsed, 1),
        "latency_p50_ms": round(pct(lat, 0.5) * 1000, 2),
        "latency_p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "batches": int(commit_count),
        "mean_batch": round(stored / commit_count, 1) if commit_count else 0,
        "mean_commit_ms": round(commit_sum / commit_count * 1000, 2) if commit_count else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run that only checks the benchmark works"
    )
    parser.add_argument("--messages", type=int)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    total = args.messages or (300 if args.smoke else 5000 if args.quick else 20_000)
    steady_s = 1 if args.smoke else 5 if args.quick else 10
    rows = []
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-") as tmp:
        root = Path(tmp)
        scenarios = [("flood", None, total), ("steady 1000/s", 1000.0, 1000 * steady_s)]
        for name, rate, n in scenarios:
            with MosquittoBroker(root / f"broker-ceiling-{len(rows)}") as broker:
                ceiling = measure_ceiling(broker, n, args.publishers, rate)
            with MosquittoBroker(root / f"broker-edge-{len(rows)}") as broker:
                work = root / f"edge-{len(rows)}"
                work.mkdir()
                edge = measure_storeedge(broker, work, n, args.publishers, rate)
            rows.append(
                {
                    "scenario": name,
                    "ceiling": ceiling,
                    "storeedge": edge,
                    "ratio_rate": round(edge["rate_per_s"] / ceiling["rate_per_s"], 3),
                }
            )
    print(f"{'scenario':<15} {'path':<10} {'msgs':>7} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8}  notes")
    for row in rows:
        for path in ("ceiling", "storeedge"):
            r = row[path]
            notes = (
                f"{r['batches']} batches, mean {r['mean_batch']}/batch, commit {r['mean_commit_ms']} ms"
                if path == "storeedge"
                else "bare subscriber, auto-ack"
            )
            print(
                f"{row['scenario']:<15} {path:<10} {r['messages']:>7} {r['rate_per_s']:>9.0f} {r['latency_p50_ms']:>8.1f} {r['latency_p99_ms']:>8.1f}  {notes}"
            )
        print(f"{'':<15} {'ratio':<10} {'':>7} {row['ratio_rate']:>9.2f}  storeedge / ceiling")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "publishers": args.publishers,
        "rows": rows,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
