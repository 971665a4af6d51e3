"""One mistake, one finding: an error in a ladder reference or step is not repeated as a warning."""

import pytest

from caseroute.testing import MINIMAL_HEADER, ruleset_with_rules
from tests.rules.test_ladders import CATCH_ALL, STEP, _problems, _ruleset


def test_an_unknown_ladder_is_not_also_reported_as_soft_never_relaxing() -> None:
    """`ladder: wiat` is rules.unknown_ladder, and only that.

    No extra ladders.soft_never_relaxes for the rule, nor ladders.unused for `wait` (the
    ladder it most likely meant).
    """
    text = _ruleset([STEP], "soft: [language], ladder: wiat")
    codes = sorted(p.code for p in _problems(text))
    assert codes == ["lint.no_consent", "lint.no_licence", "rules.unknown_ladder"]


def test_a_step_relaxing_a_hard_requirement_is_not_also_a_step_without_effect() -> None:
    """The step relaxes language the rule holds hard: relaxes_hard only, not step_no_effect."""
    text = _ruleset([STEP], "ladder: wait")
    codes = sorted(p.code for p in _problems(text))
    assert codes == ["ladders.relaxes_hard", "lint.no_consent", "lint.no_licence"]


# A clean base for "exactly one finding" (consent and every licensed intent constrained, so no
# lint.* finding of its own). Lines: 1-10 header, 11 `ladders:`, 12 `  wait:`, 13 step s1,
# 14 step s2 (15 s3 when given), then `rules:`, safeguarding, rule r (its route on line 21 with
# two steps), the catch-all.
CLEAN_HEADER = MINIMAL_HEADER.replace(
    "  licence: {clinical: [RN]}",
    "  consent: {flag: consent_missing}\n  licence: {clinical: [RN], prescription: [pharmacist]}",
)
S1 = "{step: s1, after: 10m, relax: [language], why: w}"
S2 = "{step: s2, after: 20m, relax: [territory], why: w}"
ROUTE = "soft: [language, territory], ladder: wait"


def _clean(steps: list[str], route: str = ROUTE, rules: str = "") -> str:
    """Ladder ``wait`` of ``steps``; ``rules``, then rule r (general cases) with ``route``."""
    ladder = "ladders:\n  wait:\n" + "".join(f"    - {s}\n" for s in steps)
    rule = (
        "  - id: r\n    when: \"case.intent == 'general'\"\n"
        f"    then: {{route: {{queue: clinical, {route}}}}}\n"
    )
    return ruleset_with_rules(rules + rule + CATCH_ALL, CLEAN_HEADER + ladder)


def _all(text: str) -> list[tuple[str, str]]:
    """(code, location) of every problem, errors and warnings alike."""
    return [(p.code, p.location) for p in _problems(text)]


def test_the_clean_base_has_no_finding_at_all() -> None:
    """The base the one-mistake cases edit compiles without a single error or warning."""
    assert _all(_clean([S1, S2])) == []


def _step(after: str = "10m", relax: str = "relax: [language]") -> str:
    return f"{{step: s1, after: {after}, {relax}, why: w}}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Cascades before the fix: each of these also warned step_no_effect (the unreadable
        # relax/prefer left the step relaxing nothing) or step_unreachable (an unreadable
        # `after` left it with no delay for any urgency).
        (_clean([_step(relax="relax: [langauge]"), S2]), ("schema.value", "r.yaml:13:38")),
        (_clean([_step(relax="prefer: [langauge]"), S2]), ("schema.value", "r.yaml:13:39")),
        (_clean([_step(relax="relax: [licence]"), S2]), ("ladders.hard", "r.yaml:13:38")),
        (_clean([_step(relax="prefer: [licence]"), S2]), ("ladders.hard", "r.yaml:13:39")),
        (_clean([_step(relax="relax: language"), S2]), ("schema.type", "r.yaml:13:37")),
        (_clean([_step(relax="relax: [3]"), S2]), ("schema.type", "r.yaml:13:38")),
        (_clean(["{step: s1, after: 10m, why: w}", S2]), ("schema.missing_key", "r.yaml:13:7")),
        (_clean([_step(after="10"), S2]), ("schema.format", "r.yaml:13:25")),
        (_clean([_step(after="{routine: 10}"), S2]), ("schema.format", "r.yaml:13:35")),
        (_clean([_step(after="{routin: 10m}"), S2]), ("schema.unknown_key", "r.yaml:13:26")),
        (_clean([_step(after="99999d"), S2]), ("schema.range", "r.yaml:13:25")),
        # Cascade before the fix: one step listed too early was reported once per later step.
        (
            _clean(
                [
                    "{step: s1, after: 30m, relax: [language], why: w}",
                    "{step: s2, after: 10m, relax: [territory], why: w}",
                    "{step: s3, after: 20m, relax: [skills], why: w}",
                ],
                "soft: [language, territory, skills], ladder: wait",
            ),
            ("ladders.order", "r.yaml:14"),
        ),
        # Cascades before the fix: the rule's unreadable soft/prefer entry left the ladder
        # relaxing a requirement the rule then seemed to hold hard (ladders.relaxes_hard).
        (
            _clean([S1, S2], "soft: [langauge, territory], ladder: wait"),
            ("schema.value", "r.yaml:21:44"),
        ),
        (
            _clean([S1, S2], "soft: [territory], prefer: [langauge], ladder: wait"),
            ("schema.value", "r.yaml:21:65"),
        ),
        # Cascade before the fix: a ladder whose name is invalid was also an unknown ladder
        # for the rule naming it.
        (
            _clean([S1, S2]).replace("  wait:", "  Wait:").replace("ladder: wait", "ladder: Wait"),
            ("schema.format", "r.yaml:12"),
        ),
        # Cascade before the fix: a misspelt `ladder:` also left `wait` "unused".
        (
            _clean([S1, S2], "soft: [language, territory], ladder: wiat"),
            ("rules.unknown_ladder", "r.yaml:21:74"),
        ),
        # Cascades before the fix: a step listed too early that relaxes what a step above it
        # relaxes was also "without effect" (which step is earlier is what order disputes).
        (
            _clean(
                [
                    "{step: s1, after: 30m, relax: [language], why: w}",
                    "{step: s2, after: 10m, relax: [language], why: w}",
                ]
            ),
            ("ladders.order", "r.yaml:14"),
        ),
        (
            _clean([S1, "{step: s2, after: 5m, relax: [language], why: w}"]),
            ("ladders.order", "r.yaml:14"),
        ),
        # Cascade before the fix: a misspelt step key was unknown and its key also missing.
        (
            _clean(["{stpe: s1, after: 10m, relax: [language], why: w}", S2]),
            ("schema.unknown_key", "r.yaml:13:8"),
        ),
        # No cascade found: kept as regression pins.
        (
            _clean([S1, "{step: s2, after: 5m, relax: [territory], why: w}"]),
            ("ladders.order", "r.yaml:14"),
        ),
        (
            _clean([S1, S2], "soft: [territory], ladder: wait"),
            ("ladders.relaxes_hard", "r.yaml:13"),
        ),
        (
            _clean([S1, "{step: s1, after: 20m, relax: [territory], why: w}"]),
            ("schema.value", "r.yaml:14:7"),
        ),
        (
            _clean(
                [S1, "{step: s2, after: 20m, relax: [language], why: w}"],
                "soft: [language], ladder: wait",
            ),
            ("ladders.step_no_effect", "r.yaml:14"),
        ),
        (
            _clean([S1, S2], "soft: [language, territory, licence], ladder: wait"),
            ("ladders.hard", "r.yaml:21:65"),
        ),
        (
            _clean(["{step: s1, after: 10m, relax: [language]}", S2]),
            ("schema.missing_key", "r.yaml:13:7"),
        ),
        (
            _clean(["{step: S1, after: 10m, relax: [language], why: w}", S2]),
            ("schema.format", "r.yaml:13:14"),
        ),
        (
            _clean(["{step: s1, after: 10m, relax: [language, language], why: w}", S2]),
            ("schema.value", "r.yaml:13:48"),
        ),
        (
            _clean(["{step: s1, after: 10m, relax: [language], prefer: [language], why: w}", S2]),
            ("schema.value", "r.yaml:13:7"),
        ),
    ],
    ids=[
        "step-relax-unknown-name",
        "step-prefer-unknown-name",
        "step-relax-hard-name",
        "step-prefer-hard-name",
        "step-relax-not-a-list",
        "step-relax-not-a-name",
        "step-relaxes-nothing",
        "step-after-bare-number",
        "step-after-bad-urgency-delay",
        "step-after-misspelt-urgency",
        "step-after-too-long",
        "step-listed-too-early",
        "rule-soft-unknown-name",
        "rule-prefer-unknown-name",
        "ladder-name-invalid",
        "rule-ladder-misspelt",
        "step-listed-too-early-relaxing-the-same",
        "step-listed-too-early-relaxing-the-same-as-the-one-above",
        "step-key-misspelt",
        "steps-swapped",
        "step-relaxes-what-the-rule-holds-hard",
        "duplicate-step-name",
        "duplicate-step-relaxing-the-same",
        "rule-soft-hard-name",
        "step-missing-why",
        "step-name-invalid",
        "step-relax-repeated-name",
        "step-relax-and-prefer-the-same",
    ],
)
def test_one_ladder_mistake_gives_exactly_one_finding_at_its_place(
    text: str, expected: tuple[str, str]
) -> None:
    """One mistake in a ladder, a step or a rule's soft list is reported once, where written."""
    assert [expected] == _all(text)


def test_a_step_relaxing_what_two_rules_hold_hard_is_one_finding_per_rule() -> None:
    """relaxes_hard names one rule each: two rules holding language hard are two findings."""
    other = (
        "  - id: r0\n    when: \"case.intent == 'billing'\"\n"
        "    then: {route: {queue: clinical, soft: [territory], ladder: wait}}\n"
    )
    text = _clean([S1, S2], "soft: [territory], ladder: wait", rules=other)
    expected = [
        ("ladders.relaxes_hard", "r.yaml:13", "r0"),
        ("ladders.relaxes_hard", "r.yaml:13", "r"),
    ]
    assert expected == [(p.code, p.location, p.rule_id) for p in _problems(text)]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # Each warned lint.no_consent or lint.no_licence too before the fix: the author wrote
        # the constraint, so "no consent/licence constraint" only repeats the error.
        ("consent: {flag: c}", ("schema.format", "r.yaml:7:19")),
        ("consent: {flag: Consent}", ("schema.format", "r.yaml:7:19")),
        ("consent: consent_missing", ("schema.type", "r.yaml:7:12")),
        ("consent: {}", ("schema.missing_key", "r.yaml:7:12")),
        # ... and a misspelt key was also reported missing.
        ("consent: {flg: consent_missing}", ("schema.unknown_key", "r.yaml:7:13")),
        ("consnt: {flag: consent_missing}", ("schema.unknown_key", "r.yaml:7:3")),
    ],
)
def test_one_consent_mistake_gives_exactly_one_finding(
    written: str, expected: tuple[str, str]
) -> None:
    """An unreadable consent constraint is its own error, not also "no consent constraint"."""
    text = _clean([S1, S2]).replace("consent: {flag: consent_missing}", written)
    assert [expected] == _all(text)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("{clinicl: [RN], prescription: [pharmacist]}", ("schema.unknown_key", "r.yaml:8:13")),
        ("[RN]", ("schema.type", "r.yaml:8:12")),
        # Kept as pins: no cascade before the fix either.
        ("{clinical: RN, prescription: [pharmacist]}", ("schema.type", "r.yaml:8:23")),
        ("{clinical: [R N], prescription: [pharmacist]}", ("schema.format", "r.yaml:8:24")),
    ],
)
def test_one_licence_mistake_gives_exactly_one_finding(
    written: str, expected: tuple[str, str]
) -> None:
    """An unreadable licence entry is its own error, not also "no licence constraint"."""
    old = "licence: {clinical: [RN], prescription: [pharmacist]}"
    assert [expected] == _all(_clean([S1, S2]).replace(old, f"licence: {written}"))


def test_a_misspelt_licence_section_is_one_finding() -> None:
    """`licnce:` was unknown, `licence` missing and lint.no_licence: three findings, one typo."""
    old = "licence: {clinical: [RN], prescription: [pharmacist]}"
    text = _clean([S1, S2]).replace(old, "licnce: {clinical: [RN], prescription: [pharmacist]}")
    problems = _problems(text)
    assert [(p.code, p.location) for p in problems] == [("schema.unknown_key", "r.yaml:8:3")]
    assert "did you mean `licence`?" in problems[0].message


def test_a_key_that_is_missing_and_not_misspelt_is_still_reported() -> None:
    """Only a near spelling stands in for a missing key: an unrelated key does not."""
    old = "consent: {flag: consent_missing}"
    text = _clean([S1, S2]).replace(old, "consent: {colour: blue}")
    assert sorted(_all(text)) == [
        ("schema.missing_key", "r.yaml:7:12"),
        ("schema.unknown_key", "r.yaml:7:13"),
    ]


def test_an_unused_ladder_is_still_warned_when_every_ladder_name_resolves() -> None:
    """The unknown-ladder exemption does not hide an unused ladder in a clean ruleset."""
    extra = "  spare:\n    - {step: t1, after: 10m, relax: [language], why: w}\n"
    text = _clean([S1, S2]).replace("rules:\n", extra + "rules:\n", 1)
    assert _all(text) == [("ladders.unused", "r.yaml:15")]
