"""Render a ``RulesetDiff`` as plain text (one line per change), markdown, or JSON-ready data.

Every value and name in the output comes from an operator's file. The renderers return raw
lines and data; the caller makes them terminal-safe where it prints them (the CLI escapes each
line with ``render.escape_text`` and writes JSON with ``render.safe_json``): ``render`` sits
above ``rules`` in the layers, so this module cannot call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from caseroute.rules.diff import (
    Change,
    ChangeKind,
    JsonValue,
    RulesetDiff,
    RulesetIdentity,
    Section,
    changes_in,
)

_PLAIN = re.compile(r"[^\s,\[\]{}():<>\"'#]+")
_NOT_TEXT = re.compile(  # text that would read as a boolean, nothing, or a number
    r"true|false|null|~|[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?\.(inf|nan)",
    re.IGNORECASE,
)
_MARK = {
    ChangeKind.ADDED: "+",
    ChangeKind.REMOVED: "-",
    ChangeKind.CHANGED: "~",
    ChangeKind.MOVED: ">",
    ChangeKind.REWORDED: "=",
}
NOT_SEMANTIC = "no effect on decisions"


def flow(value: JsonValue) -> str:
    """A value in YAML flow style.

    Text is double-quoted when it holds spaces or punctuation, or would read as something else
    (``"1"``, ``"true"``, ``"(none)"``), so a string never looks like a number, boolean or
    nothing.
    """
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and not _NOT_TEXT.fullmatch(value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"


def _what(change: Change, code: Callable[[str], str]) -> str:
    """The subject and field of a change, e.g. ``clinical route.licence``."""
    field = change.field
    if change.section is Section.RULES:
        subject = f"rule {code(change.subject)}"
    elif change.section is Section.LADDERS:
        subject = f"ladder {code(change.subject)}"
        if field.startswith("steps."):  # steps.<name>[.<part>]; a step name has no dot
            _, step, *rest = field.split(".", 2)
            subject += f" step {code(step)}"
            field = rest[0] if rest else ""
    else:
        subject = code(change.subject)
    if field and field != "position":
        return f"{subject} {code(field)}"
    return subject


def _timed(change: Change) -> Callable[[JsonValue], str] | None:
    """How to write a delay, hold or window in words (``10 min``, ``never``), if it is one."""
    if change.kind is not ChangeKind.CHANGED:
        return None
    if change.section is Section.LADDERS and ".after." in change.field:
        return lambda v: "never" if v is None else f"{flow(v)} min"
    if change.section is Section.CONTINUITY and change.field.startswith("hold."):
        return lambda v: f"{flow(v)} min"
    if change.section is Section.CONTINUITY and change.field == "window_days":
        return lambda v: f"{flow(v)} days"
    return None


def describe_change(change: Change, code: Callable[[str], str] = lambda s: s) -> str:
    """One change as one line of words, without its marker or location.

    Args:
        change: The change.
        code: Wraps names and values (identity for text, a code span for markdown).

    Returns:
        E.g. ``rule clinical route.licence: [RN] -> [RN, LPN]``.
    """
    what = _what(change, code)
    old, new = code(flow(change.old)), code(flow(change.new))
    timed = _timed(change)
    if timed is not None:
        return f"{what}: {code(timed(change.old))} -> {code(timed(change.new))}"
    if change.section is Section.LADDERS and change.field.endswith(".position"):
        return f"{what}: moved from position {old} to {new} (steps take effect in ladder order)"
    if change.field == "position":
        if change.kind is ChangeKind.ADDED:
            return f"{what}: added at position {new}"
        if change.kind is ChangeKind.REMOVED:
            return f"{what}: removed (was at position {old})"
        return f"{what}: moved from position {old} to {new} (the first rule that applies decides)"
    if change.kind is ChangeKind.ADDED:
        return f"{what}: added {new}"
    if change.kind is ChangeKind.REMOVED:
        return f"{what}: removed (was {old})"
    if change.field == "when" and change.old == change.new:
        return f"{what}: {new} (same text, new meaning: a param it reads changed)"
    if change.kind is ChangeKind.REWORDED:
        return f"{what}: reworded, same meaning: {old} -> {new}"
    return f"{what}: {old} -> {new}"


def _summary(diff: RulesetDiff) -> str:
    semantic = len(diff.semantic_changes)
    other = len(diff.changes) - semantic
    if semantic:
        return f"{semantic} semantic change(s), {other} other change(s)"
    if not diff.sha256_differs:
        return "no changes: the two files are identical"
    listed = other - 1  # the sha256 line itself
    if listed:
        return (
            f"no semantic changes: the {listed} change(s) listed do not affect decisions; "
            "the sha256 differs"
        )
    return "no semantic changes (only whitespace, comments or layout); the sha256 differs"


def _side(label: str, side: RulesetIdentity) -> str:
    return f"{label}: {side.name} {side.version} ({side.path}, sha256 {side.sha256})"


def render_diff_text(diff: RulesetDiff) -> list[str]:
    """Plain text lines: the two versions, one line per change grouped by section, a summary.

    A change that cannot change a decision ends in ``(no effect on decisions)``; a location is
    ``(file:line)``. The lines are not escaped: escape each before printing it.
    """
    lines = [_side("old", diff.old), _side("new", diff.new)]
    for section in Section:
        changes = list(changes_in(diff, section))
        if not changes:
            continue
        lines.append(f"{section.value}:")
        for change in changes:
            line = f"  {_MARK[change.kind]} {describe_change(change)}"
            if change.location:
                line += f"  ({change.location})"
            if not change.semantic:
                line += f"  ({NOT_SEMANTIC})"
            lines.append(line)
    lines.append(_summary(diff))
    return lines


def _code(text: str) -> str:
    """A markdown code span holding ``text`` literally."""
    runs = [len(run) for run in re.findall("`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """A code span in a table cell: a cell ends at ``|`` even inside a code span."""
    return _code(text).replace("|", "\\|")


def render_diff_markdown(diff: RulesetDiff) -> list[str]:
    """Markdown lines for a pull-request comment: summary, a header table, a list per section.

    The lines are not escaped: escape each before printing it.
    """
    old, new = diff.old, diff.new
    lines = [
        f"### Ruleset diff: {_code(new.name)} {_code(old.version)} → {_code(new.version)}",
        "",
        f"**{_summary(diff)}**",
        "",
        "| | old | new |",
        "| --- | --- | --- |",
        f"| ruleset | {_cell(old.name)} | {_cell(new.name)} |",
        f"| version | {_cell(old.version)} | {_cell(new.version)} |",
        f"| file | {_cell(old.path)} | {_cell(new.path)} |",
        f"| sha256 | {_cell(old.sha256)} | {_cell(new.sha256)} |",
    ]
    for section in Section:
        changes = list(changes_in(diff, section))
        if not changes:
            continue
        lines += ["", f"#### {section.value}", ""]
        for change in changes:
            line = f"- {describe_change(change, _code)}"
            if change.location:
                line += f" ({_code(change.location)})"
            if not change.semantic:
                line += f" _({NOT_SEMANTIC})_"
            lines.append(line)
    return lines


def diff_as_data(diff: RulesetDiff) -> dict[str, JsonValue]:
    """The diff as JSON-ready data (the ``--format json`` document)."""

    def side(s: RulesetIdentity) -> JsonValue:
        return {"name": s.name, "version": s.version, "sha256": s.sha256, "path": s.path}

    return {
        "old": side(diff.old),
        "new": side(diff.new),
        "differs": diff.differs,
        "sha256_differs": diff.sha256_differs,
        "semantic_changes": len(diff.semantic_changes),
        "other_changes": len(diff.changes) - len(diff.semantic_changes),
        "changes": [
            {
                "section": c.section.value,
                "kind": c.kind.value,
                "subject": c.subject,
                "field": c.field,
                "old": c.old,
                "new": c.new,
                "location": c.location,
                "semantic": c.semantic,
            }
            for c in diff.changes
        ],
    }
