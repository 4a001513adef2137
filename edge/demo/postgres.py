"""A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl on a free loopback port, removed at exit.

Central's database for `storeedge demo --central`, the tests (tests/pg_testkit.py re-exports this) and
the benchmarks. One fresh database per user with ``create_database`` (``CREATE DATABASE ... TEMPLATE
template0``: ~50 ms).

initdb refuses to run as root, which is how CI runs: then every server command runs as the ``postgres``
user the Debian package creates (``runuser -u postgres --``) and the cluster's directory is owned by it.
fsync stays on by default: the crash tests check durability.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from edge.demo.broker import free_port
from edge.errors import EdgeError

SUPERUSER = "storeedge"
INSTALL_HINT = "install PostgreSQL's server binaries with `make postgresql` (or apt-get install postgresql)"


class ClusterError(EdgeError, RuntimeError):
    """The throwaway cluster cannot be made, started or stopped. A RuntimeError too: that is what the
    tests' copy of this code raised, and callers may still catch it as one."""


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: Debian's own (under /usr/lib/postgresql/N/bin, newest first; the
    /usr/bin wrappers are for clusters Debian manages), else whatever PATH has."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = candidates[-1] if candidates else shutil.which(name)
    if found is None:
        raise ClusterError(f"{name} not found: {INSTALL_HINT}")
    return found


class PgCluster:
    """``with PgCluster() as pg: dsn = pg.create_database()``; ``pg.restart()`` for crash tests.

    The cluster lives in a new directory under ``parent`` (default: the system's temp dir); leaving the
    block stops the server (``immediate``: nothing in it is meant to outlive it) and removes the directory.
    """

    def __init__(self, *, fsync: bool = True, parent: Path | None = None) -> None:
        self.port = free_port()
        self.fsync = fsync
        self._as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="storeedge-pg-", dir=parent))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._started = False

    # -- commands ------------------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 60.0) -> None:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ClusterError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    def __enter__(self) -> PgCluster:
        try:
            self.create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()

    def create(self) -> None:
        """initdb and start the server (what entering the ``with`` block does)."""
        initdb = pg_bin("initdb")
        if self._as_root:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterError(
                    "running as root needs the postgres user (Debian's postgresql package creates it)"
                ) from None
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run(
            initdb,
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
            timeout=120,
        )
        self.start()

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster's directory."""
        if self._started:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir}"
            f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=200 -c shared_buffers=64MB"
        )
        self._started = True  # from here on a failure may have left a server running: remove() stops it
        # Up to 5 minutes: crash recovery after `restart` replays the WAL, slowly on a loaded box (seen: over
        # 60 s, pg_ctl's default, with several other jobs on 2 cores).
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "300", "-o", options, "start",
            timeout=320.0,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, *, down_s: float = 0.0) -> None:
        """A crash: ``pg_ctl stop -m immediate`` (no checkpoint, recovery at start), then start again."""
        self.stop("immediate")
        time.sleep(down_s)
        self.start()

    def server_pid(self) -> int | None:
        """The postmaster's pid while it runs (from ``postmaster.pid``), else None."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    # -- databases -----------------------------------------------------------------------------------
    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                pg_bin("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(database),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its DSN."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.dsn(name)


@contextlib.contextmanager
def throwaway_cluster(*, fsync: bool = True, parent: Path | None = None) -> Iterator[PgCluster]:
    with PgCluster(fsync=fsync, parent=parent) as cluster:
        yield cluster
