"""Best-effort map from a location in a TOML document (`edges[12].to`) to its line number.

`tomllib` does not report where values came from, so after a file has parsed we scan its text once
and note the line of every array-of-tables header (`[[edges]]`), every inline table that starts a
line inside a multi-line array (`nodes = [` ... `{ id = "a", ... },`), every table header and every
`key = value` line. The result only decorates error messages: when a layout is written in a shape
this scanner does not follow, messages simply go without a line number.
"""

from __future__ import annotations

import re

__all__ = ["line_for", "scan_locations"]

_ARRAY_TABLE_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_-]+)\s*=")
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")
_TRAILING_PART = re.compile(r"(\[\d+\]|\.[^.\[\]]+)$")


def _strip_strings(line: str) -> str:
    """The line with quoted strings emptied and its comment removed, so brackets in names don't count."""
    without_strings = _QUOTED.sub('""', line)
    return without_strings.split("#", 1)[0]


def _unquote(key: str) -> str:
    return key[1:-1] if key.startswith('"') else key


class _Scanner:
    """Line-by-line state of `scan_locations`."""

    def __init__(self) -> None:
        self.locations: dict[str, int] = {}
        self.array_counts: dict[str, int] = {}
        self.table_path = ""  # path of the current [table] / [[array]] element; "" = document root
        self.open_array: str | None = None  # a multi-line `key = [` array at the root being read
        self.open_array_depth = 0
        self.inline_count = 0

    def note(self, path: str, number: int) -> None:
        self.locations.setdefault(path, number)

    def array_line(self, line: str, number: int) -> None:
        """A line inside a multi-line root array: each line-leading `{` starts the next element."""
        assert self.open_array is not None
        if line.lstrip().startswith("{") and self.open_array_depth == 1:
            element = f"{self.open_array}[{self.inline_count}]"
            self.inline_count += 1
            self.note(element, number)
            for key in _INLINE_KEY.findall(line):
                self.note(f"{element}.{key}", number)
        self.open_array_depth += line.count("[") - line.count("]")
        if self.open_array_depth <= 0:
            self.open_array = None

    def header_line(self, line: str, number: int) -> bool:
        header = _ARRAY_TABLE_HEADER.match(line)
        if header:
            name = header.group(1)
            index = self.array_counts.get(name, 0)
            self.array_counts[name] = index + 1
            self.table_path = f"{name}[{index}]"
            self.note(self.table_path, number)
            return True
        header = _TABLE_HEADER.match(line)
        if header and not _KEY.match(line):
            self.table_path = ".".join(_unquote(part.strip()) for part in header.group(1).split("."))
            self.note(self.table_path, number)
            return True
        return False

    def key_line(self, line: str, number: int) -> None:
        key_match = _KEY.match(line)
        if not key_match:
            return
        key = _unquote(key_match.group(1))
        self.note(f"{self.table_path}.{key}" if self.table_path else key, number)
        after_equals = line[key_match.end() :].strip()
        if not self.table_path and after_equals.startswith("["):
            depth = after_equals.count("[") - after_equals.count("]")
            if depth > 0:
                self.open_array, self.open_array_depth, self.inline_count = key, depth, 0


def scan_locations(text: str) -> dict[str, int]:
    """Map each location path found in `text` to the 1-based line it starts on."""
    scanner = _Scanner()
    in_multiline_string = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline_string:
            in_multiline_string = raw.count('"""') % 2 == 0
            continue
        if raw.count('"""') % 2 == 1:
            in_multiline_string = True
        line = _strip_strings(raw)
        if not line.strip():
            continue
        if scanner.open_array is not None:
            scanner.array_line(line, number)
        elif not scanner.header_line(line, number):
            scanner.key_line(line, number)
    return scanner.locations


def line_for(locations: dict[str, int], path: str) -> int | None:
    """The line of `path`, or of the nearest enclosing location that was found."""
    while path:
        if path in locations:
            return locations[path]
        trimmed = _TRAILING_PART.sub("", path)
        if trimmed == path:
            return None
        path = trimmed
    return None
