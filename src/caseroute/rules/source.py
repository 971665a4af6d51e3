r"""Load operator YAML into a tree of nodes that remember their ``file:line``.

The tree is built from the parser's event stream, never by ruamel's composer or constructor,
so that nothing a file says is expanded or instantiated before it is checked:

* anchors, aliases and merge keys (``<<:``) are refused where they are written, so an alias
  bomb (a 1 KB "billion laughs" document) costs nothing; operators do not need them;
* explicit tags (``!!python/object``, ``!foo``, even ``!!str``) are refused;
* nesting deeper than ``MAX_YAML_DEPTH`` stops the load at once (no recursion anywhere);
* control characters, in the text or produced by an escape such as ``"\0"``, are refused;
* numbers outside what the rule engine represents (``.inf``, ``.nan``, ``|x| >= 1e18``)
  are refused;
* duplicate keys are errors (PyYAML's safe loader silently keeps the last one).

YAML 1.2 scalars are used, so ``no``/``on`` stay strings, and timestamps stay the text written.
Every problem found is reported at once with its position. Nothing here knows what a ruleset
means.
"""

from __future__ import annotations

import hashlib
import math
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
)
from ruamel.yaml.nodes import ScalarNode

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules.limits import MAX_MAGNITUDE
from caseroute.rules.yaml_syntax import advise as advise_syntax

Scalar = str | int | float | bool | None

MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists (a ruleset needs about 7)."""
MAX_YAML_PROBLEMS = 100
"""Loading stops after this many YAML-level problems: a file of 300k aliases must not make
300k problem objects. Fixing these and re-running shows the rest."""

# What YAML's reader accepts (anything else is a ReaderError deep in ruamel): report it first.
_BAD_TEXT = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# In a value (after escapes): tab and newline only; no NUL, CR, ESC, DEL or C1 controls.
_BAD_VALUE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SCALAR_TAGS = frozenset(
    {"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", _INT, _FLOAT, "tag:yaml.org,2002:str"}
)
_MAX_NUMBER_TEXT = 40  # longer number text is out of range whatever it says (no int() of it)


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with its position (1-based line and column).

    ``value`` is a ``dict[str, Node]`` for mappings, ``list[Node]`` for sequences, else a scalar.
    ``key_positions`` maps each mapping key to the line/column where the key itself is written.
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
    """One YAML file as written: path, text, sha256 of its bytes, and its node tree.

    ``pending`` holds the problems a file read with ``past_duplicates`` still has: repeated
    keys (``yaml.duplicate_key``), each an error. The tree is whole (a repeat is left out,
    its first occurrence kept), so a compile checks it too and reports them all together.
    """

    path: str
    text: str
    sha256: str
    root: Node
    pending: tuple[Problem, ...] = ()


def to_data(node: Node) -> Any:
    """Plain JSON-like data (dicts, lists, scalars) of a node tree, positions dropped."""
    if node.is_mapping:
        return {key: to_data(child) for key, child in node.value.items()}
    if node.is_sequence:
        return [to_data(child) for child in node.value]
    return node.value


def _position(mark: StreamMark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


@dataclass(slots=True)
class _Open:
    """A mapping or sequence being built; ``key`` holds a mapping's pending key."""

    node: Node
    key: str | None = None
    key_line: int = 0
    key_column: int = 0
    expect_key: bool = True


class _TreeBuilder:
    """Builds ``Node`` trees from parser events, iteratively, collecting problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        yaml = YAML(typ="safe", pure=True)
        self._resolver = yaml.resolver
        self._constructor = yaml.constructor
        self._stack: list[_Open] = []
        self.root: Node | None = None
        self._documents = 0
        self.repeated_block = False
        """A repeated key held a list or mapping (``parse_yaml``'s ``past_duplicates``)."""

    def problem(self, code: str, message: str, mark: StreamMark | None) -> None:
        line, column = _position(mark)
        self.add(Problem(code, message, self.path, line, column))

    def add(self, problem: Problem) -> None:
        """Record a problem; stop loading once ``MAX_YAML_PROBLEMS`` are recorded."""
        self.problems.append(problem)
        if len(self.problems) >= MAX_YAML_PROBLEMS:
            raise _StopLoadingError

    def build(self, events: Any) -> Node:
        for event in events:
            self._event(event)
        return self.root if self.root is not None else Node(None, 1, 1)

    def _event(self, event: Event) -> None:
        if isinstance(event, DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                self.problem(
                    "yaml.syntax",
                    "a ruleset file holds one YAML document; remove the `---` line and what "
                    "follows, or move it to its own file",
                    event.start_mark,
                )
                raise _StopLoadingError
            return
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            done = self._stack.pop()
            self._attach(done.node)
            return
        if not isinstance(event, NodeEvent):
            return  # stream start/end, document end
        if self._stack and self._stack[-1].node.is_mapping and self._stack[-1].expect_key:
            self._key(event)
            return
        self._checks(event)
        line, column = _position(event.start_mark)
        if isinstance(event, AliasEvent):
            self._attach(Node(None, line, column))
        elif isinstance(event, CollectionStartEvent):
            if len(self._stack) >= MAX_YAML_DEPTH:
                self.problem(
                    "limit.yaml_depth",
                    f"lists and mappings are nested more than {MAX_YAML_DEPTH} deep here; a "
                    "ruleset needs far less. Flatten the structure",
                    event.start_mark,
                )
                raise _StopLoadingError
            value: dict[str, Node] | list[Node] = {} if isinstance(event, MappingStartEvent) else []
            self._stack.append(_Open(Node(value, line, column)))
        elif isinstance(event, ScalarEvent):
            if event.value == "" and event.style is None and self._stack:
                top = self._stack[-1]
                if top.node.is_mapping:  # `key:` and nothing: the parser marks the next token
                    line, column = top.key_line, top.key_column
            self._attach(Node(self._scalar(event), line, column))

    def _checks(self, event: NodeEvent) -> None:
        """Anchors, aliases and tags are refused where they are written (never followed)."""
        if isinstance(event, AliasEvent):
            self.problem(
                "yaml.anchor_not_allowed",
                f"alias `*{event.anchor}` is not allowed in caseroute YAML (aliases can expand "
                "a small file into gigabytes); write the value out in full",
                event.start_mark,
            )
            return
        if event.anchor is not None:
            self.problem(
                "yaml.anchor_not_allowed",
                f"anchor `&{event.anchor}` is not allowed in caseroute YAML (aliases can expand "
                "a small file into gigabytes); remove it and write values out in full",
                event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            self.problem(
                "yaml.tag_not_allowed",
                f"YAML tag `{tag}` is not allowed in caseroute YAML; remove it (write plain "
                "values, quoted when they must stay text)",
                event.start_mark,
            )

    def _key(self, event: NodeEvent) -> None:
        top = self._stack[-1]
        self._checks(event)
        if not isinstance(event, ScalarEvent):
            self.problem(
                "yaml.complex_key",
                "a mapping key must be a plain name, not a list or mapping (`? [...]`); "
                "write `name: value`",
                event.start_mark,
            )
            raise _StopLoadingError
        name = event.value
        if name == "<<" and event.style is None:
            self.problem(
                "yaml.merge_key_not_allowed",
                "merge keys (`<<:`) are not allowed in caseroute YAML; write the keys out in full",
                event.start_mark,
            )
        self._value_text(name, event.start_mark)
        top.key = name
        top.key_line, top.key_column = _position(event.start_mark)
        top.expect_key = False

    def _attach(self, node: Node) -> None:
        if not self._stack:
            self.root = node
            return
        top = self._stack[-1]
        if top.node.is_sequence:
            top.node.value.append(node)
            return
        key = top.key
        assert key is not None  # noqa: S101 - a key event always precedes its value
        entries: dict[str, Node] = top.node.value
        if key in entries:
            if not isinstance(node.value, str | int | float | bool | None) or not isinstance(
                entries[key].value, str | int | float | bool | None
            ):
                # A repeated section or block: its second part is left out, so checks of the
                # first would report what the second holds as missing (a `constraints:` block
                # written twice lacks `safeguarding`): nothing past the load is checked.
                self.repeated_block = True
            self.add(
                Problem(
                    "yaml.duplicate_key",
                    f"key `{key}` appears twice in the same mapping; YAML would silently keep "
                    "only one. Remove or rename one of them",
                    self.path,
                    top.key_line,
                    top.key_column,
                )
            )
        else:
            entries[key] = node
            top.node.key_positions[key] = (top.key_line, top.key_column)
        top.key = None
        top.expect_key = True

    def _value_text(self, text: str, mark: StreamMark | None) -> None:
        bad = _BAD_VALUE.search(text)
        if bad is not None:
            self.problem(
                "yaml.control_character",
                f"control character {_describe_char(bad.group())} (written as an escape such "
                "as `\\0`) is not allowed in a value; remove it",
                mark,
            )

    def _scalar(self, event: ScalarEvent) -> Scalar:
        text: str = event.value
        self._value_text(text, event.start_mark)
        if event.style is not None or event.tag is not None:  # quoted or tagged: text
            return text
        resolved = self._resolver.resolve(ScalarNode, text, (True, False))
        tag = str(resolved)  # a ruamel Tag: equal to its text, but hashed differently
        if tag not in _SCALAR_TAGS:  # timestamps and anything else stay the text written
            return text
        if tag in (_INT, _FLOAT) and len(text) > _MAX_NUMBER_TEXT:
            self._number_problem(text, event.start_mark)
            return None
        built: Any = self._constructor.construct_object(ScalarNode(resolved, text))
        if built is None or isinstance(built, bool):
            return bool(built) if built is not None else None
        number: int | float
        if isinstance(built, int):
            number = int(built)  # ruamel's ScalarInt & co. back to a plain int
        elif isinstance(built, float):
            number = float(built)
        else:
            return str(built)
        if not math.isfinite(number) or abs(number) >= MAX_MAGNITUDE:  # the engine's int64
            self._number_problem(text, event.start_mark)
            return None
        return number

    def _number_problem(self, text: str, mark: StreamMark | None) -> None:
        shown = text if len(text) <= 20 else text[:17] + "..."
        self.problem(
            "limit.number",
            f"number {shown} is out of range: rule engines need finite numbers between "
            "-1e18 and 1e18 (no .inf or .nan); write a smaller number, or quote it if it is text",
            mark,
        )


class _StopLoadingError(Exception):
    """Raised inside the builder when loading cannot usefully continue."""


def parse_yaml(text: str, path: str, *, past_duplicates: bool = False) -> SourceFile:
    """Parse YAML text into a located node tree.

    Args:
        text: The YAML document (a leading byte-order mark is ignored).
        path: Where it came from, used in every problem reported.
        past_duplicates: When keys repeated with single values (``E1: Y56`` then
            ``E1: Y58``) are the only problems, return the tree with them ``pending`` instead
            of raising, for a caller that checks the rest and reports them together (the
            ruleset compiler: every problem at once). Any other problem still raises: the tree
            would not hold what was written (an alias is left out, a syntax error ends the
            tree), and so does a repeated list or mapping, whose checks would report what its
            left-out repeat holds as missing.

    Returns:
        The parsed file.

    Raises:
        RulesetError: With every problem found (syntax, duplicate key, anchor or alias, tag,
            control character, nesting too deep, number out of range), each at ``file:line``.
    """
    body = text.removeprefix("\ufeff")
    bad = _BAD_TEXT.search(body)
    if bad is not None:
        line, column = _line_column(body, bad.start())
        raise RulesetError(
            [
                Problem(
                    "yaml.control_character",
                    f"control character {_describe_char(bad.group())} is not allowed in YAML; "
                    "delete it (an editor that shows invisible characters helps)",
                    path,
                    line,
                    column,
                )
            ]
        )
    builder = _TreeBuilder(path)
    root = Node(None, 1, 1)
    whole = False
    try:
        root = builder.build(YAML(typ="safe", pure=True).parse(body))
        whole = True
    except _StopLoadingError:
        pass
    except MarkedYAMLError as exc:
        advice = advise_syntax(exc, body)
        builder.problems.append(
            Problem("yaml.syntax", advice.message, path, advice.line, advice.column)
        )
    except YAMLError as exc:
        builder.problems.append(
            Problem("yaml.syntax", f"YAML syntax error: {exc}. Check the file", path)
        )
    pending = tuple(builder.problems)
    if pending and not (
        past_duplicates
        and whole
        and not builder.repeated_block
        and all(p.code == "yaml.duplicate_key" for p in pending)
    ):
        raise RulesetError(builder.problems)
    if root.is_mapping or root.is_sequence:
        root = Node(root.value, 1, 1, root.key_positions)
    else:
        root = Node(root.value, 1, 1)
    return SourceFile(path, text, hashlib.sha256(text.encode()).hexdigest(), root, pending)


def read_yaml(
    path: Path, max_bytes: int | None = None, *, past_duplicates: bool = False
) -> SourceFile:
    """Read and parse a YAML file.

    Args:
        path: The file.
        max_bytes: Refuse files larger than this (None: no limit).
        past_duplicates: As ``parse_yaml``'s.

    Returns:
        The parsed file; its sha256 is over the file's exact bytes.

    Raises:
        RulesetError: If the file cannot be read, is too large, is not UTF-8, or is not
            valid YAML.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise RulesetError(
                [
                    Problem(
                        "source.unreadable",
                        "not a regular file (a FIFO, device or directory); point at a YAML file",
                        str(path),
                    )
                ]
            )
        with path.open("rb") as handle:  # bounded read: the file may grow after stat
            raw = handle.read(-1 if max_bytes is None else max_bytes + 1)
        size = max(info.st_size, len(raw))
        if max_bytes is not None and size > max_bytes:
            raise RulesetError(
                [
                    Problem(
                        "limit.file_size",
                        f"file is {size} bytes; the limit is {max_bytes} bytes. Split it, or "
                        "remove what it does not need",
                        str(path),
                    )
                ]
            )
    except OSError as exc:
        raise RulesetError(
            [
                Problem(
                    "source.unreadable",
                    f"cannot read file: {exc.strerror or type(exc).__name__}; check the path",
                    str(path),
                )
            ]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise RulesetError(
            [
                Problem(
                    "source.encoding",
                    f"byte 0x{raw[exc.start]:02X} is not UTF-8; save the file as UTF-8",
                    str(path),
                    line,
                    column,
                )
            ]
        ) from None
    parsed = parse_yaml(text, str(path), past_duplicates=past_duplicates)
    return SourceFile(
        parsed.path, text, hashlib.sha256(raw).hexdigest(), parsed.root, parsed.pending
    )
