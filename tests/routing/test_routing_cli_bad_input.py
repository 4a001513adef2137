"""Bad input to `storeedge route` found in issue #18: each is one line naming the file or option, exit 2.

Run as the real command (a subprocess) where the bug was a traceback, in process otherwise.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest

from edge.uplink.bundle_checks import check_layout
from routing import InvalidArgumentError, LayoutError, load_demo_layout, parse_layout, render_ascii
from routing import cli as routing_cli
from routing.layout_file import MAX_NESTING
from routing.render import MAP_HEIGHTS, MAP_WIDTHS
from sync.errors import BundleError
from tests.routing.conftest import DEMO_LAYOUT_PATH, REPO_ROOT
from tests.routing.routing_testkit import corridor_toml

TOO_DEEP = f"not a layout: arrays and tables nested more than {MAX_NESTING} levels deep"


def run_cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="storeedge route")
    routing_cli.configure_parser(parser)
    out, err = io.StringIO(), io.StringIO()
    code = routing_cli.run(parser.parse_args(list(argv)), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def storeedge(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *argv], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False
    )  # fmt: skip


def nested_arrays(levels: int) -> str:
    return "nodes = " + "[" * levels + "]" * levels + "\n"


def nested_tables(levels: int) -> str:
    return "store = " + "{ a = " * levels + "1" + " }" * levels + "\n"


@pytest.mark.parametrize("text", [nested_arrays(496), nested_tables(496)], ids=["arrays", "inline-tables"])
def test_a_layout_nested_496_levels_deep_is_one_line_not_a_traceback(tmp_path: Path, text: str) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text(text, encoding="utf-8")
    result = storeedge("route", "--layout", str(deep), "--items", "milk")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {deep}: {TOO_DEEP}"]


@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 200, 5000])
def test_nesting_past_the_limit_is_refused_whether_or_not_tomllib_copes(levels: int) -> None:
    # tomllib parses a few hundred levels and runs out of stack beyond: the same problem either way.
    with pytest.raises(LayoutError) as caught:
        parse_layout(nested_arrays(levels), "deep.toml")
    assert [str(problem) for problem in caught.value.problems] == [f"deep.toml: {TOO_DEEP}"]


def test_nesting_up_to_the_limit_is_an_ordinary_layout_problem() -> None:
    with pytest.raises(LayoutError) as caught:
        parse_layout(nested_arrays(MAX_NESTING - 1), "shallow.toml")
    assert TOO_DEEP not in str(caught.value)
    assert "nodes[0]: expected a table, got an array" in str(caught.value)


def test_a_deep_layout_bundle_fails_its_health_check_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "layout.toml").write_text(nested_arrays(5000), encoding="utf-8")
    with pytest.raises(BundleError, match=r"(?s)layout bundle: .*nested more than"):
        check_layout(tmp_path)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--width", "100000", "--height", "100000"], "--width 100000"),
        (["--width", "0"], "--width 0"),
        (["--width", "-3"], "--width -3"),
        (["--height", "100000"], "--height 100000"),
        (["--height", "5"], "--height 5"),
        (["--width", "1001", "--json"], "--width 1001"),  # checked even when no map is drawn
    ],
)
def test_a_map_size_out_of_bounds_names_the_option(argv: list[str], option: str) -> None:
    code, out, err = run_cli("--items", "milk", *argv)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"error: {option}: the map needs at least 20x6 characters and at most 1000x1000"
    ]


def test_a_huge_map_is_refused_by_the_real_command_before_any_work() -> None:
    result = storeedge("route", "--items", "milk", "--width", "100000", "--height", "100000")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --width 100000: the map needs at least 20x6 characters and at most 1000x1000"
    ]


def test_the_largest_and_smallest_maps_draw() -> None:
    layout = load_demo_layout()
    for width, height in ((MAP_WIDTHS[0], MAP_HEIGHTS[0]), (MAP_WIDTHS[-1], MAP_HEIGHTS[-1])):
        lines = render_ascii(layout, width=width, height=height).splitlines()
        assert len(lines) <= height
        assert max(len(line) for line in lines) <= width


def test_the_library_refuses_a_huge_map_too() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^height 100000: the map needs at least 20x6"):
        render_ascii(load_demo_layout(), width=80, height=100_000)


def test_to_a_node_that_is_not_a_checkout_says_so() -> None:
    code, out, err = run_cli("--items", "milk", "--to", "entrance")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"error: --to entrance: not a checkout node (kind entrance) in {DEMO_LAYOUT_PATH}; "
        "checkouts: checkout-1, checkout-2, checkout-3, checkout-4"
    ]


def test_to_a_checkout_still_routes_and_an_unknown_node_is_still_named() -> None:
    code, out, err = run_cli("--items", "milk", "--to", "checkout-2", "--json")
    assert code == 0, err
    assert '"end": "checkout-2"' in out
    code, _, err = run_cli("--items", "milk", "--to", "nowhere")
    assert code == 2
    assert err.startswith("error: unknown end node 'nowhere': no such node in ")


def test_one_layout_problem_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(corridor_toml().replace('to = "b"', 'to = "bb"', 1), encoding="utf-8")
    code, _, err = run_cli("--layout", str(broken), "--items", "milk")
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"error: {broken}: edges[1].to: unknown node 'bb' (line ")


def test_the_help_states_the_map_limits_the_renderer_enforces() -> None:
    parser = argparse.ArgumentParser(prog="storeedge route")
    routing_cli.configure_parser(parser)
    text = " ".join(parser.format_help().split())
    assert f"map width in characters, {MAP_WIDTHS[0]}-{MAP_WIDTHS[-1]} (default: 80)" in text
    assert f"map height in lines, {MAP_HEIGHTS[0]}-{MAP_HEIGHTS[-1]} (default: 24)" in text
