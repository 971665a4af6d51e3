import logging
from datetime import date, datetime, timedelta
from importlib import metadata

import pytest

from caseroute.domain.case import Intent, Urgency
from caseroute.domain.decision import Outcome
from caseroute.domain.decision_codec import to_jsonable
from caseroute.domain.errors import RequestError
from caseroute.domain.roster import Capacity, Licence, Role
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    ScriptedMatcher,
    clock,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reading,
    reference_compiled,
    reference_ruleset,
    ruleset_with_rules,
)

RULESET = reference_ruleset()
ROSTER = make_roster(
    make_agent("a1"),
    make_agent("a2", capacity=Capacity(5, 4)),
    make_agent("s1", role=Role.SENIOR, capacity=Capacity(3, 0)),
)


def test_same_input_same_decision() -> None:
    """Two runs over equal inputs give identical decisions, ids included."""
    case = make_case(sentiment=(reading(-0.2, 3),), sla_clocks=(clock("ack", 90),))
    first, second = decide(case, ROSTER, RULESET, NOW), decide(case, ROSTER, RULESET, NOW)
    assert to_jsonable(first) == to_jsonable(second)
    assert (
        first.decision_id != decide(case, ROSTER, RULESET, NOW + timedelta(seconds=1)).decision_id
    )


def test_durable_and_python_engines_decide_alike() -> None:
    """The engine of record changes the label, never the decision."""
    durable = reference_ruleset(EngineKind.DURABLE)
    case = make_case(urgency=Urgency.CRITICAL)
    a, b = decide(case, ROSTER, durable, NOW), decide(case, ROSTER, RULESET, NOW)
    assert (a.outcome, a.agent_id, a.rule_id) == (b.outcome, b.agent_id, b.rule_id)
    installed = metadata.version("durable-rules")
    assert a.explanation.engine == f"durable_rules {installed} (cross-checked by python)"
    assert b.explanation.engine == "python"


def test_now_must_be_timezone_aware() -> None:
    """A naive now is a request error naming the field."""
    with pytest.raises(RequestError) as exc:
        decide(make_case(), ROSTER, RULESET, datetime(2026, 11, 21, 10, 0))  # noqa: DTZ001
    assert [v.field for v in exc.value.violations] == ["now"]


def test_explanation_carries_provenance() -> None:
    """Ruleset name, version and sha256, input hash and now are recorded."""
    decision = decide(make_case(), ROSTER, RULESET, NOW)
    e = decision.explanation
    compiled = reference_compiled()
    assert (e.ruleset_name, e.ruleset_version, e.ruleset_sha256) == (
        compiled.name,
        compiled.version,
        compiled.sha256,
    )
    assert (e.now, len(e.input_sha256), e.deciding_rule_id) == (NOW, 64, "clinical")
    assert [t.rule_id for t in e.rules if t.fired] == ["clinical", "by-intent"]


def test_engine_disagreement_is_an_exception_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """If durable_rules and Python differ on any leaf, the case goes to exceptions."""
    compiled = reference_compiled()
    everything = frozenset(compiled.leaves)  # a matcher claiming every condition holds
    matcher = ScriptedMatcher(everything)
    lying = prepare_ruleset(compiled, matcher=matcher)
    with caplog.at_level(logging.ERROR, logger="caseroute.engine"):
        decision = decide(make_case(), ROSTER, lying, NOW)
    (fact,) = matcher.calls
    holds = PythonLeafEvaluator(compiled.leaves).true_leaves(fact)
    wrong = [leaf_id for leaf_id in compiled.leaves if leaf_id not in holds]
    assert (decision.outcome, decision.queue, decision.rule_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "exceptions",
        "engine:disagreement",
        ("engine_disagreement",),
    )
    assert decision.explanation.data_problems == (
        "durable_rules and the python evaluator disagree on "
        + ", ".join(f"{leaf_id} ({compiled.leaves[leaf_id].path})" for leaf_id in wrong),
    )
    logged = caplog.records[0]
    assert (logged.levelname, logged.getMessage().split(" ruleset=")[0]) == (
        "ERROR",
        f"ENGINE DISAGREEMENT decision_id={decision.decision_id} case_id='CASE-T1'",
    )


def test_safeguarding_holds_even_when_the_engine_is_wrong() -> None:
    """The hard constraint is enforced after the rules, whatever they produced."""
    silent = prepare_ruleset(reference_compiled(), matcher=ScriptedMatcher(frozenset()))
    decision = decide(make_case(flags=frozenset({"safeguarding"})), ROSTER, silent, NOW)
    assert (decision.outcome, decision.queue, decision.agent_id) == (
        Outcome.ESCALATE,
        "safeguarding",
        None,
    )
    assert decision.reason_codes == ("safeguarding_concern", "engine_disagreement")


def test_attribute_of_the_wrong_type_is_an_exception() -> None:
    """Declared attributes are type-checked at decision time; mismatch is business-invalid."""
    header = MINIMAL_HEADER + "attributes:\n  risk: number\n"
    ruleset = prepare_ruleset(
        compile_text(
            ruleset_with_rules(
                "  - id: risky\n    when: case.attributes.risk > 5\n"
                "    then: {escalate: {queue: risk, reason: high_risk}}\n"
                "  - id: rest\n    when: true\n    then: {route: {queue: by_intent}}\n",
                header,
            )
        ),
        EngineKind.PYTHON,
    )
    bad = decide(make_case(attributes={"risk": "high"}), ROSTER, ruleset, NOW)
    assert (bad.outcome, bad.reason_codes) == (
        Outcome.EXCEPTION,
        ("invalid_case_data", "invalid_attribute"),
    )
    assert bad.explanation.data_problems == (
        "case.attributes.risk is str 'high', but the ruleset declares it number",
    )
    good = decide(make_case(attributes={"risk": 7}), ROSTER, ruleset, NOW)
    assert (good.outcome, good.rule_id) == (Outcome.ESCALATE, "risky")


def test_route_needing_a_territory_without_region_is_an_exception() -> None:
    """Missing data required by the deciding action is never silently defaulted."""
    decision = decide(make_case(intent=Intent.BILLING, region=None), ROSTER, RULESET, NOW)
    assert (decision.outcome, decision.reason_codes) == (Outcome.EXCEPTION, ("missing_region",))


def test_a_licensed_case_located_by_puerto_ricos_country_code_is_an_exception() -> None:
    """`PR` queued a clinical case for nobody (licences name `US-PR`); now it says to send that."""
    island = make_roster(make_agent("pr", licences=(Licence("RN", "US-PR", date(2030, 1, 1)),)))
    assert decide(make_case(patient_location="US-PR"), island, RULESET, NOW).agent_id == "pr"
    decision = decide(make_case(patient_location="PR"), island, RULESET, NOW)
    assert (decision.outcome, decision.queue, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "exceptions",
        ("patient_location_not_licensing_code",),
    )
    assert decision.explanation.data_problems == (
        (
            "case.patient_location is PR, which licences name as US-PR, so the licence this "
            "case needs (RN) cannot be checked against it; send US-PR"
        ),
    )


def test_a_licensed_case_located_only_in_a_country_that_licenses_by_state_is_an_exception() -> None:
    """L5: `US` alone queued a clinical case for nobody; it is an EXCEPTION saying what to send."""
    nationwide = make_roster(
        make_agent("tx", licences=(Licence("RN", "US-TX", date(2030, 1, 1), multistate=True),))
    )
    decision = decide(make_case(patient_location="US"), nationwide, RULESET, NOW)
    assert (decision.outcome, decision.queue, decision.agent_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "exceptions",
        None,
        ("patient_location_too_coarse",),
    )
    assert decision.explanation.data_problems == (
        (
            "case.patient_location is US, a whole country, and US licenses by state or "
            "province, so the licence this case needs (RN) cannot be checked; send the "
            "patient's state or province at the time of service (e.g. US-TX)"
        ),
    )
    flagged = make_case(patient_location="US", flags=frozenset({"safeguarding"}))
    escalated = decide(flagged, nationwide, RULESET, NOW)
    assert (escalated.outcome, escalated.queue, escalated.reason_codes) == (
        Outcome.ESCALATE,
        "safeguarding",
        ("safeguarding_concern",),
    )


def test_escalation_prefers_an_eligible_senior() -> None:
    """Unhappy + SLA at risk: assign a senior who passes the checks."""
    case = make_case(
        intent=Intent.COMPLAINT, sentiment=(reading(-0.7, 1),), sla_clocks=(clock("ack", 20),)
    )
    decision = decide(case, ROSTER, RULESET, NOW)
    assert (decision.outcome, decision.agent_id, decision.escalation_level) == (
        Outcome.ESCALATE,
        "s1",
        2,
    )


def test_large_roster_without_detail_keeps_counts_and_top_ranking() -> None:
    """With detail off the explanation keeps counts and the top ten only."""
    agents = [make_agent(f"a{i:03}") for i in range(30)]
    agents += [make_agent(f"busy{i}", capacity=Capacity(1, 1)) for i in range(5)]
    decision = decide(make_case(), make_roster(*agents), RULESET, NOW, agent_detail=False)
    matching = decision.explanation.matching
    assert matching is not None
    assert (matching.considered, matching.eligible, matching.exclusion_counts) == (
        35,
        30,
        (("capacity", 5),),
    )
    assert matching.agents == ()
    assert [c.agent_id for c in matching.ranking] == [f"a{i:03}" for i in range(10)]
    assert decision.agent_id == "a000"


def test_tiny_and_huge_numbers_reach_durable_rules_intact() -> None:
    """A case received 0.6 ms ago (age 1e-05 min) decides under durable_rules without error."""
    durable = reference_ruleset(EngineKind.DURABLE)
    case = make_case(
        created_at=NOW - timedelta(microseconds=600),
        sentiment=(reading(-1e-07, 1),),
        sla_clocks=(clock("rtt", 1e9),),
    )
    decision = decide(case, ROSTER, durable, NOW)
    assert (decision.outcome, decision.rule_id) == (Outcome.ASSIGN, "clinical")


class _BrokenMatcher:
    label = "broken"

    def true_leaves(self, _fact: object) -> frozenset[str]:
        raise RuntimeError("Could not assert fact, error code: 204")


def test_engine_failure_is_an_exception_decision(caplog: pytest.LogCaptureFixture) -> None:
    """If the engine raises, the case goes to exceptions; the engine's text stays in the log."""
    broken = prepare_ruleset(reference_compiled(), matcher=_BrokenMatcher())
    with caplog.at_level(logging.ERROR, logger="caseroute.engine"):
        decision = decide(make_case(), ROSTER, broken, NOW)
    assert (decision.outcome, decision.rule_id, decision.reason_codes) == (
        Outcome.EXCEPTION,
        "engine:error",
        ("engine_error",),
    )
    assert decision.explanation.data_problems == (
        (
            "the rule engine failed (RuntimeError); the case went to the exceptions queue; "
            "the server log has the details under this decision_id"
        ),
    )
    first = caplog.records[0]
    assert (first.levelname, first.getMessage().splitlines()[0]) == (
        "ERROR",
        "engine broken failed: RuntimeError (message withheld: it may quote case values)",
    )
