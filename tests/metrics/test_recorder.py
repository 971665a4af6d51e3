"""The metrics recorder on real decisions of the reference ruleset (ladders and continuity)."""

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from caseroute.domain.case import Case, ContinuityReason, Intent, PreferredAgent
from caseroute.domain.roster import Capacity, Licence, Roster
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.metrics.definitions import TIME_TO_TRIAGE_BUCKETS
from caseroute.service import DecideCommand, DecideResult, RoutingCore, RulesetRegistry
from caseroute.testing import NOW, audited_core, make_agent, make_case, make_roster

RULESET = "patient-enquiries"
VERSION = "2026.12.1"
NEAR = make_agent("AGENT-ZQ-NEAR")
FAR = make_agent(
    "AGENT-ZQ-FAR",
    licences=(Licence("RN", "US-CA", date(2030, 1, 1)),),
    territories=frozenset({"US-CA"}),
)
BUSY = make_agent("AGENT-ZQ-BUSY", capacity=Capacity(max=1, active=1))


def _preferring(agent_id: str) -> tuple[PreferredAgent, ...]:
    return (PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=30)),)


SCENARIOS: dict[str, tuple[Case, Roster]] = {
    # Clinical, 5 min waiting, preferred agent eligible: ASSIGN to them; FAR fails licence and
    # territory; the language ladder's 10-minute step is still pending.
    "assigned": (
        make_case(case_id="CASE-ZQ-A", preferred_agents=_preferring("AGENT-ZQ-NEAR")),
        make_roster(NEAR, FAR),
    ),
    # Appointment from California, 40 min waiting: the territory step (30 min) is active.
    "relaxed": (
        make_case(
            case_id="CASE-ZQ-B",
            intent=Intent.APPOINTMENT,
            created_at=NOW - timedelta(minutes=40),
            region="US-CA",
            patient_location="US-CA",
        ),
        make_roster(NEAR),
    ),
    "safeguarding": (
        make_case(case_id="CASE-ZQ-C", flags=frozenset({"safeguarding"})),
        make_roster(NEAR),
    ),
    "no-location": (make_case(case_id="CASE-ZQ-D", patient_location=None), make_roster(NEAR)),
    # Routine clinical whose preferred agent is full: held for them (QUEUE).
    "held": (
        make_case(case_id="CASE-ZQ-E", preferred_agents=_preferring("AGENT-ZQ-BUSY")),
        make_roster(BUSY, NEAR),
    ),
}


def _command(name: str) -> DecideCommand:
    case, roster = SCENARIOS[name]
    return DecideCommand(f"REQ-ZQ-{name}", "", "", (case,), roster, NOW)


@pytest.fixture
def metered(
    registry: RulesetRegistry, tmp_path: Path
) -> Iterator[tuple[RoutingCore, CollectorRegistry]]:
    """A core over the reference ruleset whose observer counts into a fresh registry."""
    core = audited_core(registry, tmp_path)
    collector = CollectorRegistry()
    core.observer = MetricsRecorder(define_metrics(collector))
    yield core, collector
    core.audit.close()


def _value(collector: CollectorRegistry, name: str, **labels: str) -> float | None:
    return collector.get_sample_value(name, labels)


def test_each_decision_updates_its_counters_once(
    metered: tuple[RoutingCore, CollectorRegistry],
) -> None:
    """Five decisions give exact counts by outcome, reason, rule, check, ladder step, continuity."""
    core, collector = metered
    for name in SCENARIOS:
        core.decide(_command(name))
    rs = {"ruleset": RULESET}
    expected = {
        ("caseroute_decisions_total", (("outcome", "ASSIGN"), ("version", VERSION))): 2.0,
        ("caseroute_decisions_total", (("outcome", "QUEUE"), ("version", VERSION))): 1.0,
        ("caseroute_decisions_total", (("outcome", "ESCALATE"), ("version", VERSION))): 1.0,
        ("caseroute_decisions_total", (("outcome", "EXCEPTION"), ("version", VERSION))): 1.0,
        ("caseroute_escalations_total", (("reason", "safeguarding_concern"),)): 1.0,
        ("caseroute_exceptions_total", (("reason", "missing_patient_location"),)): 1.0,
        ("caseroute_rule_hits_total", (("rule_id", "clinical"),)): 2.0,
        ("caseroute_rule_hits_total", (("rule_id", "by-intent"),)): 1.0,
        ("caseroute_rule_hits_total", (("rule_id", "safeguarding"),)): 1.0,
        ("caseroute_rule_hits_total", (("rule_id", "missing-patient-location"),)): 1.0,
        ("caseroute_relaxations_total", (("ladder", "language"), ("step", "(none)"))): 2.0,
        (
            "caseroute_relaxations_total",
            (("ladder", "language-then-territory"), ("step", "any-territory")),
        ): 1.0,
        ("caseroute_relaxed_requirements_total", (("requirement", "territory"),)): 1.0,
        ("caseroute_continuity_total", (("outcome", "assigned_preferred"),)): 1.0,
        ("caseroute_continuity_total", (("outcome", "held_for_preferred"),)): 1.0,
    }
    actual = {key: _value(collector, key[0], **rs, **dict(key[1])) for key in expected}
    assert expected == actual
    excluded = {
        check: _value(collector, "caseroute_agents_excluded_total", check=check)
        for check in ("licence", "territory", "capacity", "language")
    }
    assert excluded == {"licence": 1.0, "territory": 1.0, "capacity": 1.0, "language": None}
    assert _value(collector, "caseroute_decision_replays_total", **rs) is None


def test_time_to_triage_lands_in_its_buckets_by_intent_and_urgency(
    metered: tuple[RoutingCore, CollectorRegistry],
) -> None:
    """Four clinical cases created 5 min before `now` and one appointment 40 min before."""
    core, collector = metered
    for name in SCENARIOS:
        core.decide(_command(name))
    clinical = {"intent": "clinical", "urgency": "routine"}
    appointment = {"intent": "appointment", "urgency": "routine"}
    name = "caseroute_time_to_triage_seconds"
    assert _value(collector, f"{name}_count", **clinical) == 4.0
    assert _value(collector, f"{name}_sum", **clinical) == 1200.0
    assert _value(collector, f"{name}_sum", **appointment) == 2400.0
    buckets = {
        le: (
            _value(collector, f"{name}_bucket", **clinical, le=str(le)),
            _value(collector, f"{name}_bucket", **appointment, le=str(le)),
        )
        for le in TIME_TO_TRIAGE_BUCKETS[:5]
    }
    assert buckets == {
        60.0: (0.0, 0.0),
        300.0: (4.0, 0.0),
        900.0: (4.0, 0.0),
        1800.0: (4.0, 0.0),
        3600.0: (4.0, 1.0),
    }


def test_a_replayed_retry_is_counted_as_a_replay_not_a_decision(
    metered: tuple[RoutingCore, CollectorRegistry],
) -> None:
    """The same request_id and input again: decisions stay at 1, replays go to 1."""
    core, collector = metered
    first = core.decide(_command("assigned"))
    again = core.decide(_command("assigned"))
    assert again.replayed
    assert first.decisions[0].decision_id == again.decisions[0].decision_id
    labels = {"ruleset": RULESET, "version": VERSION, "outcome": "ASSIGN"}
    assert _value(collector, "caseroute_decisions_total", **labels) == 1.0
    assert _value(collector, "caseroute_decision_replays_total", ruleset=RULESET) == 1.0
    triage = {"intent": "clinical", "urgency": "routine"}
    assert _value(collector, "caseroute_time_to_triage_seconds_count", **triage) == 1.0


def test_the_exposition_never_names_a_case_agent_or_request(
    metered: tuple[RoutingCore, CollectorRegistry],
) -> None:
    """Every id of the scenarios (all contain ZQ) is absent from the whole exposition text."""
    core, collector = metered
    for name in SCENARIOS:
        core.decide(_command(name))
        core.decide(_command(name))  # replays too
    text = generate_latest(collector).decode()
    assert "caseroute_decisions_total" in text
    assert "ZQ" not in text
    assert "dec_" not in text


def test_a_created_at_after_now_is_left_out_of_time_to_triage(
    metered: tuple[RoutingCore, CollectorRegistry],
) -> None:
    """A caller's clock skew is not a triage time: the decision counts, its triage does not."""
    core, collector = metered
    result = core.decide(_command("assigned"))
    recorder = core.observer
    assert isinstance(recorder, MetricsRecorder)
    skewed = make_case(case_id="CASE-ZQ-S", created_at=NOW + timedelta(minutes=1))
    recorder.decided((skewed,), DecideResult(result.decisions, result.now))
    labels = {"ruleset": RULESET, "version": VERSION, "outcome": "ASSIGN"}
    assert _value(collector, "caseroute_decisions_total", **labels) == 2.0
    triage = {"intent": "clinical", "urgency": "routine"}
    assert _value(collector, "caseroute_time_to_triage_seconds_count", **triage) == 1.0


PATIENT = "Ada Lovelace"


class _Broken:
    """An observer that fails on every call, with a message quoting a patient."""

    def decided(self, cases: tuple[Case, ...], result: DecideResult) -> None:  # noqa: ARG002
        raise KeyError(PATIENT)

    def replayed(self, result: DecideResult) -> None:  # noqa: ARG002
        raise KeyError(PATIENT)


def test_a_failing_observer_never_fails_a_recorded_decision(
    registry: RulesetRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The decision (stored) is returned; the log names the failure type, never its text."""
    core = audited_core(registry, tmp_path)
    core.observer = _Broken()
    with caplog.at_level(logging.ERROR, logger="caseroute.service"):
        result = core.decide(_command("assigned"))
        again = core.decide(_command("assigned"))
    core.audit.close()
    assert (
        result.decisions[0].outcome,
        result.decisions[0].agent_id,
    ) == ("ASSIGN", "AGENT-ZQ-NEAR")
    assert again.replayed
    messages = [r.getMessage() for r in caplog.records]
    assert (
        sum("decision observer failed (the decision stands): KeyError" in m for m in messages) == 2
    )
    assert not any(PATIENT in m for m in messages)


def test_finished_calls_count_refusals_by_code_and_time_successful_decides() -> None:
    """Non-OK codes count as refused; only OK Decide/DecideBatch calls are timed."""
    collector = CollectorRegistry()
    recorder = MetricsRecorder(define_metrics(collector))
    recorder.rpc_finished("Decide", "OK", 0.004)
    recorder.rpc_finished("DecideBatch", "OK", 2.0)
    recorder.rpc_finished("Decide", "INVALID_ARGUMENT", 0.001)
    recorder.rpc_finished("GetDecision", "NOT_FOUND", 0.001)
    recorder.rpc_finished("GetDecision", "OK", 0.001)
    recorder.rpc_finished("", "UNIMPLEMENTED", 0.0)
    refused = {
        code: _value(collector, "caseroute_requests_refused_total", code=code)
        for code in ("INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED", "OK")
    }
    assert refused == {"INVALID_ARGUMENT": 1.0, "NOT_FOUND": 1.0, "UNIMPLEMENTED": 1.0, "OK": None}
    timed = {
        method: (
            _value(collector, "caseroute_decision_seconds_count", method=method),
            _value(collector, "caseroute_decision_seconds_bucket", method=method, le="0.005"),
        )
        for method in ("Decide", "DecideBatch", "GetDecision")
    }
    assert timed == {"Decide": (1.0, 1.0), "DecideBatch": (1.0, 0.0), "GetDecision": (None, None)}
