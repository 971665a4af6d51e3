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

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules.compiler import RULESET_FILE, ruleset_file
from caseroute.rules.serving import SERVING_FILE, Serving, parse_serving


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


MAX_DECLARED_SCAN = 64 * 1024
"""Characters of a version's file read to find its ``ruleset:`` line (a top-level key near
the top; the compiler reads the whole file, bounded, later)."""


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


def version_names(home: Path) -> list[str]:
    """The names of a ruleset directory's version directories (those holding a ruleset file)."""
    return [source.path.name for source in _version_dirs(home)]


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
                key_line(text, "ruleset"),  # review R34b F5: was line 1 whatever the file
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


def expand_version_sources(path: Path) -> list[VersionSource]:
    """``expand_sources`` with where each version was found (for ``check_placement``).

    A directory without ``serving.yaml`` whose sub-directories all declare ``ruleset:`` its
    own name is one ruleset's home, not a rulesets directory of flat rulesets: its versions
    are checked as such (review R32d F9: `rules check rulesets/<name>` passed two versions
    with no pointer, or a misplaced one, that the server reports). A version directory (or
    its file) given on its own is checked as one of its ruleset's versions (``placed_source``).
    """
    if path.is_file() or (path / RULESET_FILE).is_file():
        return [placed_source(path)]
    sources = list(discover(path).sources)
    if sources and all(
        s.name_dir is None and s.path.parent == path and _declared_name(s.path) == path.name
        for s in sources
    ):
        return [VersionSource(s.path, path.name, s.path.name) for s in sources]
    return sources or [VersionSource(path)]


def _version_directory(path: Path) -> Path | None:
    """The absolute version directory ``path`` is (or holds the file of), if it is one.

    Absolute with ``.`` and ``..`` folded but symlinks kept: a server knows a version by the
    names in its rulesets tree, not by where a link points.
    """
    if path.is_file():
        if path.name != RULESET_FILE:
            return None
        directory = path.parent
    elif (path / RULESET_FILE).is_file():
        directory = path
    else:
        return None
    absolute = Path(os.path.abspath(directory))  # noqa: PTH100 - resolve() follows symlinks
    home = absolute.parent
    if (home / SERVING_FILE).is_file() or _declared_name(directory) == home.name:
        return absolute
    return None


def version_home(path: Path) -> Path | None:
    """The ruleset's directory when ``path`` is one of its version directories (or that file).

    ``rulesets/<name>/<version>/`` (or its ``ruleset.yaml``) is a version directory when
    ``rulesets/<name>/serving.yaml`` exists, or when its file declares ``ruleset: <name>``
    (a ruleset's home without a pointer, as ``expand_version_sources`` reads one). A
    directory of a rulesets directory (``rulesets/<name>/ruleset.yaml``, one flat ruleset)
    is not one.

    Args:
        path: A directory holding ``ruleset.yaml``, or such a file; anything else gives None.

    Returns:
        The ruleset's directory, spelled as ``path`` spells it where it can be; None when
        ``path`` is not a version directory.
    """
    directory = _version_directory(path)
    if directory is None:
        return None
    given = path.parent if path.is_file() else path
    return given.parent if given.name not in ("", ".", "..") else given / ".."


def placed_source(path: Path) -> VersionSource:
    """A ruleset file or directory, with the names a server checks it against (if any).

    A version directory given on its own (``rules check rulesets/<name>/<version>``, as the
    walkthrough in docs/rulesets.md does) is checked as a server loading its rulesets
    directory checks it: named for its ``version:``, inside a directory named for its
    ``ruleset:`` (docs walk, finding 3: it passed, while a server and a check of the whole
    ruleset refused it, ``versions.misplaced``).
    """
    directory = _version_directory(path)
    if directory is None:
        return VersionSource(path)
    return VersionSource(path, directory.parent.name, directory.name)


def _declared_name(directory: Path) -> str | None:
    """The ``ruleset:`` a version's file declares, read from its text (None: unreadable)."""
    try:
        text = ruleset_file(directory).read_text(errors="replace")[:MAX_DECLARED_SCAN]
    except OSError:
        return None
    line = key_line(text, "ruleset")
    words = text.splitlines()[line - 1].split(":", 1) if text else []
    if len(words) != 2 or words[0] != "ruleset":
        return None
    return words[1].split("#", 1)[0].strip().strip("'\"") or None


def not_loaded_problem(
    name: str, serving: Serving, role: str, version: str, loaded: Iterable[str], keeping: str
) -> Problem:
    """``versions.not_loaded``: a pointer names a version that did not load (or is absent).

    Args:
        name: The ruleset.
        serving: Its pointer, as read.
        role: ``active`` or ``shadow``.
        version: The version it names.
        loaded: The versions of ``name`` that loaded.
        keeping: What serves meanwhile, worded as a clause (``"; still serving 1"``).
    """
    return Problem(
        "versions.not_loaded",
        f"the {role} version {version} of ruleset {name} is not loaded (loaded: "
        f"{', '.join(sorted(loaded)) or 'none'}): fix that version's problems or point "
        f"`{role}:` at a loaded version{keeping}",
        serving.path,
        serving.active_line if role == "active" else serving.shadow_line,
    )


def no_active_problem(name: str, loaded: Iterable[str], where: str, keeping: str) -> Problem:
    """``versions.no_active``: several versions and no pointer naming the active one."""
    return Problem(
        "versions.no_active",
        f"ruleset {name} has versions {', '.join(sorted(loaded))} and no serving.yaml "
        "naming the active one (order on disk never decides); write "
        f"rulesets/{name}/serving.yaml with `active: <version>` or run "
        f"`caseroute rules activate`{keeping}",
        where,
    )


def pointer_problems(path: Path, loaded: Mapping[str, Iterable[str]]) -> list[Problem]:
    """What a server would find wrong with the pointers of the rulesets under ``path``.

    ``rules check`` compiled each version on its own and never read ``serving.yaml``, so a
    tree whose pointer names a missing version, misspells a key or is absent beside two
    versions passed, and the server then had no active version (review R32a F3).

    A version directory given on its own (or its file) gets its ruleset's pointer's own
    problems: a server never loads a version without the ``serving.yaml`` beside it, and
    refuses one that does not read (no active version on a first start, the last good choice
    kept on a reload). Whether the versions a pointer names load is the whole ruleset's check
    (``rules check rulesets/<name>``): only it compiles them.

    Args:
        path: What ``rules check`` was given (a flat ruleset or a file outside a ruleset's
            directory gives none).
        loaded: Ruleset name -> the versions of it that compiled without errors.

    Returns:
        Pointer problems (``serving.*``), versions a pointer names that did not load, and
        rulesets of several versions with no pointer.
    """
    if path.is_file() or (path / RULESET_FILE).is_file():
        home = version_home(path)
        pointer = None if home is None else home / SERVING_FILE
        if pointer is None or not pointer.is_file():
            return []
        try:
            parse_serving(pointer)
        except RulesetError as exc:
            return list(exc.problems)
        return []
    layout = discover(path)
    sources = expand_version_sources(path)
    problems: list[Problem] = []
    for name, pointer in sorted(layout.pointers.items()):
        try:
            serving = parse_serving(pointer)
        except RulesetError as exc:
            problems += exc.problems
            continue
        versions = set(loaded.get(name, ()))
        roles = [("active", serving.active)]
        if serving.shadow is not None:
            roles.append(("shadow", serving.shadow))
        for role, version in roles:
            if version not in versions:
                keeping = "; only pinned requests are served" if role == "active" else ""
                if (pointer.parent / version / RULESET_FILE).is_file():
                    # Its own errors are listed with its file: say this follows from them
                    # (review R34b F5), not a second thing to fix.
                    keeping += f" (its file {version}/{RULESET_FILE} has the errors listed for it)"
                problems.append(not_loaded_problem(name, serving, role, version, versions, keeping))
    homes = {source.name_dir: source.path.parent for source in sources if source.name_dir}
    for name, compiled in sorted(loaded.items()):
        found = sorted(compiled)
        if len(found) > 1 and name not in layout.pointers and name in homes:
            where = str(homes[name])
            problems.append(no_active_problem(name, found, where, ""))
    return problems


def published_as(version_dir: Path) -> str | None:
    """The role its ruleset's ``serving.yaml`` gives a version directory, if any.

    ``active``, ``shadow``, ``previous`` or ``retired`` (served, then rolled back from or
    forgotten by ``previous``); None when it is not named or there is no pointer. A version
    named there may have decided, and a server refuses new content for a version that has
    (``versions.changed_after_deciding``): ``rules fmt`` leaves such files alone.

    Raises:
        RulesetError: If the pointer does not read: which versions it names is unknown, so a
            caller must not treat the version as unpublished (review R34b F8).
    """
    pointer = version_dir.parent / SERVING_FILE
    if not pointer.is_file():
        return None
    serving = parse_serving(pointer)
    version = version_dir.name
    if version == serving.active:
        return "active"
    if version == serving.shadow:
        return "shadow"
    if version in serving.previous:
        return "previous"
    return "retired" if version in serving.retired else None
