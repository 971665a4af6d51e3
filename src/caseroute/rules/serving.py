"""A ruleset's pointer file, ``rulesets/<name>/serving.yaml``: which version serves, which shadows.

The pointer is the only thing that says which version of a ruleset decides unpinned requests;
it is never inferred from file or directory order. It is small enough to edit by hand, and
``caseroute rules activate`` / ``rollback`` (through the server) rewrite it atomically::

    # Which version of patient-enquiries serves (caseroute rules activate / rollback).
    active: 2025.06.0
    shadow: 2025.07.0        # optional: evaluated beside every live decision, never returned
    previous: [2025.05.0]    # earlier active versions, most recent last (rollback takes it)
    retired: [2025.07.0]     # versions that served and left: rolled back from, or forgotten by
                             # `previous`; never reformatted (`caseroute rules fmt`)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from caseroute.domain.errors import Problem, RulesetError
from caseroute.domain.reader import near_miss
from caseroute.rules.schema import misspelt_keys, version_problem
from caseroute.rules.source import Node, read_yaml

SERVING_FILE = "serving.yaml"
MAX_SERVING_BYTES = 16 * 1024
MAX_PREVIOUS = 20
"""Earlier active versions a pointer remembers for rollback (older ones move to ``retired``)."""
MAX_RETIRED = 200
"""Versions that left the pointer that it still remembers (about 3 kB; older ones are forgotten)."""

_KEYS = ("active", "shadow", "previous", "retired")


@dataclass(frozen=True, slots=True)
class Serving:
    """What one ruleset's pointer file says.

    Attributes:
        active: The version unpinned requests get.
        shadow: A version evaluated beside each live decision (None: no shadow).
        previous: Earlier active versions, most recent last.
        path: The pointer file (for messages).
        active_line: Line of ``active:`` in the file (for ``file:line`` messages; 0 if unknown).
        shadow_line: Line of ``shadow:`` (0 if absent).
        retired: Versions that served (active or, through ``previous``, once active) and left
            the pointer: the active version a rollback left, and versions ``previous`` no
            longer holds. Most recent last. They never decide: the server refuses a request
            pinning one (review R36a M1). They also say which versions may have decided, so
            ``caseroute rules fmt`` leaves them alone (review R34b F8: after a rollback the
            version rolled back from was named nowhere, and ``fmt`` rewrote it although it had
            decided).
    """

    active: str
    shadow: str | None = None
    previous: tuple[str, ...] = ()
    path: str = ""
    active_line: int = 0
    shadow_line: int = 0
    retired: tuple[str, ...] = ()

    def activated(self, version: str) -> Serving:
        """The pointer after activating ``version`` (the current active joins ``previous``)."""
        if version == self.active:
            return self
        remembered = (*self.previous, self.active)
        previous = remembered[-MAX_PREVIOUS:]
        shadow = None if self.shadow == version else self.shadow
        retired = _retire(self.retired, remembered[:-MAX_PREVIOUS], {version, *previous})
        return Serving(version, shadow, previous, self.path, retired=retired)

    def rolled_back(self) -> Serving:
        """The pointer after a rollback: the most recent previous version is active again.

        Raises:
            IndexError: If there is no previous version.
        """
        target = self.previous[-1]
        shadow = None if self.shadow == target else self.shadow
        previous = self.previous[:-1]
        retired = _retire(self.retired, (self.active,), {target, *previous})
        return Serving(target, shadow, previous, self.path, retired=retired)


def _retire(retired: tuple[str, ...], leaving: tuple[str, ...], named: set[str]) -> tuple[str, ...]:
    """``retired`` with ``leaving`` appended last, without versions ``named`` elsewhere."""
    kept: dict[str, None] = {}
    for version in (*retired, *leaving):
        kept.pop(version, None)  # a version retired again moves to the end
        if version not in named:
            kept[version] = None
    return tuple(kept)[-MAX_RETIRED:]


def _version(node: Node, key: str, path: str) -> tuple[str | None, list[Problem]]:
    problem = version_problem(node.value)
    if problem is not None:
        return None, [Problem("serving.value", f"`{key}` {problem}", path, node.line, node.column)]
    return str(node.value), []


def parse_serving(path: Path) -> Serving:
    """Read a pointer file.

    Args:
        path: ``rulesets/<name>/serving.yaml``.

    Returns:
        What it says.

    Raises:
        RulesetError: With every problem (``file:line``) when it cannot be read or is malformed.
    """
    source = read_yaml(path, MAX_SERVING_BYTES)
    name = source.path
    root = source.root
    problems: list[Problem] = []
    if not root.is_mapping:
        raise RulesetError(
            [
                Problem(
                    "serving.type",
                    "a serving file is a mapping with `active:` (and optionally `shadow:`, "
                    "`previous:` and `retired:`); see docs/rulesets.md",
                    name,
                    root.line,
                    root.column,
                )
            ]
        )
    values: dict[str, Node] = root.value
    for key in values:
        if key not in _KEYS:
            line, column = root.key_positions.get(key, (root.line, root.column))
            hint = near_miss(str(key), _KEYS)
            tip = f" (did you mean `{hint}`?)" if hint is not None else ""
            problems.append(
                Problem(
                    "serving.unknown_key",
                    f"unknown key `{key}`{tip}; a serving file has only {', '.join(_KEYS)}",
                    name,
                    line,
                    column,
                )
            )
    active: str | None = None
    if "active" in values:
        active, found = _version(values["active"], "active", name)
        problems += found
    elif "active" not in misspelt_keys(root, _KEYS):
        # A misspelt `actve:` is one mistake: its unknown_key says "did you mean" (R34b F4).
        problems.append(
            Problem(
                "serving.missing_active",
                "no `active:` version: name the version unpinned requests get, e.g. "
                "`active: 2025.06.0`",
                name,
                root.line,
                root.column,
            )
        )
    shadow: str | None = None
    if "shadow" in values and values["shadow"].value is not None:
        shadow, found = _version(values["shadow"], "shadow", name)
        problems += found
    previous = _version_list(values, "previous", name, problems)
    retired = _version_list(values, "retired", name, problems)
    if problems or active is None:
        raise RulesetError(problems)
    return Serving(
        active,
        shadow,
        previous,
        name,
        values["active"].line,
        values["shadow"].line if "shadow" in values else 0,
        retired,
    )


def _version_list(
    values: dict[str, Node], key: str, name: str, problems: list[Problem]
) -> tuple[str, ...]:
    """The versions listed under ``key`` (absent or null: none); problems are appended."""
    node = values.get(key)
    if node is None or node.value is None:
        return ()
    if not node.is_sequence:
        problems.append(
            Problem(
                "serving.type",
                f"`{key}` is a list of versions, most recent last, e.g. [2025.05.0]",
                name,
                node.line,
                node.column,
            )
        )
        return ()
    versions = []
    for item in node.value:
        version, found = _version(item, key, name)
        problems += found
        if version is not None:
            versions.append(version)
    return tuple(versions)


def render_serving(name: str, serving: Serving) -> str:
    """The text of a pointer file (what ``write_serving`` writes)."""
    lines = [
        f"# Which version of ruleset {name} serves. Rewritten by `caseroute rules activate` and",
        "# `rollback` (through the server); safe to edit by hand: the server reloads it.",
        f'active: "{serving.active}"',  # quoted: YAML would read 2 or 1.10 as numbers
    ]
    if serving.shadow is not None:
        lines.append(f'shadow: "{serving.shadow}"')
    if serving.previous:
        quoted = ", ".join(f'"{v}"' for v in serving.previous)
        lines.append(f"previous: [{quoted}]")
    if serving.retired:
        lines.append("# Versions that served and left (rolled back from, or past `previous`).")
        quoted = ", ".join(f'"{v}"' for v in serving.retired)
        lines.append(f"retired: [{quoted}]")
    return "\n".join(lines) + "\n"


def write_serving(path: Path, name: str, serving: Serving) -> None:
    """Replace a pointer file atomically (a reader sees the old file or the new one).

    Args:
        path: The pointer file.
        name: Ruleset name (for the header comment).
        serving: What it must say.

    Raises:
        OSError: If the directory cannot be written.
    """
    write_atomically(path, render_serving(name, serving))


@contextlib.contextmanager
def pointer_lock(root: Path, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """Lock the rulesets directory ``root``: exclusive for a pointer switch, shared to reload.

    A switch (activate, rollback) reads ``serving.yaml``, writes the change, reloads to check
    it took and records it, holding the lock exclusive: one switch at a time across every
    process over the directory (two interleaved lost one, or had the first restore the
    pointer it had read over the second's change). Reloads hold it shared: the pointer is
    replaced atomically, but a worker that reloaded between another's write and its record
    swapped the change in first and recorded it under its own actor (``reload by poll``),
    so the chain lost who activated (review R37b 1). ``flock`` on the directory itself: no
    lock file appears among the rulesets, and the lock goes with its descriptor when a
    process dies holding it.

    Args:
        root: The rulesets directory (the one ``--rulesets`` names).
        shared: Take it shared (a reload), else exclusive (a switch).
        wait: Wait for the lock; else give up at once when another holds it.

    Yields:
        True while held; False when ``wait`` is False and another process holds it.

    Raises:
        OSError: If the directory cannot be opened.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and a rename.

    Raises:
        OSError: If the directory cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # noqa: PTH101 - mkstemp creates 0600; operators read it
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
