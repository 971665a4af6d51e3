"""Where ruleset versions live on disk: find every version and pointer file under a directory.

The layout (docs/rulesets.md, "Versions")::

    rulesets/
      patient-enquiries/
        serving.yaml              # which version is active (and shadow); see rules/serving.py
        2025.06.0/ruleset.yaml    # one directory per version, golden/ beside each
        2025.07.0/ruleset.yaml
      other-ruleset/ruleset.yaml  # a ruleset with one version may sit directly in its directory

A version directory must be named for the version its file declares, inside a directory named
for the ruleset (checked when it is loaded: ``check_placement``), so what an operator sees in
the tree is what serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caseroute.domain.errors import Problem
from caseroute.rules.compiler import RULESET_FILE, ruleset_file
from caseroute.rules.serving import SERVING_FILE, parse_serving


@dataclass(frozen=True, slots=True)
class VersionSource:
    """One ruleset source found on disk.

    Attributes:
        path: The ruleset directory (or file) to load.
        name_dir: For a version directory, the ruleset name its parent directory says.
        version_dir: For a version directory, the version its own name says.
    """

    path: Path
    name_dir: str | None = None
    version_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """Every source and pointer file under a rulesets directory.

    Attributes:
        sources: Ruleset sources in a stable order (which one serves never depends on it).
        pointers: Ruleset name (its directory's name) -> its ``serving.yaml``.
    """

    sources: tuple[VersionSource, ...]
    pointers: dict[str, Path] = field(default_factory=dict)


def _visible_dirs(path: Path) -> list[Path]:
    """Sub-directories, sorted, without hidden ones (editors' and our own temporary files)."""
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def discover(root: Path) -> Layout:
    """Find every ruleset version and pointer file under ``root``.

    Args:
        root: A rulesets directory, one ruleset's directory (version directories beside a
            ``serving.yaml``), a single ruleset directory (``ruleset.yaml`` inside) or a file.
            A directory without ``serving.yaml`` is a rulesets directory: each sub-directory
            holding a ``ruleset.yaml`` is one (flat) ruleset.

    Returns:
        The layout; a path that cannot be listed contributes nothing.
    """
    if root.is_file() or (root / RULESET_FILE).is_file():
        return Layout((VersionSource(root),))
    if (root / SERVING_FILE).is_file():
        # One ruleset's directory given directly (its pointer file says so).
        return Layout(tuple(_version_dirs(root)), _pointer(root))
    sources: list[VersionSource] = []
    pointers: dict[str, Path] = {}
    for home in _visible_dirs(root):
        if (home / RULESET_FILE).is_file():
            sources.append(VersionSource(home))
        sources += _version_dirs(home)
        pointers |= _pointer(home)
    return Layout(tuple(sources), pointers)


def _version_dirs(home: Path) -> list[VersionSource]:
    return [
        VersionSource(version, home.name, version.name)
        for version in _visible_dirs(home)
        if (version / RULESET_FILE).is_file()
    ]


def _pointer(home: Path) -> dict[str, Path]:
    pointer = home / SERVING_FILE
    return {home.name: pointer} if pointer.is_file() else {}


def key_line(text: str, key: str) -> int:
    """Line of the first top-level ``key:`` in a YAML text (1 when not found)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def check_placement(source: VersionSource, name: str, version: str, text: str) -> list[Problem]:
    """Problems when a version directory is not named for what its file declares.

    Args:
        source: Where the file was found.
        name: The ``ruleset:`` name the file declares.
        version: The ``version:`` it declares.
        text: The file's text (to point at the line of the key that disagrees).

    Returns:
        One ``versions.misplaced`` problem per mismatch (none for a flat directory).
    """
    problems = []
    file = str(ruleset_file(source.path))
    if source.name_dir is not None and source.name_dir != name:
        problems.append(
            Problem(
                "versions.misplaced",
                f"this file declares ruleset `{name}` but sits under `{source.name_dir}/`: a "
                f"version lives in rulesets/<name>/<version>/; move it to {name}/{version}/ or "
                "fix `ruleset:`",
                file,
                1,
            )
        )
    if source.version_dir is not None and source.version_dir != version:
        problems.append(
            Problem(
                "versions.misplaced",
                f"this file declares version `{version}` but sits in directory "
                f"`{source.version_dir}/`: rename the directory to {version}/ or fix `version:` "
                "(create new versions with `caseroute rules new-version`)",
                file,
                key_line(text, "version"),
            )
        )
    return problems


def active_source(path: Path) -> Path:
    """The version directory a ruleset's pointer names active, or ``path`` itself.

    Lets ``caseroute decide --ruleset rulesets/patient-enquiries`` use the version the server
    would (never the last in directory order).

    Raises:
        RulesetError: If the pointer file is malformed.
    """
    pointer = path / SERVING_FILE
    if path.is_dir() and not (path / RULESET_FILE).is_file() and pointer.is_file():
        return path / parse_serving(pointer).active
    return path


def expand_sources(path: Path) -> list[Path]:
    """Every ruleset version a path holds, for commands that check or test each one.

    A ruleset file or directory is itself; a ruleset's home or a rulesets directory gives
    every version under it, in path order (order only sorts the output here). A path holding
    none is returned as is, so the command says what is missing there.
    """
    if path.is_file() or (path / RULESET_FILE).is_file():
        return [path]
    found = [source.path for source in discover(path).sources]
    return found or [path]
