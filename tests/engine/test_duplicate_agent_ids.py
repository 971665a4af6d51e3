"""A roster built in code that repeats an agent_id is business-invalid: EXCEPTION, never ASSIGN.

The parsers refuse such a roster (INVALID_ARGUMENT), but a ``Roster(...)`` built in Python
(library callers, ``caseroute.testing``, simulate) is not parsed, and the engine keys its
ranking cache, positions, preference masks and continuity order by ``agent_id``. ``decide()``
therefore turns a rule's agent selection over such a roster into an EXCEPTION naming the
repeated id and both places, found once per roster where its index is built (or patched).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.audit.verify import verify_chain
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.decision import Decision, Outcome, Priority
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Role, Roster, with_kept_agents
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import RosterIndex, index_for, roster_after_assignment
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import (
    NOW,
    clock,
    make_agent,
    make_case,
    make_roster,
    reading,
    reference_ruleset,
)

RULESET = reference_ruleset()


pytestmark = pytest.mark.usefixtures("no_index_bases")
"""Each test starts and ends with no base index left by another (tests/engine/conftest.py)."""


def _problem(later: int, agent_id: str, first: int) -> str:
    """The data problem, in the parsers' wording (``domain.codec.parse_roster``)."""
    return (
        f"roster.agents[{later}].agent_id: duplicate agent_id {agent_id!r} (first at "
        f"roster.agents[{first}]); each agent must appear once"
    )


def _shape(decision: Decision) -> tuple[object, ...]:
    """What a roster's repeated id decides: outcome, queue, agent, priority, rule, reasons."""
    return (
        decision.outcome,
        decision.queue,
        decision.agent_id,
        decision.priority,
        decision.rule_id,
        decision.reason_codes,
        decision.explanation.data_problems,
        decision.explanation.matching,
    )


def _exception(rule_id: str, problem: str) -> tuple[object, ...]:
    return (
        Outcome.EXCEPTION,
        "exceptions",
        None,
        Priority.HIGH,
        rule_id,
        ("duplicate_agent_id",),
        (problem,),
        None,
    )


def test_an_adjacent_repeat_is_an_exception_naming_both_places() -> None:
    """a1 at 0 and 1: the clinical route becomes EXCEPTION duplicate_agent_id, no agent."""
    roster = make_roster(make_agent("a1"), make_agent("a1"), make_agent("a2"))
    decision = decide(make_case(), roster, RULESET, NOW)
    assert _exception("clinical", _problem(1, "a1", 0)) == _shape(decision)


def test_a_repeat_far_apart_is_found_and_the_warm_call_agrees() -> None:
    """Agent x at 3 and 27 of 30: the same EXCEPTION on the first call and the warm second."""
    agents = [make_agent(f"a{i:02}") for i in range(30)]
    agents[3] = make_agent("x", capacity=Capacity(5, 0))
    agents[27] = make_agent("x", capacity=Capacity(5, 4))
    roster = make_roster(*agents)
    first = decide(make_case(), roster, RULESET, NOW)
    second = decide(make_case(case_id="CASE-T2"), roster, RULESET, NOW)
    assert [_exception("clinical", _problem(27, "x", 3))] * 2 == [
        _shape(first),
        _shape(second),
    ]


def test_the_first_repeat_in_roster_order_is_named() -> None:
    """Ids a, b, a, c, b, a: the repeat met first walking the roster is named, a at 2."""
    ids = ["a", "b", "a", "c", "b", "a"]
    roster = make_roster(*(make_agent(i) for i in ids))
    decision = decide(make_case(), roster, RULESET, NOW)
    assert _exception("clinical", _problem(2, "a", 0)) == _shape(decision)


def test_an_escalation_to_an_agent_is_an_exception_too() -> None:
    """The unhappy, at-risk escalation that assigns a senior reads the roster: EXCEPTION."""
    senior = make_agent("s1", role=Role.SENIOR, capacity=Capacity(3, 0))
    roster = make_roster(senior, make_agent("a1"), senior)
    case = make_case(
        intent=Intent.COMPLAINT, sentiment=(reading(-0.7, 1),), sla_clocks=(clock("ack", 20),)
    )
    decision = decide(case, roster, RULESET, NOW)
    assert _exception("unhappy-sla-at-risk", _problem(2, "s1", 0)) == _shape(decision)


def test_rules_that_read_no_roster_decide_as_before() -> None:
    """A case-data exception rule and the safeguarding escalation never read the roster."""
    roster = make_roster(make_agent("a1"), make_agent("a1"))
    missing = decide(make_case(patient_location=None), roster, RULESET, NOW)
    flagged = decide(make_case(flags=frozenset({"safeguarding"})), roster, RULESET, NOW)
    assert [(d.outcome, d.rule_id, d.agent_id) for d in (missing, flagged)] == [
        (Outcome.EXCEPTION, "missing-patient-location", None),
        (Outcome.ESCALATE, "safeguarding", None),
    ]


def test_a_batch_decides_every_case_an_exception_and_records_them(core: RoutingCore) -> None:
    """RoutingCore batch over a repeated id: both cases EXCEPTION, stored, the chain verifies.

    The parsers refuse a repeated id (a code-built command gets that RequestError:
    tests/service/test_code_built_commands.py); ``parsed=True`` stands for a roster that
    reaches the core with one all the same, as a patched cache snapshot could (below).
    """
    roster = make_roster(make_agent("a1"), make_agent("a2"), make_agent("a1"))
    cases = (make_case(case_id="C1"), make_case(case_id="C2", urgency=Urgency.URGENT))
    command = DecideCommand("r1", "", "", cases, roster, NOW, batch=True, parsed=True)
    result = core.decide(command)
    store = core.audit
    stored = [(r.decision["outcome"], r.decision["agent_id"]) for r in store.by_request("r1")]
    report = verify_chain(store.records(), store.head(), store.get_blob)
    assert [_exception("clinical", _problem(2, "a1", 0))] * 2 == [
        _shape(d) for d in result.decisions
    ]
    assert (stored, report.ok) == ([("EXCEPTION", None)] * 2, True)


def _kept(snapshot: str, *agents: Agent) -> Roster:
    """A roster of kept agents, as the server's roster cache builds it (patched when it can)."""
    return with_kept_agents(Roster(snapshot, NOW, agents))


def test_a_patched_snapshot_that_introduces_a_repeat_is_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight kept agents, then place 6 holds a new a2: patched (no build), and EXCEPTION."""
    team = tuple(make_agent(f"a{i}") for i in range(8))
    first = _kept("s1", *team)
    assert decide(make_case(), first, RULESET, NOW).outcome == Outcome.ASSIGN
    monkeypatch.setattr(RosterIndex, "build", None)  # a build would fail: patched only
    second = _kept("s2", *team[:6], make_agent("a2", capacity=Capacity(5, 0)), team[7])
    decision = decide(make_case(), second, RULESET, NOW)
    assert _exception("clinical", _problem(6, "a2", 2)) == _shape(decision)


def test_a_patched_snapshot_that_removes_the_repeat_decides_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kept roster repeating a3, then a snapshot replacing the second a3: patched, ASSIGN."""
    team = [make_agent(f"a{i}", capacity=Capacity(5, 2)) for i in range(8)]
    team[5] = make_agent("a3", capacity=Capacity(5, 2))
    first = _kept("s1", *team)
    assert decide(make_case(), first, RULESET, NOW).reason_codes == ("duplicate_agent_id",)
    monkeypatch.setattr(RosterIndex, "build", None)  # a build would fail: patched only
    fixed = make_agent("a5", capacity=Capacity(5, 0))
    second = _kept("s2", *team[:5], fixed, *team[6:])
    decision = decide(make_case(), second, RULESET, NOW)
    assert (
        decision.outcome,
        decision.agent_id,
        decision.explanation.data_problems,
    ) == (Outcome.ASSIGN, "a5", ())


def test_a_patched_snapshot_keeps_a_repeat_it_does_not_touch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kept roster repeating a1 (1 and 4); a snapshot changing place 7 only: still EXCEPTION."""
    team = [make_agent(f"a{i}") for i in range(8)]
    team[4] = make_agent("a1")
    first = _kept("s1", *team)
    index_for(first)
    monkeypatch.setattr(RosterIndex, "build", None)  # a build would fail: patched only
    second = _kept("s2", *team[:7], make_agent("a7", status=AgentStatus.AWAY))
    decision = decide(make_case(), second, RULESET, NOW)
    assert _exception("clinical", _problem(4, "a1", 1)) == _shape(decision)


def test_a_patched_snapshot_appending_a_repeat_is_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight kept agents, then the same eight and a new a0 appended: patched, and EXCEPTION."""
    team = tuple(make_agent(f"a{i}") for i in range(8))
    first = _kept("s1", *team)  # alive: the base
    index_for(first)
    monkeypatch.setattr(RosterIndex, "build", None)  # a build would fail: patched only
    second = _kept("s2", *team, make_agent("a0", capacity=Capacity(5, 0)))
    decision = decide(make_case(), second, RULESET, NOW)
    assert _shape(decision) == _exception("clinical", _problem(8, "a0", 0))


def test_a_patched_snapshot_of_new_values_with_the_same_ids_has_no_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Distinct ids, place 2 a new value of a2: patched, the base's no-repeat carried, ASSIGN."""
    team = tuple(make_agent(f"a{i}", capacity=Capacity(5, 3)) for i in range(8))
    first = _kept("s1", *team)  # alive: the base
    index_for(first)
    monkeypatch.setattr(RosterIndex, "build", None)  # a build would fail: patched only
    second = _kept("s2", *team[:2], make_agent("a2", capacity=Capacity(5, 0)), *team[3:])
    decision = decide(make_case(), second, RULESET, NOW)
    assert (decision.outcome, decision.agent_id, index_for(second).repeated) == (
        Outcome.ASSIGN,
        "a2",
        None,
    )


def test_an_index_after_an_assignment_keeps_the_repeat() -> None:
    """roster_after_assignment's carried index names the same repeat as a fresh build."""
    roster = make_roster(make_agent("a1"), make_agent("a2"), make_agent("a1"))
    index_for(roster)
    after = roster_after_assignment(roster, "a2", NOW)
    carried = after.index_cache
    assert isinstance(carried, RosterIndex)
    assert ("a1", 0, 2) == carried.repeated == RosterIndex.build(after.agents).repeated


def test_a_roster_of_distinct_ids_has_no_repeat() -> None:
    """Distinct ids (and an empty roster): the index names no repeat."""
    assert [
        index_for(make_roster(make_agent("a1"), make_agent("a2"))).repeated,
        index_for(make_roster()).repeated,
    ] == [None, None]


@st.composite
def rosters_with_a_repeat(draw: st.DrawFn) -> Roster:
    """2-12 agents drawn from 1-4 ids (at least one repeated), any status, role and load."""
    size = draw(st.integers(2, 12))
    pool = [f"a{i}" for i in range(draw(st.integers(1, min(4, size - 1))))]
    ids = [draw(st.sampled_from(pool)) for _ in range(size)]
    return make_roster(
        *(
            make_agent(
                agent_id,
                status=draw(st.sampled_from(AgentStatus)),
                role=draw(st.sampled_from(Role)),
                capacity=Capacity(5, draw(st.integers(0, 5))),
            )
            for agent_id in ids
        )
    )


@settings(max_examples=120, deadline=None)
@given(
    rosters_with_a_repeat(),
    st.sampled_from(Intent),
    st.sampled_from(Urgency),
    st.booleans(),
)
def test_a_roster_with_a_repeated_id_is_never_assigned(
    roster: Roster, intent: Intent, urgency: Urgency, unhappy: bool
) -> None:
    """Random rosters repeating an id, random cases: never ASSIGN, never an agent chosen."""
    case = make_case(
        intent=intent,
        urgency=urgency,
        sentiment=(reading(-0.7, 1),) if unhappy else (),
        sla_clocks=(clock("ack", 20),) if unhappy else (),
    )
    decision = decide(case, roster, RULESET, NOW)
    assert (decision.outcome == Outcome.ASSIGN, decision.agent_id) == (False, None)
