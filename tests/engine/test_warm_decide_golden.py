"""Warm-path levers change no byte: decisions, explanations and records equal golden outputs.

The golden file (``warm_decide_golden.json`` beside this module) was written by this module's
``write_golden`` from the commit before the engine's warm-path levers (0437974), so it pins what
decide() produced then: each scenario's decision as its stored dict, its record as hashed and
its chain hash. Regenerate it only for a change that is meant to alter decisions (run
``python tests/engine/test_warm_decide_golden.py``, and say why in the commit).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.masking import Masker, mask_decision
from caseroute.audit.record import encode_record, hashed_text, seal
from caseroute.audit.recorder import RequestFacts, build_records
from caseroute.domain.case import (
    ContinuityReason,
    Intent,
    PreferredAgent,
    SlaClock,
    Urgency,
)
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_from_dict, decision_to_dict
from caseroute.domain.fingerprint import canonical_json, case_to_dict, input_sha256
from caseroute.domain.roster import AgentStatus, Capacity, Licence, Roster
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.trace import explain_known
from caseroute.testing import (
    NOW,
    TEST_AUDIT_KEY,
    ScriptedMatcher,
    clock,
    make_agent,
    make_case,
    make_roster,
    reading,
    reference_compiled,
    skill,
)

GOLDEN = Path(__file__).with_name("warm_decide_golden.json")
# Beside tests/, not under REPO_ROOT: the wheel-only CI stage copies both, outside the tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from roster_gen import make_bench_case, make_ranked_roster  # noqa: E402

Scenario = tuple[str, Callable[[], tuple[Any, Roster, datetime]], bool]
"""Name, (case, roster, now) builder, agent detail (FULL) or not (SUMMARY)."""

_RANKED = make_ranked_roster(100)
_LARGE = make_ranked_roster(5000)  # 42 eligible: a summary shows ten of them
_SMALL = make_roster(
    make_agent("a1", capacity=Capacity(5, 3)),
    make_agent("a2", capacity=Capacity(5, 1), languages=frozenset({"es"})),
    make_agent("a3", capacity=Capacity(5, 5)),
    make_agent("a4", status=AgentStatus.OFFLINE),
    make_agent("a5", licences=(Licence("RN", "US-CA", date(2030, 1, 1)),)),
    make_agent("a6", territories=frozenset({"US-CA"}), skills={"clinical-triage": 1}),
)
_NOBODY = make_roster(make_agent("b1", capacity=Capacity(2, 2)))


def _bench(n: int = 0, **changes: Any) -> Any:
    case = make_bench_case(n)
    values = {name: getattr(case, name) for name in case.__slots__}
    values.update(changes)
    return type(case)(**values)


def _pref(agent_id: str, days_ago: float) -> PreferredAgent:
    return PreferredAgent(
        agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=days_ago)
    )


SCENARIOS: tuple[Scenario, ...] = (
    ("bench-summary", lambda: (_bench(), _RANKED, NOW), False),
    ("bench-full", lambda: (_bench(), _RANKED, NOW), True),
    ("large-summary", lambda: (_bench(), _LARGE, NOW), False),
    (
        "large-relaxed-summary",
        lambda: (_bench(4, created_at=NOW - timedelta(minutes=25)), _LARGE, NOW),
        False,
    ),
    ("bench-other-id", lambda: (_bench(7), _RANKED, NOW + timedelta(seconds=41)), False),
    (
        "bench-step-in-force",
        lambda: (_bench(1, created_at=NOW - timedelta(minutes=25)), _RANKED, NOW),
        False,
    ),
    (
        "bench-waited-days",
        lambda: (_bench(2, created_at=NOW - timedelta(days=3, minutes=7)), _RANKED, NOW),
        True,
    ),
    (
        "bench-pending-step-other-day",
        lambda: (
            _bench(3, created_at=datetime(2026, 11, 21, 23, 55, tzinfo=NOW.tzinfo)),
            _RANKED,
            datetime(2026, 11, 21, 23, 58, tzinfo=NOW.tzinfo),
        ),
        False,
    ),
    (
        "small-assign",
        lambda: (make_case(required_skills=(skill("clinical-triage", 2),)), _SMALL, NOW),
        True,
    ),
    ("small-assign-summary", lambda: (make_case(preferred_language="es"), _SMALL, NOW), False),
    ("queue-nobody", lambda: (make_case(), _NOBODY, NOW), True),
    ("queue-nobody-summary", lambda: (make_case(), _NOBODY, NOW), False),
    ("safeguarding", lambda: (make_case(flags=frozenset({"safeguarding"})), _SMALL, NOW), False),
    (
        "safeguarding-override",
        lambda: (
            make_case(flags=frozenset({"safeguarding", "vip"}), urgency=Urgency.CRITICAL),
            _SMALL,
            NOW,
        ),
        True,
    ),
    ("consent", lambda: (make_case(flags=frozenset({"consent_missing"})), _SMALL, NOW), True),
    ("missing-location", lambda: (make_case(patient_location=None), _SMALL, NOW), False),
    ("missing-region", lambda: (make_case(region=None), _SMALL, NOW), False),
    ("critical", lambda: (make_case(urgency=Urgency.CRITICAL), _SMALL, NOW), True),
    (
        "unhappy-sla",
        lambda: (
            make_case(
                sentiment=(reading(-0.2, 30), reading(-0.7, 2)),
                sla_clocks=(clock("first-response", 10), clock("resolution", 600)),
            ),
            _SMALL,
            NOW,
        ),
        False,
    ),
    ("prescription", lambda: (make_case(intent=Intent.PRESCRIPTION), _SMALL, NOW), False),
    (
        "billing",
        lambda: (make_case(intent=Intent.BILLING, patient_location=None), _SMALL, NOW),
        True,
    ),
    (
        "invalid-sla-clock",
        lambda: (
            make_case(sla_clocks=(SlaClock("x", NOW, NOW - timedelta(minutes=1)),)),
            _SMALL,
            NOW,
        ),
        False,
    ),
    (
        "continuity-preferred",
        lambda: (make_case(preferred_agents=(_pref("a1", 3),)), _SMALL, NOW),
        True,
    ),
    (
        "continuity-held",
        lambda: (make_case(preferred_agents=(_pref("a3", 3), _pref("a5", 9))), _SMALL, NOW),
        False,
    ),
    (
        "continuity-hold-lapsed",
        lambda: (
            make_case(preferred_agents=(_pref("a3", 3),), created_at=NOW - timedelta(minutes=40)),
            _SMALL,
            NOW,
        ),
        True,
    ),
    (
        "declined-and-attributes",
        lambda: (
            make_case(
                declined_agents=frozenset({"a2"}),
                attributes={"patient_name": "Ada Lovelace", "member_since_years": 4},
                classification_confidence=0.42,
            ),
            _SMALL,
            NOW,
        ),
        False,
    ),
    (
        "waiting-since",
        lambda: (
            make_case(
                waiting_since=NOW - timedelta(minutes=12),
                preferred_language="fr",
                created_at=NOW - timedelta(hours=5),
            ),
            _SMALL,
            NOW,
        ),
        True,
    ),
)


def _decide_all(ruleset: LoadedRuleset, masker: Masker) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, build, detail in SCENARIOS:
        case, roster, now = build()
        decision = decide(case, roster, ruleset, now, agent_detail=detail)
        yield name, _outputs(decision, case, roster, ruleset, masker)


def _outputs(
    decision: Decision, case: Any, roster: Roster, ruleset: LoadedRuleset, masker: Masker
) -> dict[str, Any]:
    case_dict = case_to_dict(case)
    masked = mask_decision(decision, case_dict, masker)
    facts = RequestFacts("req-1", "0" * 64, "golden", "2026-11-21T10:00:00Z")
    (record,) = build_records(
        facts, ruleset.compiled, [case], roster, [masked], masker, case_dicts=[case_dict]
    )
    text = hashed_text(encode_record(record), 1)
    decision_text = canonical_json(decision_to_dict(decision))
    return {
        "outcome": decision.outcome.value,
        "rule_id": decision.rule_id,
        "agent_id": decision.agent_id,
        "reason_codes": list(decision.reason_codes),
        "decision_id": decision.decision_id,
        "input_sha256": input_sha256(case, roster),
        "decision_sha256": hashlib.sha256(decision_text.encode()).hexdigest(),
        "record_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "record_hash": seal(record, 1, "0" * 64).record_hash,
    }


def _masker() -> Masker:
    return Masker(bytes.fromhex(TEST_AUDIT_KEY))


def write_golden() -> None:
    """Write the golden file from the code on ``sys.path`` (run it at the base commit)."""
    golden: dict[str, Any] = {}
    for engine in EngineKind:
        ruleset = prepare_ruleset(reference_compiled(), engine)
        golden[engine.value] = dict(_decide_all(ruleset, _masker()))
        ruleset.close()
    golden["disagreement"] = _disagreement()
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


def _golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(GOLDEN.read_text())
    return loaded


@pytest.fixture(scope="module", params=[EngineKind.PYTHON, EngineKind.DURABLE])
def loaded(request: pytest.FixtureRequest) -> Iterator[LoadedRuleset]:
    """The reference ruleset under each engine (the same decisions must come out of both)."""
    ruleset = prepare_ruleset(reference_compiled(), request.param)
    yield ruleset
    ruleset.close()


def test_decisions_and_records_equal_the_golden_outputs(loaded: LoadedRuleset) -> None:
    """Every scenario's decision, record text and chain hash equal those of the commit before.

    Per engine: the explanation names the engine, so the hashes differ between them (the
    decisions themselves do not: the spread test checks outcomes agree).
    """
    golden = _golden()[EngineKind.PYTHON.value if loaded.engine_label == "python" else "durable"]
    assert sorted(golden) == sorted(name for name, _, _ in SCENARIOS)
    for name, outputs in _decide_all(loaded, _masker()):
        assert (name, golden[name]) == (name, outputs)


def test_golden_spread_covers_every_outcome_and_path() -> None:
    """The table reaches every outcome and path, and both engines decide every scenario alike."""
    golden = _golden()[EngineKind.PYTHON.value]
    durable = _golden()[EngineKind.DURABLE.value]
    fields = ("outcome", "rule_id", "agent_id", "reason_codes", "decision_id")
    assert {n: [o[f] for f in fields] for n, o in golden.items()} == {
        n: [o[f] for f in fields] for n, o in durable.items()
    }
    assert {"ASSIGN", "ESCALATE", "QUEUE", "EXCEPTION"} == {
        out["outcome"].upper() for out in golden.values()
    }
    reasons = {code for out in golden.values() for code in out["reason_codes"]}
    assert {
        "safeguarding_concern",
        "held_for_preferred_agent",
        "continuity_of_care",
        "no_eligible_agent",
        "consent_missing",
        "invalid_case_data",
    } <= reasons


def test_warm_repeats_and_text_off_give_the_same_outputs() -> None:
    """A second pass (caches warm) and rules rendered later from results give the same bytes."""
    ruleset = prepare_ruleset(reference_compiled(), EngineKind.PYTHON)
    masker = _masker()
    first = dict(_decide_all(ruleset, masker))
    assert first == dict(_decide_all(ruleset, masker))
    for name, build, detail in SCENARIOS:
        case, roster, now = build()
        full = decide(case, roster, ruleset, now, agent_detail=detail)
        bare = decide(case, roster, ruleset, now, agent_detail=detail, explain_rules_text=False)
        assert (name, ()) == (name, bare.explanation.rules)
        assert (name, full.explanation.rules) == (name, explain_known(bare.explanation))
        stored = decision_from_dict(decision_to_dict(bare), explain_known)
        assert (name, decision_to_dict(full)) == (name, decision_to_dict(stored))


def _disagreement() -> dict[str, Any]:
    ruleset = LoadedRuleset(reference_compiled(), ScriptedMatcher(frozenset({"L0"})))
    case = make_case(attributes={"patient_name": "Ada Lovelace"})
    decision = decide(case, _SMALL, ruleset, NOW)
    return _outputs(decision, case, _SMALL, ruleset, _masker())


def test_engine_disagreement_equals_the_golden_output() -> None:
    """An engine that disagrees with the cross-check gives the EXCEPTION record it gave before."""
    assert _golden()["disagreement"] == _disagreement()


if __name__ == "__main__":
    write_golden()
