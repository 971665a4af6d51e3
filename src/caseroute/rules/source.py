"""Load operator YAML into a tree of nodes that remember their ``file:line``.

Duplicate keys are errors (PyYAML's safe loader silently keeps the last one); YAML 1.2 scalars
are used, so ``no``/``on`` stay strings. Nothing here knows what a ruleset means.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError

from caseroute.domain.errors import Problem, RulesetError

Scalar = str | int | float | bool | date | None


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with its position (1-based line and column).

    ``value`` is a ``dict[str, Node]`` for mappings, ``list[Node]`` for sequences, else a scalar.
    ``key_lines`` maps each mapping key to the line/column where the key itself is written.
    """

    value: Any
    line: int
    column: int
    key_positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def is_mapping(self) -> bool:
        """Whether this node is a mapping."""
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        """Whether this node is a sequence."""
        return isinstance(self.value, list)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One YAML file as written: path, text, sha256 of its bytes, and its node tree."""

    path: str
    text: str
    sha256: str
    root: Node


def _plain(value: Any) -> Scalar:
    # ruamel's round-trip types subclass the builtins; hand back plain values.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    return str(value)


def _convert(value: Any, line: int, column: int) -> Node:
    if isinstance(value, CommentedMap):
        entries: dict[str, Node] = {}
        keys: dict[str, tuple[int, int]] = {}
        for key in value:
            kline, kcol = value.lc.key(key)
            vline, vcol = value.lc.value(key)
            name = str(key)
            keys[name] = (kline + 1, kcol + 1)
            entries[name] = _convert(value[key], vline + 1, vcol + 1)
        return Node(entries, line, column, keys)
    if isinstance(value, CommentedSeq):
        items = []
        for i, item in enumerate(value):
            iline, icol = value.lc.item(i)
            items.append(_convert(item, iline + 1, icol + 1))
        return Node(items, line, column)
    return Node(_plain(value), line, column)


class _TextTimestampConstructor(RoundTripConstructor):
    """Leaves timestamps as the text written; callers parse dates and instants themselves."""


_TextTimestampConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str
)


def to_data(node: Node) -> Any:
    """Plain JSON-like data (dicts, lists, scalars) of a node tree, positions dropped."""
    if node.is_mapping:
        return {key: to_data(child) for key, child in node.value.items()}
    if node.is_sequence:
        return [to_data(child) for child in node.value]
    return node.value


def parse_yaml(text: str, path: str) -> SourceFile:
    """Parse YAML text into a located node tree.

    Args:
        text: The YAML document.
        path: Where it came from, used in every problem reported.

    Returns:
        The parsed file.

    Raises:
        RulesetError: On a syntax error or a duplicate key (with ``file:line``).
    """
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _TextTimestampConstructor
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = (exc.problem or "").split('"')
        name = key[1] if len(key) > 2 else "?"
        raise RulesetError(
            [
                Problem(
                    "yaml.duplicate_key",
                    f"key `{name}` appears twice in the same mapping; YAML would silently keep "
                    "only one. Remove or rename one of them",
                    path,
                    (mark.line + 1) if mark else 0,
                    (mark.column + 1) if mark else 0,
                )
            ]
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise RulesetError(
            [
                Problem(
                    "yaml.syntax",
                    f"YAML syntax error: {what}. Check indentation and quoting near this line "
                    "(quote expressions that contain `:` or start with a quote)",
                    path,
                    (mark.line + 1) if mark else 0,
                    (mark.column + 1) if mark else 0,
                )
            ]
        ) from None
    root = _convert(data, 1, 1)
    return SourceFile(path, text, hashlib.sha256(text.encode()).hexdigest(), root)


def read_yaml(path: Path) -> SourceFile:
    """Read and parse a YAML file.

    Args:
        path: The file.

    Returns:
        The parsed file; its sha256 is over the file's exact bytes.

    Raises:
        RulesetError: If the file cannot be read, is not UTF-8, or is not valid YAML.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesetError(
            [
                Problem(
                    "source.unreadable",
                    f"cannot read file: {exc.strerror or exc}; check the path",
                    str(path),
                )
            ]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesetError(
            [
                Problem(
                    "source.encoding",
                    f"file is not UTF-8 (byte {exc.start}); save it as UTF-8",
                    str(path),
                )
            ]
        ) from None
    parsed = parse_yaml(text, str(path))
    return SourceFile(parsed.path, text, hashlib.sha256(raw).hexdigest(), parsed.root)
