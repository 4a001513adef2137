"""A `layout` bundle from central goes live without a restart; one that does not load is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from edge.config import parse_config
from edge.demo.broker import MosquittoBroker
from edge.uplink.live_layout import LayoutLoadError, LiveLayout, initial_layout, layout_path
from routing import load_layout
from tests.conftest import STAFF_TOKEN, run_daemon, write_config

REPO = Path(__file__).resolve().parents[2]
DEMO_LAYOUT = REPO / "simulators" / "demo_store" / "layout.toml"
CONVENIENCE = REPO / "routing" / "layouts" / "convenience_store.toml"


def layout_bundle(bundle_dir: Path, version: str, text: str) -> None:
    """Stage ``text`` as layout bundle ``version`` and make it the live one (as sync's activation does:
    a `current` link to the version's directory)."""
    directory = bundle_dir / "layout" / "versions" / version
    directory.mkdir(parents=True)
    (directory / "layout.toml").write_text(text, encoding="utf-8")
    current = bundle_dir / "layout" / "current"
    if current.is_symlink():
        current.unlink()
    current.symlink_to(directory.relative_to(current.parent))


def config_for(tmp_path: Path, layout: Path = DEMO_LAYOUT) -> tuple[Path, object]:
    bundles = tmp_path / "bundles"
    config = parse_config(
        {
            "store": {"layout": str(layout)},
            "database": {"path": str(tmp_path / "store.db")},
            "sync": {"bundle_dir": str(bundles)},
        }
    )
    return bundles, config


async def test_a_new_layout_bundle_is_swapped_in_and_a_broken_one_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundles, config = config_for(tmp_path)
    assert layout_path(config) == DEMO_LAYOUT.resolve()  # no bundle yet: [store] layout
    live = LiveLayout(config, initial_layout(config))
    assert live.layout().store_id == "demo"
    assert await live.refresh() is False  # nothing new

    layout_bundle(bundles, "2", CONVENIENCE.read_text(encoding="utf-8"))
    assert await live.refresh() is True
    assert live.layout().store_id == "convenience"
    assert live.text() == CONVENIENCE.read_text(encoding="utf-8")
    assert live.current.path == (bundles / "layout" / "versions" / "2" / "layout.toml").resolve()

    # A layout whose aisle points at a node that does not exist: refused, named, and not retried.
    layout_bundle(
        bundles, "3", CONVENIENCE.read_text(encoding="utf-8") + '\n[[edges]]\nfrom = "nowhere"\nto = "x"\n'
    )
    with caplog.at_level(logging.ERROR, logger="edge.uplink.live_layout"):
        assert await live.refresh() is False
        assert await live.refresh() is False
    refused = [r for r in caplog.records if r.getMessage() == "layout_not_activated"]
    assert len(refused) == 1
    assert "versions/3/layout.toml" in refused[0].__dict__["path"]
    assert live.layout().store_id == "convenience"

    # Central sends the demo layout back: it goes live again.
    layout_bundle(bundles, "4", DEMO_LAYOUT.read_text(encoding="utf-8"))
    assert await live.refresh() is True
    assert live.layout().store_id == "demo"


def test_start_up_falls_back_to_the_configured_layout_when_the_live_bundle_is_broken(tmp_path: Path) -> None:
    bundles, config = config_for(tmp_path)
    layout_bundle(bundles, "1", "not [valid toml")
    assert initial_layout(config).layout.store_id == "demo"


def test_a_broken_configured_layout_is_an_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "mine.toml"
    broken.write_text("[store]\nid = 'x'\n", encoding="utf-8")
    _, config = config_for(tmp_path, broken)
    with pytest.raises(LayoutLoadError, match=r"mine\.toml"):
        initial_layout(config)


@pytest.mark.integration
async def test_the_daemon_routes_on_a_new_layout_without_a_restart(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    bundles = tmp_path / "bundles"
    config = write_config(
        tmp_path, broker, sync={"bundle_dir": str(bundles)}, http={"kiosk_token": "test-kiosk-token"}
    )
    demo_nodes = {n.id for n in load_layout(DEMO_LAYOUT).nodes}
    convenience_nodes = {n.id for n in load_layout(CONVENIENCE).nodes}
    async with run_daemon(config) as running, aiohttp.ClientSession() as http:
        staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}

        async def route() -> dict[str, object]:
            async with http.post(
                f"{running.url}/api/v1/routes", json={"items": ["bread", "cheese"]}, headers=staff
            ) as r:
                assert r.status == 200, await r.text()
                body: dict[str, object] = await r.json()
                return body

        async def kiosk_layout() -> str:
            async with http.get(
                f"{running.url}/api/v1/kiosk/layout", headers={"Authorization": "Bearer test-kiosk-token"}
            ) as r:
                assert r.status == 200
                return await r.text()

        before = await route()
        assert {s["node"] for s in before["stops"]} <= demo_nodes  # type: ignore[union-attr,index]
        layout_bundle(bundles, "2", CONVENIENCE.read_text(encoding="utf-8"))
        assert await running.daemon.live_layout.refresh() is True
        after = await route()
        stops = {s["node"] for s in after["stops"]}  # type: ignore[union-attr,index]
        assert stops <= convenience_nodes
        assert not stops <= demo_nodes
        assert await kiosk_layout() == CONVENIENCE.read_text(encoding="utf-8")
        assert running.daemon.layout.store_id == "convenience"
