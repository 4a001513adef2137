"""Documentation is checked: every CLI command, config key, MQTT topic, API route and metric is
documented, and the examples in the docs are real."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import msgspec
import pytest

from edge.catalog.routes import CatalogApi
from edge.cli import build_parser
from edge.config import Config
from edge.customers.interactions import InteractionRoutes
from edge.experiments.routes import ExperimentRoutes
from edge.http import app, staff_routes
from edge.metrics import IngestMetrics
from edge.predictions.realtime import RealtimeRecommender
from sensors.decode import SENSOR_KINDS, Decoder
from sensors.frames import decode_frame
from sensors.planogram import load_planogram
from sensors.schemas import Rejection, RejectReason

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
PROTOCOLS = (REPO / "docs" / "protocols.md").read_text()
EXAMPLE = (REPO / "storeedge.example.toml").read_text()


def cli_commands(parser: argparse.ArgumentParser, prefix: str = "storeedge") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = cli_commands(sub, f"{prefix} {name}")
                found.extend(nested or [f"{prefix} {name}"])
    return found


def test_every_cli_command_is_in_the_readme_with_an_example() -> None:
    commands = cli_commands(build_parser())
    assert "storeedge run" in commands
    for command in commands:
        assert f"`{command}" in README, f"{command} missing from README"


def config_keys() -> list[tuple[str, str]]:
    keys = []
    for section in msgspec.structs.fields(Config):
        if section.name != "base_dir":
            keys.extend((section.name, f.name) for f in msgspec.structs.fields(section.type))
    return keys


def test_every_config_key_is_in_the_readme_and_the_example() -> None:
    for section, key in config_keys():
        first_cells = re.findall(rf"^\| (`\[{section}\] [^|]*)\|", README, re.M)
        assert any(re.search(rf"\b{key}\b", cell) for cell in first_cells), (
            f"[{section}] {key} missing from README"
        )
        block = EXAMPLE.split(f"[{section}]", 1)[1].split("\n[", 1)[0] if f"[{section}]" in EXAMPLE else ""
        assert re.search(rf"^#? ?{key} = ", block, re.M) or key == "ports", (
            f"[{section}] {key} missing from example"
        )


def test_every_mqtt_topic_is_in_the_protocol_doc() -> None:
    for kind in SENSOR_KINDS:
        subject = {"shelf": "{shelf}", "fridge": "{unit}", "footfall": "{zone}", "pos": "{lane}"}[kind.kind]
        topic = f"store/{{store}}/{kind.kind}/{subject}" + (f"/{kind.leaf}" if kind.leaf else "")
        assert f"`{topic}`" in PROTOCOLS, topic
        if kind.frame_type:
            assert f"`{kind.frame_type}`" in PROTOCOLS
    assert "`store/{store}/device/{device}/status`" in PROTOCOLS
    assert "`store/{store}/edge/status`" in PROTOCOLS


def test_every_reject_reason_is_explained() -> None:
    for reason in RejectReason:
        assert f"| `{reason.value}` |" in PROTOCOLS, reason


def test_every_route_and_metric_is_in_the_readme() -> None:
    experiments = ExperimentRoutes(None, None, None).routes()  # type: ignore[arg-type]
    interactions = InteractionRoutes(None, REPO / "unused.db", None).routes()  # type: ignore[arg-type]
    realtime = RealtimeRecommender(None, None).routes()  # type: ignore[arg-type]
    catalog = CatalogApi(None, None, None, None, "EUR", None).routes()  # type: ignore[arg-type]
    for method, path, _ in [
        *app.ROUTES,
        *staff_routes.ROUTES,
        *experiments,
        *interactions,
        *realtime,
        *catalog,
    ]:
        assert f"`{method} {path}" in README, path
    for name in IngestMetrics().registry._metrics:
        assert f"`{name}" in README, name


def test_protocol_examples_decode() -> None:
    planogram = load_planogram(REPO / "simulators" / "demo_store" / "planogram.toml")
    decoder = Decoder("demo", planogram, clock=lambda: 1_795_514_400.0)
    rows = re.findall(r"^\| `store/\{store\}/([^`]+)` \| .* \| `(\{.*\})` \|$", PROTOCOLS, re.M)
    assert len(rows) >= 5
    for topic, example in rows:
        concrete = (
            topic.replace("{shelf}", "A1-1")
            .replace("{unit}", "F1")
            .replace("{zone}", "entrance")
            .replace("{lane}", "1")
        )
        result = decoder.decode_mqtt(f"store/demo/{concrete}", example.encode())
        assert not isinstance(result, Rejection), (topic, result)
    frames = re.findall(r"`(\$[A-Z]{3},[^`]+\*[0-9A-F]{2})`", PROTOCOLS)
    assert len(frames) == 3
    for frame in frames:
        assert not isinstance(decoder.decode_serial("doc", frame.encode() + b"\r\n"), Rejection), frame
        decode_frame(frame.encode())


@pytest.mark.parametrize("path", ["README.md", "docs/protocols.md", "docs/architecture.md"])
def test_relative_links_resolve(path: str) -> None:
    text = (REPO / path).read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" in target:
            continue
        assert ((REPO / path).parent / target).exists(), f"{path} links to missing {target}"


def test_changelog_names_what_changed() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    json.dumps(text)  # readable text, no binary
