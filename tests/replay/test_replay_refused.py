"""A record the candidate refuses (input the recording version decided) is counted, never fatal.

``test@1`` (no ladders) decides a case whose ``created_at`` is after ``now``, as a caller's
clock running ahead makes it; ``test@2`` counts waiting time (a ladder), so it refuses that
input. Replay reports the record ``not_replayable`` (``candidate_refused``, field paths only)
and compares the others, in this process and across worker processes alike.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import ReplayOptions, SinkRecords, feeds, replay, report_data
from caseroute.replay.candidate import CandidateSource
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

RULES = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, reason: rest, soft: [language], ladder: lang}}
"""
LADDER = """\
ladders:
  lang:
    - step: any-language
      after: {routine: 10m, urgent: 10m}
      prefer: [language]
      why: A nurse with an interpreter beats a longer wait.
"""
RECORDED = ruleset_with_rules(RULES.replace(", soft: [language], ladder: lang", ""))
CANDIDATE = CandidateSource(
    "ladder.yaml",
    ruleset_with_rules(RULES, MINIMAL_HEADER.replace('version: "1"', 'version: "2"') + LADDER),
)
PY = ReplayOptions(EngineKind.PYTHON)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """Three decisions under ``test@1``; the second's ``created_at`` is 2 minutes after now."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(RECORDED), EngineKind.PYTHON))
    core: RoutingCore = audited_core(registry, tmp_path_factory.mktemp("refused"))
    roster = make_roster(make_agent("a1"))
    cases = (
        make_case(case_id="C1", created_at=NOW - timedelta(minutes=3)),
        make_case(case_id="SKEW", created_at=NOW + timedelta(minutes=2)),
        make_case(case_id="C3", created_at=NOW - timedelta(minutes=1)),
    )
    for i, case in enumerate(cases):
        core.decide(DecideCommand(f"r{i}", "", "", (case,), roster, NOW))
    registry.close()
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    return store


def test_a_refused_record_is_not_replayable_and_the_others_are_compared(
    log: SqliteAuditStore,
) -> None:
    """The skewed record is candidate_refused, naming the field only; the others are compared."""
    report = replay(SinkRecords(log), CANDIDATE, PY)
    data = report_data(report)
    skewed = list(log.records())[1].decision_id
    # The other two are compared: the candidate's ladder is new to them (no step yet).
    counts = {name: count for name, count in data["classes"].items() if count}
    assert (data["total"], counts) == (3, {"relaxation_changed": 2, "not_replayable": 1})
    assert data["not_replayable_reasons"] == {"candidate_refused": 1}
    assert [(s["decision_id"], s["reason"]) for s in data["samples"]["not_replayable"]] == [
        (
            skewed,
            (
                "the candidate refuses the recorded input at case.created_at, which the "
                "recording version decided: callers sending it would get INVALID_ARGUMENT"
            ),
        )
    ]
    assert problems(data, SCHEMA) == []


def test_workers_report_a_refused_record_the_same_way(
    log: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes (one record per chunk) give the report one process gives."""
    monkeypatch.setattr(feeds, "CHUNK", 1)
    one = replay(SinkRecords(log), CANDIDATE, PY)
    two = replay(SinkRecords(log), CANDIDATE, replace(PY, workers=2))
    assert (two, two.not_replayable) == (one, 1)
