"""`storeedge demo --stores 3 --central` end to end: a throwaway PostgreSQL, one broker, three daemons and
their simulators as processes, central in the demo's process; then SIGTERM, and nothing may be left."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from edge.cli import main
from edge.config import load_config, parse_config
from edge.demo import postgres
from edge.demo.chain import Chain, ChainStore, central_toml, store_config
from edge.demo.service import REPO_EXAMPLE
from edge.demo.sim_clock import SimulatedNow, SimulatedTime
from edge.predictions.clock import StoreClock
from sync.central_config import load_central_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _processes_naming(*needles: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(pid) != os.getpid() and any(n in cmdline for n in needles):
            found.append(f"{pid}: {cmdline[:160]}")
    return found


async def _changes_per_store(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch("SELECT store, count(*) AS n FROM changes GROUP BY store ORDER BY store")
        )
    finally:
        await conn.close()


def _get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def test_chain_demo_brings_three_stores_to_central_and_leaves_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "chain"
    started = time.monotonic()
    stderr = (tmp_path / "stderr").open("w")  # the child's own copy stays open; ours is closed below
    demo = subprocess.Popen(
        [sys.executable, "-m", "edge", "demo", "--stores", "3", "--central", "--workdir", str(workdir),
         "--refresh", "1", "--speed", "600", "--no-learning"],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO,
    )  # fmt: skip
    stderr.close()
    out = _lines(demo.stdout)
    printed: list[str] = []
    try:
        while not any(line.lstrip().startswith("stop") for line in printed):
            line = out.get(timeout=max(0.1, 60 - (time.monotonic() - started)))
            assert line, (
                "the demo ended before it printed its banner: "
                + "".join(printed)
                + (tmp_path / "stderr").read_text()
            )
            printed.append(line)
        banner = "".join(printed)
        status_url = re.search(r"central status +(\S+)", banner)
        dsn = re.search(r"central database +(\S+)", banner)
        pg_dir = re.search(r"throwaway cluster in (\S+),", banner)
        staff = re.findall(
            r"(store-\d) +staff API (\S+)/api/v1/summary +\(Authorization: Bearer (\S+);", banner
        )
        assert status_url, banner
        assert dsn, banner
        assert pg_dir, banner
        assert re.search(r"operations page +http://127\.0\.0\.1:\d+/\n", banner), banner
        assert [s[0] for s in staff] == ["store-1", "store-2", "store-3"], banner

        # central's status shows every store with changes, and its PostgreSQL holds them
        while True:
            stores = _get_json(status_url[1])["stores"]
            if all(s["changes"] > 0 for s in stores):
                break
            assert time.monotonic() - started < 60, stores
            time.sleep(0.3)
        assert {s["state"] for s in stores} <= {"in_sync", "catching_up"}, stores
        rows = asyncio.run(_changes_per_store(dsn[1]))
        assert [r["store"] for r in rows] == ["store-1", "store-2", "store-3"]
        assert all(r["n"] > 0 for r in rows)
        for _store, url, token in staff:  # the printed staff API and token work
            assert _get_json(f"{url}/api/v1/summary", token)["readings"] >= 0
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    rest = []
    while line := out.get(timeout=5):
        rest.append(line)
    text = "\n" + "".join(rest)  # the summary may come right after the last learning line
    assert demo.returncode == 0, text[-3000:] + (tmp_path / "stderr").read_text()[-3000:]
    summary = json.loads(text[text.index("\n{") + 1 :])
    assert summary["postgres_removed"] is True
    assert [s["daemon_exit_code"] for s in summary["stores"]] == [0, 0, 0]
    assert all(s["changes"] > 0 for s in summary["stores"])
    assert not Path(pg_dir[1]).exists()
    assert not _processes_naming(pg_dir[1], str(workdir)), "left running"
    for store in ("store-1", "store-2", "store-3"):
        log = (workdir / store / "daemon.log").read_text()
        assert "daemon_stopped" in log
        assert "Traceback" not in log


def _learning_lines(tmp_path: Path, until: str, timeout: float) -> tuple[list[str], dict[str, Any]]:
    """Run the chain demo with its learning loop (two stores) until it prints a learning line matching
    ``until`` (or the loop stops), then SIGTERM it: the learning lines and the JSON summary."""
    workdir = tmp_path / "chain"
    started = time.monotonic()
    stderr = (tmp_path / "stderr").open("w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "edge", "demo", "--stores", "2", "--central", "--workdir", str(workdir),
         "--refresh", "30"],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO,
    )  # fmt: skip
    stderr.close()
    out = _lines(demo.stdout)
    learning: list[str] = []
    try:
        while not learning or not re.search(until, learning[-1]):
            line = out.get(timeout=max(0.1, timeout - (time.monotonic() - started)))
            assert line, "the demo ended: " + "".join(learning) + (tmp_path / "stderr").read_text()[-3000:]
            if line.startswith("learning: "):
                learning.append(line.strip())
                assert "learning loop stopped" not in line, learning
                assert "learning loop failed" not in line, learning
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    rest = []
    while line := out.get(timeout=5):
        rest.append(line)
    text = "\n" + "".join(rest)  # the summary may come right after the last learning line
    assert demo.returncode == 0, text[-3000:] + (tmp_path / "stderr").read_text()[-3000:]
    summary = json.loads(text[text.index("\n{") + 1 :])
    assert not _processes_naming(str(workdir)), "left running"
    return learning, summary


def _check_started(learning: list[str]) -> None:
    text = "\n".join(learning)
    assert re.search(r"\d+ simulated households shop at 2 stores: \d+ baskets", text), text
    assert re.search(r"central retrained on \d+ consenting households .* published experiment \S+", text), (
        text
    )
    served = [line for line in learning if " served: " in line]
    assert served, text
    # the first step on every store, as each store's staff API shows it, and on central's page
    assert re.search(
        r"store-1 step 0 at 10% .*store-2 step 0 at 10% .*on central's operations page", served[0]
    )
    # some lists come from the challenger on each store, most from the control
    for found in re.findall(r"\((\d+)/(\d+) lists from the challenger\)", served[0]):
        challenger, lists = map(int, found)
        assert 0 < challenger < lists / 4, served[0]


def test_chain_demo_starts_the_learning_loop_and_takes_a_step(tmp_path: Path) -> None:
    learning, summary = _learning_lines(tmp_path, r"central looks at .*: (advance|promote|rollback)", 900)
    _check_started(learning)
    assert re.search(r"advance -> step 1 \(25% challenger\)", learning[-1]), learning
    assert summary["learning"] == [line.removeprefix("learning: ") for line in learning]
    assert summary["learning_verdict"] is None


@pytest.mark.slow
def test_chain_demo_learning_loop_reaches_a_verdict_on_every_store(tmp_path: Path) -> None:
    learning, summary = _learning_lines(tmp_path, r"on every store; each serves", 1500)
    _check_started(learning)
    looks = [line for line in learning if "central looks at" in line]
    steps = [re.search(r"-> step (\d)", line)[1] for line in looks]  # type: ignore[index]
    assert sorted(set(steps)) == ["1", "2", "3"], looks
    # the shoppers follow the challenger's lists more closely: central promotes it
    assert "promote -> step 3 (100% challenger)" in looks[-1], looks
    assert re.search(
        r"promoted on every store; each serves the winner .*: store-1 \S+, store-2 \S+$", learning[-1]
    )
    assert summary["learning_verdict"] == "promote"


def test_stores_without_central_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--stores", "3"]) == 2
    assert "--stores needs --central" in capsys.readouterr().err


def test_missing_postgresql_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("glob.glob", lambda _pattern: [])
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(postgres.ClusterError, match="make postgresql"):
        postgres.pg_bin("initdb")


def test_store_and_central_configs_are_valid(tmp_path: Path) -> None:
    base = load_config(REPO_EXAMPLE)
    chain = Chain(tmp_path, 8090)
    raws = []
    for n in (1, 2):
        store_dir = tmp_path / f"store-{n}"
        store_dir.mkdir()
        raw = store_config(
            base, store_dir, store_id=f"store-{n}", broker_port=1883, central_url=chain.central_url,
            public_key="ab" * 32, chain_key=Path("var/chain.key"),
        )  # fmt: skip
        config = parse_config(raw)
        assert config.privacy.pseudonym_key_file == str(Path("var/chain.key").resolve())  # from any folder
        assert config.store.id == f"store-{n}"
        assert config.mqtt.client_id == f"storeedge-store-{n}"
        assert config.sync.central_url == "http://127.0.0.1:8090"
        chain.stores.append(
            ChainStore(f"store-{n}", store_dir, store_dir / "x.toml", f"http://h:{n}", "t" * 16)
        )
        raws.append(raw)
    assert raws[0]["sync"]["token"] != raws[1]["sync"]["token"]
    assert raws[0]["http"]["staff_token"] != raws[1]["http"]["staff_token"]
    (tmp_path / "central.toml").write_text(central_toml(chain, "postgresql://u@127.0.0.1:5/db", raws))
    central = load_central_config(tmp_path / "central.toml")
    assert [(s.id, s.token) for s in central.stores] == [
        ("store-1", raws[0]["sync"]["token"]),
        ("store-2", raws[1]["sync"]["token"]),
    ]
    assert tomllib.loads((tmp_path / "central.toml").read_text())["central"]["port"] == 8090


def test_the_stores_clock_follows_the_demos_simulated_time(tmp_path: Path) -> None:
    path = tmp_path / "simulated-time"
    now = SimulatedNow(path)
    before = time.time()
    assert before <= now() <= time.time()  # no file yet: the real clock
    moment_ms = 1_790_000_000_000  # 2026-09-21
    for shift_ms in (0, 8 * 86_400_000, 9 * 86_400_000 + 3_600_000):  # the loop only moves forwards
        began = time.time()
        SimulatedTime(path).set(moment_ms + shift_ms)
        read = now() * 1000
        assert moment_ms + shift_ms <= read <= moment_ms + shift_ms + (time.time() - began) * 1000 + 1
        clock = StoreClock("UTC", now)
        assert clock.now_ms() // 86_400_000 == (moment_ms + shift_ms) // 86_400_000
