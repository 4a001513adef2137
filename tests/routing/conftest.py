"""Fixtures for the routing tests: the three shipped layouts, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing import Layout, load_bundled_layout, load_layout

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_LAYOUT_PATH = REPO_ROOT / "simulators" / "demo_store" / "layout.toml"


@pytest.fixture(scope="session")
def demo_layout() -> Layout:
    return load_layout(DEMO_LAYOUT_PATH)


@pytest.fixture(scope="session")
def convenience_layout() -> Layout:
    return load_bundled_layout("convenience_store")


@pytest.fixture(scope="session")
def hypermarket_layout() -> Layout:
    return load_bundled_layout("hypermarket")
