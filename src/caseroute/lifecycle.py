"""The ruleset lifecycle operators drive: list, read, validate, activate, roll back, reload.

The one object the admin API (gRPC ``RulesetAdmin``), SIGHUP and the file poller talk to. It
owns the rulesets directory on disk: activation and rollback rewrite a ruleset's pointer file
(``rulesets/<name>/serving.yaml``), then reload, so the disk is always the truth a restart
reads. Every change of an active or shadow version is recorded in the decision log's hash
chain *before* the new state serves (who, when, from which version and sha256 to which), so an
auditor can tell which version was active at any instant; if the log cannot be written the
change is not made.

Never imports gRPC.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from caseroute import __version__
from caseroute.audit.record import BlobKind, RulesetEvent
from caseroute.audit.store import AuditSink
from caseroute.domain.errors import (
    CaserouteError,
    Problem,
    RulesetError,
    RulesetNotFoundError,
    RulesetStateError,
    withheld_cause,
)
from caseroute.domain.fingerprint import format_timestamp
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.registry import (
    RulesetChange,
    RulesetRegistry,
    RulesetStatus,
    VersionInfo,
    check_not_changed_after_deciding,
)
from caseroute.replay import RecordFilter
from caseroute.replay_admin import ReplayCandidate, ReplayRunner, ServerReplay
from caseroute.rules.compiler import MAX_RULESET_BYTES, compile_source, load_ruleset
from caseroute.rules.serving import (
    SERVING_FILE,
    Serving,
    parse_serving,
    pointer_lock,
    render_serving,
    write_atomically,
)
from caseroute.rules.source import parse_yaml

__all__ = [
    "LifecycleObserver",
    "LifecycleOutcome",
    "RulesetAdminCore",
    "RulesetChange",
    "RulesetInfo",
    "RulesetLifecycle",
    "RulesetText",
    "VersionInfo",
]

log = logging.getLogger("caseroute.lifecycle")


RulesetInfo = RulesetStatus
"""What the server holds for one ruleset name (ListRulesets); see ``RulesetStatus``."""


@dataclass(frozen=True, slots=True)
class LifecycleOutcome:
    """What a reload, activation or rollback did.

    Attributes:
        action: ``load``, ``reload``, ``activate`` or ``rollback``.
        actor: Who asked (``admin:<identity>``, ``signal:SIGHUP``, ``poll``, ``startup``).
        at: When the new state was swapped in.
        changes: Every change of an active or shadow version (each recorded in the chain).
        errors: One line per source that did not load (``path: N problem(s)``); the full
            problems are in ``RulesetInfo.last_error`` and the server log.
    """

    action: str
    actor: str
    at: datetime
    changes: tuple[RulesetChange, ...]
    errors: tuple[str, ...]


class LifecycleObserver(Protocol):
    """Told after each load, reload, activation or rollback (metrics); must not raise."""

    def lifecycle_done(
        self, action: str, result: str, serving: tuple[tuple[str, str, str], ...]
    ) -> None:
        """``action`` ended with ``result``; ``serving`` is every (ruleset, role, version) now.

        Args:
            action: ``load``, ``reload``, ``activate`` or ``rollback``.
            result: ``ok``; ``errors`` (some source did not load: its last good version
                serves); ``failed`` (it raised: nothing was swapped).
            serving: (name, ``active`` / ``shadow``, version) of every version serving a role.
        """


@dataclass(frozen=True, slots=True)
class RulesetText:
    """A loaded version's source (GetRuleset).

    Attributes:
        name: Ruleset name.
        version: Its version.
        sha256: sha256 of ``text``.
        text: The YAML source exactly as loaded.
    """

    name: str
    version: str
    sha256: str
    text: str


class RulesetAdminCore(Protocol):
    """What the admin transport needs (``RulesetLifecycle`` implements it; tests may fake it).

    Errors: ``RulesetNotFoundError`` (unknown name or version), ``RulesetStateError`` (the
    state does not allow it; nothing changed), ``AuditUnavailableError`` (the change could not
    be recorded in the decision log; nothing changed).
    """

    def list_rulesets(self) -> list[RulesetInfo]:
        """Every ruleset name the server knows, loaded or failed, sorted by name."""
        ...

    def get_source(self, name: str, version: str) -> RulesetText:
        """The source of ``name@version`` ("" version: the active one)."""
        ...

    def validate(self, text: str, file_name: str) -> list[Problem]:
        """Every problem of a ruleset source (compile and engine build); nothing activated.

        Args:
            text: YAML source.
            file_name: Name used in ``file:line`` locations (no directory).

        Returns:
            Every problem found, errors and warnings; empty when it would load cleanly.
        """
        ...

    def activate(self, name: str, version: str, actor: str) -> LifecycleOutcome:
        """Make a loaded version active (pointer file rewritten, chain records it)."""
        ...

    def rollback(self, name: str, actor: str) -> LifecycleOutcome:
        """Make the previously active version active again."""
        ...

    def reload(self, actor: str) -> LifecycleOutcome:
        """Re-read the rulesets directory and swap in the new state if it built."""
        ...


def _already_recorded(audit: AuditSink, change: RulesetChange) -> bool:
    """Whether the chain's last event for this ruleset role already ends in this version."""
    last = audit.last_event(change.ruleset_name, change.role)
    return last is not None and (last.to_version, last.to_sha256) == (
        change.to_version,
        change.to_sha256,
    )


DEFAULT_POLL_INTERVAL_S = 2.0
"""How often the server looks for changed files under its rulesets directory."""
_MAX_WALK_DEPTH = 4  # rulesets/<name>/<version>/golden/<file>: deeper files never matter


def _log_event(
    action: str,
    actor: str,
    result: str,
    changes: tuple[RulesetChange, ...] = (),
    not_loaded: int = 0,
    error: str = "",
) -> None:
    """One structured line per load, reload, activation or rollback (fields in ``extra``).

    Versions and counts only: the sources that did not load are logged by the registry.
    """
    fields: dict[str, object] = {
        "lifecycle": action,
        "actor": actor,
        "result": result,
        "changes": [
            {
                "ruleset": c.ruleset_name,
                "role": c.role,
                "from_version": c.from_version,
                "to_version": c.to_version,
            }
            for c in changes
        ],
        "not_loaded": not_loaded,
    }
    if error:
        fields["error"] = error
    # A failure is a warning here: whoever asked logs (or answers) the error itself.
    log.log(
        logging.INFO if result == "ok" else logging.WARNING,
        "ruleset %s: %s",
        action,
        result,
        extra=fields,
    )


def tree_fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """(relative path, mtime ns, size) of every visible file under ``root``, sorted.

    Cheap enough to take every poll (a stat per file); any write, rename or removal of a
    ruleset, golden case or pointer file changes it.
    """
    if root.is_file():
        info = root.stat()
        return ((root.name, info.st_mtime_ns, info.st_size),)
    out = []
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # editors' swap files and our own temporary pointer files
            try:
                if entry.is_dir():
                    if depth < _MAX_WALK_DEPTH:
                        stack.append((entry, depth + 1))
                    continue
                info = entry.stat()
            except OSError:
                continue
            out.append((str(entry.relative_to(root)), info.st_mtime_ns, info.st_size))
    return tuple(sorted(out))


class RulesetLifecycle:
    """Reload, activation, rollback and the poller over one registry and rulesets directory.

    Thread-safe: lifecycle changes are serialised by one lock (decisions never take it; they
    read the registry's current snapshot).
    """

    def __init__(
        self,
        registry: RulesetRegistry,
        root: Path,
        engine: EngineKind,
        *,
        audit: AuditSink | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Manage ``registry``'s rulesets from ``root``.

        Args:
            registry: The registry the decide path reads.
            root: The rulesets directory (or one ruleset directory / file).
            engine: Engine of record.
            audit: The decision log: lifecycle events go into its hash chain, and it says
                which contents each version has decided with (None: neither, for tools).
            clock: Wall clock for event times.
        """
        self.registry = registry
        self.root = root
        self.engine = engine
        self._audit = audit
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._switching = False
        """True while this object holds a pointer's ``pointer_lock`` (under ``_lock``)."""
        self._replays = ReplayRunner(engine, audit)
        self.observer: LifecycleObserver | None = None
        """Set to be told of every lifecycle action's result (``caseroute.metrics``)."""

    # -- reading ---------------------------------------------------------------------------

    def _shown(self, path: str) -> str:
        """A path as operators see it: relative to the rulesets directory."""
        base = self.root if self.root.is_dir() else self.root.parent
        try:
            return str(Path(path).relative_to(base))
        except ValueError:
            return path

    def _shown_in(self, text: str) -> str:
        """A text (an error) with the paths in it relative to the rulesets directory."""
        base = str(self.root if self.root.is_dir() else self.root.parent).rstrip("/") + "/"
        return text.replace(base, "")

    def list_rulesets(self) -> list[RulesetInfo]:
        """Every ruleset name the server knows, loaded or failed, sorted by name.

        Paths are shown relative to the rulesets directory (also inside error texts).
        """
        return [
            replace(
                status,
                versions=tuple(replace(v, path=self._shown(v.path)) for v in status.versions),
                last_error=self._shown_in(status.last_error) if status.last_error else None,
            )
            for status in self.registry.status().values()
        ]

    def get_source(self, name: str, version: str) -> RulesetText:
        """The source of ``name@version`` ("" version: the active one).

        Raises:
            RulesetNotFoundError: If no such version is loaded.
        """
        compiled = self.registry.resolve(name, version).compiled
        return RulesetText(compiled.name, compiled.version, compiled.sha256, compiled.source_text)

    def validate(self, text: str, file_name: str) -> list[Problem]:
        """Every problem of a ruleset source (compile and engine build); nothing activated.

        Args:
            text: YAML source.
            file_name: Name used in ``file:line`` locations (no directory).

        Returns:
            Every problem found, errors and warnings; empty when it would load cleanly. A
            version that has decided with other content is refused as a reload would refuse
            it (``versions.changed_after_deciding``; review R37b 9: validate said ok).
        """
        name = Path(file_name).name or "ruleset.yaml"
        if len(text.encode()) > MAX_RULESET_BYTES:
            return [
                Problem(
                    "limit.file_size",
                    f"the source is over {MAX_RULESET_BYTES} bytes; split the ruleset",
                    name,
                )
            ]
        try:
            compiled = compile_source(parse_yaml(text, name, past_duplicates=True))
            if self._audit is not None:
                check_not_changed_after_deciding(compiled, self._audit.decided_sha256s)
            prepared = prepare_ruleset(compiled, self.engine)
        except RulesetError as exc:
            return list(exc.problems)
        except CaserouteError as exc:
            # The engine refused the compiled definitions: its text may name server paths.
            log.warning("validate: the engine refused %s: %s", name, exc)
            return [
                Problem(
                    "engine.rejected",
                    f"the rules engine refused this ruleset ({type(exc).__name__}); the server "
                    "log has the detail; simplify the conditions or report it",
                    name,
                )
            ]
        prepared.close()
        return list(compiled.warnings)

    def replay(
        self, wanted: ReplayCandidate, where: RecordFilter, sample_size: int
    ) -> ServerReplay:
        """Replay the decision log under a candidate (``ReplayRunner.replay``; nothing changes)."""
        return self._replays.replay(self.root, wanted, where, sample_size)

    # -- changing --------------------------------------------------------------------------

    def load(self, actor: str = "startup") -> LifecycleOutcome:
        """The first load (recorded as ``load`` events: what serves from now on)."""
        return self._reload("load", actor)

    def reload(self, actor: str) -> LifecycleOutcome:
        """Re-read the rulesets directory and swap in the new state if it built.

        Raises:
            AuditUnavailableError: If a change could not be recorded; nothing was swapped.
        """
        return self._reload("reload", actor)

    def _reload(self, action: str, actor: str) -> LifecycleOutcome:
        with self._lock, self._no_switch_elsewhere(wait=True):
            return self._reload_held(action, actor)

    @contextlib.contextmanager
    def _no_switch_elsewhere(self, *, wait: bool) -> Iterator[bool]:
        """Hold off every other process's pointer switch while this one reloads.

        ``pointer_lock`` shared on the rulesets directory. Yields False when ``wait`` is False
        and a switch is under way (nothing held). Within this object's own switch (it holds
        the lock exclusive already) nothing is taken; a directory that cannot be opened is
        not locked (the reload reports it).
        """
        if self._switching or not self.root.is_dir():
            yield True
            return
        with contextlib.ExitStack() as stack:
            try:
                held = stack.enter_context(pointer_lock(self.root, shared=True, wait=wait))
            except OSError:
                held = True
            yield held

    def _reload_held(self, action: str, actor: str) -> LifecycleOutcome:
        """``_reload`` with ``_lock`` held and no other process switching a pointer."""
        fingerprint = tree_fingerprint(self.root)
        try:
            report = self.registry.reload(
                self.root,
                self.engine,
                decided=self._audit.decided_sha256s if self._audit is not None else None,
                recorded=self._recorded_source if self._audit is not None else None,
                before_swap=lambda changes, at: self._record(changes, at, action, actor),
            )
        except BaseException as exc:
            self._observe(action, "failed")
            _log_event(action, actor, "failed", error=type(exc).__name__)
            raise
        self._fingerprint = fingerprint
        result = "errors" if report.failures else "ok"
        self._observe(action, result)
        _log_event(action, actor, result, report.changes, len(report.failures))
        # Relative, as ListRulesets shows them: admin replies never carry server paths (R32a F6).
        failures = tuple(self._shown_in(failure) for failure in report.failures)
        return LifecycleOutcome(action, actor, report.at, report.changes, failures)

    def _recorded_source(self, name: str, version: str, sha256: str) -> str | None:
        """The source the decision log recorded for ``name@version`` with ``sha256``, if served.

        Only content a lifecycle event shows serving (loaded or activated as that version) is
        trusted: decisions' ``ruleset_sha256`` and a blob row alone could be two edited rows,
        and a restarted worker would then serve content never published (review R32d F3). A
        forged event is an edit ``audit verify`` reports.
        """
        assert self._audit is not None  # noqa: S101 - passed only with a log
        if not self._served_as(name, version, sha256):
            log.error(
                "%s@%s: the decision log holds decisions with sha256 %s..., but no lifecycle "
                "event shows that content serving; it is not served (run `caseroute audit "
                "verify`)",
                name,
                version,
                sha256[:12],
            )
            return None
        blob = self._audit.get_blob(sha256)
        return blob.content if blob is not None and blob.kind is BlobKind.RULESET else None

    def _served_as(self, name: str, version: str, sha256: str) -> bool:
        """Whether a recorded lifecycle event put ``name@version`` with ``sha256`` in a role."""
        assert self._audit is not None  # noqa: S101 - passed only with a log
        after = 0
        while True:
            page = self._audit.events(name, after_seq=after)
            if any(e.to_version == version and e.to_sha256 == sha256 for e in page):
                return True
            if not page:
                return False
            after = page[-1].seq

    def _observe(self, action: str, result: str) -> None:
        """Tell the observer, if any, what ``action`` did and what serves now; never raises."""
        if self.observer is None:
            return
        try:
            serving = tuple(
                (name, role, version)
                for name, status in sorted(self.registry.status().items())
                for role, version in (
                    ("active", status.active_version),
                    ("shadow", status.shadow_version),
                )
                if version is not None
            )
            self.observer.lifecycle_done(action, result, serving)
        except Exception as exc:  # noqa: BLE001 - metrics never fail a reload
            log.error("lifecycle observer failed: %s", withheld_cause(exc))  # noqa: TRY400

    def _record(
        self, changes: tuple[RulesetChange, ...], at: datetime, action: str, actor: str
    ) -> None:
        """Record every change in the hash chain before it serves (raises: no swap)."""
        if self._audit is None:
            return
        # Several processes (a server's workers, replicas) share one log and each swaps in the
        # same change (one by the admin call, the others by their poller): the chain records
        # what serves, once. A change the log already shows as the current state is not
        # recorded again: read here first (most swaps find it recorded: no write), and again by
        # the sink under its write lock (``unless_current``), where two processes that both
        # read "not recorded" are ordered, so the second one's event is dropped.
        audit = self._audit
        changes = tuple(c for c in changes if not _already_recorded(audit, c))
        if not changes:
            return
        audit.append_events(
            [
                RulesetEvent(
                    seq=0,
                    event_id=uuid.uuid4().hex,
                    recorded_at=format_timestamp(at),
                    action=action,
                    actor=actor,
                    ruleset_name=c.ruleset_name,
                    role=c.role,
                    from_version=c.from_version,
                    from_sha256=c.from_sha256,
                    to_version=c.to_version,
                    to_sha256=c.to_sha256,
                    caseroute_version=__version__,
                    prev_hash="",
                    record_hash="",
                )
                for c in changes
            ],
            unless_current=True,
        )

    def _pointer_path(self, name: str) -> Path:
        known = self.registry.pointer(name)
        if known is not None:
            return Path(known)
        if not self.root.is_dir() or (self.root / "ruleset.yaml").is_file():
            raise RulesetStateError(
                "this server serves a single ruleset file, so it has no versions to switch "
                "between; start it with --rulesets pointing at a rulesets directory"
            )
        if (self.root / SERVING_FILE).is_file():
            return self.root / SERVING_FILE
        return self.root / name / SERVING_FILE

    def _loaded_status(self, name: str) -> RulesetStatus:
        """The status of a ruleset with a loaded version.

        Raises:
            RulesetNotFoundError: If none of its versions is loaded.
        """
        status = self.registry.status().get(name)
        if status is None or not status.versions:
            raise RulesetNotFoundError(
                f"unknown ruleset {name!r}; loaded: {', '.join(self.registry.names())}"
            )
        return status

    def _current_serving(self, name: str, path: Path) -> Serving:
        status = self._loaded_status(name)
        if path.is_file():
            try:
                return parse_serving(path)
            except RulesetError as exc:
                raise RulesetStateError(
                    f"the serving file of ruleset {name} is malformed "
                    f"({exc.problems[0].code} at line {exc.problems[0].line}); fix "
                    f"{self._shown(str(path))} (ListRulesets shows the problem), then retry"
                ) from exc
        active = status.active_version
        return Serving(
            active or "",
            status.shadow_version,
            status.previous_versions,
            retired=status.retired_versions,
        )

    def activate(self, name: str, version: str, actor: str) -> LifecycleOutcome:
        """Make a loaded version active: rewrite its pointer file, reload, record it.

        Under ``pointer_lock`` (one pointer change at a time across processes), after
        following what changed on disk since the last load.

        Args:
            name: Ruleset name.
            version: A loaded version of it.
            actor: Who asked (``admin:<identity>``).

        Returns:
            What changed (nothing when it was already active).

        Raises:
            RulesetNotFoundError: If the name or version is not loaded.
            RulesetStateError: If the pointer cannot be written or the version did not end up
                active (the pointer file is restored).
            AuditUnavailableError: If the change could not be recorded (pointer restored).
        """
        with self._lock:
            self._loaded_status(name)  # an unknown name is not an unwritable directory
            path = self._pointer_path(name)
            with self._pointer_locked(name, path):
                self.poll_once()  # first follow what another worker changed
                loaded = self.registry.resolve(name, version)  # else RulesetNotFoundError
                self._check_on_disk(loaded, "activate")
                current = self._current_serving(name, path)
                target = (
                    Serving(
                        version,
                        current.shadow if current.shadow != version else None,
                        retired=tuple(v for v in current.retired if v != version),
                    )
                    if not current.active
                    else current.activated(version)
                )
                return self._switch(name, path, current, target, "activate", actor)

    def rollback(self, name: str, actor: str) -> LifecycleOutcome:
        """Make the previously active version active again.

        Raises:
            RulesetNotFoundError: If the name is not loaded.
            RulesetStateError: If there is no previous version, or it is no longer loaded.
            AuditUnavailableError: If the change could not be recorded (pointer restored).
        """
        with self._lock:
            self._loaded_status(name)  # an unknown name is not an unwritable directory
            path = self._pointer_path(name)
            with self._pointer_locked(name, path):
                return self._rollback(name, path, actor)

    def _rollback(self, name: str, path: Path, actor: str) -> LifecycleOutcome:
        """``rollback`` with the pointer locked."""
        self.poll_once()  # first follow what another worker changed
        current = self._current_serving(name, path)
        if not current.previous:
            raise RulesetStateError(
                f"ruleset {name} has no previously active version to roll back to (its "
                "serving.yaml lists none under `previous`); activate a version by name"
            )
        target = current.rolled_back()
        try:
            loaded = self.registry.resolve(name, target.active)
        except RulesetNotFoundError as exc:
            raise RulesetStateError(
                f"ruleset {name} would roll back to {target.active}, which is not loaded "
                "(removed or failing: ListRulesets says why); restore it or activate a "
                "loaded version"
            ) from exc
        self._check_on_disk(loaded, "roll back to")
        return self._switch(name, path, current, target, "rollback", actor)

    @contextlib.contextmanager
    def _pointer_locked(self, name: str, path: Path) -> Iterator[None]:
        """``pointer_lock`` on the rulesets directory, exclusive, for a switch of ``path``.

        A directory that cannot be opened is the usual unwritable error, naming ``path``.
        Called with ``_lock`` held, so ``_switching`` is this thread's alone while set.
        """
        with contextlib.ExitStack() as stack:
            try:
                # The whole directory's: one switch at a time, and no reload meanwhile.
                stack.enter_context(pointer_lock(self.root))
            except OSError as exc:
                raise self._unwritable(name, path, exc) from exc
            self._switching = True
            try:
                yield
            finally:
                self._switching = False

    def _check_on_disk(self, loaded: LoadedRuleset, verb: str) -> None:
        """Refuse to point at a version its file no longer gives (review R32a F2).

        A version whose file was edited or broke after it loaded keeps serving from this
        process's memory; pointing serving.yaml at it would leave a restarted or respawned
        worker with no active version. Compiled again here (an admin call, not a hot path).

        Raises:
            RulesetStateError: If the file does not compile, or compiles to other content.
        """
        compiled = loaded.compiled
        shown = self._shown(compiled.path)
        try:
            on_disk = load_ruleset(Path(compiled.path)).sha256
        except Exception as exc:  # noqa: BLE001 - any failure to load is the answer
            log.error("%s is not loadable as it serves: %s", compiled.path, exc)  # noqa: TRY400
            on_disk = None
        if on_disk == compiled.sha256:
            return
        said = "does not load" if on_disk is None else f"now holds other content ({on_disk[:12]}…)"
        raise RulesetStateError(
            f"cannot {verb} ruleset {compiled.name} version {compiled.version}: its file "
            f"{shown} {said}, while this server serves it as loaded before (sha256 "
            f"{compiled.sha256[:12]}…); a restarted or respawned worker could not serve it. "
            "Restore the file (a version that has decided never changes; ListRulesets shows "
            "the problem), reload, then retry; nothing changed"
        )

    def _switch(
        self, name: str, path: Path, current: Serving, target: Serving, action: str, actor: str
    ) -> LifecycleOutcome:
        """Write the pointer, reload; restore the old pointer if it did not take.

        The outcome and the chain say what the pointer change did, not only what changed in
        this worker: a worker that had not yet followed another worker's change (they poll)
        served the target already, replied "no change" and left the change to be recorded
        by a poll, without the admin's name (review R32a F7).
        """
        version = target.active
        try:
            before = path.read_bytes() if path.is_file() else None
        except OSError as exc:
            raise self._unwritable(name, path, exc) from exc
        try:
            write_atomically(path, render_serving(name, target))
        except OSError as exc:
            raise self._unwritable(name, path, exc) from exc
        try:
            outcome = self._reload(action, actor)
        except BaseException:
            self._restore(path, before)
            raise
        status = self.registry.status().get(name)
        if status is None or status.active_version != version:
            self._restore(path, before)
            self._reload("reload", actor)
            raise RulesetStateError(
                f"ruleset {name} version {version} did not become active (it failed to load "
                "while switching: ListRulesets shows why); nothing changed"
            )
        log.info("%s: %s of %s to %s", actor, action, name, version)
        return self._pointer_changes(name, current, target, outcome)

    def _pointer_changes(
        self, name: str, current: Serving, target: Serving, outcome: LifecycleOutcome
    ) -> LifecycleOutcome:
        """``outcome`` with the pointer's own changes this worker's state did not show.

        Recorded in the chain with the admin's action and name unless the chain already shows
        them (another worker's poll recorded them first).
        """
        shown = {(c.ruleset_name, c.role) for c in outcome.changes}
        extra = []
        for role, before, after in (
            ("active", current.active, target.active),
            ("shadow", current.shadow or "", target.shadow or ""),
        ):
            if before == after or (name, role) in shown:
                continue
            extra.append(
                RulesetChange(
                    name,
                    role,
                    before,
                    self._sha256_of(name, before),
                    after,
                    self._sha256_of(name, after),
                )
            )
        if not extra:
            return outcome
        self._record(tuple(extra), outcome.at, outcome.action, outcome.actor)
        return replace(outcome, changes=(*outcome.changes, *extra))

    def _sha256_of(self, name: str, version: str) -> str:
        """A loaded version's sha256 ("" for none or one not loaded)."""
        if not version:
            return ""
        try:
            return self.registry.resolve(name, version).compiled.sha256
        except CaserouteError:
            return ""

    def _restore(self, path: Path, before: bytes | None) -> None:
        try:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, before.decode())
        except OSError:
            log.exception("could not restore %s; fix it by hand", path)

    def _unwritable(self, name: str, path: Path, exc: OSError) -> RulesetStateError:
        log.error("cannot write the serving file %s: %s", path, exc)
        return RulesetStateError(
            f"the server cannot write the serving file of ruleset {name} "
            f"({self._shown(str(path))}; {type(exc).__name__}); give it write access to the "
            "rulesets directory, or edit serving.yaml by hand and reload"
        )

    # -- polling ---------------------------------------------------------------------------

    def poll_once(self) -> LifecycleOutcome | None:
        """Reload if any file under the rulesets directory changed since the last load.

        Returns:
            The reload's outcome, or None when nothing changed.
        """
        if tree_fingerprint(self.root) == self._fingerprint:
            return None
        with self._lock, self._no_switch_elsewhere(wait=False) as clear:
            # Another process is switching a pointer: the next tick follows the whole switch
            # (its event recorded under the admin's name), never half of it.
            return self._reload_held("reload", "poll") if clear else None

    def start_polling(self, interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        """Check for changed files every ``interval_s`` in a daemon thread (0: never)."""
        if interval_s <= 0 or self._poller is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.poll_once()
                except Exception:  # the next tick retries; a reload failure must not end it
                    self._fingerprint = None
                    log.exception("ruleset reload after a file change failed; retrying")

        self._poller = threading.Thread(target=run, name="caseroute-ruleset-poll", daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        """Stop the poller (waits for a reload in progress to finish)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None
