"""The loaded rulesets: build a complete new state, swap it in atomically, close what it replaced.

A ``RulesetRegistry`` holds one immutable ``_Snapshot`` (rulesets by name and version, the
active version of each, the default name). ``reload`` compiles and prepares every ruleset
(including the durable_rules validation ``prepare_ruleset`` does) *before* anything is swapped;
the swap is one reference assignment, so a reader sees the old state or the new one, never a
mix. A ruleset that fails to load keeps its last good version serving, and the error (with
``file:line``) is kept per ruleset name for ``status``.

Closing: the decide path holds a ruleset with ``acquire`` for the whole call. A ruleset a
reload replaced is closed when its last user releases it (or at once when nobody uses it), so
an in-flight decision always finishes on the version it started with, on a live engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from caseroute.domain.errors import (
    NoRulesetLoadedError,
    RulesetError,
    RulesetNotFoundError,
    Severity,
)
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.rules.compiler import RULESET_FILE, load_ruleset
from caseroute.rules.model import CompiledRuleset

log = logging.getLogger("caseroute.registry")

RulesetPreparer = Callable[[CompiledRuleset, EngineKind], LoadedRuleset]
"""Builds the evaluators of a compiled ruleset (default ``prepare_ruleset``, which also runs
the durable_rules validation; tests pass one with a fake matcher)."""


def ruleset_paths(root: Path) -> list[Path]:
    """Every ``<root>/*/ruleset.yaml`` directory in sorted order (or ``root`` if it is one)."""
    if root.is_file() or (root / RULESET_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{RULESET_FILE}"))


@dataclass(frozen=True, slots=True)
class RulesetStatus:
    """What the registry holds for one ruleset name (the admin API's ListRulesets reads it).

    Attributes:
        name: Ruleset name.
        active_version: Version a request without a pin gets (None: no version loaded).
        sha256: sha256 of the active version's source (None when none is loaded).
        versions: Every loaded version, sorted.
        last_reload: When the last load or reload that read this ruleset finished.
        last_error: What went wrong in that load (``file:line`` first), or None if it loaded.
    """

    name: str
    active_version: str | None
    sha256: str | None
    versions: tuple[str, ...]
    last_reload: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One complete, immutable registry state; replaced whole, never changed."""

    versions: Mapping[str, Mapping[str, LoadedRuleset]]
    active: Mapping[str, str]
    default: str | None
    origins: Mapping[str, tuple[LoadedRuleset, ...]] = field(default_factory=dict)
    """Source path -> the rulesets loaded from it, so a reload that fails on it keeps them."""
    errors: Mapping[str, str] = field(default_factory=dict)
    load_errors: tuple[str, ...] = ()
    reloaded_at: Mapping[str, datetime] = field(default_factory=dict)
    safeguarding_flags: frozenset[str] = frozenset()

    def rulesets(self) -> set[LoadedRuleset]:
        return {r for versions in self.versions.values() for r in versions.values()}

    def resolve(self, name: str, version: str) -> LoadedRuleset:
        if not self.versions:
            # Generic on purpose: the load errors name server paths and exception text; they
            # were logged in full when the load failed.
            raise NoRulesetLoadedError(
                "no ruleset is loaded on this server; its operators must fix the rulesets (the "
                "server log lists every problem) and restart or reload it; retry later or call "
                "another server"
            )
        chosen = name or self.default or ""
        versions = self.versions.get(chosen)
        if versions is None:
            raise RulesetNotFoundError(
                f"unknown ruleset {chosen!r}; loaded: {', '.join(sorted(self.versions))}"
            )
        wanted = version or self.active[chosen]
        if wanted not in versions:
            raise RulesetNotFoundError(
                f"ruleset {chosen!r} has no version {wanted!r}; loaded "
                f"versions: {', '.join(sorted(versions))}"
            )
        return versions[wanted]


class _StateBuilder:
    """Accumulates a new state in load order: the last ruleset added for a name is active."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, LoadedRuleset]] = {}
        self.active: dict[str, str] = {}
        self.displaced: list[LoadedRuleset] = []

    def add(self, ruleset: LoadedRuleset) -> None:
        compiled = ruleset.compiled
        versions = self.versions.setdefault(compiled.name, {})
        previous = versions.get(compiled.version)
        if previous is not None and previous is not ruleset:
            # Two sources with one name and version: the later one wins (as it always did);
            # the loser must still be closed, or its engine-side rulesets leak.
            self.displaced.append(previous)
        versions[compiled.version] = ruleset
        self.active[compiled.name] = compiled.version

    def snapshot(
        self,
        default: str | None,
        origins: Mapping[str, tuple[LoadedRuleset, ...]],
        errors: Mapping[str, str],
        load_errors: tuple[str, ...],
        reloaded_at: Mapping[str, datetime],
    ) -> _Snapshot:
        return _Snapshot(
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.versions.items()}),
            MappingProxyType(dict(self.active)),
            default if default is not None else next(iter(self.active), None),
            MappingProxyType(dict(origins)),
            MappingProxyType(dict(errors)),
            load_errors,
            MappingProxyType(dict(reloaded_at)),
            frozenset(
                r.compiled.constraints.safeguarding_flag
                for versions in self.versions.values()
                for r in versions.values()
            ),
        )


def _describe_clash(kept: LoadedRuleset, refused: LoadedRuleset) -> str:
    """The status text of a source that gives a loaded name and version other content."""
    k, r = kept.compiled, refused.compiled
    return (
        f"{r.path}: ruleset {r.name} version {r.version} is already defined by {k.path} with "
        f"other content (sha256 {k.sha256[:12]}… vs {r.sha256[:12]}…); a published version "
        "never changes: give one of them a new version"
    )


MAX_ERROR_PROBLEMS = 5
"""Problems of a failed ruleset kept in ``status`` (the log has every one)."""


def _describe_failure(path: Path, exc: Exception) -> str:
    """The status text of a ruleset that did not load: its problems with ``file:line``."""
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


class RulesetRegistry:
    """Loaded rulesets by name and version, swapped atomically as one immutable snapshot.

    Thread-safe. Readers (``resolve``, ``acquire``) read one snapshot; ``reload`` and ``add``
    build a new one and swap it in with one assignment under ``_lock``.
    """

    def __init__(
        self,
        default_name: str | None = None,
        *,
        prepare: RulesetPreparer = prepare_ruleset,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Start empty.

        Args:
            default_name: Ruleset used when a request names none (default: the first loaded).
            prepare: Builds a compiled ruleset's evaluators (default: ``prepare_ruleset``).
            clock: Wall clock for ``status``'s reload times.
        """
        self._default = default_name
        self._prepare = prepare
        self._clock = clock
        self._snapshot = _Snapshot(MappingProxyType({}), MappingProxyType({}), default_name)
        # Guards the swap, the use counts and the retired set (held briefly, never while
        # building or closing). _reload_lock serialises whole reloads.
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._users: dict[LoadedRuleset, int] = {}
        self._retired: set[LoadedRuleset] = set()
        self._closed = False

    # -- reading ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of the loaded rulesets."""
        return sorted(self._snapshot.versions)

    @property
    def safeguarding_flags(self) -> frozenset[str]:
        """Every loaded ruleset's safeguarding flag.

        An invalid case carrying one is told it was not routed (``parse_case``).
        """
        return self._snapshot.safeguarding_flags

    @property
    def load_errors(self) -> list[str]:
        """One line per ruleset path the last load or reload could not read (path: count)."""
        return list(self._snapshot.load_errors)

    def resolve(self, name: str, version: str) -> LoadedRuleset:
        """The ruleset a request selects, from one snapshot.

        Use ``acquire`` to *decide* with it: a ruleset returned here may be closed by a
        reload while the caller still holds it.

        Args:
            name: Ruleset name, or "" for the default.
            version: Pinned version, or "" for the active one.

        Returns:
            The loaded ruleset.

        Raises:
            NoRulesetLoadedError: If nothing is loaded.
            RulesetNotFoundError: If the name or version is unknown.
        """
        return self._snapshot.resolve(name, version)

    @contextmanager
    def acquire(self, name: str, version: str) -> Iterator[LoadedRuleset]:
        """Hold the ruleset a request selects for the duration of a call.

        While held it is not closed, even if a reload replaces it; the release closes it if a
        reload retired it meanwhile.

        Args:
            name: Ruleset name, or "" for the default.
            version: Pinned version, or "" for the active one.

        Yields:
            The loaded ruleset.

        Raises:
            NoRulesetLoadedError: If nothing is loaded.
            RulesetNotFoundError: If the name or version is unknown.
        """
        with self._lock:  # resolve and count together: a swap cannot close it in between
            ruleset = self._snapshot.resolve(name, version)
            self._users[ruleset] = self._users.get(ruleset, 0) + 1
        try:
            yield ruleset
        finally:
            self._release(ruleset)

    def _release(self, ruleset: LoadedRuleset) -> None:
        with self._lock:
            left = self._users[ruleset] - 1
            if left:
                self._users[ruleset] = left
                return
            del self._users[ruleset]
            if ruleset not in self._retired:
                return
            self._retired.discard(ruleset)
        _close_all([ruleset])

    def status(self) -> dict[str, RulesetStatus]:
        """Per ruleset name: active version, its sha256, loaded versions, last reload, error.

        A name whose every load failed is listed with ``active_version`` None and its error.
        """
        snap = self._snapshot
        out = {}
        for name in sorted(set(snap.versions) | set(snap.errors)):
            versions = snap.versions.get(name, {})
            active = snap.active.get(name)
            out[name] = RulesetStatus(
                name=name,
                active_version=active,
                sha256=versions[active].compiled.sha256 if active is not None else None,
                versions=tuple(sorted(versions)),
                last_reload=snap.reloaded_at.get(name),
                last_error=snap.errors.get(name),
            )
        return out

    # -- changing --------------------------------------------------------------------------

    def add(self, ruleset: LoadedRuleset) -> None:
        """Register a prepared ruleset and make it the active version of its name.

        For tests and embedding; servers use ``reload``. A ruleset it replaces (same name and
        version) is closed once unused.
        """
        with self._reload_lock:
            old = self._snapshot
            state = _StateBuilder()
            for versions in old.versions.values():
                for kept in versions.values():
                    state.add(kept)
            for name, version in old.active.items():
                state.active[name] = version
            state.add(ruleset)
            self._swap(
                state.snapshot(
                    self._default, old.origins, old.errors, old.load_errors, old.reloaded_at
                )
            )

    def reload(self, root: Path, engine: EngineKind) -> None:
        """Load every ruleset under ``root``, then swap the whole new state in at once.

        Every ruleset is compiled and prepared before anything is swapped. A path that fails
        keeps whatever it loaded last time serving (nothing on a first load); its problems
        are logged and kept for ``status`` under the ruleset's name (the name it loaded under
        before, else the name in the file if it compiled, else its directory name). A source
        unchanged since the current state (same name, version and sha256) keeps its prepared
        ruleset, so a reload does not rebuild engines that did not change. Rulesets the new
        state no longer holds are closed once no call uses them. Reloads are serialised.

        Args:
            root: A rulesets directory, or one ruleset directory / file.
            engine: Engine of record.
        """
        with self._reload_lock:
            old = self._snapshot
            reusable = {
                (r.compiled.name, r.compiled.version, r.compiled.sha256): r for r in old.rulesets()
            }
            state = _StateBuilder()
            origins: dict[str, tuple[LoadedRuleset, ...]] = {}
            errors: dict[str, str] = {}
            failures: list[str] = []
            touched: set[str] = set()
            built: list[LoadedRuleset] = []
            refused_built: list[LoadedRuleset] = []
            origin_of: dict[LoadedRuleset, str] = {}  # the path each added ruleset came from
            for path in ruleset_paths(root):
                key = str(path)
                compiled: CompiledRuleset | None = None
                try:
                    compiled = load_ruleset(path)
                    # An identical ruleset already serving is kept: no new engine to build.
                    same = reusable.get((compiled.name, compiled.version, compiled.sha256))
                    fresh = same if same is not None else self._prepare(compiled, engine)
                except Exception as exc:  # noqa: BLE001 - one bad ruleset must not stop the rest
                    kept = old.origins.get(key, ())
                    names = {r.compiled.name for r in kept} or {
                        compiled.name if compiled is not None else path.name
                    }
                    self._log_failure(path, exc, kept)
                    text = _describe_failure(path, exc)
                    for name in names:
                        errors[name] = f"{errors[name]}\n{text}" if name in errors else text
                    touched |= names
                    failures.append(
                        f"{path}: {len(exc.problems)} problem(s)"
                        if isinstance(exc, RulesetError)
                        else f"{path}: {type(exc).__name__}"
                    )
                    for ruleset in kept:
                        state.add(ruleset)
                    if kept:
                        origins[key] = kept
                    continue
                if same is None:
                    built.append(fresh)
                touched.add(compiled.name)
                clash = state.versions.get(compiled.name, {}).get(compiled.version)
                if clash is not None and clash.compiled.sha256 != compiled.sha256:
                    # One version, two contents: never let path order pick the content. The
                    # one serving before keeps serving; otherwise the first in path order.
                    kept_one, refused = (
                        (fresh, clash) if same is not None and clash in built else (clash, fresh)
                    )
                    text = _describe_clash(kept_one, refused)
                    log.error("%s", text)
                    name = compiled.name
                    errors[name] = f"{errors[name]}\n{text}" if name in errors else text
                    failures.append(f"{refused.compiled.path}: same version, other content")
                    if kept_one is fresh:
                        state.add(fresh)  # displaces the refused one
                        origins.pop(origin_of.pop(refused, ""), None)
                        origins[key] = (fresh,)
                        origin_of[fresh] = key
                    refused_built.append(refused)
                    continue
                state.add(fresh)
                origins[key] = (fresh,)
                origin_of[fresh] = key
            now = self._clock()
            reloaded_at = dict.fromkeys(touched, now)
            new = state.snapshot(self._default, origins, errors, tuple(failures), reloaded_at)
            self._swap(new)
            _close_all(
                [
                    r
                    for r in {*state.displaced, *refused_built}
                    if r in built and r not in new.rulesets()
                ]
            )
        log.info(
            "rulesets reloaded from %s: %s%s",
            root,
            ", ".join(f"{n}@{v}" for n, v in sorted(new.active.items())) or "none",
            f"; {len(failures)} not loaded (kept their last good version)" if failures else "",
        )

    def _log_failure(self, path: Path, exc: Exception, kept: tuple[LoadedRuleset, ...]) -> None:
        keeping = (
            "; still serving " + ", ".join(f"{r.compiled.name}@{r.compiled.version}" for r in kept)
            if kept
            else ""
        )
        if isinstance(exc, RulesetError):
            log.error("ruleset %s not loaded%s:\n%s", path, keeping, exc)
        else:
            log.error("ruleset %s not loaded%s", path, keeping, exc_info=exc)

    def _swap(self, new: _Snapshot) -> None:
        """Make ``new`` current; close (now or at last release) what it no longer holds."""
        with self._lock:
            old = self._snapshot
            self._snapshot = new  # Invariant: the one assignment readers can observe.
            gone = old.rulesets() - new.rulesets()
            idle = [r for r in gone if r not in self._users]
            self._retired |= gone - set(idle)
        _close_all(idle)

    def close(self) -> None:
        """Release every ruleset's engine resources (one still in use: when it is released)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            held = self._snapshot.rulesets() | self._retired
            idle = [r for r in held if r not in self._users]
            self._retired = held - set(idle)
        _close_all(idle)


def _close_all(rulesets: list[LoadedRuleset]) -> None:
    for ruleset in rulesets:
        try:
            ruleset.close()
        except Exception:
            log.exception(
                "closing ruleset %s@%s failed", ruleset.compiled.name, ruleset.compiled.version
            )


def load_registry(
    root: Path, engine: EngineKind, default_name: str | None = None
) -> RulesetRegistry:
    """A new registry holding every ruleset under ``root`` (see ``RulesetRegistry.reload``).

    Args:
        root: A rulesets directory, or one ruleset directory / file.
        engine: Engine of record.
        default_name: Ruleset used when a request names none (default: the first loaded).

    Returns:
        The registry.
    """
    registry = RulesetRegistry(default_name)
    registry.reload(root, engine)
    return registry
