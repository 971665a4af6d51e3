"""Rewrite a ruleset file in one canonical layout, keeping its comments and its meaning.

The canonical layout (``caseroute rules fmt``):

* top-level keys in the documented order (``CANONICAL_ORDER``); the comment lines written
  above a key move with it, and the file's opening comment stays at the top;
* 2-space indentation; list items indented 2 under their key (``  - id: ...``);
* every mapping and list keeps the style it was written in (block, or ``{...}``/``[...]``
  flow) and every scalar keeps its quoting, except conditions;
* a condition (``when``) is written on one line: plain when YAML allows it, else in double
  quotes (a condition starting with a quote, or holding ``: `` or `` #``);
* scalars are never re-wrapped; block scalars (``|``, ``>``) are kept as written;
* comments (full-line and end-of-line) are kept; trailing whitespace is removed outside block
  scalars; runs of blank lines become one; no blank lines at the start; one final newline.

Hostile YAML is never round-tripped: a file is first read and compiled by the normal loader
(which refuses anchors, aliases, tags, merge keys, over-deep nesting and oversized files) and
only a file that loads is handed to ruamel's round-trip mode. The result is compiled again and
must mean exactly what the original meant (``semantic_form``), else nothing is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import stat
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.events import (
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, PlainScalarString

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules.compiler import MAX_RULESET_BYTES, compile_source
from caseroute.rules.model import (
    CompiledRuleset,
    EscalateAction,
    Ladder,
    Requirements,
    RouteAction,
    Rule,
)
from caseroute.rules.source import parse_yaml, read_yaml

CANONICAL_ORDER = (
    "ruleset",
    "version",
    "description",
    "owner",
    "params",
    "signals",
    "attributes",
    "constraints",
    "compacts",
    "registers",
    "areas",
    "matching",
    "ladders",
    "continuity",
    "queues",
    "rules",
)
"""Top-level keys in the order docs/rulesets.md documents them."""

MAX_FLOW_LINE = 100
"""A ``{...}``/``[...]`` collection whose line would be longer than this is written as a block."""
_WIDTH = 4096  # never re-wrap a scalar: long lines stay long, folded text keeps its folds
_COMMENT_OR_BLANK = re.compile(r"[ \t]*(#.*)?")
_COMMENT = re.compile(r"(?:^|[ \t])(#.*)$")


class FormatError(RulesetError):
    """The formatted text would not mean what the original meant; nothing was written."""


def semantic_form(compiled: CompiledRuleset) -> CompiledRuleset:
    """A compiled ruleset with everything that depends on layout, not meaning, blanked.

    Two files that decide every case identically under the same version have equal semantic
    forms: the path, the sha256 and text of the bytes, rule line numbers and lint warnings
    (which quote lines) are dropped; names, params, constraints, compacts, leaves, rules,
    conditions as written and the durable_rules definitions are kept.

    Args:
        compiled: A compiled ruleset.

    Returns:
        A copy fit for ``==`` comparison.
    """
    ladders = {name: _ladder_without_lines(ladder) for name, ladder in compiled.ladders.items()}
    continuity = compiled.continuity
    return dataclasses.replace(
        compiled,
        path="",
        sha256="",
        source_text="",
        warnings=(),
        rules=tuple(_rule_without_lines(rule) for rule in compiled.rules),
        ladders=ladders,
        continuity=None if continuity is None else dataclasses.replace(continuity, line=0),
    )


def _ladder_without_lines(ladder: Ladder) -> Ladder:
    """A ladder with its own and its steps' line numbers blanked (moving a section is layout)."""
    steps = tuple(dataclasses.replace(step, line=0) for step in ladder.steps)
    return dataclasses.replace(ladder, line=0, steps=steps)


def _requirements_without_lines(req: Requirements) -> Requirements:
    if req.ladder is None:
        return req
    return dataclasses.replace(req, ladder=_ladder_without_lines(req.ladder))


def _rule_without_lines(rule: Rule) -> Rule:
    """A rule with its line blanked, and the lines of the ladder its action names."""
    action = rule.action
    if isinstance(action, RouteAction):
        action = dataclasses.replace(
            action, requirements=_requirements_without_lines(action.requirements)
        )
    elif isinstance(action, EscalateAction) and action.assign is not None:
        action = dataclasses.replace(action, assign=_requirements_without_lines(action.assign))
    return dataclasses.replace(rule, line=0, action=action)


def _round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = _WIDTH
    return yaml


def _events(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).parse(text))


def _last_line(event: Any) -> int:
    """0-based line of the last character an event covers (a block scalar ends at column 0)."""
    mark = event.end_mark
    return int(mark.line) - 1 if mark.column == 0 and mark.line > 0 else int(mark.line)


def _top_level_blocks(text: str) -> list[tuple[str, int, int]] | None:
    """Where each top-level key's text is: (key, first line, last content line), 0-based.

    None when the file is not a block mapping whose keys each start a line.
    """
    events = _events(text)
    root = next((e for e in events if isinstance(e, CollectionStartEvent)), None)
    if not isinstance(root, MappingStartEvent) or root.flow_style:
        return None
    blocks: list[tuple[str, int, int]] = []
    flow: list[bool] = []  # flow style of each open collection under the root
    expect_key = True
    for event in events[events.index(root) + 1 :]:
        depth = len(flow)
        if depth == 0 and isinstance(event, CollectionEndEvent):
            break
        if depth == 0 and expect_key:
            if not isinstance(event, ScalarEvent) or event.start_mark.column != 0:
                return None
            blocks.append((str(event.value), int(event.start_mark.line), int(event.end_mark.line)))
            expect_key = False
            continue
        key, first, last = blocks[-1]
        if isinstance(event, ScalarEvent):
            last = max(last, _last_line(event))
        elif isinstance(event, CollectionStartEvent):
            flow.append(bool(event.flow_style))
        elif isinstance(event, CollectionEndEvent) and flow.pop():
            # A block collection "ends" where the next token starts; a flow one at its bracket.
            last = max(last, int(event.end_mark.line))
        blocks[-1] = (key, first, last)
        expect_key = not flow
    return blocks


def _order_top_level(text: str) -> str:
    """The text with its top-level keys in ``CANONICAL_ORDER``, each with the comments above it.

    Works on lines, so comments move with the key they precede; the lines before the first key
    (the file's header comment) stay first and the lines after the last key stay last.
    """
    blocks = _top_level_blocks(text)
    if blocks is None or [k for k, _, _ in blocks] == sorted(
        (k for k, _, _ in blocks), key=CANONICAL_ORDER.index
    ):
        return text
    lines = text.splitlines()
    header = lines[: blocks[0][1]]
    body: dict[str, list[str]] = {}
    leading: list[str] = []
    for index, (key, first, last) in enumerate(blocks):
        end = blocks[index + 1][1] if index + 1 < len(blocks) else len(lines)
        gap = lines[last + 1 : end]
        if not all(_COMMENT_OR_BLANK.fullmatch(line) for line in gap):
            return text  # not a layout this understands: leave the order as written
        body[key] = [*leading, *lines[first : last + 1]]
        leading = gap
    trailer = leading
    ordered = [line for key in sorted(body, key=CANONICAL_ORDER.index) for line in body[key]]
    return "\n".join([*header, *ordered, *trailer]) + "\n"


def _plain_allowed(value: str) -> bool:
    """Whether ruamel writes ``value`` as a plain (unquoted) scalar that reads back as text."""
    yaml = _round_trip_yaml()
    out = io.StringIO()
    yaml.dump({"when": value}, out)
    return not out.getvalue().startswith(("when: '", 'when: "', "when: |", "when: >"))


def _bare_flow(node: Any) -> Any:
    """A flow-style copy of a collection without its comments (they do not count as width)."""
    if isinstance(node, CommentedMap):
        bare: CommentedMap | CommentedSeq = CommentedMap(
            (key, _bare_flow(value)) for key, value in node.items()
        )
    elif isinstance(node, CommentedSeq):
        bare = CommentedSeq(_bare_flow(item) for item in node)
    else:
        return node
    bare.fa.set_flow_style()
    return bare


def _flow_width(yaml: YAML, node: Any) -> int:
    """Characters of a flow collection written on one line (over the limit if it cannot be)."""
    out = io.StringIO()
    yaml.dump(_bare_flow(node), out)
    text = out.getvalue().rstrip("\n")
    return len(text) if "\n" not in text else MAX_FLOW_LINE + 1


def _fit_child(yaml: YAML, value: Any, line_start: int, content_column: int) -> None:
    """Make ``value`` a block if it is a flow collection too long for its line, then recurse.

    Args:
        yaml: The round-trip dumper (to measure flow text).
        value: A mapping's value or a list's item.
        line_start: Characters on the line before the value (indent and ``key: `` or ``- ``).
        content_column: Column of the value's own keys or dashes if it is a block.
    """
    if not isinstance(value, CommentedMap | CommentedSeq):
        return
    if value.fa.flow_style() and line_start + _flow_width(yaml, value) > MAX_FLOW_LINE:
        value.fa.set_block_style()
    if not value.fa.flow_style():
        _fit_block(yaml, value, content_column)


def _fit_block(yaml: YAML, node: CommentedMap | CommentedSeq, column: int) -> None:
    """Apply the flow-width rule under a block collection with keys or dashes at ``column``.

    Mappings nest 2 deeper; list dashes are 2 under their key and items 2 after the dash.
    """
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            _fit_child(yaml, value, column + len(f"{key}: "), column + 2)
    else:
        for item in node:
            _fit_child(yaml, item, column + 2, column + 2)


def _canonical_structure(yaml: YAML, data: Any) -> None:
    """Top-level keys in ``CANONICAL_ORDER``, the file a block mapping, flow lines fitted."""
    if not isinstance(data, CommentedMap):
        return
    data.fa.set_block_style()
    for key in CANONICAL_ORDER:  # already in order unless the text could not be reordered
        if key in data:
            data.move_to_end(key)
    _fit_block(yaml, data, 0)


def _canonical_conditions(data: Any) -> None:
    """Write each rule's ``when`` text plain when YAML allows, else double-quoted."""
    rules = data.get("rules") if isinstance(data, CommentedMap) else None
    if not isinstance(rules, list):
        return
    for rule in rules:
        if isinstance(rule, CommentedMap) and isinstance(rule.get("when"), str):
            # A ScalarString type, not str: assigning a str would keep the old quoting.
            text = str(rule["when"])
            style = PlainScalarString if _plain_allowed(text) else DoubleQuotedScalarString
            rule["when"] = style(text)


def _scalar_lines(text: str) -> set[int]:
    """0-based lines after the first of every scalar spanning several lines.

    A block scalar's content or a multi-line quoted or plain scalar: that text is the value's,
    so it is left untouched.
    """
    protected: set[int] = set()
    for event in _events(text):
        if isinstance(event, ScalarEvent):
            protected.update(range(event.start_mark.line + 1, _last_line(event) + 1))
        if isinstance(event, DocumentEndEvent):
            break
    return protected


def _tidy_lines(text: str) -> str:
    """Trailing whitespace off, blank runs to one, none at the start, one final newline.

    Each full-line comment is indented like the line it precedes.
    """
    protected = _scalar_lines(text)
    lines = text.splitlines()
    out: list[str] = []
    indent = ""  # indentation of the next line that is neither blank nor a comment
    for number in range(len(lines) - 1, -1, -1):
        line = lines[number]
        stripped = line.strip()
        if number not in protected and stripped.startswith("#"):
            line = indent + stripped
        elif number not in protected and stripped:
            indent = line[: len(line) - len(line.lstrip())]
        out.append(line if number in protected else line.rstrip())
    out.reverse()
    tidy: list[str] = []
    for number, line in enumerate(out):
        if not line and number not in protected and (not tidy or not tidy[-1]):
            continue
        tidy.append(line)
    out = tidy
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def _comments(text: str) -> list[tuple[int, str]]:
    """(1-based line, text) of every comment: ``#`` after a blank, outside every scalar."""
    masked = list(text)
    for event in _events(text):
        if isinstance(event, ScalarEvent):
            for index in range(event.start_mark.index, event.end_mark.index):
                if masked[index] != "\n":
                    masked[index] = " "
    found = []
    for number, line in enumerate("".join(masked).splitlines(), 1):
        match = _COMMENT.search(line)
        if match:
            found.append((number, match.group(1).rstrip()))
    return found


def _check_comments_kept(before: str, after: str, path: str) -> None:
    """Raise ``FormatError`` naming the first comment of ``before`` missing from ``after``."""
    kept = Counter(comment for _, comment in _comments(after))
    for line, comment in _comments(before):
        if kept[comment] == 0:
            shown = comment if len(comment) <= 40 else comment[:40] + "..."
            raise FormatError(
                [
                    Problem(
                        "fmt.comment_lost",
                        f"formatting would lose the comment `{shown}` (a comment inside "
                        "`{...}` or `[...]` cannot be kept); move it to its own line above "
                        "the collection and re-run. The file was left as it is",
                        path,
                        line,
                    )
                ]
            )
        kept[comment] -= 1


def format_text(text: str, path: str) -> str:
    """The canonical layout of a ruleset's text.

    Args:
        text: The ruleset file's text.
        path: Where it came from, for diagnostics.

    Returns:
        The formatted text (equal to ``text`` when it is already canonical).

    Raises:
        RulesetError: If the text does not load as a ruleset (every problem, with
            ``file:line``); nothing is round-tripped then.
        FormatError: If the formatted text would mean something else (a bug: please report).
    """
    before = semantic_form(compile_source(parse_yaml(text, path, past_duplicates=True)))
    yaml = _round_trip_yaml()
    data = yaml.load(_order_top_level(text.removeprefix("\ufeff")))
    _canonical_structure(yaml, data)
    _canonical_conditions(data)
    out = io.StringIO()
    yaml.dump(data, out)
    formatted = _tidy_lines(out.getvalue())
    _check_comments_kept(text.removeprefix("\ufeff"), formatted, path)
    try:
        after = semantic_form(compile_source(parse_yaml(formatted, path)))
    except RulesetError:
        after = None
    if after != before:
        raise FormatError(
            [
                Problem(
                    "fmt.meaning_changed",
                    "formatting this file would change what it means, so it was left as it "
                    "is; please report this with the file",
                    path,
                )
            ]
        )
    return formatted


def format_file(path: Path) -> tuple[str, str]:
    """Read a ruleset file and format it (nothing is written).

    Args:
        path: The YAML file.

    Returns:
        ``(original text, formatted text)``.

    Raises:
        RulesetError: If the file cannot be read or does not load (every problem).
        FormatError: If formatting would change its meaning.
    """
    source = read_yaml(path, MAX_RULESET_BYTES, past_duplicates=True)
    return source.text, format_text(source.text, str(path))


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content all at once, keeping its permission bits.

    The text goes to a temporary file in the same directory, is flushed to disk, gets the
    original file's mode and is renamed over it, so a reader (or a crash) sees the old file or
    the new one, never half of one.

    A symbolic link is followed: the file it points at is replaced and the link stays a link.

    Args:
        path: The file to replace.
        text: Its new content (written as UTF-8).

    Raises:
        OSError: If the file cannot be written; the original is then unchanged.
    """
    path = path.resolve()
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), mode)
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
