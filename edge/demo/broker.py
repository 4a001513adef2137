"""A mosquitto broker run as a child process on a free loopback port (demo, tests, benchmarks).

The generated config is the one storeedge recommends to store IT (docs/mosquitto.conf), in particular
``max_queued_messages 0``: mosquitto's default of 1000 silently drops QoS 1 messages queued for a slow
or offline subscriber, which would break "nothing acknowledged is lost"; and a larger
``max_inflight_messages`` so the daemon's commit-then-ack batches are not capped at 20 messages.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from edge.errors import EdgeError

# How often mosquitto writes its in-memory state to disk: a kill -9 of the broker loses what it
# acknowledged since the last save and had not delivered to the daemon. Every second (in practice ~2 s:
# mosquitto compares whole seconds) costs nothing measurable; `autosave_on_changes` does not close the
# window for a stalled daemon and costs up to 99% of throughput with a backlog (bench/broker_crash.py,
# docs/mosquitto.conf). Purchases are made certain by till receipts instead (edge/ingest/receipts.py).
RECOMMENDED_AUTOSAVE = """\
autosave_interval 1
"""

RECOMMENDED_SETTINGS = f"""\
# Never drop QoS 1 messages queued for a subscriber (the default, 1000, drops silently).
max_queued_messages 0
# Unacknowledged QoS 1 messages in flight to one client: the daemon acks a batch after its commit.
max_inflight_messages 1000
# Send each message at once: with Nagle's algorithm the next one waits for the TCP ack of the last,
# which the daemon's kernel delays until the daemon sends its MQTT acks (after the commit).
set_tcp_nodelay true
# Keep queued messages and sessions across a broker restart.
persistence true
{RECOMMENDED_AUTOSAVE}"""


class BrokerError(EdgeError):
    pass


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if found is None:
        raise BrokerError("mosquitto not found: install it with `apt-get install mosquitto` (make does this)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class MosquittoBroker:
    """``with MosquittoBroker(workdir) as broker: broker.port``. Restartable on the same port and state.

    ``autosave`` replaces the recommended autosave lines (bench/broker_crash.py compares settings).
    """

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    extra_config: str = ""
    autosave: str = RECOMMENDED_AUTOSAVE

    def __post_init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        if not self.port:
            self.port = free_port(self.host)

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        persistence = self.workdir / "mosquitto-data"
        persistence.mkdir(exist_ok=True)
        self.config_path.write_text(
            # Run as whoever we are: started as root, mosquitto would drop to a `mosquitto` user that
            # cannot write our temporary persistence and log files.
            f"user {getpass.getuser()}\nlistener {self.port} {self.host}\nallow_anonymous true\n"
            f"{RECOMMENDED_SETTINGS.replace(RECOMMENDED_AUTOSAVE, self.autosave)}"
            f"persistence_location {persistence}/\nlog_dest file {self.workdir / 'mosquitto.log'}\n"
            f"{self.extra_config}"
        )
        self._process = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "mosquitto.stderr").open("ab"),
            start_new_session=True,  # Ctrl-C at a terminal must not stop it before the daemons using it
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self._process.returncode}; see {self.workdir / 'mosquitto.log'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within 10 s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def save_now(self) -> None:
        """Ask mosquitto to write its in-memory state to disk now (SIGUSR1)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        """Stop without a chance to save state (for crash tests)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
