"""`storeedge` loads only what the command it runs needs (issue #18: `import edge.cli` took 2.6 s).

Each check runs in a fresh interpreter and lists the top-level packages in `sys.modules`, so an eager
import anywhere in the chain (a CLI module, a package's `__init__`, `edge.config`) makes it fail. The
time itself is measured in bench/cli_startup.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from models.holiday_calendar import DEFAULT_COUNTRY, UnknownCountryError, check_country, supported_countries
from tests.conftest import REPO

# What a command that does not use them must not load: the model runtime, the HTTP stack, central's
# database driver and signing, the training stack, the kiosk's UI, and the route solver's libraries.
HEAVY = frozenset({
    "onnxruntime", "aiohttp", "sklearn", "scipy", "numpy", "networkx", "asyncpg", "cryptography",
    "textual", "lightgbm", "pandas", "elkai", "holidays",
})  # fmt: skip
# `config check` of a store in the default country needs no calendar (`models.holiday_calendar`);
# a route needs its graph.
ALLOWED = {
    "parser": frozenset(),
    "config check": frozenset(),
    "route": frozenset({"numpy", "networkx"}),
}
PROGRAMS = {
    # `storeedge --help` builds the whole parser (every subcommand's options) and prints it.
    "parser": "from edge.cli import build_parser\nbuild_parser().format_help()",
    "config check": "from edge.cli import main\nassert main(['config', 'check', 'storeedge.example.toml']) == 0",
    "route": "from edge.cli import main\nassert main(['route', '--items', 'milk,bread,ice-cream', '--json']) == 0",
}


def loaded_packages(program: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running `program` (in the repo)."""
    probe = textwrap.dedent(
        """
        import contextlib, io, json, sys
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(sys.argv[1], "<program>", "exec"))
        print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, program],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("command", sorted(PROGRAMS))
def test_a_command_loads_no_heavy_package_it_does_not_use(command: str) -> None:
    loaded = loaded_packages(PROGRAMS[command]) & HEAVY
    assert loaded == set(ALLOWED[command]), (
        f"storeedge {command} imported {sorted(loaded - ALLOWED[command])}"
    )


def test_importing_the_cli_loads_no_heavy_package() -> None:
    assert loaded_packages("import edge.cli") & HEAVY == set()


def test_the_probe_sees_a_heavy_import() -> None:
    # The checks above would pass vacuously if the probe could not see imports: show that it does.
    assert {"numpy", "networkx"} <= loaded_packages("import edge.cli\nimport routing.graph")


def test_lazy_package_names_still_resolve() -> None:
    # `routing` and `models` load their numpy/networkx/onnxruntime names on first use; all are there.
    program = (
        "import models, routing\n"
        "missing = [n for p in (models, routing) for n in p.__all__ if getattr(p, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert routing.plan_route.__module__ == 'routing.planner'\n"
    )
    assert {"numpy", "networkx", "onnxruntime"} <= loaded_packages(program)


def test_the_default_country_is_checked_without_the_calendars_but_has_one() -> None:
    # What lets `check_country` skip importing `holidays` for the default is true.
    assert DEFAULT_COUNTRY in supported_countries()
    assert check_country(DEFAULT_COUNTRY) == DEFAULT_COUNTRY
    with pytest.raises(UnknownCountryError, match="unknown country 'XX'"):
        check_country("XX")
