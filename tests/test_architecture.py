"""The import rules of DESIGN.md, enforced: domain packages never import edge; simulators import
only sensors; the kiosk only talks HTTP (it may use routing for rendering and sensors for scanners).
Inside edge/, capabilities import each other only downward (docs/architecture.md, "edge/ by
capability"), and nothing imports the daemon's wiring."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "sensors", "models", "routing", "kiosk", "sync", "simulators")
ALLOWED: dict[str, set[str]] = {
    "sensors": set(),
    "models": set(),
    "routing": set(),
    "sync": {"models"},  # central's A/B analysis and retraining (docs/architecture.md)
    "simulators": {"sensors"},
    "kiosk": {"routing", "sensors"},
    "edge": {"sensors", "models", "routing", "sync"},
}
# Documented exceptions (docs/architecture.md): the CLI and the demo start the simulators, and the one
# console script starts the kiosk (a separate process that only talks HTTP; imported lazily).
EXCEPTIONS = {
    ("edge/cli.py", "simulators"),
    ("edge/demo/service.py", "simulators"),
    ("edge/demo/shoppers.py", "simulators"),  # the learning loop's households (edge.demo.loop)
    ("edge/cli.py", "kiosk"),
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_follow_the_design(package: str) -> None:
    violations = []
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for imported in project_imports(path) - {package} - ALLOWED[package]:
            if (rel, imported) not in EXCEPTIONS:
                violations.append(f"{rel} imports {imported}")
    assert not violations, "\n".join(violations)


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import edge.config\nfrom sync.outbox import append\nfrom . import x\n")
    assert project_imports(bad) == {"edge", "sync"}


# edge/'s capabilities, lowest first: each may import those before it (and the foundation), never after.
CAPABILITIES = (
    "state",
    "store",
    "http",
    "customers",
    "catalog",
    "predictions",
    "experiments",
    "ingest",
    "uplink",
    "demo",
)
FOUNDATION = {
    "config",
    "errors",
    "metrics",
    "logs",
    "supervisor",
    "live_file",
}  # the process's own parts: anyone
# the process itself: imports everything, imported by nothing (the chain demo's stores run clocked_daemon)
WIRING = {"daemon", "cli", "__main__", "clocked_daemon"}
WIRING_IMPORTS = {
    ("__main__", "cli"),
    ("cli", "daemon"),
    ("clocked_daemon", "cli"),
    ("clocked_daemon", "daemon"),
}


def edge_imports(path: Path) -> set[str]:
    """The parts of edge/ a module imports: ``edge.store.db`` -> "store", ``from edge import logs`` -> "logs"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("edge."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "edge":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("edge."):
                found.add(node.module.split(".")[1])
    return found


def edge_part(rel: Path) -> str:
    """Which part of edge/ a file belongs to: its capability folder, or its module name at the top."""
    return rel.parts[1] if len(rel.parts) > 2 else rel.stem


def import_violations(part: str, imported: set[str]) -> list[str]:
    problems = []
    for other in sorted(imported - {part}):
        if other in WIRING and (part, other) not in WIRING_IMPORTS:
            problems.append(f"imports the daemon's wiring edge.{other}")
        elif part in FOUNDATION and other not in FOUNDATION:
            problems.append(f"is foundation but imports edge.{other}")
        elif (
            part in CAPABILITIES
            and other in CAPABILITIES
            and CAPABILITIES.index(other) > CAPABILITIES.index(part)
        ):
            problems.append(f"imports edge.{other}, a capability above it")
        elif other not in FOUNDATION | WIRING | set(CAPABILITIES):
            problems.append(f"imports edge.{other}, which is in no layer (add it to the map)")
    return problems


def test_every_part_of_edge_is_in_the_map() -> None:
    parts = {edge_part(p.relative_to(REPO)) for p in (REPO / "edge").rglob("*.py")} - {"__init__"}
    assert parts == FOUNDATION | WIRING | set(CAPABILITIES)


def test_edge_capabilities_import_only_downward() -> None:
    violations = []
    for path in sorted((REPO / "edge").rglob("*.py")):
        rel = path.relative_to(REPO)
        part = edge_part(rel)
        violations += [f"{rel.as_posix()} {p}" for p in import_violations(part, edge_imports(path))]
    assert not violations, "\n".join(violations)


def test_the_layer_rule_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from edge.predictions.service import X\nfrom edge import daemon\nimport edge.store.db\n")
    assert edge_imports(bad) == {"predictions", "daemon", "store"}
    assert import_violations("store", {"predictions", "daemon", "state", "config"}) == [
        "imports the daemon's wiring edge.daemon",
        "imports edge.predictions, a capability above it",
    ]
    assert import_violations("config", {"store"}) == ["is foundation but imports edge.store"]
    assert import_violations("ingest", {"store", "state", "http", "errors"}) == []
