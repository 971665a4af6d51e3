"""Ladder syntax and the `ladders` pass: hard requirements never relax, pools only widen."""

import pytest

from caseroute.domain.case import Urgency
from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.rules.compiler import load_ruleset
from caseroute.rules.fmt import format_text
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import REFERENCE_HOME, compile_text, ruleset_with_rules

REFERENCE = REFERENCE_HOME / "2026.12.1"
CATCH_ALL = "  - id: all\n    when: true\n    then: {route: {queue: clinical}}\n"
# Lines of a ruleset built by _ruleset(ladder, route) with a one-step ladder: 1-9 header,
# 10 `ladders:`, 11 ladder name, 12 first step, 13 `rules:`, 14-16 safeguarding, 17-19 rule r.
STEP = "{step: s1, after: 10m, relax: [language], why: w}"


def _ruleset(steps: list[str] | None, route: str, when: str = "case.urgency == 'critical'") -> str:
    """A ruleset whose rule r routes with ``route`` extras, after ladder ``wait`` of ``steps``."""
    rule = (
        f'  - id: r\n    when: "{when}"\n'
        f"    then: {{route: {{queue: clinical{', ' + route if route else ''}}}}}\n"
    )
    text = ruleset_with_rules(rule + CATCH_ALL)
    if steps is not None:
        ladder = "ladders:\n  wait:\n" + "".join(f"    - {s}\n" for s in steps)
        text = text.replace("rules:\n", ladder + "rules:\n", 1)
    return text


def _problems(text: str) -> list[Problem]:
    """Errors, or the warnings when the text compiles."""
    try:
        return list(compile_text(text, "r.yaml").warnings)
    except RulesetError as exc:
        return list(exc.problems)


def _found(text: str, code: str) -> list[tuple[str, str | None, Severity]]:
    """(location, rule id, severity) of every problem with ``code``."""
    return [(p.location, p.rule_id, p.severity) for p in _problems(text) if p.code == code]


ERROR, WARNING = Severity.ERROR, Severity.WARNING
DURATION_HINT = (
    "step `s1` of ladder `wait`: after must be a duration such as 10m, 2h or 30d (0 for at once); "
    "got "
)
SOFT = "soft: [language], ladder: wait"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        ("ladders.unused", _ruleset([STEP], ""), [("r.yaml:11", None, WARNING)]),
        (
            "ladders.order",
            _ruleset(
                [STEP, "{step: s2, after: 5m, relax: [territory], why: w}"],
                "soft: [language, territory], ladder: wait",
            ),
            [("r.yaml:13", None, ERROR)],
        ),
        ("ladders.relaxes_hard", _ruleset([STEP], "ladder: wait"), [("r.yaml:12", "r", ERROR)]),
        ("ladders.hard", _ruleset(None, "soft: [licence]"), [("r.yaml:16:44", "r", ERROR)]),
        (
            "ladders.step_unreachable",
            _ruleset(["{step: s1, after: {routine: 10m}, relax: [language], why: w}"], SOFT),
            [("r.yaml:12", None, WARNING)],
        ),
        (
            "ladders.step_no_effect",
            _ruleset([STEP, "{step: s2, after: 20m, relax: [language], why: w}"], SOFT),
            [("r.yaml:13", None, WARNING)],
        ),
        (
            "ladders.soft_unused",
            _ruleset(None, "language: false, prefer: [language]"),
            [("r.yaml:14", "r", WARNING)],
        ),
        (
            "ladders.soft_never_relaxes",
            _ruleset(None, "soft: [language]"),
            [("r.yaml:14", "r", WARNING)],
        ),
        (
            "rules.unknown_ladder",
            _ruleset([STEP], "soft: [language], ladder: wiat"),
            [("r.yaml:19:63", "r", ERROR)],
        ),
    ],
)
def test_each_ladder_code_fires_at_its_line_with_its_rule(
    code: str, text: str, expected: list[tuple[str, str | None, Severity]]
) -> None:
    """A minimal ruleset yields the code once, at this file:line, for this rule, this severity."""
    assert expected == _found(text, code)


def test_the_reference_version_compiles_without_any_ladder_finding() -> None:
    """patient-enquiries 2026.12.1 loads with no warning at all (ladders.* included)."""
    compiled = load_ruleset(REFERENCE)
    assert [str(p) for p in compiled.warnings] == []


def test_the_reference_ladders_and_continuity_are_as_documented() -> None:
    """The reference's ladders, delays (minutes per urgency) and continuity policy."""
    compiled = load_ruleset(REFERENCE)
    delays = {
        name: [(s.name, dict(s.after), s.relax, s.prefer) for s in ladder.steps]
        for name, ladder in compiled.ladders.items()
    }
    every = dict.fromkeys(Urgency, 30.0)
    first = {Urgency.ROUTINE: 10.0, Urgency.URGENT: 10.0, Urgency.CRITICAL: 0.0}
    assert delays == {
        "language": [("any-language", first, (), ("language",))],
        "language-then-territory": [
            ("any-language", first, (), ("language",)),
            ("any-territory", every, ("territory",), ()),
        ],
    }
    assert compiled.continuity is not None
    assert (
        compiled.continuity.window_days,
        dict(compiled.continuity.hold_minutes),
    ) == (365.0, {Urgency.ROUTINE: 15.0, Urgency.URGENT: 0.0, Urgency.CRITICAL: 0.0})


def _reference_requirements(compiled: CompiledRuleset) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for rule in compiled.rules:
        req = getattr(rule.action, "requirements", None) or getattr(rule.action, "assign", None)
        if req is not None:
            ladder = req.ladder.name if req.ladder is not None else None
            out[rule.rule_id] = (req.soft, req.prefer, ladder)
    return out


def test_the_reference_never_softens_licence_and_only_prefers_language_for_seniors() -> None:
    """Which rule marks what soft or preferred, with which ladder, in the reference version."""
    assert _reference_requirements(load_ruleset(REFERENCE)) == {
        "unhappy-sla-at-risk": ((), ("language",), None),
        "critical-clinical": (("language",), (), "language"),
        "clinical": (("language",), (), "language"),
        "prescription": (("language",), (), "language"),
        "by-intent": (("language", "territory"), (), "language-then-territory"),
    }


@pytest.mark.parametrize(
    ("route", "steps", "where", "message"),
    [
        (
            "soft: [licence]",
            None,
            "r.yaml:16:44",
            (
                "`licence` in rule r route.soft is a hard requirement: licence, consent, "
                "safeguarding, declined agents, status and capacity never relax. Remove it; only "
                "territory, skills, language, roles can be soft"
            ),
        ),
        (
            "prefer: [consent]",
            None,
            "r.yaml:16:46",
            (
                "`consent` in rule r route.prefer is a hard requirement: licence, consent, "
                "safeguarding, declined agents, status and capacity never relax. Remove it; only "
                "territory, skills, language, roles can be soft"
            ),
        ),
        (
            SOFT,
            ["{step: s1, after: 10m, relax: [safeguarding], why: w}"],
            "r.yaml:12:38",
            (
                "`safeguarding` in step `s1` of ladder `wait`: relax is a hard requirement: "
                "licence, consent, safeguarding, declined agents, status and capacity never relax. "
                "Remove it; only territory, skills, language, roles can be soft"
            ),
        ),
    ],
)
def test_a_hard_requirement_marked_soft_preferred_or_relaxed_is_rejected(
    route: str, steps: list[str] | None, where: str, message: str
) -> None:
    """soft: [licence], prefer: [consent] and a step relaxing safeguarding block loading."""
    with pytest.raises(RulesetError) as exc:
        compile_text(_ruleset(steps, route), "r.yaml")
    assert [(where, message)] == [
        (p.location, p.message) for p in exc.value.problems if p.code == "ladders.hard"
    ]


def test_a_ladder_whose_delays_go_down_is_rejected_with_both_steps_named() -> None:
    """A step listed later but taking effect sooner is an error naming both steps and delays."""
    text = _ruleset(
        [STEP, "{step: s2, after: {routine: 5m, urgent: 20m}, relax: [territory], why: w}"],
        "soft: [language, territory], ladder: wait",
        when="true",
    )
    with pytest.raises(RulesetError) as exc:
        compile_text(
            text.replace("  - id: all\n    when: true\n", "  - id: all\n    when: false\n")
        )
    assert [(p.line, p.message) for p in exc.value.problems if p.code == "ladders.order"] == [
        (
            13,
            (
                "step `s2` of ladder `wait` takes effect after 5 min for routine cases, before "
                "step `s1` listed above it (10 min). Steps take effect in the order listed and "
                "each keeps what the earlier ones relaxed: list them by delay, or make this delay "
                "at least the one above"
            ),
        )
    ]


def test_delays_going_down_past_a_step_without_that_urgency_are_rejected() -> None:
    """s3 (routine 5m) after s1 (routine 10m) is caught though s2 between has no routine delay."""
    text = _ruleset(
        [
            STEP.replace("after: 10m", "after: {routine: 10m}"),
            "{step: s2, after: {urgent: 1m}, relax: [territory], why: w}",
            "{step: s3, after: {routine: 5m, urgent: 2m}, relax: [skills], why: w}",
        ],
        "soft: [language, territory, skills], skills: [{name: triage, min_level: 1}], ladder: wait",
        when="case.urgency in ['routine', 'urgent']",
    )
    assert _found(text, "ladders.order") == [("r.yaml:14", None, ERROR)]


def test_an_unknown_ladder_name_suggests_the_close_one() -> None:
    """`ladder: wiat` names the declared `wait` in its message."""
    problems = _problems(_ruleset([STEP], "soft: [language], ladder: wiat"))
    assert [p.message for p in problems if p.code == "rules.unknown_ladder"] == [
        "rule r route names ladder `wiat`, which is not declared (did you mean `wait`?)"
    ]


def test_an_unknown_ladder_with_nothing_close_lists_the_declared_ones() -> None:
    """A name far from any declared ladder lists the ladders that exist."""
    problems = _problems(_ruleset([STEP], "soft: [language], ladder: territory-first"))
    assert [p.message for p in problems if p.code == "rules.unknown_ladder"] == [
        (
            "rule r route names ladder `territory-first`, which is not declared (declare it "
            "under `ladders:` (declared: wait))"
        )
    ]


@pytest.mark.parametrize(
    ("after", "minutes"),
    [("10m", 10.0), ("2h", 120.0), ("1d", 1440.0), ("0", 0.0), ("0m", 0.0), ("90min", 90.0)],
)
def test_durations_with_a_unit_or_zero_are_read_in_minutes(after: str, minutes: float) -> None:
    """10m, 2h, 1d, 90min and a bare 0 are minutes after the wait anchor, for every urgency."""
    compiled = compile_text(_ruleset([STEP.replace("10m", after)], SOFT))
    assert dict.fromkeys(Urgency, minutes) == dict(compiled.ladders["wait"].steps[0].after)


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (
            "10",
            DURATION_HINT + "10 (a bare number has no unit: write 10m)",
        ),
        (
            "10s",
            DURATION_HINT + "'10s'",
        ),
        (
            "-5m",
            DURATION_HINT + "'-5m'",
        ),
    ],
)
def test_durations_without_a_unit_or_with_a_wrong_one_are_refused(after: str, message: str) -> None:
    """A bare 10, seconds and negative delays are schema.format errors at the value."""
    with pytest.raises(RulesetError) as exc:
        compile_text(_ruleset([STEP.replace("10m", after)], SOFT), "r.yaml")
    assert [("r.yaml:12:25", message)] == [
        (p.location, p.message) for p in exc.value.problems if p.code == "schema.format"
    ]


def test_a_continuity_window_too_long_to_count_back_from_now_is_refused() -> None:
    """A window over 3650d is refused at load (it would overflow the date arithmetic)."""
    text = ruleset_with_rules(CATCH_ALL).replace(
        "rules:\n", "continuity: {window: 999999d}\nrules:\n", 1
    )
    with pytest.raises(RulesetError) as exc:
        compile_text(text, "r.yaml")
    assert [(p.location, p.message) for p in exc.value.problems if p.code == "schema.range"] == [
        (
            "r.yaml:10:22",
            "continuity.window must be at most 3650d (about ten years); got 999999d",
        )
    ]


def test_a_ladder_delay_or_hold_too_long_is_refused() -> None:
    """A step delay or a hold over 3650d is refused at load, naming where it is."""
    text = _ruleset([STEP.replace("10m", "4000d")], SOFT).replace(
        "rules:\n", "continuity: {window: 30d, hold: {routine: 9999d}}\nrules:\n", 1
    )
    with pytest.raises(RulesetError) as exc:
        compile_text(text, "r.yaml")
    assert [(p.location, p.message) for p in exc.value.problems if p.code == "schema.range"] == [
        (
            "r.yaml:12:25",
            "step `s1` of ladder `wait`: after must be at most 3650d (about ten years); got 4000d",
        ),
        (
            "r.yaml:13:43",
            "continuity.hold.routine must be at most 3650d (about ten years); got 9999d",
        ),
    ]


def test_rules_fmt_puts_ladders_and_continuity_after_matching_and_keeps_their_comments() -> None:
    """Sections written out of order move to their canonical place, comments with them."""
    text = (
        _ruleset([STEP], SOFT) + "# how long to wait for a known agent\ncontinuity: {window: 30d}\n"
    )
    formatted = format_text(text, "r.yaml")
    keys = [line.split(":")[0] for line in formatted.splitlines() if line[:1].isalpha()]
    assert keys == [
        "ruleset",
        "version",
        "description",
        "owner",
        "constraints",
        "ladders",
        "continuity",
        "queues",
        "rules",
    ]
    assert "# how long to wait for a known agent\ncontinuity: {window: 30d}\n" in formatted


def test_rules_fmt_leaves_the_reference_version_unchanged() -> None:
    """2026.12.1 is already in the canonical layout (`rules fmt --check` passes)."""
    text = (REFERENCE / "ruleset.yaml").read_text()
    assert text == format_text(text, "ruleset.yaml")
