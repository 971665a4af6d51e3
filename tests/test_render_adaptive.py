"""Text rendering of relaxation ladders, continuity of care and held queues."""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.case import ContinuityReason, PreferredAgent, Urgency
from caseroute.domain.decision import Decision
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.render import render_text
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import (
    ADAPTIVE_HEADER,
    NOW,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from caseroute.wire.convert import decision_from_proto, decision_to_proto

HEADER = ADAPTIVE_HEADER
RULES = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, soft: [language, territory], ladder: lang}}
"""
RULESET = prepare_ruleset(compile_text(ruleset_with_rules(RULES, HEADER)), EngineKind.PYTHON)
ROSTER = make_roster(
    make_agent("a1"),
    make_agent("a2", capacity=Capacity(max=5, active=5)),
    make_agent("a3", territories=frozenset({"US-CA"}), languages=frozenset({"es"})),
)


def _decide(waited: float, **overrides: object) -> Decision:
    case = make_case(
        created_at=NOW - timedelta(minutes=waited), preferred_language="es", **overrides
    )
    return decide(case, ROSTER, RULESET, NOW)


def _section(text: str, title: str) -> list[str]:
    """The lines of the section starting with ``title`` up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = lines.index("", start)
    return lines[start:end]


def _prefer(agent_id: str) -> tuple[PreferredAgent, ...]:
    return (PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=3)),)


def test_ladder_renders_summary_then_one_row_per_step_with_absolute_times() -> None:
    """The relaxation section: summary, anchor, never-relax, then step/status/at/after/eligible."""
    text = render_text(_decide(12))
    assert _section(text, "Relaxation") == [
        (
            "Relaxation (ladder lang): language relaxed at 09:58 after 10 min waiting; territory "
            "relaxes at"
        ),
        "    10:18; licence never relaxes",
        "  waiting 12 min since created_at 2026-11-21T09:48:00Z",
        "  never relax: licence",
        "  soft: language, territory; relaxed now: language; ranking preferences: language",
        "  eligible with nothing relaxed: 0",
        "  step           status   at (UTC)              after   relaxes / prefers  eligible",
        "  any-language   active   2026-11-21T09:58:00Z  10 min  prefers language   1",
        "      why: A nurse with an interpreter beats a longer wait.",
        "  any-territory  pending  2026-11-21T10:18:00Z  30 min  relaxes territory  2",
        "      why: Anyone licensed will do after half an hour.",
        "  next step at 2026-11-21T10:18:00Z",
    ]
    assert text.splitlines()[:3] == [
        "CASE-T1: ASSIGN to a1 (queue clinical), priority normal",
        "Decided by: rest; reasons: routed, relaxed_language",
        (
            "Time alone could change this at 2026-11-21T10:18:00Z (ladder step any-territory "
            "takes effect)"
        ),
    ]
    assert max(len(line) for line in _section(text, "Relaxation")) <= 100


def test_ladder_step_that_never_applies_and_nothing_pending() -> None:
    """A critical case never reaches a step without its urgency; no `Ask again` line then."""
    text = render_text(_decide(45, urgency=Urgency.CRITICAL))
    assert _section(text, "  step ") == [
        "  step           status  at (UTC)              after   relaxes / prefers  eligible",
        "  any-language   never   never                 -       prefers language   0",
        "      why: A nurse with an interpreter beats a longer wait.",
        "  any-territory  active  2026-11-21T09:45:00Z  30 min  relaxes territory  1",
        "      why: Anyone licensed will do after half an hour.",
        "  no step pending: time alone relaxes nothing more",
    ]
    assert [line for line in text.splitlines() if line.startswith("Ask again")] == []


def test_pending_steps_that_change_nothing_are_named_and_no_ask_again_line() -> None:
    """Nobody licensed (R33a L1): steps pending, no next step, and the summary says why."""
    unlicensed = make_roster(make_agent("lpn", licences=(), languages=frozenset({"es"})))
    case = make_case(created_at=NOW - timedelta(minutes=5), preferred_language="es")
    text = render_text(decide(case, unlicensed, RULESET, NOW))
    section = _section(text, "Relaxation")
    assert section[-1] == "  no next step: no pending step can change this decision"
    assert section[:2] == [
        (
            "Relaxation (ladder lang): nothing relaxed after 5 min waiting; no next step: "
            "language at 10:05 and"
        ),
        "    territory at 10:25 make no agent on this roster eligible; licence never relaxes",
    ]
    assert [line for line in text.splitlines() if line.startswith("Ask again")] == []


def test_held_queue_names_the_hold_and_each_preferred_agent() -> None:
    """QUEUE held for a busy preferred agent: headline, ask-again, agent's status and reason."""
    decision = _decide(12, preferred_agents=_prefer("a2"))
    text = render_text(decision)
    assert text.splitlines()[:3] == [
        (
            "CASE-T1: QUEUE in clinical (held for a preferred agent until 2026-11-21T10:03:00Z), "
            "priority normal"
        ),
        "Decided by: rest; reasons: routed, held_for_preferred_agent",
        "Ask again at 2026-11-21T10:03:00Z (the hold for a preferred agent ends)",
    ]
    assert _section(text, "Continuity") == [
        "Continuity of care: held for a preferred agent until 2026-11-21T10:03:00Z",
        "  window 365 days; hold up to 15 min from the wait anchor (until 2026-11-21T10:03:00Z)",
        "  a2 (previous_contact, last contact 2026-11-18T10:00:00Z): held_for",
        "      at capacity 5/5; case held until 10:03",
    ]


def test_preferred_agent_chosen_ranks_first_and_ranking_reads_yes_no() -> None:
    """ASSIGN to an eligible preferred agent: outcome in words, preference criteria as yes/no."""
    text = render_text(_decide(40, preferred_agents=_prefer("a1")))
    assert _section(text, "Continuity") == [
        "Continuity of care: assigned to a preferred agent",
        "  window 365 days; hold up to 15 min from the wait anchor (until 2026-11-21T09:35:00Z)",
        "  a1 (previous_contact, last contact 2026-11-18T10:00:00Z): chosen",
        "      eligible and ranked first among the preferred",
    ]
    ranking = _section(text, "Ranking")
    assert ranking[1:] == [
        (
            "  1. a1: 1st preferred (previous_contact), prefers language no, utilisation 0.2, "
            "skill level 0, idle minutes never   <- chosen"
        ),
        (
            "  2. a3: preferred agent no, prefers language yes, utilisation 0.2, skill level 0, "
            "idle minutes never"
        ),
    ]


def _two_preferred() -> Decision:
    """a3 then a1 preferred, both for a previous contact; a3 ranks first only by that order."""
    return _decide(40, preferred_agents=_prefer("a3") + _prefer("a1"))


def test_two_preferred_agents_with_one_reason_read_as_1st_and_2nd_preferred() -> None:
    """The ranking names each preferred agent's place in the case's list, not the reason alone."""
    ranking = _section(render_text(_two_preferred()), "Ranking")
    assert [line.split(",")[0] for line in ranking[1:]] == [
        "  1. a3: 1st preferred (previous_contact)",
        "  2. a1: 2nd preferred (previous_contact)",
    ]


def test_preferred_places_read_the_same_over_grpc_and_from_the_audit_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The place survives the proto reply and the stored record: both render as `decide` did."""
    decision = _two_preferred()
    back = decision_from_proto(decision_to_proto(decision))
    assert _section(render_text(back), "Ranking") == _section(render_text(decision), "Ranking")
    registry = RulesetRegistry()
    registry.add(RULESET)
    core = audited_core(registry, tmp_path)
    case = make_case(
        created_at=NOW - timedelta(minutes=40),
        preferred_language="es",
        preferred_agents=_prefer("a3") + _prefer("a1"),
    )
    (stored,) = core.decide(DecideCommand("r1", "", "", (case,), ROSTER, NOW)).decisions
    registry.close()
    assert (
        main(["audit", "show", stored.decision_id, "--audit-db", str(tmp_path / "audit.db")]) == 0
    )
    out = capsys.readouterr().out
    assert "  1. a3: 1st preferred (previous_contact)" in out


def test_a_record_made_before_places_were_kept_renders_its_reason_as_it_did() -> None:
    """A stored ranking carrying the reason string (older records) still reads as before."""
    decision = _two_preferred()
    matching = decision.explanation.matching
    assert matching is not None
    old = tuple(
        replace(c, criteria=(("preferred agent", "previous_contact"), *c.criteria[1:]))
        for c in matching.ranking
    )
    explanation = replace(decision.explanation, matching=replace(matching, ranking=old))
    ranking = _section(render_text(replace(decision, explanation=explanation)), "Ranking")
    assert ranking[1].startswith("  1. a3: preferred agent previous_contact, ")


def test_a_place_without_its_continuity_entry_reads_as_the_place_alone() -> None:
    """No continuity trace, or a place past its list: the place, never another agent's reason."""
    decision = _two_preferred()
    continuity = decision.explanation.continuity
    assert continuity is not None
    without = replace(decision, explanation=replace(decision.explanation, continuity=None))
    ranking = _section(render_text(without), "Ranking")
    assert [line.split(",")[0] for line in ranking[1:]] == [
        "  1. a3: 1st preferred",
        "  2. a1: 2nd preferred",
    ]
    shorter = replace(continuity, preferred=continuity.preferred[:1])
    cut = replace(decision, explanation=replace(decision.explanation, continuity=shorter))
    ranking = _section(render_text(cut), "Ranking")
    assert [line.split(",")[0] for line in ranking[1:]] == [
        "  1. a3: 1st preferred (previous_contact)",
        "  2. a1: 2nd preferred",
    ]


def test_hold_expired_assigns_another_and_says_when_it_expired() -> None:
    """After the hold the best other agent is chosen; the busy preferred agent says why not."""
    text = render_text(_decide(20, preferred_agents=_prefer("a2")))
    assert _section(text, "Continuity") == [
        "Continuity of care: no preferred agent could take it; the best other agent did",
        "  window 365 days; hold up to 15 min from the wait anchor (until 2026-11-21T09:55:00Z)",
        "  a2 (previous_contact, last contact 2026-11-18T10:00:00Z): unavailable",
        "      at capacity 5/5; hold expired 09:55",
    ]


def test_operator_and_caller_text_in_the_ladder_stays_on_its_line() -> None:
    """A hostile step name, why or preferred agent id is escaped before wrapping, never raw."""
    decision = _decide(12, preferred_agents=_prefer("a2"))
    e = decision.explanation
    assert e.relaxation is not None
    assert e.continuity is not None
    hostile = "x\n  forged\x1b[2J\u202e"
    steps = (replace(e.relaxation.steps[0], name=hostile, why=hostile),)
    preferred = (replace(e.continuity.preferred[0], agent_id=hostile, detail=hostile),)
    forged = replace(
        decision,
        explanation=replace(
            e,
            relaxation=replace(e.relaxation, steps=steps, summary=hostile),
            continuity=replace(e.continuity, preferred=preferred),
        ),
    )
    lines = render_text(forged).splitlines()
    assert [c for line in lines for c in line if not c.isprintable()] == []
    assert "  forged" not in lines
    assert "Relaxation (ladder lang): x\\n  forged\\x1b[2J\\u202e" in lines
    # A step's reason is prose: its whitespace (a newline too) folds to single spaces.
    assert "      why: x forged\\x1b[2J\\u202e" in lines
    agent_line = (
        "  x\\n  forged\\x1b[2J\\u202e (previous_contact, last contact 2026-11-18T10:00:00Z)"
    )
    assert f"{agent_line}: held_for" in lines
    assert "      x\\n  forged\\x1b[2J\\u202e" in lines


def test_audit_show_renders_the_stored_ladder_and_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit show` of a held decision prints the same ladder and continuity as `decide` did."""
    registry = RulesetRegistry()
    registry.add(RULESET)
    core = audited_core(registry, tmp_path)
    case = make_case(
        created_at=NOW - timedelta(minutes=12),
        preferred_language="es",
        preferred_agents=_prefer("a2"),
    )
    (decision,) = core.decide(DecideCommand("r1", "", "", (case,), ROSTER, NOW)).decisions
    registry.close()
    db = str(tmp_path / "audit.db")
    assert main(["audit", "show", decision.decision_id, "--audit-db", db]) == 0
    out = capsys.readouterr().out
    assert _section(out, "Relaxation") == _section(render_text(decision), "Relaxation")
    assert _section(out, "Continuity") == _section(render_text(decision), "Continuity")
    assert "Ask again at 2026-11-21T10:03:00Z (the hold for a preferred agent ends)" in out
