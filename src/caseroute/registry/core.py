"""The loaded rulesets: build a complete new state, swap it in atomically, close what it replaced.

A ``RulesetRegistry`` holds one immutable ``Snapshot`` (rulesets by name and version, the
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.registry.build import DecidedLookup, RecordedSource, RulesetPreparer, build_state
from caseroute.registry.state import (
    ReloadReport,
    RulesetChange,
    RulesetStatus,
    Snapshot,
    changes_between,
)

log = logging.getLogger("caseroute.registry")

BeforeSwap = Callable[[tuple[RulesetChange, ...], datetime], None]
"""Called with a built state's changes before it is swapped in; raising cancels the swap."""


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
            default_name: Ruleset used when a request names none (default: the first name, in
                order, with an active version).
            prepare: Builds a compiled ruleset's evaluators (default: ``prepare_ruleset``).
            clock: Wall clock for ``status``'s reload times.
        """
        self._default = default_name
        self._prepare = prepare
        self._clock = clock
        self._snapshot = Snapshot(MappingProxyType({}), MappingProxyType({}), default=default_name)
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

    def serves_default(self) -> bool:
        """Whether a request naming no ruleset and no version would be decided.

        Health follows this, not ``names()``: a server whose default ruleset is loaded but has
        no active version answers every unpinned request NOT_FOUND (review R32a F2).
        """
        snapshot = self._snapshot
        chosen = snapshot.default or ""
        return snapshot.active.get(chosen) in snapshot.versions.get(chosen, {})

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
            RulesetRetiredError: If the pinned version is retired (``Snapshot.serve``).
        """
        with self._lock:  # resolve and count together: a swap cannot close it in between
            ruleset = self._snapshot.serve(name, version)
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
        """Per ruleset name: active and shadow versions, every loaded version, last error.

        A name whose every load failed is listed with ``active_version`` None and its error.
        """
        return self._snapshot.status()

    def serving(self, name: str, role: str) -> LoadedRuleset | None:
        """The ruleset serving ``role`` (``active`` / ``shadow``) for ``name`` now, if any."""
        return self._snapshot.serving(name, role)

    def pointer(self, name: str) -> str | None:
        """The pointer file (``serving.yaml``) the last reload read for ``name``, if any."""
        return self._snapshot.pointers.get(name)

    # -- changing --------------------------------------------------------------------------

    def add(self, ruleset: LoadedRuleset) -> None:
        """Register a prepared ruleset and make it the active version of its name.

        For tests and embedding; servers use ``reload``. A ruleset it replaces (same name and
        version) is closed once unused.
        """
        with self._reload_lock:
            old = self._snapshot
            compiled = ruleset.compiled
            versions = {k: dict(v) for k, v in old.versions.items()}
            versions.setdefault(compiled.name, {})[compiled.version] = ruleset
            self._swap(
                replace(
                    old,
                    versions=MappingProxyType(
                        {k: MappingProxyType(v) for k, v in versions.items()}
                    ),
                    active=MappingProxyType({**old.active, compiled.name: compiled.version}),
                    default=old.default or self._default or compiled.name,
                    safeguarding_flags=old.safeguarding_flags
                    | {compiled.constraints.safeguarding_flag},
                )
            )

    def reload(
        self,
        root: Path,
        engine: EngineKind,
        *,
        decided: DecidedLookup | None = None,
        before_swap: BeforeSwap | None = None,
        recorded: RecordedSource | None = None,
    ) -> ReloadReport:
        """Load every ruleset version under ``root``, then swap the whole new state in at once.

        Every version is compiled, checked and prepared before anything is swapped (see
        ``registry.build``). A source that fails keeps what it loaded last time serving
        (nothing on a first load); its problems are logged and kept for ``status``. A source
        unchanged since the current state keeps its prepared ruleset (no engine rebuilt).
        Each ruleset's ``serving.yaml`` names its active (and shadow) version. Rulesets the
        new state no longer holds are closed once no call uses them. Reloads are serialised.

        Args:
            root: A rulesets directory, or one ruleset directory / file.
            engine: Engine of record.
            decided: The decision log's sha256s per name and version: new content for a
                version that has decided is refused (None: not checked).
            before_swap: Called with the changes of active and shadow versions before the
                swap (the lifecycle records them in the hash chain); if it raises, nothing is
                swapped, what was built is closed, and the exception propagates.
            recorded: The decision log's recorded ruleset sources by sha256 (a version whose
                file changed after it decided serves what the log recorded).

        Returns:
            What changed and what did not load.

        Raises:
            RuntimeError: If the registry was closed.
        """
        with self._reload_lock:
            if self._closed:  # what it built would never be closed
                raise RuntimeError("the ruleset registry is closed (the server is stopping)")
            old = self._snapshot
            now = self._clock()
            built = build_state(
                root, engine, old, self._prepare, decided, self._default, now, recorded
            )
            new = built.snapshot
            changes = changes_between(old, new)
            if before_swap is not None:
                try:
                    before_swap(changes, now)
                except BaseException:
                    _close_all([r for r in built.built if r not in old.rulesets()])
                    raise
            self._swap(new)
            _close_all([r for r in built.discarded if r not in new.rulesets()])
        failures = new.load_errors
        log.info(
            "rulesets reloaded from %s: %s%s",
            root,
            ", ".join(f"{n}@{v}" for n, v in sorted(new.active.items())) or "none",
            f"; {len(failures)} not loaded (kept their last good version)" if failures else "",
        )
        return ReloadReport(now, changes, failures)

    def _swap(self, new: Snapshot) -> None:
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
