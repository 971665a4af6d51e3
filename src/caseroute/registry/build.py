"""Build a complete new registry state from a rulesets directory, before anything is swapped.

Every version is compiled, checked (placement, immutability, one content per version) and
prepared; then each ruleset's pointer file decides which version is active and which shadows.
What fails keeps its last good state: a source that does not load keeps the rulesets it loaded
last time, a pointer that does not parse keeps the versions it named last time. Which version
serves is never inferred from file or directory order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.registry.state import Snapshot
from caseroute.rules.compiler import compile_source, load_ruleset
from caseroute.rules.layout import (
    Layout,
    VersionSource,
    check_placement,
    discover,
    key_line,
    no_active_problem,
    not_loaded_problem,
)
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.serving import Serving, parse_serving
from caseroute.rules.source import parse_yaml

log = logging.getLogger("caseroute.registry")

RulesetPreparer = Callable[[CompiledRuleset, EngineKind], LoadedRuleset]
"""Builds the evaluators of a compiled ruleset (default ``prepare_ruleset``, which also runs
the durable_rules validation; tests pass one with a fake matcher)."""

DecidedLookup = Callable[[str, str], frozenset[str]]
"""(name, version) -> the sha256s that version has decided with (the decision log's answer)."""

RecordedSource = Callable[[str, str, str], str | None]
"""(name, version, sha256) -> the source the decision log recorded for that version, or None:
none, or no lifecycle event shows that content served (a blob alone is not trusted)."""

MAX_ERROR_PROBLEMS = 5
"""Problems of a failed ruleset kept in ``status`` (the log has every one)."""


def _describe_failure(path: Path, exc: Exception) -> str:
    """The status text of a source that did not load: its problems with ``file:line``."""
    if isinstance(exc, RulesetError):
        # Errors first (a stable sort keeps file order): they are why it did not load.
        ordered = sorted(exc.problems, key=lambda p: p.severity is not Severity.ERROR)
        lines = [str(p) for p in ordered[:MAX_ERROR_PROBLEMS]]
        more = len(exc.problems) - MAX_ERROR_PROBLEMS
        if more > 0:
            lines.append(f"... and {more} more problem(s); the server log lists every one")
        return "\n".join(lines)
    # The type only, never the text: an engine's message may name server paths (a shared
    # library), and status reaches the admin API. The log has the text and the traceback.
    return (
        f"{path}: could not be loaded ({type(exc).__name__}); the server log has the detail; "
        "fix the file and reload"
    )


def _clash(kept: LoadedRuleset, refused: LoadedRuleset) -> Problem:
    """One name and version with two contents: never let path order pick the content."""
    k, r = kept.compiled, refused.compiled
    return Problem(
        "versions.duplicate",
        f"ruleset {r.name} version {r.version} is already defined by {k.path} with other "
        f"content (sha256 {k.sha256[:12]}… vs {r.sha256[:12]}…); a published version never "
        "changes: give one of them a new version",
        r.path,
        key_line(r.source_text, "version"),
    )


def check_not_changed_after_deciding(
    compiled: CompiledRuleset, decided: DecidedLookup | None
) -> None:
    """Refuse new content for a version that has already decided.

    Args:
        compiled: The version as read now.
        decided: The decision log's answer (None: no log, nothing to check).

    Raises:
        RulesetError: ``versions.changed_after_deciding`` when the log holds decisions of this
            name and version with another sha256.
    """
    if decided is None:
        return
    seen = decided(compiled.name, compiled.version)
    if not seen or compiled.sha256 in seen:
        return
    was = ", ".join(sorted(s[:12] + "…" for s in seen))
    raise RulesetError(
        [
            Problem(
                "versions.changed_after_deciding",
                f"ruleset {compiled.name} version {compiled.version} has already decided with "
                f"other content (sha256 {was} in the decision log); this file has sha256 "
                f"{compiled.sha256[:12]}…: a version that has decided never changes; restore it "
                "and publish the change as a new version (`caseroute rules new-version`)",
                compiled.path,
                key_line(compiled.source_text, "version"),
            )
        ]
    )


@dataclass
class BuiltState:
    """A new state and the prepared rulesets that must be closed if it is not swapped in.

    Attributes:
        snapshot: The new state.
        built: Rulesets prepared by this build (not reused from the old state).
        discarded: Built rulesets the new state does not hold (refused or displaced).
        problems: Every version and pointer problem found across files (one version with two
            contents, no active version, a pointer naming a version that did not load), also
            in the snapshot's per-name errors.
    """

    snapshot: Snapshot
    built: list[LoadedRuleset]
    discarded: list[LoadedRuleset]
    problems: list[Problem] = field(default_factory=list)


@dataclass
class _Builder:
    """Accumulates one build."""

    old: Snapshot
    versions: dict[str, dict[str, LoadedRuleset]] = field(default_factory=dict)
    origins: dict[str, tuple[LoadedRuleset, ...]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    missing_since: dict[str, datetime] = field(default_factory=dict)
    built: list[LoadedRuleset] = field(default_factory=list)
    discarded: list[LoadedRuleset] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, name: str, problem: Problem) -> None:
        self.problems.append(problem)
        self.error(name, str(problem))

    def error(self, name: str, text: str) -> None:
        self.errors.setdefault(name, []).append(text)
        self.touched.add(name)

    def add(self, ruleset: LoadedRuleset, key: str) -> None:
        compiled = ruleset.compiled
        self.versions.setdefault(compiled.name, {})[compiled.version] = ruleset
        self.origins[key] = (*self.origins.get(key, ()), ruleset)

    def drop(self, ruleset: LoadedRuleset) -> None:
        # Invariant: origins hold only rulesets the state holds (a failing source keeps what
        # its origin held, which must still be open); one ruleset may have several origins.
        for key, held in list(self.origins.items()):
            left = tuple(r for r in held if r is not ruleset)
            if left:
                self.origins[key] = left
            else:
                del self.origins[key]


def build_state(
    root: Path,
    engine: EngineKind,
    old: Snapshot,
    prepare: RulesetPreparer,
    decided: DecidedLookup | None,
    default: str | None,
    now: datetime,
    recorded: RecordedSource | None = None,
) -> BuiltState:
    """Compile, check and prepare everything under ``root`` into a new state (not swapped).

    Args:
        root: A rulesets directory (see ``rules.layout``), or one ruleset directory / file.
        engine: Engine of record.
        old: The state serving now (what fails keeps its part of it).
        prepare: Builds a compiled ruleset's evaluators.
        decided: The decision log's sha256s per version (None: no immutability check).
        default: The ruleset a request naming none gets (None: the first name).
        now: The reload time recorded per touched name.
        recorded: The decision log's recorded sources: a version whose file changed after it
            decided serves the recorded content in a process that holds none in memory.

    Returns:
        The new state, with what was built for it.
    """
    layout = discover(root)
    state = _Builder(old)
    reusable = {(r.compiled.name, r.compiled.version, r.compiled.sha256): r for r in old.rulesets()}
    for source in layout.sources:
        _load_source(state, source, engine, reusable, prepare, decided, recorded)
    servings = _read_pointers(state, layout.pointers)
    if not layout.sources and not layout.pointers and old.versions:
        _keep_all(state, root, servings, now)
    else:
        _keep_missing(state, layout, servings, now)
    active, shadow, previous, retired = _choose(state, servings)
    kept = {r for versions in state.versions.values() for r in versions.values()}
    state.discarded += [r for r in state.built if r not in kept]
    names = set(state.versions)
    first = next(iter(sorted(names)), None)
    snapshot = Snapshot(
        versions=MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in state.versions.items()}
        ),
        active=MappingProxyType(active),
        shadow=MappingProxyType(shadow),
        previous=MappingProxyType(previous),
        retired=MappingProxyType(retired),
        default=default if default is not None else _implicit_default(names, active, first),
        origins=MappingProxyType(dict(state.origins)),
        errors=MappingProxyType({k: "\n".join(v) for k, v in state.errors.items()}),
        load_errors=tuple(state.failures),
        reloaded_at=MappingProxyType(dict.fromkeys(state.touched, now)),
        pointers=MappingProxyType({k: str(v) for k, v in layout.pointers.items()}),
        missing_since=MappingProxyType(state.missing_since),
        safeguarding_flags=frozenset(
            r.compiled.constraints.safeguarding_flag
            for versions in state.versions.values()
            for r in versions.values()
        ),
    )
    return BuiltState(snapshot, state.built, state.discarded, state.problems)


def _implicit_default(names: set[str], active: Mapping[str, str], first: str | None) -> str | None:
    """The ruleset a request naming none gets when the server names no default.

    The first name, in order, with an active version: from the directory alone, so every
    worker and replica picks the same one. It used to stick to the previous default, and
    otherwise take the first name even with no active version, so a ruleset being staged
    (two versions, no serving.yaml) that sorts first became the default of a respawned
    worker only: health flapped between workers (review R32d F2).
    """
    return next((name for name in sorted(names) if name in active), first)


def _load_source(
    state: _Builder,
    source: VersionSource,
    engine: EngineKind,
    reusable: Mapping[tuple[str, str, str], LoadedRuleset],
    prepare: RulesetPreparer,
    decided: DecidedLookup | None,
    recorded: RecordedSource | None = None,
) -> None:
    path = source.path
    key = str(path)
    compiled: CompiledRuleset | None = None
    try:
        compiled = load_ruleset(path)
        _check_placement(source, compiled)
        # An identical ruleset already serving is kept: no new engine to build, no check.
        same = reusable.get((compiled.name, compiled.version, compiled.sha256))
        if same is None:
            check_not_changed_after_deciding(compiled, decided)
            fresh = prepare(compiled, engine)
            state.built.append(fresh)
        else:
            fresh = same
    except Exception as exc:  # noqa: BLE001 - one bad ruleset must not stop the rest
        kept = state.old.origins.get(key, ()) or _recorded(
            state, exc, compiled, engine, reusable, prepare, decided, recorded
        )
        names = {r.compiled.name for r in kept} or {
            compiled.name if compiled is not None else (source.name_dir or path.name)
        }
        _log_failure(path, exc, kept)
        for name in names:
            state.error(name, _describe_failure(path, exc))
        state.failures.append(
            f"{path}: {len(exc.problems)} problem(s)"
            if isinstance(exc, RulesetError)
            else f"{path}: {type(exc).__name__}"
        )
        for ruleset in kept:
            if ruleset.compiled.version not in state.versions.get(ruleset.compiled.name, {}):
                state.add(ruleset, key)
        return
    name = compiled.name
    state.touched.add(name)
    clash = state.versions.get(name, {}).get(compiled.version)
    if clash is not None and clash.compiled.sha256 != compiled.sha256:
        # One version, two contents: the one serving before keeps serving; otherwise the
        # first in path order (and both files are named, so an operator fixes one).
        keep_new = fresh is not clash and fresh in state.old.rulesets()
        kept_one, refused = (fresh, clash) if keep_new else (clash, fresh)
        problem = _clash(kept_one, refused)
        log.error("%s", problem)
        state.problem(name, problem)
        state.failures.append(f"{refused.compiled.path}: same version, other content")
        if keep_new:
            state.drop(clash)
            state.add(fresh, key)
        return
    # The same content at two paths (a copy): one prepared ruleset serves both, so neither
    # path remembers one the new state closes.
    state.add(clash if clash is not None else fresh, key)


MISSING_GRACE = timedelta(seconds=60)
"""How long a ruleset or version whose files are gone keeps serving as loaded: a deploy that
deletes and copies takes seconds; past this, files still missing were removed on purpose, and
the version is dropped, as a worker started now would not have it (review R32d F6, F7)."""


def _within_grace(state: _Builder, key: str, now: datetime) -> bool:
    """Whether the source at ``key``, missing now, is still kept (and since when, noted)."""
    since = state.old.missing_since.get(key, now)
    if now - since > MISSING_GRACE:
        return False
    state.missing_since[key] = since
    return True


def _keep_all(
    state: _Builder, root: Path, servings: dict[str, Serving | None], now: datetime
) -> None:
    """A rulesets directory that is gone or empty keeps what it served, for ``MISSING_GRACE``.

    ``rm -rf rulesets && cp -r new rulesets``, or a ``mv`` pair, opens a moment with no
    directory; a poll then used to unload every ruleset (and record it as a change) (review
    R32a F1).
    """
    for key, kept in state.old.origins.items():
        if not _within_grace(state, key, now):
            continue
        for ruleset in kept:
            if ruleset.compiled.version not in state.versions.get(ruleset.compiled.name, {}):
                state.add(ruleset, key)
    for name in state.versions:
        servings[name] = None  # no pointer read: its last good choice holds
        state.error(
            name,
            f"the rulesets directory {root.name}/ is missing or empty; every ruleset keeps "
            f"serving what it served for up to {MISSING_GRACE.seconds} s; restore the directory "
            "(replace it with one rename, not a delete and a copy)",
        )
    state.failures.append(f"{root.name}: missing or empty")


def _keep_missing(
    state: _Builder, layout: Layout, servings: dict[str, Serving | None], now: datetime
) -> None:
    """A version or ruleset whose files are gone for a moment serves on (``MISSING_GRACE``).

    A ``git checkout``, ``rsync --delete`` or a delete and copy removes a version's directory,
    or a ruleset's (``rm -rf rulesets/<name> && cp -r ...``), for a moment; a poll then
    unloaded it and every request for it got NOT_FOUND (reviews R32a F1, R32d F6). A version
    serving.yaml still names, or a ruleset whose directory is gone whole, is kept as loaded,
    with an error; a version its pointer no longer names is dropped at once. A version that
    failed to load is kept by ``_load_source``; this keeps one not found at all.
    """
    found = {str(source.path) for source in layout.sources}
    loaded_now = set(state.versions)  # names some source gave this time
    gone_whole: set[str] = set()
    for key, kept in state.old.origins.items():
        if key in found:
            continue
        for ruleset in kept:
            name, version = ruleset.compiled.name, ruleset.compiled.version
            if version in state.versions.get(name, {}):
                continue
            if name in servings:
                serving = servings[name]
                # A broken pointer as well as a missing version is no moment of a deploy.
                if serving is None or version not in (serving.active, serving.shadow):
                    continue
                if not _within_grace(state, key, now):
                    continue
                _missing_version(state, key, name, version, serving)
            elif name not in loaded_now:  # the ruleset's directory gone whole
                if not _within_grace(state, key, now):
                    continue
                gone_whole.add(name)
            else:
                continue
            state.add(ruleset, key)
    for name in sorted(gone_whole):
        servings[name] = None  # its pointer is gone with it: its last good choice holds
        state.error(
            name,
            f"the directory of ruleset {name} is missing; it keeps serving what it served for "
            f"up to {MISSING_GRACE.seconds} s; restore it (replace it with one rename, not a "
            "delete and a copy)",
        )
        state.failures.append(f"{name}/: missing")


def _missing_version(state: _Builder, key: str, name: str, version: str, serving: Serving) -> None:
    """Report a version serving.yaml names whose directory is gone (kept as loaded)."""
    shown = "/".join(Path(key).parts[-2:])  # the ruleset's and version's directories
    problem = Problem(
        "versions.missing",
        f"ruleset {name} version {version} is named by its serving.yaml but its directory "
        f"{shown} is missing; still serving {version} as loaded before, for up to "
        f"{MISSING_GRACE.seconds} s; restore it, or point serving.yaml at another version",
        serving.path,
        serving.shadow_line if version == serving.shadow else serving.active_line,
    )
    log.error("%s", problem)
    state.problem(name, problem)
    state.failures.append(f"{key}: missing")


def _recorded(
    state: _Builder,
    exc: Exception,
    compiled: CompiledRuleset | None,
    engine: EngineKind,
    reusable: Mapping[tuple[str, str, str], LoadedRuleset],
    prepare: RulesetPreparer,
    decided: DecidedLookup | None,
    recorded: RecordedSource | None,
) -> tuple[LoadedRuleset, ...]:
    """The content a version decided with, from the log, when its file changed since.

    A process holding no copy in memory (a respawned worker, a restart) had no active
    version after an edit to a published file, while the other workers served the recorded
    content (review R32a F2). It serves what the log recorded, as they do; the edit is still
    reported (``versions.changed_after_deciding``). Nothing when the log recorded none, or
    several contents, or what it holds does not compile to the recorded sha256.
    """
    changed = isinstance(exc, RulesetError) and any(
        p.code == "versions.changed_after_deciding" for p in exc.problems
    )
    if not changed or compiled is None or decided is None or recorded is None:
        return ()
    sha256 = ""
    try:  # the log is read here: its failure keeps this version out, never the reload
        seen = decided(compiled.name, compiled.version)
        if len(seen) != 1:
            return ()
        (sha256,) = seen
        same = reusable.get((compiled.name, compiled.version, sha256))
        if same is not None:
            return (same,)
        text = recorded(compiled.name, compiled.version, sha256)
        if text is None:
            return ()
        restored = compile_source(parse_yaml(text, compiled.path))
        if (restored.name, restored.version, restored.sha256) != (
            compiled.name,
            compiled.version,
            sha256,
        ):
            return ()
        fresh = prepare(restored, engine)
    except Exception:  # the recorded copy is a fallback: its failure is logged, nothing kept
        log.exception("the recorded content of %s@%s did not load", compiled.name, sha256[:12])
        return ()
    state.built.append(fresh)
    log.warning(
        "%s@%s: serving the content the decision log recorded (sha256 %s...), not the edited file",
        compiled.name,
        compiled.version,
        sha256[:12],
    )
    return (fresh,)


def _check_placement(source: VersionSource, compiled: CompiledRuleset) -> None:
    placement = check_placement(source, compiled.name, compiled.version, compiled.source_text)
    if placement:
        raise RulesetError(placement)


def _read_pointers(state: _Builder, pointers: Mapping[str, Path]) -> dict[str, Serving | None]:
    """Each pointer file parsed (None when it did not parse: its last good choice holds)."""
    out: dict[str, Serving | None] = {}
    for name, path in sorted(pointers.items()):
        try:
            out[name] = parse_serving(path)
        except RulesetError as exc:
            log.error(  # noqa: TRY400 - the problems are the detail; no traceback wanted
                "serving file %s not read; %s keeps what it served:\n%s", path, name, exc
            )
            state.error(name, _describe_failure(path, exc))
            state.failures.append(f"{path}: {len(exc.problems)} problem(s)")
            out[name] = None
    return out


def _choose(
    state: _Builder, servings: Mapping[str, Serving | None]
) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Per name: the active and shadow versions, the rollback history and the retired versions."""
    old = state.old
    active: dict[str, str] = {}
    shadow: dict[str, str] = {}
    previous: dict[str, tuple[str, ...]] = {}
    retired: dict[str, tuple[str, ...]] = {}
    for name in sorted(set(state.versions) | set(servings)):
        loaded = state.versions.get(name, {})
        still = old.active.get(name) if old.active.get(name) in loaded else None
        if name in servings:
            serving = servings[name]
            if serving is None:  # unreadable pointer: its last good choice holds
                if still is not None:
                    active[name] = still
                if old.shadow.get(name) in loaded:
                    shadow[name] = old.shadow[name]
                if name in old.previous:
                    previous[name] = old.previous[name]
                if name in old.retired:
                    retired[name] = old.retired[name]
                continue
            previous[name] = serving.previous
            if serving.retired:
                retired[name] = serving.retired
            chosen = _pointed(state, name, serving, "active", serving.active, still, loaded)
            if chosen is not None:
                active[name] = chosen
            if serving.shadow is not None:
                shadowed = _pointed(state, name, serving, "shadow", serving.shadow, None, loaded)
                if shadowed is not None and shadowed != active.get(name):
                    shadow[name] = shadowed
            continue
        if len(loaded) == 1:
            active[name] = next(iter(loaded))
            continue
        # The ruleset's directory (rulesets/<name>), where serving.yaml belongs.
        where = str(Path(next(iter(loaded.values())).compiled.path).parent.parent)
        keeping = f"; still serving {still}" if still else "; only pinned requests are served"
        state.problem(name, no_active_problem(name, loaded, where, keeping))
        if still is not None:
            active[name] = still
    return active, shadow, previous, retired


def _pointed(
    state: _Builder,
    name: str,
    serving: Serving,
    role: str,
    version: str,
    fallback: str | None,
    loaded: Mapping[str, LoadedRuleset],
) -> str | None:
    """The version a pointer names for ``role``, or ``fallback`` (with an error) if not loaded."""
    if version in loaded:
        return version
    keeping = (
        f"; still serving {fallback}"
        if fallback
        else ("; only pinned requests are served" if role == "active" else "; no shadow runs")
    )
    state.problem(name, not_loaded_problem(name, serving, role, version, loaded, keeping))
    return fallback


def _log_failure(path: Path, exc: Exception, kept: tuple[LoadedRuleset, ...]) -> None:
    keeping = (
        "; still serving " + ", ".join(f"{r.compiled.name}@{r.compiled.version}" for r in kept)
        if kept
        else ""
    )
    if isinstance(exc, RulesetError):
        log.error("ruleset %s not loaded%s:\n%s", path, keeping, exc)
    else:
        log.error("ruleset %s not loaded%s", path, keeping, exc_info=exc)
