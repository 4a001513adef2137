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
         "--refresh", "1", "--speed", "600"],
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
    text = "".join(rest)
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
