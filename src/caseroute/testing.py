"""Builders and fakes for tests: ours, and users' tests of their own rulesets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from caseroute.audit.config import AuditConfig
from caseroute.audit.record import AuditRecord
from caseroute.domain.case import (
    Case,
    Channel,
    Intent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.codec import parse_case
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.facts import Fact
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.rules.compiler import compile_source, load_ruleset
from caseroute.rules.ir import Leaf
from caseroute.rules.layout import active_source
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.source import parse_yaml
from caseroute.service import RoutingCore, RulesetRegistry

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
"""A fixed decision instant for tests."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout (``examples/``, ``protos/``); meaningless when installed from a wheel."""

_PACKAGED_RULESETS = Path(__file__).resolve().parent / "rulesets"
REFERENCE_RULESETS = _PACKAGED_RULESETS if _PACKAGED_RULESETS.is_dir() else REPO_ROOT / "rulesets"
"""The reference rulesets directory: shipped in the wheel (``caseroute/rulesets``, see
``force-include`` in pyproject.toml), read from the checkout in a source tree."""
REFERENCE_HOME = REFERENCE_RULESETS / "patient-enquiries"
"""The reference ruleset's home: its versions and the ``serving.yaml`` naming the active one."""
REFERENCE_RULESET = active_source(REFERENCE_HOME)
"""The reference ruleset's active version directory (``ruleset.yaml`` and ``golden/``)."""


def make_case(**overrides: Any) -> Case:
    """A routine clinical case in Texas; override any field by keyword."""
    values: dict[str, Any] = {
        "case_id": "CASE-T1",
        "created_at": NOW - timedelta(minutes=5),
        "channel": Channel.PHONE,
        "intent": Intent.CLINICAL,
        "urgency": Urgency.ROUTINE,
        "patient_location": "US-TX",
        "region": "US-TX",
        "tier": Tier.STANDARD,
    }
    values.update(overrides)
    return Case(**values)


def make_agent(agent_id: str = "a1", **overrides: Any) -> Agent:
    """An available Texas RN with free capacity; override any field by keyword."""
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "role": Role.AGENT,
        "status": AgentStatus.AVAILABLE,
        "capacity": Capacity(max=5, active=1),
        "licences": (Licence("RN", "US-TX", date(2030, 1, 1)),),
        "territories": frozenset({"US-TX"}),
        "skills": {"clinical-triage": 3},
        "languages": frozenset({"en"}),
    }
    values.update(overrides)
    return Agent(**values)


def make_roster(*agents: Agent) -> Roster:
    """A roster snapshot of the given agents."""
    return Roster("snap-T1", NOW - timedelta(minutes=1), tuple(agents))


def reading(score: float, minutes_ago: float) -> SentimentReading:
    """A sentiment reading ``minutes_ago`` before ``NOW``."""
    return SentimentReading(score, NOW - timedelta(minutes=minutes_ago))


def clock(name: str, minutes_left: float, started_minutes_ago: float = 60.0) -> SlaClock:
    """An SLA clock with ``minutes_left`` until its deadline at ``NOW``."""
    return SlaClock(
        name, NOW - timedelta(minutes=started_minutes_ago), NOW + timedelta(minutes=minutes_left)
    )


def skill(name: str, min_level: int) -> RequiredSkill:
    """A required skill."""
    return RequiredSkill(name, min_level)


def case_data(**fields: Any) -> dict[str, Any]:
    """A routine general enquiry as request JSON (``parse_case`` input); override any field."""
    data: dict[str, Any] = {
        "case_id": "C1",
        "created_at": "2026-11-21T09:00:00Z",
        "channel": "phone",
        "intent": "general",
        "urgency": "routine",
    }
    data.update(fields)
    return data


def agent_data(agent_id: str = "a1", **fields: Any) -> dict[str, Any]:
    """An available agent with free capacity as request JSON; override any field."""
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "status": "available",
        "capacity": {"max": 3, "active": 0},
    }
    data.update(fields)
    return data


def roster_data(*agents: object) -> dict[str, Any]:
    """A roster snapshot of ``agents`` as request JSON (``parse_roster`` input)."""
    return {"snapshot_id": "s", "taken_at": "2026-11-21T09:00:00Z", "agents": list(agents)}


def request_violations(
    data: object, parse: Callable[..., object] = parse_case, **kwargs: Any
) -> list[FieldViolation]:
    """The field violations ``parse(data, **kwargs)`` raises.

    Raises:
        AssertionError: ``parse`` accepted ``data``.
    """
    try:
        parse(data, **kwargs)
    except RequestError as error:
        return list(error.violations)
    raise AssertionError(f"{getattr(parse, '__name__', parse)} accepted the input")


def reference_compiled() -> CompiledRuleset:
    """The reference ruleset from ``rulesets/patient-enquiries``, compiled."""
    return load_ruleset(REFERENCE_RULESET)


def reference_ruleset(engine: EngineKind = EngineKind.PYTHON) -> LoadedRuleset:
    """The reference ruleset, ready for ``decide``."""
    return prepare_ruleset(reference_compiled(), engine)


MINIMAL_HEADER = """\
ruleset: test
version: "1"
description: test ruleset
owner: tests
constraints:
  safeguarding: {flag: safeguarding, queue: safeguarding}
  licence: {clinical: [RN]}
queues: {clinical: clinical, prescription: rx, appointment: appt, billing: billing,
         complaint: complaints, general: general}
"""
SAFEGUARDING_RULE = """\
  - id: safeguarding
    when: "'safeguarding' in case.flags"
    then: {escalate: {queue: safeguarding, reason: safeguarding_concern}}
"""
ADAPTIVE_HEADER = (
    MINIMAL_HEADER
    + """\
ladders:
  lang:
    - step: any-language
      after: {routine: 10m, urgent: 10m}
      prefer: [language]
      why: A nurse with an interpreter beats a longer wait.
    - step: any-territory
      after: 30m
      relax: [territory]
      why: Anyone licensed will do after half an hour.
continuity:
  window: 365d
  hold: {routine: 15m}
"""
)
"""``MINIMAL_HEADER`` plus ladder ``lang`` (language a preference after 10 minutes for routine
and urgent cases, territory relaxed after 30) and continuity (365-day window, routine cases
held up to 15 minutes): a header for tests of adaptive routing."""
CATCH_ALL_RULE = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
"""A last rule routing every case to its intent's queue: ``ruleset_with_rules(CATCH_ALL_RULE)``
is the smallest valid ruleset."""


def compile_text(text: str, path: str = "test.yaml") -> CompiledRuleset:
    """Compile ruleset YAML given as text."""
    return compile_source(parse_yaml(text, path, past_duplicates=True))


def ruleset_with_rules(rules_yaml: str, header: str = MINIMAL_HEADER) -> str:
    """Ruleset text: a minimal header, the safeguarding rule, then ``rules_yaml`` items."""
    return f"{header}rules:\n{SAFEGUARDING_RULE}{rules_yaml}"


class GatedMatcher:
    """A leaf matcher giving the Python evaluator's answer, held mid-call until released.

    Lets a test stop a decision inside the engine (a reload, a full shadow queue) and resume it
    on an event, never a sleep. While ``blocking``, each call sets ``entered`` and waits for
    ``release``.
    """

    label = "gate"

    def __init__(
        self, leaves: dict[str, Leaf], *, blocking: bool = True, wait_s: float = 30.0
    ) -> None:
        """Answer like ``PythonLeafEvaluator(leaves)``; hold calls while ``blocking``."""
        self._python = PythonLeafEvaluator(leaves)
        self._wait_s = wait_s
        self.blocking = blocking
        self.entered = threading.Event()
        self.release = threading.Event()

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Signal ``entered`` and wait for ``release`` while blocking; then evaluate.

        Raises:
            TimeoutError: If the test never released the gate.
        """
        if self.blocking:
            self.entered.set()
            if not self.release.wait(self._wait_s):
                raise TimeoutError("the test never released the gate")
        return self._python.true_leaves(fact)


@dataclass(slots=True)
class ScriptedMatcher:
    """A leaf matcher that reports fixed leaves (to exercise engine disagreement handling)."""

    leaves: frozenset[str]
    label: str = "scripted"
    calls: list[Fact] = field(default_factory=list)

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Record the fact and return the scripted leaves."""
        self.calls.append(fact)
        return self.leaves


TEST_AUDIT_KEY = "00112233445566778899aabbccddeeff"
"""A fixed masking key for tests (hex); never use it for real data."""


def audit_config(directory: Path) -> AuditConfig:
    """Audit settings for a decision log in ``directory`` with the test key."""
    return AuditConfig(db=directory / "audit.db", key_hex=TEST_AUDIT_KEY)


def audited_core(
    registry: RulesetRegistry,
    directory: Path,
    clock: Callable[[], datetime] = lambda: NOW,
) -> RoutingCore:
    """A core over ``registry`` recording to a fresh decision log in ``directory``."""
    config = audit_config(directory)
    return RoutingCore(registry, config.open_store(), config.masker(), clock)


def make_audit_record(n: int, **overrides: Any) -> AuditRecord:
    """Record ``n`` as a caller hands it to a store's ``append`` (seq 0, no hashes yet).

    Args:
        n: Numbers the decision (``dec_<n>``), request (``req<n>``) and case (``C<n>``).
        **overrides: Any other ``AuditRecord`` field.
    """
    values: dict[str, Any] = {
        "seq": 0,
        "decision_id": f"dec_{n}",
        "request_id": f"req{n}",
        "request_sha256": "0" * 64,
        "case_id": f"C{n}",
        "recorded_at": "2026-11-21T10:00:00Z",
        "now": "2026-11-21T10:00:00Z",
        "ruleset_name": "test",
        "ruleset_version": "1",
        "ruleset_sha256": "f" * 64,
        "caseroute_version": "0",
        "caller": "",
        "input": {"case": {}, "roster": {"sha256": "", "assigned_before": []}},
        "decision": {},
        "prev_hash": "",
        "record_hash": "",
    }
    values.update(overrides)
    return AuditRecord(**values)
