"""Replay of decisions made under a relaxation ladder and continuity of care.

Four cases are recorded through the audited service core under ``test@1`` (a ladder whose
``any-language`` step takes effect after 10 minutes; a 15-minute continuity hold for routine
cases) and replayed: the same version changes nothing, a 5-minute step changes the cases that
waited between 5 and 10 minutes, a 5-minute hold releases the held case.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.case import ContinuityReason, PreferredAgent
from caseroute.domain.decision_side import DecisionSide
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import ReplayOptions, ReplayReport, SinkRecords, replay, report_data
from caseroute.replay.candidate import CandidateSource
from caseroute.replay.document import report_from_data
from caseroute.replay.render import render_plain
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from tests.replay.test_report_schema import SCHEMA, problems

HEADER = (
    MINIMAL_HEADER
    + """\
ladders:
  lang:
    - step: any-language
      after: {routine: 10m, urgent: 10m}
      prefer: [language]
      why: A nurse with an interpreter beats a longer wait.
continuity:
  window: 365d
  hold: {routine: 15m}
"""
)
RULES = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, reason: rest, soft: [language], ladder: lang}}
"""
BASE = ruleset_with_rules(RULES, HEADER)
PY = ReplayOptions(EngineKind.PYTHON)


def _candidate(name: str, old: str = "", new: str = "") -> CandidateSource:
    """``test@2``: the base ruleset with ``old`` replaced by ``new``."""
    text = BASE.replace('version: "1"', 'version: "2"').replace(old, new)
    return CandidateSource(f"{name}.yaml", text)


def _ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """Four decisions recorded under ``test@1`` through the audited core."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core: RoutingCore = audited_core(registry, tmp_path_factory.mktemp("adaptive"))
    roster = make_roster(
        make_agent("a1"),
        make_agent("a2", languages=frozenset({"en", "es"})),
        make_agent("a3", capacity=Capacity(max=5, active=5)),
    )
    prefer_a3 = (PreferredAgent("a3", ContinuityReason.PREVIOUS_CONTACT, _ago(60 * 24)),)
    cases = (
        # Waited 3 min: the step is pending under 10m and 5m alike.
        make_case(case_id="W3-es", created_at=_ago(3), preferred_language="es"),
        # Waited 7 min: only a2 speaks Spanish; a 5m step makes it a preference, a2 still first.
        make_case(case_id="W7-es", created_at=_ago(7), preferred_language="es"),
        # Waiting 7 min since re-queued (created an hour ago): nobody speaks French.
        make_case(
            case_id="W7-fr", created_at=_ago(60), waiting_since=_ago(7), preferred_language="fr"
        ),
        # Waited 12 min for a3, who is at capacity: held until 15 min after creation.
        make_case(case_id="W12-held", created_at=_ago(12), preferred_agents=prefer_a3),
    )
    for i, case in enumerate(cases):
        core.decide(DecideCommand(f"r{i}", "", "", (case,), roster, NOW))
    registry.close()
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    return store


def _run(log: SqliteAuditStore, candidate: CandidateSource) -> ReplayReport:
    return replay(SinkRecords(log), candidate, PY)


def _counts(report: ReplayReport) -> dict[str, int]:
    return {name: count for name, count in report.classes if count}


def _samples(report: ReplayReport, name: str) -> dict[str, tuple[DecisionSide, DecisionSide]]:
    """Case-free view of a class's samples: decision id -> (recorded, candidate)."""
    out = {}
    for s in dict(report.samples)[name]:
        assert s.recorded is not None
        assert s.candidate is not None
        out[s.decision_id] = (s.recorded, s.candidate)
    return out


def test_same_version_reproduces_every_step_and_hold(log: SqliteAuditStore) -> None:
    """Replayed under its own ruleset, each record's ladder step and hold come out the same."""
    report = _run(log, _candidate("identity"))
    assert (_counts(report), report.changed) == ({"unchanged": 4}, 0)


def test_step_after_5m_instead_of_10m_changes_the_cases_waiting_between(
    log: SqliteAuditStore,
) -> None:
    """W7-es changes only its relaxation (same agent); W7-fr is now assigned; others unchanged."""
    report = _run(log, _candidate("step5", "{routine: 10m, urgent: 10m}", "{routine: 5m}"))
    assert (_counts(report), report.changed) == (
        {"outcome_changed": 1, "agent_changed": 1, "relaxation_changed": 2, "unchanged": 2},
        2,
    )
    relaxed = list(_samples(report, "relaxation_changed").values())
    assert [(r.agent_id, c.agent_id) for r, c in relaxed] == [("a2", "a2"), (None, "a1")]
    assert [(r.ladder_step, r.relaxed, c.ladder_step, c.relaxed) for r, c in relaxed] == [
        ("", (), "any-language", ("language",)),
        ("", (), "any-language", ("language",)),
    ]
    assert [(r.next_relaxation_at, c.next_relaxation_at) for r, c in relaxed] == [
        ("2026-11-21T10:03:00Z", None),
        ("2026-11-21T10:03:00Z", None),
    ]


def test_report_names_the_step_before_and_after(log: SqliteAuditStore) -> None:
    """The plain report's sample shows each side's ladder step and relaxed requirements."""
    report = _run(log, _candidate("step5", "{routine: 10m, urgent: 10m}", "{routine: 5m}"))
    lines = render_plain(report).splitlines()
    start = lines.index("sample of relaxation_changed:")
    assert lines[start + 2 : start + 4] == [
        (
            "    recorded:  ASSIGN by rest agent a2 queue clinical priority normal; ladder step "
            "(none in force), relaxed nothing; ask again at 2026-11-21T10:03:00Z"
        ),
        (
            "    candidate: ASSIGN by rest agent a2 queue clinical priority normal; ladder step "
            "any-language, relaxed language"
        ),
    ]


def test_shorter_hold_releases_the_held_case(log: SqliteAuditStore) -> None:
    """A 5m hold has expired for the case held 12 min: QUEUE (held) becomes ASSIGN to a1."""
    report = _run(log, _candidate("hold5", "hold: {routine: 15m}", "hold: {routine: 5m}"))
    assert _counts(report) == {
        "outcome_changed": 1,
        "agent_changed": 1,
        "continuity_changed": 1,
        "unchanged": 3,
    }
    ((recorded, candidate),) = _samples(report, "continuity_changed").values()
    assert (recorded.outcome, recorded.continuity, recorded.held_until) == (
        "QUEUE",
        "held_for_preferred",
        "2026-11-21T10:03:00Z",
    )
    assert (candidate.outcome, candidate.agent_id, candidate.continuity, candidate.held_until) == (
        "ASSIGN",
        "a1",
        "assigned_other",
        None,
    )


def test_json_report_carries_the_sides_and_reads_back(log: SqliteAuditStore) -> None:
    """The JSON report validates against the schema and reads back to the same report."""
    report = _run(log, _candidate("step5", "{routine: 10m, urgent: 10m}", "{routine: 5m}"))
    data = report_data(report)
    assert problems(data, SCHEMA) == []
    side = data["samples"]["relaxation_changed"][0]["candidate"]
    assert {k: side[k] for k in ("ladder_step", "relaxed", "continuity")} == {
        "ladder_step": "any-language",
        "relaxed": ["language"],
        "continuity": None,
    }
    assert report_from_data(data) == report


def test_report_from_before_the_new_classes_reads_them_as_zero(log: SqliteAuditStore) -> None:
    """A JSON report from an older caseroute (no adaptive classes or side fields) still reads."""
    data = report_data(_run(log, _candidate("identity")))
    for key in ("classes", "rates"):
        del data[key]["relaxation_changed"]
        del data[key]["continuity_changed"]
    report = report_from_data(data)
    assert (report.count("relaxation_changed"), report.count("continuity_changed")) == (0, 0)
