"""The import rules of DESIGN.md, enforced: domain packages never import edge; simulators import
only sensors; the kiosk only talks HTTP (it may use routing for rendering and sensors for scanners)."""

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
    "sync": set(),
    "simulators": {"sensors"},
    "kiosk": {"routing", "sensors"},
    "edge": {"sensors", "models", "routing", "sync"},
}
# Documented exceptions (docs/architecture.md): the CLI and the demo start the simulators, and the one
# console script starts the kiosk (a separate process that only talks HTTP; imported lazily).
EXCEPTIONS = {("edge/cli.py", "simulators"), ("edge/demo.py", "simulators"), ("edge/cli.py", "kiosk")}


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
