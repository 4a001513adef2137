"""`storeedge kiosk`: options, one-line errors, --serve, and the real command in a real terminal."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.demo.broker import MosquittoBroker
from kiosk.cli import daemon_address
from kiosk.serve import EXTERNAL_URL
from tests.conftest import REPO, run_daemon
from tests.kiosk.kiosk_daemon_kit import KIOSK_TOKEN, kiosk_config


def test_countdown_below_twenty_seconds_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kiosk", "--countdown", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "at least 20 s" in err


def test_unknown_language_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kiosk", "--language", "xx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--language xx: not one of de, en" in err


def test_missing_layout_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kiosk", "--layout", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("storeedge kiosk: error: --layout:")
    assert "Traceback" not in err


def test_daemon_config_gives_address_and_kiosk_token(tmp_path: Path) -> None:
    config = tmp_path / "storeedge.toml"
    config.write_text('[http]\nhost = "0.0.0.0"\nport = 8123\nstaff_token = "s"\nkiosk_token = "k"\n')
    assert daemon_address(config) == ("http://127.0.0.1:8123", "k")
    config.write_text("[store]\nid = 'x'\n")
    assert daemon_address(config) == ("http://127.0.0.1:8080", None)


def test_serve_runs_the_same_kiosk_per_browser_tab_without_the_token_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: dict[str, Any] = {}

    class FakeServer:
        def __init__(self, command: str, host: str, port: int, title: str, templates_path: Path) -> None:
            started.update(command=command, host=host, port=port, page=templates_path / "app_index.html")
            started["page_text"] = started["page"].read_text(encoding="utf-8")

        def serve(self) -> None:
            started["served"] = True

    import textual_serve.server

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    monkeypatch.delenv("STOREEDGE_KIOSK_TOKEN", raising=False)
    code = main(
        [
            "kiosk",
            "--api",
            "http://10.0.0.5:8080",
            "--token",
            "sekrit",
            "--serve",
            "--port",
            "8765",
            "--staff",
        ]
    )
    assert code == 0
    assert started["served"]
    assert started["port"] == 8765
    assert " -m edge kiosk --api http://10.0.0.5:8080" in started["command"]
    assert "--staff" in started["command"]
    assert "--serve" not in started["command"]
    assert "sekrit" not in started["command"]
    assert os.environ["STOREEDGE_KIOSK_TOKEN"] == "sekrit"
    assert "fonts.googleapis.com" not in started["page_text"]
    assert not started["page"].exists()  # the page's template folder goes when the server stops


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_page_makes_no_request_outside_the_kiosk_server() -> None:
    """Offline, as a store is: the page `--serve` sends has no URL but the kiosk server's own (no web
    font from the internet), and the font it names is served from there."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "kiosk", "--api", "http://127.0.0.1:9", "--serve",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    try:
        page = _get(f"http://127.0.0.1:{port}/", 30)
        assert "<html" in page
        assert EXTERNAL_URL.findall(page) == []
        assert not re.findall(r"https?://(?!(?:127\.0\.0\.1|localhost)[:/])", page)
        font = re.search(r'url\("(http://127\.0\.0\.1:\d+/static/fonts/RobotoMono-[^"]+\.ttf)"\)', page)
        assert font is not None, "the page names the font on the kiosk server"
        with urllib.request.urlopen(font.group(1), timeout=5) as response:
            assert response.status == 200
            assert len(response.read()) > 10_000
    finally:
        process.terminate()
        process.wait(10)


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not shown; got {seen[-600:]!r}")
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.05)
    return seen


@pytest.mark.integration
async def test_the_real_command_in_a_terminal_reconnects_when_the_daemon_comes_up(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    """No daemon yet: the kiosk says it is reconnecting (no traceback); then the daemon starts and the
    store's name appears; Ctrl+Q quits with status 0."""
    config = kiosk_config(tmp_path, broker)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.set_blocking(master, False)
    env = {**os.environ, "TERM": "xterm-256color", "STOREEDGE_KIOSK_TOKEN": KIOSK_TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "kiosk", "--config", str(config)],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        shown = await asyncio.to_thread(_read_until, master, b"Reconnecting", 30)
        assert b"Traceback" not in shown
        async with run_daemon(config):
            shown = await asyncio.to_thread(_read_until, master, b"Demo", 30)
            assert b"Traceback" not in shown
            os.write(master, b"\x11")  # Ctrl+Q
            assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
