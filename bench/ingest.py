"""Ingest benchmark: MQTT messages through mosquitto into committed SQLite rows.

Compares, on this machine in this run:
  ceiling   a bare paho subscriber that does nothing (the transport's ceiling)
  storeedge the real daemon (`storeedge run`), acks after commit, synchronous=FULL
for two workloads from P QoS 1 publisher processes:
  flood     one topic shape: shelf weights of a constant 1 kg
  mix       the realistic mix: shelf weights and events, fridge, footfall and till baskets in the
            demo store's proportions, in the simulators' wire format (bench/ingest_mix.py)
each at full speed (rate) and as a steady 1,000 msg/s stream (latency). Prints a table, writes JSON to
bench/results/ingest.json. Not a test: nothing here asserts a speed.

Committed means visible to a reader: a watcher thread polls ``max(readings.id)`` every 2 ms, and a
reading's publish-to-commit latency is the first poll that saw its row minus its ``ts`` (the publish
time). For full-speed runs it also reports the rate the broker acknowledged the publishers at, the rate
committed while they were publishing, the backlog (acknowledged by the broker, not committed) at its
peak and how long it took to drain after the last publish.

    python bench/ingest.py            # full: 20,000 messages, 4 publishers, 10 s steady
    python bench/ingest.py --quick    # a smaller run
    python bench/ingest.py --repeats 3   # three ceiling/storeedge pairs per scenario, median ratio
    python bench/ingest.py --only mix --profile /tmp/prof   # py-spy the daemon (raw stacks per run)
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemon_process import start_daemon  # noqa: E402
from bench.ingest_mix import STORE, MixSource, flood_message  # noqa: E402
from bench.stats import pct  # noqa: E402
from edge.demo.broker import MosquittoBroker  # noqa: E402

SHELVES = [f"A{a}-{s}" for a in (1, 2, 3, 4, 5, 7, 8) for s in range(1, 6)]
POLL_S = 0.002
# Spawned, not forked: this process runs a commit-watcher thread while it starts publishers, and a
# child forked from a threaded parent can inherit a lock held mid-operation (a publisher hung in
# paho's publish() in ~1 run in 3 on a loaded box).
MP = mp.get_context("spawn")


def publisher(
    port: int, index: int, count: int, publishers: int, rate: float | None, workload: str,
    connected: mp.Queue, ready: mp.Event, acks: mp.Queue,  # type: ignore[valid-type]
) -> None:  # fmt: skip
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked: list[float] = []
    infos: list[paho.MQTTMessageInfo] = []
    # Ack times from a watcher thread, not from on_publish: paho 2 can deadlock a publish() against
    # an on_publish callback (seen here once in ~20 runs).
    watcher = threading.Thread(target=watch_acks, args=(infos, count, acked), daemon=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    mix = MixSource(index, publishers) if workload == "mix" else None
    connected.put(index)
    ready.wait()
    watcher.start()
    interval = 1.0 / rate if rate else 0.0
    next_at = time.monotonic()
    for k in range(count):
        topic, body = mix.next() if mix else flood_message(index, index + k * publishers, SHELVES)
        infos.append(client.publish(topic, body, qos=1))
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    watcher.join(timeout=600)
    client.loop_stop()
    client.disconnect()
    acks.put(acked)


def watch_acks(infos: list[paho.MQTTMessageInfo], count: int, acked: list[float]) -> None:
    """Record when each publish was acknowledged by the broker (QoS 1 acks come in order), polling."""
    done = 0
    while done < count:
        while done < len(infos) and infos[done].is_published():
            acked.append(time.time())
            done += 1
        time.sleep(0.002)


def bare_subscriber(port: int, expected: int, result: mp.Queue, subscribed: mp.Event) -> None:  # type: ignore[valid-type]
    latencies: list[float] = []
    state = {"last": 0.0}

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        now = time.time()
        body = json.loads(msg.payload)
        latencies.append(now - (body["t"] if "t" in body else body["ts"] / 1000))
        state["last"] = time.time()
        if len(latencies) >= expected:
            client.disconnect()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(f"store/{STORE}/#", qos=1)
    client.loop_forever(timeout=0.1)
    result.put((len(latencies), state["last"], latencies))


def run_publishers(
    port: int, total: int, publishers: int, rate: float | None, workload: str
) -> tuple[float, list[float]]:
    """Publish ``total`` messages; returns (wall-clock start, sorted broker-ack times)."""
    connected, ready, acks = MP.Queue(), MP.Event(), MP.Queue()
    per = total // publishers
    each = rate / publishers if rate else None
    procs = [
        MP.Process(
            target=publisher,
            args=(port, i, per, publishers, each, workload, connected, ready, acks),
        )
        for i in range(publishers)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every publisher connected (and its planogram loaded) before the clock starts
        connected.get(timeout=120)
    time.sleep(0.2)  # the connections' CONNACKs
    started = time.time()
    ready.set()
    acked = sorted(t for _ in procs for t in acks.get(timeout=300))
    for p in procs:
        p.join()
    return started, acked


def measure_ceiling(
    broker: MosquittoBroker, total: int, publishers: int, rate: float | None, workload: str
) -> dict[str, float]:
    result = MP.Queue()
    subscribed = MP.Event()
    expected = total // publishers * publishers
    sub = MP.Process(target=bare_subscriber, args=(broker.port, expected, result, subscribed))
    sub.start()
    subscribed.wait(60)
    started, _acked = run_publishers(broker.port, total, publishers, rate, workload)
    received, last, latencies = result.get(timeout=600)
    sub.join()
    elapsed = last - started
    return {
        "messages": received,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(received / elapsed, 1),
        "latency_p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "latency_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
    }


class CommitWatcher(threading.Thread):
    """Polls the committed row count (``max(readings.id)``: ids only grow, nothing is deleted here)."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.samples: list[tuple[float, int]] = []  # (wall clock, rows committed)
        self.stop = threading.Event()
        self._counts: list[int] = []

    def run(self) -> None:
        while not self.db.exists():
            time.sleep(POLL_S)
        conn = sqlite3.connect(self.db)
        while not self.stop.is_set():
            (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()
            self.samples.append((time.time(), int(top)))
            time.sleep(POLL_S)
        conn.close()

    def committed(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def seen_at(self, row_id: int) -> float:
        """When a poll first saw row ``row_id`` committed."""
        if len(self._counts) != len(self.samples):
            self._counts = [c for _, c in self.samples]
        return self.samples[bisect.bisect_left(self._counts, row_id)][0]


def metric(metrics: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))


def measure_storeedge(
    broker: MosquittoBroker, workdir: Path, total: int, publishers: int, rate: float | None,
    workload: str, profile: Path | None, overrides: dict[str, dict[str, object]],
) -> dict[str, float]:  # fmt: skip
    proc, db, http_port = start_daemon(workdir, broker.port, overrides)
    spy = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"{workdir.name}.txt"
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid), "--format", "raw",
             "--rate", "250", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
    watcher = CommitWatcher(db)
    watcher.start()
    expected = total // publishers * publishers
    try:
        started, acked = run_publishers(broker.port, total, publishers, rate, workload)
        published = acked[-1]
        deadline = time.monotonic() + 600
        while watcher.committed() < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        watcher.stop.set()
        watcher.join()
        done = watcher.seen_at(expected)  # not now: the publishers take up to 1 s to disconnect
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT id, ts_ms FROM readings").fetchall()
        lat = [watcher.seen_at(row_id) - ts_ms / 1000 for row_id, ts_ms in rows]
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        commit_count = metric(metrics, "storeedge_batch_commit_seconds_count")
        commit_sum = metric(metrics, "storeedge_batch_commit_seconds_sum")
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        proc.terminate()
        proc.wait(timeout=15)
    stored = len(rows)
    # The backlog: acknowledged to a publisher by the broker, not yet committed by the daemon.
    backlog = [bisect.bisect_right(acked, t) - n for t, n in watcher.samples]
    committed_by_last_publish = max((n for t, n in watcher.samples if t <= published), default=0)
    elapsed = done - started
    return {
        "messages": stored,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(stored / elapsed, 1),
        "acked_rate_per_s": round(len(acked) / (published - started), 1),
        "committed_while_publishing_per_s": round(committed_by_last_publish / (published - started), 1),
        "backlog_peak": max(backlog, default=0),
        "drain_s": round(max(0.0, done - published), 2),
        "latency_p50_ms": round(pct(lat, 0.5) * 1000, 2),
        "latency_p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "batches": int(commit_count),
        "mean_batch": round(stored / commit_count, 1) if commit_count else 0,
        "mean_commit_ms": round(commit_sum / commit_count * 1000, 2) if commit_count else 0,
    }


def measure_pair(
    root: Path, index: int, name: str, rate: float | None, n: int, workload: str,
    args: argparse.Namespace, overrides: dict[str, dict[str, object]], *, edge_first: bool,
) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """(ceiling, storeedge) for one scenario, each on its own fresh broker."""

    def ceiling_run() -> dict[str, float]:
        with MosquittoBroker(root / f"broker-ceiling-{index}") as broker:
            return measure_ceiling(broker, n, args.publishers, rate, workload)

    def edge_run() -> dict[str, float]:
        with MosquittoBroker(root / f"broker-edge-{index}") as broker:
            work = root / f"edge-{index}-{name.replace(' ', '-').replace('/', '')}"
            work.mkdir()
            return measure_storeedge(
                broker, work, n, args.publishers, rate, workload, args.profile, overrides
            )

    if edge_first:
        edge = edge_run()
        return ceiling_run(), edge
    ceiling = ceiling_run()
    return ceiling, edge_run()


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"{'scenario':<16} {'path':<10} {'msgs':>7} {'rate/s':>8} {'p50 ms':>8} {'p99 ms':>8}  notes")
    for row in rows:
        for path in ("ceiling", "storeedge"):
            r: dict[str, float] = row[path]  # type: ignore[assignment]
            notes = (
                f"acked {r['acked_rate_per_s']:.0f}/s, committed {r['committed_while_publishing_per_s']:.0f}/s"
                f" while publishing, backlog peak {r['backlog_peak']}, drain {r['drain_s']} s;"
                f" {r['batches']} batches of {r['mean_batch']}, commit {r['mean_commit_ms']} ms"
                if path == "storeedge"
                else "bare subscriber, auto-ack"
            )
            print(
                f"{row['scenario']:<16} {path:<10} {r['messages']:>7} {r['rate_per_s']:>8.0f}"
                f" {r['latency_p50_ms']:>8.1f} {r['latency_p99_ms']:>8.1f}  {notes}"
            )
        print(f"{'':<16} {'ratio':<10} {'':>7} {row['ratio_rate']:>8.2f}  storeedge / ceiling")


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
    parser.add_argument("--only", choices=("flood", "mix"), help="one workload only")
    parser.add_argument("--steady-only", action="store_true", help="only the 1,000 msg/s runs")
    parser.add_argument("--batch-wait-ms", type=float, help="the daemon's [database] batch_wait_ms")
    parser.add_argument("--profile", type=Path, help="py-spy the daemon; raw stacks into this directory")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="ceiling/storeedge pairs per scenario, alternating (median ratio)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    total = args.messages or (300 if args.smoke else 5000 if args.quick else 20_000)
    steady_s = 1 if args.smoke else 5 if args.quick else 10
    workloads = [args.only] if args.only else ["flood", "mix"]
    overrides: dict[str, dict[str, object]] = (
        {"database": {"batch_wait_ms": args.batch_wait_ms}} if args.batch_wait_ms is not None else {}
    )
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-") as tmp:
        root = Path(tmp)
        for workload in workloads:
            runs = [(f"{workload}", None, total), (f"{workload} 1000/s", 1000.0, 1000 * steady_s)]
            for (name, rate, n), repeat in itertools.product(
                runs[1:] if args.steady_only else runs, range(args.repeats)
            ):
                # Repeats alternate which path runs first, so drift on a shared box falls on both.
                ceiling, edge = measure_pair(
                    root, len(rows), name, rate, n, workload, args, overrides, edge_first=repeat % 2 == 1
                )
                rows.append(
                    {
                        "scenario": name,
                        "repeat": repeat,
                        "ceiling": ceiling,
                        "storeedge": edge,
                        "ratio_rate": round(edge["rate_per_s"] / ceiling["rate_per_s"], 3),
                    }
                )
    print_table(rows)
    medians = {
        scenario: statistics.median(r["ratio_rate"] for r in rows if r["scenario"] == scenario)  # type: ignore[misc]
        for scenario in dict.fromkeys(str(r["scenario"]) for r in rows)
    }
    if args.repeats > 1:
        print(
            "\nmedian ratio over "
            + f"{args.repeats} pairs: "
            + ", ".join(f"{k} {v:.2f}" for k, v in medians.items())
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "publishers": args.publishers,
        "daemon_overrides": overrides,
        "repeats": args.repeats,
        "median_ratio": medians,
        "rows": rows,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nload average {os.getloadavg()}; wrote {args.out}")


if __name__ == "__main__":
    main()
