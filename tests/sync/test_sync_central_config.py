"""``[central] dsn``: a libpq URI or key=value; a malformed one or an unreachable server is one error
line naming the file, the key and the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.demo.broker import free_port
from sync.central import Central
from sync.central_config import load_central_config, parse_central_config
from sync.central_db import store_rows
from sync.central_pool import CentralDb
from sync.central_schema import MIGRATIONS
from sync.errors import CentralConfigError
from tests.conftest import REPO
from tests.pg_testkit import SUPERUSER, PgCluster

TOKEN = "test-sync-token-0123456789"


def write_central(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "central.toml"
    path.write_text(
        f"[central]\ndsn = {dsn!r}\nport = 0\nbundle_dir = '{tmp_path / 'bundles'}'\n\n"
        f"[[stores]]\nid = 's1'\nurl = 'http://127.0.0.1:1'\ntoken = '{TOKEN}'\n"
    )
    return path


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        ("http://127.0.0.1/central", "postgresql://"),
        ("postgresql://127.0.0.1:port/central", "bad port"),
        ("host=127.0.0.1 port=five", "port must be a number"),
        ("host=127.0.0.1 colour=blue", "unknown key 'colour'"),
        ("just words", "expected key=value"),
    ],
)
def test_a_malformed_dsn_is_refused_naming_the_key(tmp_path: Path, dsn: str, why: str) -> None:
    with pytest.raises(CentralConfigError) as caught:
        load_central_config(write_central(tmp_path, dsn))
    assert "central.toml: [central] dsn: " in str(caught.value)
    assert why in str(caught.value)


def test_a_signing_key_that_cannot_be_read_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write_central(tmp_path, "postgresql://x@127.0.0.1:1/central")
    path.write_text(
        path.read_text().replace("[central]\n", "[central]\nsigning_key_file = 'keys/none.key'\n")
    )
    with pytest.raises(CentralConfigError) as caught:
        Central(load_central_config(path))
    assert "central.toml: [central] signing_key_file: " in str(caught.value)
    assert "none.key" in str(caught.value)


async def test_an_unreachable_server_is_one_error_naming_the_key_and_the_server(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = load_central_config(write_central(tmp_path, f"postgresql://x@127.0.0.1:{port}/central"))
    with pytest.raises(CentralConfigError) as caught:
        async with Central(config):
            pass
    assert f"central.toml: [central] dsn: cannot connect to 127.0.0.1:{port}: " in str(caught.value)


def test_central_status_on_an_unreachable_server_exits_2_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = write_central(tmp_path, f"host=127.0.0.1 port={port} dbname=central")
    done = subprocess.run(
        [sys.executable, "-m", "sync", "status", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"[central] dsn: cannot connect to 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_a_key_value_dsn_connects_and_migrates_once(pg_cluster: PgCluster) -> None:
    pg_cluster.psql("CREATE DATABASE kv_central TEMPLATE template0")
    dsn = f"host=127.0.0.1 port={pg_cluster.port} dbname=kv_central user={SUPERUSER} application_name=central"
    config = parse_central_config({"central": {"dsn": dsn}})
    for _ in range(2):  # the second start finds the schema current
        db = CentralDb(config.central.dsn)
        await db.open()
        assert await db.run(store_rows) == []
        await db.close()
    migrations = pg_cluster.psql("SELECT count(*) FROM schema_migrations", database="kv_central")
    assert migrations == str(len(MIGRATIONS))
