"""Signed bundles: sign/verify, safe staging, atomic activation, health checks with a real ONNX model,
rollback, and the daemon's poller against the reference central end to end."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge.config import load_config
from edge.demo.broker import MosquittoBroker, free_port
from sync import cli
from sync.bundle_checks import check_onnx_models, toml_file_check
from sync.bundle_install import BundleInstaller
from sync.bundle_signing import build_archive, generate_key, load_private_key, publish_bundle, sign_bundle
from sync.bundle_store import BundleStore
from sync.bundle_verify import load_public_key, safe_extract, verify_manifest
from sync.central import Central
from sync.errors import BundleError, BundleRefusedError
from sync.schemas import BundleManifest
from tests.conftest import STAFF_TOKEN, ajson, run_daemon, write_config
from tests.edge.test_predictions_model_swap import model_set
from tests.sync.sync_helpers import SYNC_TOKEN, count, pg_count, wait_for
from tests.sync.test_sync_central import central_config

pytestmark = pytest.mark.integration


def write_model(directory: Path, weight: float = 2.0) -> Path:
    """A tiny real ONNX model: y = x @ W (x: float[N, 3]), plus its card."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    w = helper.make_tensor("W", TensorProto.FLOAT, [3, 1], [weight] * 3)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "tiny", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, directory / "model.onnx")
    (directory / "card.json").write_text('{"name": "tiny", "features": ["a", "b", "c"]}')
    return directory


def score(model_dir: Path) -> float:
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return float(session.run(None, {"x": np.ones((1, 3), dtype=np.float32)})[0][0][0])


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "keys" / "chain.key"
    return path, generate_key(path)


def local_fetch(blob: bytes) -> Any:
    async def fetch(_manifest: BundleManifest, dest: Path) -> None:
        dest.write_bytes(blob)

    return fetch


def test_signatures_cover_kind_version_hash_and_size(keys: tuple[Path, str], tmp_path: Path) -> None:
    key_path, public = keys
    assert (key_path.stat().st_mode & 0o777) == 0o600
    key = load_private_key(key_path)
    blob = build_archive(write_model(tmp_path / "m"))
    assert build_archive(tmp_path / "m") == blob  # reproducible: same directory, same sha256
    manifest = sign_bundle(key, "model", 1, blob)
    verify_manifest(manifest, load_public_key(public))
    for field, value in (
        ("version", 2),
        ("kind", "catalog"),
        ("size", manifest.size + 1),
        ("sha256", "0" * 64),
    ):
        forged = msgspec_replace(manifest, **{field: value})
        with pytest.raises(BundleRefusedError) as caught:
            verify_manifest(forged, load_public_key(public))
        assert caught.value.reason == "bad_signature"
    other = generate_key(tmp_path / "other.key")
    with pytest.raises(BundleRefusedError):
        verify_manifest(manifest, load_public_key(other))


def msgspec_replace(manifest: BundleManifest, **changes: Any) -> BundleManifest:
    return msgspec.structs.replace(manifest, **changes)


def tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = ""
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([member("../escape.txt")], "unsafe_archive"),
        ([member("ok/../../escape.txt")], "unsafe_archive"),
        ([member("/etc/cron.d/evil")], "unsafe_archive"),
        ([member("link", tarfile.SYMTYPE, link="/etc/passwd")], "unsafe_archive"),
        ([member("hard", tarfile.LNKTYPE, link="model.onnx")], "unsafe_archive"),
        ([member("dev", tarfile.CHRTYPE)], "unsafe_archive"),
        ([member("big.bin", data=b"0" * 5000)], "too_large"),
    ],
)
def test_staging_refuses_archives_that_escape_or_surprise(
    tmp_path: Path, members: list[Any], reason: str
) -> None:
    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(tar_with(members))
    with pytest.raises(BundleRefusedError) as caught:
        safe_extract(archive, tmp_path / "staged", max_bytes=4096)
    assert caught.value.reason == reason
    assert not (tmp_path / "escape.txt").exists()


def test_staging_refuses_garbage_and_too_many_members(tmp_path: Path) -> None:
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(BundleRefusedError):
        safe_extract(tmp_path / "junk.tar.gz", tmp_path / "a", max_bytes=1 << 20)
    (tmp_path / "many.tar.gz").write_bytes(tar_with([member(f"f{i}") for i in range(5)]))
    with pytest.raises(BundleRefusedError):
        safe_extract(tmp_path / "many.tar.gz", tmp_path / "b", max_bytes=1 << 20, max_members=4)


def test_the_onnx_check_loads_and_scores_and_refuses_broken_models(tmp_path: Path) -> None:
    check_onnx_models(write_model(tmp_path / "good"))
    corrupt = write_model(tmp_path / "corrupt")
    (corrupt / "model.onnx").write_bytes(b"\x08\x07garbage, not a protobuf of a graph")
    with pytest.raises(Exception, match="does not load"):
        check_onnx_models(corrupt)
    wrong_canary = write_model(tmp_path / "canary")
    (wrong_canary / "canary.json").write_text('{"x": [[1.0, 2.0]]}')  # 2 features, the model wants 3
    with pytest.raises(Exception, match="fails to score"):
        check_onnx_models(wrong_canary)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match=r"no \.onnx"):
        check_onnx_models(empty)


async def test_install_activates_atomically_refuses_tampering_and_keeps_the_old_version_serving(
    keys: tuple[Path, str], tmp_path: Path
) -> None:
    key_path, public = keys
    key = load_private_key(key_path)
    store = BundleStore(tmp_path / "bundles")
    reports: list[Any] = []

    async def report(result: Any) -> None:
        reports.append(result)

    installer = BundleInstaller(
        store, public_key_hex=public, checks={"model": check_onnx_models}, max_bytes=1 << 20, report=report
    )
    v1 = build_archive(write_model(tmp_path / "v1", weight=2.0))
    m1 = sign_bundle(key, "model", 1, v1)
    assert (await installer.install(m1, local_fetch(v1))).outcome == "activated"
    live = store.current_path("model")
    assert live.is_symlink()
    assert score(live) == 6.0
    assert store.active("model").version == 1  # type: ignore[union-attr]

    # bad signature: signed by someone else
    v2 = build_archive(write_model(tmp_path / "v2", weight=3.0))
    generate_key(tmp_path / "x.key")
    forged = sign_bundle(load_private_key(tmp_path / "x.key"), "model", 2, v2)
    # bad hash: right signature, blob changed on the way
    signed = sign_bundle(key, "model", 2, v2)
    tampered = bytearray(v2)
    tampered[len(tampered) // 2] ^= 0xFF
    # a model that does not load, properly signed
    broken_dir = write_model(tmp_path / "broken")
    (broken_dir / "model.onnx").write_bytes(b"\x00\x01 definitely not onnx")
    broken = build_archive(broken_dir)
    m_broken = sign_bundle(key, "model", 3, broken)
    # a traversal archive, properly signed (the signer is not trusted to be careful)
    evil = tar_with([member("../../outside.txt")])
    m_evil = sign_bundle(key, "model", 4, evil)
    cases = [
        (forged, v2, "bad_signature"),
        (signed, bytes(tampered), "bad_hash"),
        (signed, v2[:-10], "bad_size"),
        (m_broken, broken, "health_check"),
        (m_evil, evil, "unsafe_archive"),
    ]
    for manifest, blob, reason in cases:
        result = await installer.install(manifest, local_fetch(blob))
        assert (result.outcome, result.reason) == ("refused", reason), result
        assert store.active("model").version == 1  # type: ignore[union-attr]
        assert score(live) == 6.0  # the old version keeps serving
        assert not (store.root / "model" / "versions" / str(manifest.version)).exists()
    assert not (tmp_path / "outside.txt").exists()
    assert not (store.root / "outside.txt").exists()
    assert not installer.wanted(m_broken)  # refused once, not fetched again at every poll
    assert installer.wanted(signed)  # a hash mismatch may be the network's fault: retried

    unknown = sign_bundle(key, "weather", 1, v2)
    assert (await installer.install(unknown, local_fetch(v2))).reason == "unknown_kind"

    m5 = sign_bundle(key, "model", 5, v2)
    assert (await installer.install(m5, local_fetch(v2))).outcome == "activated"
    assert score(live) == 9.0
    assert store.previous("model").version == 1
    assert not installer.wanted(sign_bundle(key, "model", 4, v2))  # never downgrade
    assert [r.outcome for r in reports].count("activated") == 2
    assert len(reports) == 8


async def test_a_bundle_that_fails_after_the_swap_is_rolled_back(
    keys: tuple[Path, str], tmp_path: Path
) -> None:
    key_path, public = keys
    key = load_private_key(key_path)
    store = BundleStore(tmp_path / "bundles")
    calls: list[Path] = []

    def flaky_check(directory: Path) -> None:
        calls.append(directory)
        check_onnx_models(directory)
        if directory.name == "current" and (directory / "fail-when-live").exists():
            raise RuntimeError("consumer could not reload it")

    installer = BundleInstaller(
        store, public_key_hex=public, checks={"model": flaky_check}, max_bytes=1 << 20
    )
    v1 = build_archive(write_model(tmp_path / "v1"))
    assert (await installer.install(sign_bundle(key, "model", 1, v1), local_fetch(v1))).outcome == "activated"
    bad_dir = write_model(tmp_path / "v2", weight=5.0)
    (bad_dir / "fail-when-live").write_text("")
    v2 = build_archive(bad_dir)
    result = await installer.install(sign_bundle(key, "model", 2, v2), local_fetch(v2))
    assert (result.outcome, result.reason) == ("rolled_back", "health_check")
    assert store.active("model").version == 1
    assert score(store.current_path("model")) == 6.0
    assert not (store.root / "model" / "versions" / "2").exists()


async def test_the_daemon_polls_central_verifies_activates_reports_and_refuses_a_forgery(
    tmp_path: Path, broker: MosquittoBroker, keys: tuple[Path, str], central_dsn: str
) -> None:
    key_path, public = keys
    bundle_dir = tmp_path / "central-bundles"
    signed = cli.main(
        [
            "sign-bundle",
            "--key",
            str(key_path),
            "--kind",
            "model",
            "--version",
            "1",
            "--from",
            str(model_set(tmp_path / "m1", "v1")),
            "--out",
            str(bundle_dir),
        ]
    )
    assert signed == 0
    central_port = free_port()
    store_cfg = write_config(
        tmp_path,
        broker,
        sync={
            "token": SYNC_TOKEN,
            "central_url": f"http://127.0.0.1:{central_port}",
            "public_key": public,
            "bundle_poll_s": 0.2,
        },
    )
    edge_url = f"http://127.0.0.1:{load_config(store_cfg).http.port}"
    config = central_config(
        tmp_path, central_dsn, {"demo": edge_url}, port=central_port, bundle_dir=str(bundle_dir)
    )
    async with Central(config) as central, run_daemon(store_cfg) as edge:
        db = edge.config.path(edge.config.database.path)
        service = edge.daemon.predictions
        assert service is not None

        def serving() -> str:
            return service.models.next_purchase.card.version

        activated = "SELECT count(*) FROM bundle_events WHERE outcome = 'activated'"
        await wait_for(lambda: count(db, activated) == 1, what="v1 activated")
        status = await ajson(f"{edge.url}/api/v1/sync", STAFF_TOKEN)
        assert [(b["kind"], b["version"]) for b in status["bundles"]] == [("model", 1)]
        # The prediction service swaps to the live bundle without a restart.
        await wait_for(lambda: serving() == "next_purchase-v1", what="v1 served")

        # A forged v2 (signed with another key) appears at central: refused, reported, v1 keeps serving.
        rogue = tmp_path / "rogue.key"
        generate_key(rogue)
        publish_bundle(load_private_key(rogue), "model", 2, model_set(tmp_path / "m2", "v2"), bundle_dir)
        refused = "SELECT count(*) FROM bundle_events WHERE reason = 'bad_signature'"
        await wait_for(lambda: count(db, refused) == 1, what="forgery refused")
        # A properly signed v3 that is not a set of store models (one generic ONNX file) fails the
        # daemon's health check: refused, v1 keeps serving.
        publish_bundle(load_private_key(key_path), "model", 3, write_model(tmp_path / "m3"), bundle_dir)
        unhealthy = "SELECT count(*) FROM bundle_events WHERE reason = 'health_check'"
        await wait_for(lambda: count(db, unhealthy) == 1, what="unservable model refused")
        assert serving() == "next_purchase-v1"
        # v4, properly signed store models, replaces v1 and is served.
        publish_bundle(load_private_key(key_path), "model", 4, model_set(tmp_path / "m4", "v4"), bundle_dir)
        await wait_for(lambda: count(db, activated) == 2, what="v4 activated")
        await wait_for(lambda: serving() == "next_purchase-v4", what="v4 served")
        assert (
            count(db, "SELECT count(*) FROM bundle_events") == 4
        )  # each refusal is reported once, not per poll
        # the reports travel up the feed: central knows what each store runs
        await wait_for(
            lambda: pg_count(central_dsn, "SELECT count(*) FROM store_bundles WHERE version = 4") == 1,
            what="central knows",
        )
        assert (await central.status()).stores[0].bundles == {"model": 4}


async def test_a_bundle_request_without_the_store_token_is_refused(tmp_path: Path, central_dsn: str) -> None:
    async with (
        Central(central_config(tmp_path, central_dsn, {"demo": "http://127.0.0.1:1"})) as central,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{central.port}/central/v1/bundles"
        for headers, params in (
            ({}, {"store": "demo"}),
            ({"Authorization": f"Bearer {SYNC_TOKEN}"}, {"store": "other"}),
        ):
            async with http.get(f"{base}/latest", headers=headers, params=params) as resp:
                assert resp.status == 401
        async with http.get(
            f"{base}/latest", headers={"Authorization": f"Bearer {SYNC_TOKEN}"}, params={"store": "demo"}
        ) as resp:
            assert (resp.status, await resp.json()) == (200, {"bundles": []})


def test_the_generic_toml_check_refuses_a_file_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "layout.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(BundleError, match="nested too deeply"):
        toml_file_check("layout.toml")(tmp_path)
    (tmp_path / "layout.toml").write_text("x = [[1]]\n")
    toml_file_check("layout.toml")(tmp_path)  # an ordinary file passes
