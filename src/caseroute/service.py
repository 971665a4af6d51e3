"""The facade transports call: loaded rulesets, decide one case, decide a batch.

Never imports gRPC: the gRPC adapter converts messages to these commands and back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.errors import (
    FieldViolation,
    NoRulesetLoadedError,
    RequestError,
    RulesetError,
    RulesetNotFoundError,
)
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.rules.compiler import RULESET_FILE, load_ruleset

log = logging.getLogger("caseroute.service")

MAX_REQUEST_ID = 200
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class DecideCommand:
    """One or more cases to decide against one roster.

    Attributes:
        request_id: Caller's idempotency key.
        ruleset_name: Ruleset to use ("" for the default).
        ruleset_version: Version to pin ("" for the active one).
        cases: Cases, decided in order (one for Decide).
        roster: The roster snapshot.
        now: Decision instant; ``None`` means the service clock.
        agent_detail: Keep per-agent verdicts in explanations.
    """

    request_id: str
    ruleset_name: str
    ruleset_version: str
    cases: tuple[Case, ...]
    roster: Roster
    now: datetime | None
    agent_detail: bool = True


@dataclass(frozen=True, slots=True)
class DecideResult:
    """Decisions in request order, and the instant used."""

    decisions: tuple[Decision, ...]
    now: datetime


class RulesetRegistry:
    """Loaded rulesets by name and version; swaps are atomic (readers never see a half load)."""

    def __init__(self, default_name: str | None = None) -> None:
        """Start empty; ``default_name`` picks the ruleset used when a request names none."""
        self._lock = threading.Lock()
        self._versions: dict[str, dict[str, LoadedRuleset]] = {}
        self._active: dict[str, str] = {}
        self._default = default_name
        self.load_errors: list[str] = []

    def add(self, ruleset: LoadedRuleset) -> None:
        """Register a loaded ruleset and make it the active version of its name."""
        compiled = ruleset.compiled
        with self._lock:
            versions = dict(self._versions.get(compiled.name, {}))
            versions[compiled.version] = ruleset
            self._versions = {**self._versions, compiled.name: versions}
            self._active = {**self._active, compiled.name: compiled.version}
            if self._default is None:
                self._default = compiled.name

    def names(self) -> list[str]:
        """Names of the loaded rulesets."""
        return sorted(self._versions)

    def resolve(self, name: str, version: str) -> LoadedRuleset:
        """The ruleset a request selects.

        Args:
            name: Ruleset name, or "" for the default.
            version: Pinned version, or "" for the active one.

        Returns:
            The loaded ruleset.

        Raises:
            NoRulesetLoadedError: If nothing is loaded.
            RulesetNotFoundError: If the name or version is unknown.
        """
        versions_by_name, active = self._versions, self._active  # one consistent snapshot
        if not versions_by_name:
            why = "; ".join(self.load_errors) or "no rulesets were found"
            raise NoRulesetLoadedError(
                f"no ruleset is loaded ({why}); fix the rulesets and restart or reload the server"
            )
        chosen = name or self._default or ""
        versions = versions_by_name.get(chosen)
        if versions is None:
            raise RulesetNotFoundError(
                f"unknown ruleset {chosen!r}; loaded: {', '.join(sorted(versions_by_name))}"
            )
        wanted = version or active[chosen]
        if wanted not in versions:
            raise RulesetNotFoundError(
                f"ruleset {chosen!r} has no version {wanted!r}; loaded "
                f"versions: {', '.join(sorted(versions))}"
            )
        return versions[wanted]

    def close(self) -> None:
        """Release every ruleset's engine resources."""
        with self._lock:
            for versions in self._versions.values():
                for ruleset in versions.values():
                    ruleset.close()


def load_registry(
    root: Path, engine: EngineKind, default_name: str | None = None
) -> RulesetRegistry:
    """Load every ``<root>/*/ruleset.yaml`` (or ``root`` itself if it is one ruleset).

    A ruleset that fails to load is logged with every problem and skipped; the registry keeps
    the messages so requests can say why nothing is available.

    Args:
        root: A rulesets directory, or one ruleset directory / file.
        engine: Engine of record.
        default_name: Ruleset used when a request names none (default: the first loaded).

    Returns:
        The registry.
    """
    registry = RulesetRegistry(default_name)
    paths = (
        [root]
        if root.is_file() or (root / RULESET_FILE).is_file()
        else sorted(p.parent for p in root.glob(f"*/{RULESET_FILE}"))
    )
    for path in paths:
        try:
            registry.add(prepare_ruleset(load_ruleset(path), engine))
        except RulesetError as exc:
            log.error("ruleset %s not loaded:\n%s", path, exc)  # noqa: TRY400 - problems, not a bug
            registry.load_errors.append(f"{path}: {len(exc.problems)} problem(s)")
        except Exception as exc:
            log.exception("ruleset %s not loaded", path)
            registry.load_errors.append(f"{path}: {exc}")
    return registry


def request_decision_id(request_id: str, index: int) -> str:
    """Decision id for the ``index``-th case of a request: retries get the same id."""
    digest = hashlib.sha256(f"{request_id}\x00{index}".encode()).hexdigest()
    return "dec_" + digest[:28]


def _check_command(cmd: DecideCommand) -> None:
    violations = []
    if not 0 < len(cmd.request_id) <= MAX_REQUEST_ID:
        violations.append(
            FieldViolation(
                "request_id", f"must be 1-{MAX_REQUEST_ID} characters (an idempotency key)"
            )
        )
    if not 0 < len(cmd.cases) <= MAX_BATCH:
        violations.append(
            FieldViolation("cases", f"must hold 1-{MAX_BATCH} cases; got {len(cmd.cases)}")
        )
    if cmd.now is not None and cmd.now.tzinfo is None:
        violations.append(FieldViolation("now", "must carry a UTC offset"))
    if violations:
        raise RequestError(violations)


class RoutingCore:
    """Decides cases with the registry's rulesets; the one object transports talk to."""

    def __init__(
        self, registry: RulesetRegistry, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Use ``registry`` for rulesets and ``clock`` when a request gives no ``now``."""
        self.registry = registry
        self._clock = clock

    def decide(self, cmd: DecideCommand) -> DecideResult:
        """Decide every case of a command, in order, consuming capacity as agents are assigned.

        Args:
            cmd: The command.

        Returns:
            Decisions in order and the instant used.

        Raises:
            RequestError: If the command itself is invalid.
            NoRulesetLoadedError: If no ruleset is loaded.
            RulesetNotFoundError: If the selected ruleset or version is unknown.
        """
        _check_command(cmd)
        ruleset = self.registry.resolve(cmd.ruleset_name, cmd.ruleset_version)
        now = (cmd.now or self._clock()).astimezone(UTC)
        roster = cmd.roster
        decisions = []
        for index, case in enumerate(cmd.cases):
            decision = decide(
                case,
                roster,
                ruleset,
                now,
                agent_detail=cmd.agent_detail,
                decision_id=request_decision_id(cmd.request_id, index),
            )
            decisions.append(decision)
            if decision.agent_id is not None and index + 1 < len(cmd.cases):
                roster = roster_after_assignment(roster, decision.agent_id, now)
        return DecideResult(tuple(decisions), now)
