"""Long `storeedge models` commands show progress on a terminal (stderr, a real pseudo-terminal) and
nothing anywhere else: not when stderr is a pipe, not with --json, never on stdout."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from models.pipeline import Provenance, export_models
from models.progress import NoProgress, progress_for
from tests.conftest import write_config

from .conftest import Trained

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# The smallest simulated run the cutoff checks accept: 16 weeks before the cutoff, 14+ days after it.
SMALL = [
    "--source",
    "simulated",
    "--cutoff",
    "2024-04-26",
    "--sim-households",
    "40",
    "--sim-days",
    "140",
]
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
TIMING = re.compile(rb'\n  "timing_seconds": \{[^}]*\},?')


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}}
    env["TERM"] = "xterm-256color"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _storeedge(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def _piped(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, capture_output=True, stdin=subprocess.DEVNULL, env=_env(), cwd=ROOT, timeout=240, check=False
    )


def _stderr_on_a_terminal(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with stderr on a pseudo-terminal (120x40) and stdout on a pipe."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL, env=_env(), cwd=ROOT
        )
    finally:
        os.close(follower)
    stdout, _ = proc.communicate(timeout=240)
    reader.join(timeout=10)
    os.close(leader)
    return proc.returncode, stdout, bytes(seen)


def _text(terminal: bytes) -> str:
    return ANSI.sub(b"", terminal).decode("utf-8", "replace")


def test_not_a_terminal_means_no_progress() -> None:
    assert isinstance(progress_for(), NoProgress)  # pytest captures stderr: not a terminal
    done = _piped(_storeedge("models", "evaluate", *SMALL))
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert b"GP-TopFreq" in done.stdout


def test_a_terminal_shows_each_stage() -> None:
    code, stdout, terminal = _stderr_on_a_terminal(_storeedge("models", "evaluate", *SMALL))
    assert code == 0, _text(terminal)
    shown = _text(terminal)
    for stage in (
        "loading simulated",
        "next purchase: training rows (snapshots)",
        "next purchase: fitting",
        "next basket: fitting",
        "shelf depletion: fitting",
        "evaluating next purchase",
        "evaluating next basket, rolling",
        "evaluating shelf depletion",
    ):
        assert stage in shown, f"{stage!r} not on the terminal:\n{shown}"
    assert "2/2" in shown  # a bar per training set: one step per snapshot
    assert b"\x1b" not in stdout  # the report on stdout stays plain
    assert b"GP-TopFreq" in stdout


def test_quiet_on_a_terminal_shows_nothing() -> None:
    code, stdout, terminal = _stderr_on_a_terminal(_storeedge("models", "evaluate", *SMALL, "--quiet"))
    assert code == 0
    assert terminal == b""
    assert b"GP-TopFreq" in stdout


@pytest.fixture(scope="module")
def json_without_terminal() -> bytes:
    done = _piped(_storeedge("models", "evaluate", *SMALL, "--json"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    return done.stdout


def test_json_is_the_same_on_a_terminal(json_without_terminal: bytes) -> None:
    code, stdout, terminal = _stderr_on_a_terminal(_storeedge("models", "evaluate", *SMALL, "--json"))
    assert code == 0, _text(terminal)
    assert terminal == b""  # --json: no progress even on a terminal
    # Byte for byte, except the measured seconds (they differ between any two runs).
    assert TIMING.search(stdout)
    assert TIMING.search(json_without_terminal)
    assert TIMING.sub(b"", stdout) == TIMING.sub(b"", json_without_terminal)
    assert set(json.loads(stdout)) == set(json.loads(json_without_terminal))


class Recording:
    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []

    def stage(self, name: str, total: int | None = None) -> None:
        self.events.append((name, total))

    def advance(self, steps: int = 1) -> None:
        self.events.append(("+", steps))

    def done(self) -> None:
        self.events.append(("done", None))


def test_export_advances_once_per_model(trained: Trained, tmp_path: Path) -> None:
    """(Training a CLI run big enough for the ONNX parity check takes longer than these tests may.)"""
    progress = Recording()
    history = trained.history
    export_models(
        trained.models,
        trained.report,
        tmp_path,
        Provenance("small.npz", trained.cutoff, 0, history.sha256()),
        history,
        trained.stream,
        progress,
    )
    assert progress.events == [("exporting models", 3), ("+", 1), ("+", 1), ("+", 1)]


def test_seed_shows_its_stages_on_a_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, store={"timezone": "UTC"})
    code, stdout, terminal = _stderr_on_a_terminal(
        _storeedge("models", "seed", "--config", str(config), "--households", "20", "--weeks", "2")
    )
    shown = _text(terminal)
    assert code == 0, shown
    assert "simulating 20 households for 2 weeks" in shown
    assert "writing baskets" in shown
    assert stdout.startswith(b"seeded ")
