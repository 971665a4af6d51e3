"""The decision text says when time alone changes it, worded for assigned and waiting cases."""

from datetime import date, timedelta

from caseroute.domain.roster import Capacity, Licence
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.render import render_text
from caseroute.testing import NOW, make_agent, make_case, make_roster
from tests.engine.test_adaptive_timing import LOADED, TEXAN, _pref
from tests.engine.test_licence_dates import LOADED as DATED


def _third_line(text: str) -> str:
    return text.splitlines()[2]


def test_an_assignment_says_when_time_alone_could_change_it_and_why() -> None:
    """Assigned to a preferred agent whose contact lapses in 10 days: not `Ask again`."""
    other = make_agent("other", capacity=Capacity(5, 0))
    case = make_case(created_at=NOW - timedelta(minutes=40), preferred_agents=(_pref("tx", 20),))
    decision = decide(case, make_roster(TEXAN, other), LOADED, NOW)
    assert _third_line(render_text(decision)) == (
        "Time alone could change this at 2026-12-01T10:00:00Z (a continuity preference leaves "
        "its window)"
    )


def test_a_queued_case_is_told_to_ask_again_at_the_next_step() -> None:
    """Nobody eligible before the territory step: `Ask again at` the step's instant."""
    case = make_case(created_at=NOW - timedelta(minutes=5))
    roster = make_roster(make_agent("ca", territories=frozenset({"US-CA"})))
    decision = decide(case, roster, LOADED, NOW)
    assert _third_line(render_text(decision)) == (
        "Ask again at 2026-11-21T10:25:00Z (ladder step any-territory takes effect)"
    )


def test_a_queued_case_is_told_to_ask_again_when_a_compact_membership_starts() -> None:
    """Nobody licensed until Pennsylvania joins the NLC: the cause named is the membership."""
    pa = make_agent("pa", licences=(Licence("RN", "US-PA", date(2030, 1, 1), multistate=True),))
    case = make_case(created_at=NOW)
    decision = decide(case, make_roster(pa), DATED[EngineKind.PYTHON], NOW)
    assert _third_line(render_text(decision)) == (
        "Ask again at 2026-11-22T07:00:00Z (a compact membership starts)"
    )
