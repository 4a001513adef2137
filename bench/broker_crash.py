"""Broker crash benchmark: what each mosquitto autosave setting costs, and what a kill -9 of it loses.

mosquitto keeps its state in memory and writes the whole database to disk (`mosquitto.db.new`, fsync,
rename) when an autosave is due: every `autosave_interval` seconds, or with `autosave_on_changes true`
once `autosave_interval` "changes" have happened (a subscriber's PUBACK, a message queued for an
offline or busy client, a retained message, a subscription, a persistent client connecting). The check
runs once per turn of its event loop, after the turn's packets are handled. A kill -9 loses what the
broker acknowledged to publishers since the last save and had not delivered yet.

For each setting, in this run, on this machine:

  rate, live     a paho publisher floods N QoS 1 messages as fast as it can; a bare paho subscriber
                 (persistent session) takes them: messages/s acknowledged to the publisher
  rate, backlog  the subscriber is offline and B messages are already queued for it (a daemon restart
                 during a busy hour): each save writes the whole backlog
  lost on kill   the real daemon (`storeedge run`) ingests a steady stream, keeping up ("steady") or
                 SIGSTOPped for the last second ("stalled": the broker queues for it, as when the
                 daemon restarts or its disk is slow); mosquitto is killed -9 mid-
                 stream and restarted on the same persistence; the daemon reconnects and takes what the
                 broker still has. Lost = acknowledged to the publisher, never stored by the daemon.

Rates are reported as a ratio to the default config (autosave every 1800 s) measured in the same run:
the machine is noisy. Prints a table, writes JSON to bench/results/broker_crash.json. Not a test:
nothing here asserts a speed.

    python bench/broker_crash.py            # full: 20,000-message floods, 20,000 backlog, 3 kills each
    python bench/broker_crash.py --quick    # 5,000 messages, 5,000 backlog, 1 kill each (~6 min)
    python bench/broker_crash.py --smoke    # tiny, two settings: checks the benchmark works
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.daemon_process import start_daemon  # noqa: E402
from edge.demo.broker import MosquittoBroker, find_mosquitto, free_port  # noqa: E402

SHELVES = [f"A{a}-{s}" for a in (1, 2, 3, 4, 5, 7, 8) for s in range(1, 6)]
TOPIC_FILTER = "store/demo/shelf/+/weight"
DEFAULT = "default (1800 s)"


@dataclass(frozen=True)
class Setting:
    name: str
    autosave: str  # the lines that replace edge.demo.broker.RECOMMENDED_AUTOSAVE


SETTINGS = [
    Setting(DEFAULT, "autosave_interval 1800\n"),
    Setting("every 1 s", "autosave_interval 1\n"),
    Setting("1000 changes", "autosave_on_changes true\nautosave_interval 1000\n"),
    Setting("100 changes", "autosave_on_changes true\nautosave_interval 100\n"),
    Setting("10 changes", "autosave_on_changes true\nautosave_interval 10\n"),
    Setting("1 change", "autosave_on_changes true\nautosave_interval 1\n"),
]


def message(n: int, base_ts: int) -> tuple[str, bytes]:
    shelf = SHELVES[n % len(SHELVES)]
    seq = n // len(SHELVES) + 1
    return f"store/demo/shelf/{shelf}/weight", json.dumps(
        {"ts": base_ts + n, "seq": seq, "grams": 1000.0}
    ).encode()


def key(n: int) -> tuple[str, int]:
    return f"shelf-{SHELVES[n % len(SHELVES)]}", n // len(SHELVES) + 1


def publisher_client(port: int, name: str) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    return client


def flood(port: int, count: int, first: int = 0) -> float:
    """Publish ``count`` messages as fast as paho takes them; seconds until the last PUBACK."""
    client = publisher_client(port, "bench-flood")
    client.loop_start()
    base_ts = int(time.time() * 1000)
    started = time.perf_counter()
    infos = [client.publish(*message(n, base_ts), qos=1) for n in range(first, first + count)]
    for info in infos:
        info.wait_for_publish(timeout=300)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    if not all(info.is_published() for info in infos):
        raise SystemExit("flood: the broker did not acknowledge every message within 300 s")
    return elapsed


# -- a bare subscriber with a persistent session, in its own process ----------------------------------


def bare_subscriber(port: int, ready: mp.Event, stop: mp.Event) -> None:  # type: ignore[valid-type]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-sub", clean_session=False)
    client.on_connect = lambda c, *_: c.subscribe(TOPIC_FILTER, qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop.wait()
    client.loop_stop()
    client.disconnect()


def make_session(port: int) -> None:
    """Create the subscriber's persistent session, then leave: messages queue for it from now on."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-sub", clean_session=False)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(TOPIC_FILTER, qos=1)
    subscribed.wait(10)
    client.loop_stop()
    client.disconnect()


def rate_live(root: Path, setting: Setting, count: int) -> float:
    with MosquittoBroker(root, autosave=setting.autosave) as broker:
        ctx = mp.get_context("spawn")  # never fork a process that may run threads
        ready, stop = ctx.Event(), ctx.Event()
        sub = ctx.Process(target=bare_subscriber, args=(broker.port, ready, stop))
        sub.start()
        ready.wait(10)
        try:
            elapsed = flood(broker.port, count)
        finally:
            stop.set()
            sub.join(10)
    return count / elapsed


def rate_backlog(root: Path, setting: Setting, backlog: int, count: int) -> tuple[float, int]:
    """Publish ``count`` more with ``backlog`` already queued for an offline subscriber."""
    port = free_port()
    # Fill the backlog with saving off (fast), stop cleanly (mosquitto saves on exit), then restart with
    # the setting under test on the same state.
    with MosquittoBroker(root, port=port, autosave="autosave_interval 0\n") as broker:
        make_session(broker.port)
        flood(broker.port, backlog)
    with MosquittoBroker(root, port=port, autosave=setting.autosave) as broker:
        elapsed = flood(broker.port, count, first=backlog)
    db_bytes = (root / "mosquitto-data" / "mosquitto.db").stat().st_size
    return count / elapsed, db_bytes


# -- the crash: the real daemon as the subscriber --------------------------------------------------------


def stored_keys(db: Path) -> set[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return {
            (d, s) for d, s in conn.execute("SELECT device, seq FROM readings WHERE kind = 'shelf_weight'")
        }


class SteadyPublisher(threading.Thread):
    """QoS 1 at ``rate`` msg/s until told to stop; remembers what the broker acknowledged."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.client = publisher_client(port, "bench-steady")
        self.rate = rate
        self.stop = threading.Event()
        self.infos: list[tuple[int, paho.MQTTMessageInfo]] = []

    def run(self) -> None:
        self.client.loop_start()
        base_ts = int(time.time() * 1000)
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # the broker is gone: stop() is on its way
                self.infos.append((n, self.client.publish(*message(n, base_ts), qos=1)))
            n += 1
            if self.rate:
                next_at += 1.0 / self.rate
                time.sleep(max(0.0, next_at - time.monotonic()))
            elif n % 200 == 0:
                time.sleep(0)  # flat out, but let paho's network thread run

    def acked(self) -> set[tuple[str, int]]:
        return {key(n) for n, info in self.infos if _published(info)}


def _published(info: paho.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # never sent: the connection was already gone
        return False


def crash_once(
    root: Path, setting: Setting, rate: float, kill_after_s: float, stall_s: float
) -> dict[str, float]:
    port = free_port()
    broker = MosquittoBroker(root / "broker", port=port, autosave=setting.autosave)
    broker.start()
    daemon, db, _ = start_daemon(
        root,
        port,
        {
            "mqtt": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
            "thresholds": {"silent_after_periods": 1e6},
        },
    )
    try:
        time.sleep(0.5)
        broker.save_now()  # the daemon's session is old news in a store: on disk before the stream
        time.sleep(0.5)
        publisher = SteadyPublisher(port, rate)
        started = time.monotonic()
        publisher.start()
        time.sleep(kill_after_s - stall_s)
        if stall_s:
            daemon.send_signal(signal.SIGSTOP)  # a stalled daemon (slow disk): the broker queues for it
            time.sleep(stall_s)
        broker.kill()
        killed_at = time.monotonic()
        daemon.send_signal(signal.SIGCONT)
        publisher.stop.set()
        publisher.join(5)
        publisher.client.loop_stop()  # no reconnect: what it was told before the kill is what counts
        acked = publisher.acked()
        acked_rate = len(acked) / (killed_at - started)
        time.sleep(0.5)
        broker.start()
        # Wait until the daemon has taken everything the restarted broker still had.
        deadline, last_change, seen = time.monotonic() + 60, time.monotonic(), -1
        while time.monotonic() < deadline and time.monotonic() - last_change < 3.0:
            have = len(stored_keys(db))
            if have != seen:
                seen, last_change = have, time.monotonic()
            if acked <= stored_keys(db) and time.monotonic() - killed_at > 3.0:
                break
            time.sleep(0.2)
        stored = stored_keys(db)
    finally:
        daemon.kill()
        daemon.wait()
        broker.stop()
    lost = len(acked - stored)
    return {
        "acked": len(acked),
        "stored": len(stored & acked),
        "lost": lost,
        "acked_per_s": round(acked_rate, 1),
        "lost_ms_of_traffic": round(lost / acked_rate * 1000, 1) if acked_rate else 0.0,
    }


def mosquitto_version() -> str:
    out = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run that only checks the benchmark works"
    )
    parser.add_argument("--messages", type=int, help="messages per flood")
    parser.add_argument("--backlog", type=int, help="messages queued for the offline subscriber")
    parser.add_argument("--kills", type=int, help="kill -9 runs per setting")
    parser.add_argument(
        "--rate", type=float, default=800.0, help="steady msg/s during a kill run (the daemon keeps up)"
    )
    parser.add_argument(
        "--stall-s",
        type=float,
        default=1.0,
        help="the stalled kill runs SIGSTOP the daemon this long before the kill: the broker queues for it",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "broker_crash.json")
    args = parser.parse_args()
    count = args.messages or (300 if args.smoke else 5000 if args.quick else 20_000)
    backlog = args.backlog or (300 if args.smoke else 5000 if args.quick else 20_000)
    kills = args.kills or (1 if args.smoke or args.quick else 3)
    # The smoke run only checks that the machinery works: one stalled kill per setting.
    scenarios = [("steady", 0.0), ("stalled", args.stall_s)][1 if args.smoke else 0 :]
    more = min(count, 2000)  # published on top of the backlog (each save there writes the whole backlog)
    settings = [SETTINGS[0], SETTINGS[-1]] if args.smoke else SETTINGS
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-broker-") as tmp:
        root = Path(tmp)
        for index, setting in enumerate(settings):
            live = rate_live(root / f"live-{index}", setting, count)
            queued, db_bytes = rate_backlog(root / f"backlog-{index}", setting, backlog, more)
            crashes = {
                scenario: [
                    crash_once(
                        root / f"crash-{index}-{scenario}-{k}",
                        setting,
                        args.rate,
                        rng.uniform(2.0, 3.5),
                        stall,
                    )
                    for k in range(kills)
                ]
                for scenario, stall in scenarios
            }
            rows.append(
                {
                    "setting": setting.name,
                    "config": setting.autosave.strip().replace("\n", "; "),
                    "rate_live_per_s": round(live, 1),
                    "rate_backlog_per_s": round(queued, 1),
                    "backlog_db_bytes": db_bytes,
                    "kills": crashes,
                    "lost_max": {name: max(c["lost"] for c in runs) for name, runs in crashes.items()},
                }
            )
            print(f"  measured {setting.name}", file=sys.stderr, flush=True)
    base = rows[0]
    for row in rows:
        row["ratio_live"] = round(row["rate_live_per_s"] / base["rate_live_per_s"], 3)
        row["ratio_backlog"] = round(row["rate_backlog_per_s"] / base["rate_backlog_per_s"], 3)
    print(
        f"{'setting':<18} {'live msg/s':>10} {'ratio':>6} {'backlog msg/s':>13} {'ratio':>6}"
        f"  {'lost/acked on kill -9, steady':>30}  {'daemon stalled':>20}"
    )
    for row in rows:
        steady, flooded = (
            ", ".join(f"{c['lost']}/{c['acked']}" for c in row["kills"].get(name, []))
            for name in ("steady", "stalled")
        )
        print(
            f"{row['setting']:<18} {row['rate_live_per_s']:>10.0f} {row['ratio_live']:>6.2f}"
            f" {row['rate_backlog_per_s']:>13.0f} {row['ratio_backlog']:>6.2f}  {steady:>30}  {flooded:>20}"
        )
    print(
        f"(live: a flood of {count} with the subscriber connected; backlog: {backlog} queued for an offline"
        f" subscriber, then {more} more; kill -9 after 2-3.5 s of {args.rate:.0f} msg/s into the real"
        f" daemon, which keeps up (steady) or was stopped for the last {args.stall_s} s (stalled))"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mosquitto": mosquitto_version(),
        "messages": count,
        "backlog": backlog,
        "published_on_backlog": more,
        "steady_rate_per_s": args.rate,
        "stall_s": args.stall_s,
        "rows": rows,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
