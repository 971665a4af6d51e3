"""Per-need results kept on the roster's index: reused for equal needs, never past a change."""

from dataclasses import replace
from datetime import date

from caseroute.domain.roster import AgentStatus, Capacity
from caseroute.engine import matching
from caseroute.engine.decide import decide
from caseroute.engine.licensing import CompactView
from caseroute.engine.local_days import LocalDays
from caseroute.engine.matching import (
    Need,
    build_need,
    check_masks,
    describe_need,
    match_agents,
)
from caseroute.engine.roster_index import (
    MAX_REMEMBERED,
    index_for,
    roster_after_assignment,
)
from caseroute.rules.model import Compact, CompactMember, Requirements
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset

DAY = NOW.date()


def _need(**changes: object) -> Need:
    """The reference ruleset's need for the routine Texas case, with fields changed."""
    compiled = reference_ruleset().compiled
    need = build_need(make_case(), Requirements(), compiled, NOW)
    return replace(need, **changes)  # type: ignore[arg-type]


def test_equal_needs_share_one_match_result() -> None:
    """A second, equal (not identical) need gets the first result object back."""
    roster = make_roster(make_agent("a1"), make_agent("a2", status=AgentStatus.OFFLINE))
    first = match_agents(_need(), roster, detail=False)
    again = match_agents(_need(), roster, detail=False)
    assert first is again
    assert tuple(a.agent_id for a in again.eligible) == ("a1",)


def test_full_detail_is_matched_afresh_and_summary_stays_without_verdicts() -> None:
    """FULL matches are never remembered (verdicts are large); a SUMMARY one has none."""
    roster = make_roster(make_agent("a1"), make_agent("a2", status=AgentStatus.OFFLINE))
    summary = match_agents(_need(), roster, detail=False)
    full = match_agents(_need(), roster, detail=True)
    assert (summary.verdicts, len(full.verdicts)) == ((), 2)
    assert summary.failed_masks == (("status", "2"),)
    assert full is not match_agents(_need(), roster, detail=True)
    assert summary is match_agents(_need(), roster, detail=False)


def test_another_need_on_the_same_roster_is_resolved_afresh() -> None:
    """A need with other statuses (e.g. another ruleset's) sees other agents eligible."""
    roster = make_roster(make_agent("a1"), make_agent("a2", status=AgentStatus.OFFLINE))
    match_agents(_need(), roster, detail=False)
    wider = _need(statuses=frozenset({AgentStatus.AVAILABLE, AgentStatus.OFFLINE}))
    assert tuple(a.agent_id for a in match_agents(wider, roster, detail=False).eligible) == (
        "a1",
        "a2",
    )


def test_an_assignment_in_a_batch_is_not_answered_from_before_it() -> None:
    """Once the roster's last free slot is taken, the same need finds nobody eligible."""
    roster = make_roster(make_agent("a1", capacity=Capacity(max=2, active=1)))
    assert len(match_agents(_need(), roster, detail=False).eligible) == 1
    after = roster_after_assignment(roster, "a1", NOW)
    assert len(match_agents(_need(), after, detail=False).eligible) == 0
    assert check_masks(_need(), index_for(after))["capacity"] == 0


def test_check_masks_hands_each_caller_its_own_dict() -> None:
    """Changing a returned mask dict changes nothing the next caller sees."""
    roster = make_roster(make_agent("a1"))
    index = index_for(roster)
    first = check_masks(_need(), index)
    first["status"] = 0
    assert check_masks(_need(), index)["status"] == 1


def test_remembered_results_are_bounded() -> None:
    """Past MAX_REMEMBERED entries the index forgets them all and starts again."""
    index = index_for(make_roster(make_agent("a1")))
    for n in range(MAX_REMEMBERED):
        index.remember(n, n)
    assert index.recall(0) == 0
    index.remember("one more", 1)
    assert (index.recall(0), index.recall("one more")) == (None, 1)


def test_describe_need_equals_the_needs_own_words() -> None:
    """The remembered description is the need's describe(), for two different needs."""
    needs = [_need(), _need(language="es", region=None)]
    assert [n.describe() for n in needs] == [describe_need(n) for n in needs]


def test_compact_views_are_found_by_the_rulesets_object_and_day() -> None:
    """Equal compacts in two objects, and two days, each get the view CompactView.on gives."""
    member = CompactMember("US-TX", date(2020, 1, 1), until=date(2026, 11, 21))
    first = (Compact("NLC", frozenset({"RN"}), (member,)),)
    second = (Compact("NLC", frozenset({"RN"}), (member,)),)
    later = date(2026, 11, 22)
    days = [LocalDays.single(d) for d in (DAY, later)]
    views = [matching._compacts_on(c, d) for c in (first, second) for d in days]
    assert [CompactView.on(first, d) for d in days] * 2 == views
    assert [frozenset({"US-TX"}), frozenset()] == [v.entries[0][2] for v in views[:2]]


def test_compact_views_are_bounded() -> None:
    """Past 64 entries the identity memo is emptied, then refilled."""
    for n in range(70):
        day = date(2000, 1, 1).replace(day=1 + n % 28, month=1 + n // 28)
        matching._compacts_on((), LocalDays.single(day))
    assert len(matching._COMPACT_VIEWS) <= 64


def test_decisions_from_a_warm_index_equal_those_from_a_fresh_one() -> None:
    """Deciding again against the same (warm) roster equals deciding against a fresh copy."""
    loaded = reference_ruleset()
    agents = (make_agent("a1"), make_agent("a2", capacity=Capacity(max=5, active=3)))
    warm = make_roster(*agents)
    case = make_case()
    decide(case, warm, loaded, NOW, decision_id="d1")
    again = decide(case, warm, loaded, NOW, decision_id="d1")
    assert decide(case, make_roster(*agents), loaded, NOW, decision_id="d1") == again
