"""Text rendering of ESCALATE, QUEUE and EXCEPTION decisions, line for line."""

from caseroute.domain.case import Intent
from caseroute.domain.decision import Decision
from caseroute.domain.roster import Capacity, Role
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.render import render_text
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reading,
    ruleset_with_rules,
)

RULES = """\
  - id: unhappy
    description: Unhappy members go to a senior.
    when: sentiment.latest <= -0.5
    then:
      escalate: {queue: senior, level: 2, reason: unhappy, assign: {roles: [senior]}}
      priority: high
  - id: rest
    when: true
    then: {route: {queue: by_intent, reason: routine}}
"""
RULESET = prepare_ruleset(
    compile_text(ruleset_with_rules(RULES, MINIMAL_HEADER + "attributes: {risk: number}\n")),
    EngineKind.PYTHON,
)
ROSTER = make_roster(make_agent("a1"), make_agent("s1", role=Role.SENIOR, capacity=Capacity(4, 1)))
FULL_ROSTER = make_roster(
    make_agent("a1", capacity=Capacity(2, 2)), make_agent("a2", capacity=Capacity(1, 1))
)
NO_SIGNALS = [
    "Signals:",
    "  case received 5 min ago",
    "  no SLA clocks",
    "  sentiment: no replies scored",
]
# The rule trace of a case with no flags and no sentiment: the catch-all `rest` decides.
REST_DECIDES = [
    "Rules (tried in order; the first that applies decides):",
    "  1. safeguarding: does not apply",
    "      fails: 'safeguarding' in case.flags   [case.flags = []]",
    "  2. unhappy: does not apply",
    "      fails: sentiment.latest <= -0.5   [sentiment.latest is missing]",
    "  3. rest: APPLIES - decided",
    "      holds: true   [constant]",
]
REQUIREMENTS = (
    "  requirements: status: available; licence: RN valid in US-TX on 2026-11-21; "
    "territory: covers US-TX; capacity: active < max"
)


def _provenance(d: Decision) -> list[str]:
    e = d.explanation
    return [
        "Provenance:",
        f"  decision {d.decision_id} at now=2026-11-21T10:00:00Z",
        f"  ruleset test version 1 (sha256 {e.ruleset_sha256})",
        "  engine python; caseroute 0.1.0",
        f"  input sha256 {e.input_sha256}",
    ]


def test_escalation_to_a_queue() -> None:
    """A safeguarding escalation names level and queue; later rules show as not reached."""
    decision = decide(make_case(flags=frozenset({"safeguarding"})), ROSTER, RULESET, NOW)
    assert render_text(decision).splitlines() == [
        "CASE-T1: ESCALATE (level 1) to queue safeguarding, priority normal",
        "Decided by: safeguarding; reasons: safeguarding_concern",
        "",
        "Rules (tried in order; the first that applies decides):",
        "  1. safeguarding: APPLIES - decided",
        "      holds: 'safeguarding' in case.flags   [case.flags = [\"safeguarding\"]]",
        "  2. unhappy: does not apply",
        "  3. rest: would apply (not reached)",
        "      holds: true   [constant]",
        "",
        *NO_SIGNALS,
        "",
        *_provenance(decision),
    ]


def test_escalation_to_an_agent() -> None:
    """An escalation that assigns names the agent, the signals and who was excluded why."""
    decision = decide(make_case(sentiment=(reading(-0.7, 1),)), ROSTER, RULESET, NOW)
    assert render_text(decision).splitlines() == [
        "CASE-T1: ESCALATE (level 2) to s1 (queue senior), priority high",
        "Decided by: unhappy; reasons: unhappy",
        "",
        "Rules (tried in order; the first that applies decides):",
        "  1. safeguarding: does not apply",
        "      fails: 'safeguarding' in case.flags   [case.flags = []]",
        "  2. unhappy: APPLIES - decided",
        "      (Unhappy members go to a senior.)",
        "      holds: sentiment.latest <= -0.5   [sentiment.latest = -0.7]",
        "  3. rest: would apply (not reached)",
        "      holds: true   [constant]",
        "",
        "Signals:",
        "  case received 5 min ago",
        "  no SLA clocks",
        (
            "  sentiment: 1 reply, latest -0.70, lowest -0.70, change n/a over the last 3 replies, "
            "1 negative in a row (<= -0.5)"
        ),
        "",
        "Agents: 2 considered, 1 eligible, 1 excluded",
        (
            "  requirements: status: available; role: senior; licence: RN valid in US-TX on "
            "2026-11-21; territory: covers US-TX; capacity: active < max"
        ),
        "  excluded by: role 1",
        "  x a1: role: needs senior, has agent",
        "Ranking (lowest_utilisation, then highest_skill_level, then longest_idle, then agent_id):",
        "  1. s1: utilisation 0.25, skill level 0, idle minutes never   <- chosen",
        "",
        *_provenance(decision),
    ]


def _queued(agent_ids: list[str] | None) -> list[str]:
    decision = decide(make_case(), FULL_ROSTER, RULESET, NOW, agent_detail=False)
    head = [
        "CASE-T1: QUEUE in clinical (no eligible agent), priority normal",
        "Decided by: rest; reasons: routine, no_eligible_agent",
        "",
        *REST_DECIDES,
        "",
        *NO_SIGNALS,
        "",
        "Agents: 2 considered, 0 eligible, 2 excluded",
        REQUIREMENTS,
        "  excluded by: capacity 2",
    ]
    assert render_text(decision, agent_ids).splitlines()[: len(head)] == head
    return render_text(decision, agent_ids).splitlines()[len(head) :]


def test_queue_with_a_summary_explanation_names_agents_only_given_the_roster() -> None:
    """QUEUE: counts always; with the roster's agent ids, each excluded agent from the masks."""
    decision = decide(make_case(), FULL_ROSTER, RULESET, NOW, agent_detail=False)
    assert _queued(["a1", "a2"]) == [
        "  x a1: failed capacity",
        "  x a2: failed capacity",
        "",
        *_provenance(decision),
    ]
    assert _queued(None) == ["", *_provenance(decision)]


def test_exception_for_invalid_data_says_why_rules_were_not_evaluated() -> None:
    """EXCEPTION for bad case data: the data problem, and no rule trace or agents."""
    decision = decide(make_case(attributes={"risk": "high"}), ROSTER, RULESET, NOW)
    problem = "case.attributes.risk is str 'high', but the ruleset declares it number"
    assert render_text(decision).splitlines() == [
        "CASE-T1: EXCEPTION to exceptions, priority high",
        "Decided by: data:invalid_case_data; reasons: invalid_case_data, invalid_attribute",
        f"  data problem: {problem}",
        "",
        f"Rules were not evaluated: {problem}",
        "",
        *NO_SIGNALS,
        "",
        *_provenance(decision),
    ]


def test_exception_after_rules_shows_the_rule_and_the_missing_data() -> None:
    """EXCEPTION from a deciding route that lacks data: the rule trace and the data problem."""
    decision = decide(make_case(intent=Intent.BILLING, region=None), ROSTER, RULESET, NOW)
    assert render_text(decision).splitlines() == [
        "CASE-T1: EXCEPTION to exceptions, priority high",
        "Decided by: rest; reasons: missing_region",
        "  data problem: the action requires territory coverage but case.region is missing",
        "",
        *REST_DECIDES,
        "",
        *NO_SIGNALS,
        "",
        *_provenance(decision),
    ]


def test_ranking_values_show_the_precision_that_decided() -> None:
    """3333/10000 ranked above 1/3: the text shows both unrounded, not 0.3333 and 0.333333."""
    roster = make_roster(
        make_agent("a", capacity=Capacity(3, 1)), make_agent("b", capacity=Capacity(10000, 3333))
    )
    text = render_text(decide(make_case(intent=Intent.GENERAL), roster, RULESET, NOW))
    lines = [line for line in text.splitlines() if line.startswith(("  1. b", "  2. a"))]
    assert [line.split(",")[0] for line in lines] == [
        "  1. b: utilisation 0.3333",
        "  2. a: utilisation 0.3333333333333333",
    ]
