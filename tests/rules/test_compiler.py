import pytest

from caseroute.domain.codec import parse_case
from caseroute.domain.errors import RequestError, RulesetError, Severity
from caseroute.rules.ir import AllOf, LeafKind, LeafRef, NotOf
from caseroute.rules.model import RouteAction
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    case_data,
    compile_text,
    reference_compiled,
    ruleset_with_rules,
)


def _errors(text: str) -> list[tuple[str, int, str | None]]:
    with pytest.raises(RulesetError) as exc:
        compile_text(text)
    return [(p.code, p.line, p.rule_id) for p in exc.value.problems if p.severity is Severity.ERROR]


def _rule(rule_id: str, when: str, then: str = "{route: {queue: q}}") -> str:
    return f"  - id: {rule_id}\n    when: {when}\n    then: {then}\n"


def test_reference_ruleset_compiles_clean() -> None:
    """The shipped ruleset compiles without errors or warnings."""
    compiled = reference_compiled()
    assert compiled.warnings == ()
    assert [r.rule_id for r in compiled.rules] == [
        "safeguarding",
        "missing-patient-location",
        "unhappy-sla-at-risk",
        "critical-clinical",
        "clinical",
        "prescription",
        "by-intent",
    ]


def test_all_errors_are_reported_at_once_with_locations() -> None:
    """Unknown field, unknown value, type mismatch, unknown param: one load, every problem."""
    text = ruleset_with_rules(
        _rule("a", "case.urgncy == 'critical'")
        + _rule("b", "\"case.urgency == 'critcal' or case.region < 'x'\"")
        + _rule("c", "case.intent == 3 and sentiment.latest <= params.nope")
        + CATCH_ALL_RULE
    )
    assert _errors(text) == [
        ("expr.unknown_field", 15, "a"),
        ("expr.unknown_value", 18, "b"),
        ("expr.type_mismatch", 18, "b"),
        ("expr.type_mismatch", 21, "c"),
        ("expr.unknown_param", 21, "c"),
    ]


def test_messages_say_what_to_do() -> None:
    """Messages suggest the likely fix, and columns point into the condition."""
    with pytest.raises(RulesetError) as exc:
        compile_text(ruleset_with_rules(_rule("a", "case.urgncy == 'critical'") + CATCH_ALL_RULE))
    (problem,) = [p for p in exc.value.problems if p.severity is Severity.ERROR]
    assert problem.message == "unknown field `case.urgncy` (did you mean `case.urgency`?)"
    assert problem.location == "test.yaml:15:11"


def test_duplicate_ids_missing_catch_all_and_unreachable_rules() -> None:
    """Rule order problems are caught: duplicate ids, no catch-all, rules after it."""
    assert _errors(
        ruleset_with_rules(
            _rule("a", "case.intent == 'billing'") + _rule("a", "case.intent == 'general'")
        )
    ) == [("rules.duplicate_id", 17, "a"), ("rules.missing_catch_all", 17, "a")]
    assert _errors(
        ruleset_with_rules(CATCH_ALL_RULE + _rule("late", "case.intent == 'billing'"))
    ) == [("rules.unreachable", 14, "rest")]


def test_schema_problems_unknown_and_missing_keys() -> None:
    """Unknown keys get a suggestion; missing keys are named; priority values are checked.

    A misspelt required key is one finding (unknown, "did you mean"), not also "missing".
    """
    text = ruleset_with_rules(
        "  - id: a\n    when: true\n    then: {route: {queu: q}, priority: hgh}\n"
    )
    assert _errors(text) == [("schema.unknown_key", 16, "a"), ("schema.value", 16, "a")]
    text = ruleset_with_rules(
        "  - id: a\n    when: true\n    then: {route: {colour: q}, priority: high}\n"
    )
    assert _errors(text) == [("schema.missing_key", 16, "a"), ("schema.unknown_key", 16, "a")]


def test_safeguarding_must_be_the_first_rule() -> None:
    """The hard constraint is checked at load: a rule placed before safeguarding is refused."""
    header = MINIMAL_HEADER + "rules:\n"
    text = (
        header
        + _rule("first", "case.intent == 'billing'")
        + "  - id: safeguarding\n    when: \"'safeguarding' in case.flags\"\n"
        "    then: {escalate: {queue: safeguarding, reason: s}}\n" + CATCH_ALL_RULE
    )
    assert _errors(text) == [("constraints.safeguarding_first", 11, "first")]


def test_by_intent_queues_must_cover_every_intent() -> None:
    """Routing by intent with an incomplete `queues:` map is an error."""
    header = MINIMAL_HEADER.replace("billing: billing,", "")
    assert [c for c, _, _ in _errors(ruleset_with_rules(CATCH_ALL_RULE, header))] == [
        "queues.incomplete"
    ]


def test_lint_warns_without_blocking() -> None:
    """Unused params and shadowed rules are warnings; the ruleset still loads."""
    header = MINIMAL_HEADER + "params:\n  unused: 3\n"
    compiled = compile_text(
        ruleset_with_rules(
            _rule("a", "case.intent == 'billing'")
            + _rule("b", "case.intent == 'billing'")
            + CATCH_ALL_RULE,
            header,
        )
    )
    assert [(p.code, p.rule_id) for p in compiled.warnings] == [
        ("lint.no_consent", None),  # MINIMAL_HEADER enforces no consent constraint
        ("lint.no_licence", None),  # nor a licence for prescription
        ("lint.unused_param", None),
        ("lint.shadowed", "b"),
    ]


def test_equal_conditions_share_one_leaf_and_not_in_lowers_to_negation() -> None:
    """Identical leaves across rules are evaluated once; `not in` is NOT of one_of."""
    compiled = compile_text(
        ruleset_with_rules(
            _rule("a", "case.intent == 'billing' and case.tier not in ['gold', 'platinum']")
            + _rule("b", "\"'billing' == case.intent\"")
            + CATCH_ALL_RULE
        )
    )
    a, b = compiled.rules[1].when, compiled.rules[2].when
    assert isinstance(a, AllOf)
    assert isinstance(b, LeafRef)
    first, second = a.children
    assert isinstance(first, LeafRef)
    assert isinstance(second, NotOf)
    assert first.leaf_id == b.leaf_id
    assert compiled.leaves[second.child.leaf_id].kind is LeafKind.ONE_OF  # type: ignore[union-attr]


def test_route_by_intent_resolves_through_queues() -> None:
    """`queue: by_intent` picks the ruleset's queue for the case's intent."""
    from caseroute.domain.case import Intent

    compiled = compile_text(ruleset_with_rules(CATCH_ALL_RULE))
    action = compiled.rules[-1].action
    assert isinstance(action, RouteAction)
    assert action.queue.resolve(Intent.PRESCRIPTION) == "rx"


def test_a_flag_with_a_hyphen_is_an_error_since_requests_fold_it() -> None:
    """Requests fold `-` to `_` in flags, so a ruleset flag with `-` could never match."""
    text = ruleset_with_rules(_rule("a", "\"'needs-interpreter' in case.flags\"") + CATCH_ALL_RULE)
    assert _errors(text) == [("expr.unknown_value", 15, "a")]
    consent = ruleset_with_rules(CATCH_ALL_RULE).replace(
        "constraints:\n", "constraints:\n  consent: {flag: consent-missing}\n", 1
    )
    assert [code for code, _, _ in _errors(consent)] == ["schema.format"]


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("", "write the flag in full"),
        (" ", "write the flag in full"),
        ("safe guarding", "write the flag in full"),
        ("Needs-Interpreter", "write 'needs_interpreter'"),
        (" consent_missing ", "write 'consent_missing'"),
    ],
)
def test_a_flag_no_request_can_carry_says_what_to_write(written: str, fix: str) -> None:
    """The fix offered is a flag: `'' in case.flags` was told "write ''" (what it wrote)."""
    with pytest.raises(RulesetError) as exc:
        compile_text(
            ruleset_with_rules(_rule("a", f"\"'{written}' in case.flags\"") + CATCH_ALL_RULE)
        )
    (problem,) = [p for p in exc.value.problems if p.severity is Severity.ERROR]
    assert (problem.code, problem.location) == ("expr.unknown_value", "test.yaml:15:12")
    assert problem.message.startswith(f"{written!r} is never in case.flags: ")
    assert problem.message.endswith(f"; {fix}")


ONE_CHARACTER = (
    "'s' is a one-character flag; a flag is a word such as safeguarding, and a request "
    "carrying one is refused (INVALID_ARGUMENT at `case.flags[i]`), so no case has it and "
    "this test never holds; write the flag in full"
)


@pytest.mark.parametrize(
    "when",
    [
        "\"'s' in case.flags\"",
        "\"'S' in case.flags\"",
        "\"'s' not in case.flags\"",
        "\"case.intent == 'billing' and not 's' in case.flags\"",
    ],
)
def test_a_one_character_flag_in_a_condition_is_an_error_since_requests_refuse_it(
    when: str,
) -> None:
    """`'s' in case.flags` can never hold (requests refuse `s`): expr.unknown_value at the rule."""
    with pytest.raises(RulesetError) as exc:
        compile_text(ruleset_with_rules(_rule("a", when) + CATCH_ALL_RULE))
    expected = [("expr.unknown_value", 15, "a", ONE_CHARACTER)]
    errors = [p for p in exc.value.problems if p.severity is Severity.ERROR]
    assert expected == [(p.code, p.line, p.rule_id, p.message) for p in errors]


def test_a_one_character_consent_flag_is_an_error_since_no_case_can_carry_it() -> None:
    """`consent: {flag: c}` would never fire: schema.format at the flag, like any bad flag."""
    text = ruleset_with_rules(CATCH_ALL_RULE).replace(
        "constraints:\n", "constraints:\n  consent: {flag: c}\n", 1
    )
    assert _errors(text) == [("schema.format", 6, None)]


@pytest.mark.parametrize("flag", ["s", "1", "ab", "a1", "s.", "a:b/c", "_a", ".s", "a" * 64, "vip"])
def test_a_ruleset_may_test_exactly_the_flags_a_request_may_carry(flag: str) -> None:
    """One definition of a flag: a condition naming it compiles iff parse_case accepts it."""
    try:
        parse_case(case_data(flags=[flag]))
        carried = True
    except RequestError:
        carried = False
    rule = _rule("a", f"\"'{flag}' in case.flags\"")
    try:
        compile_text(ruleset_with_rules(rule + CATCH_ALL_RULE))
        tested = True
    except RulesetError:
        tested = False
    assert carried == tested


@pytest.mark.parametrize(
    ("flag", "meaning", "hard"),
    [
        ("safeguarding_review", "safeguarding", "safeguarding"),
        ("safeguardingconcern", "safeguarding", "safeguarding"),
        ("consent_missing", "consent", "consent_missing"),  # no consent constraint here
        ("consent_withdrawn", "consent", "consent_missing"),  # the word consent, qualified (M3)
        ("safeg", "safeguarding", "safeguarding"),  # the word cut short (L3)
    ],
)
def test_a_rule_reading_a_look_alike_of_a_hard_flag_is_warned(
    flag: str, meaning: str, hard: str
) -> None:
    """R31d 5: such a rule never decides (the case is an EXCEPTION first); rules check said ok."""
    compiled = compile_text(
        ruleset_with_rules(_rule("r", f"\"'{flag}' in case.flags\"") + CATCH_ALL_RULE)
    )
    found = [(p.code, p.rule_id, p.message) for p in compiled.warnings if p.rule_id == "r"]
    message = (
        f"the rule reads flag `{flag}`, which looks like the {meaning} flag `{hard}`: a case "
        "carrying it is an EXCEPTION (ambiguous_flag) before any rule runs, so this test "
        "never holds for a routed case; rename the flag"
    )
    assert found == [("lint.flag_look_alike", "r", message)]


def test_rules_reading_ordinary_flags_or_the_hard_flag_itself_are_not_warned() -> None:
    """The safeguarding rule itself, and `vip`, draw no look-alike warning."""
    compiled = compile_text(
        ruleset_with_rules(_rule("r", "\"'vip' in case.flags\"") + CATCH_ALL_RULE)
    )
    assert [p.code for p in compiled.warnings if p.code == "lint.flag_look_alike"] == []


def test_a_reference_ruleset_without_its_clinical_licence_is_warned_about() -> None:
    """Review R32a F4: deleting `clinical: [RN]` passed every check; now lint.no_licence says so."""
    text = reference_compiled().source_text
    assert "    clinical: [RN]\n" in text
    compiled = compile_text(text.replace("    clinical: [RN]\n", "", 1))
    ((line, message),) = [
        (p.line, p.message) for p in compiled.warnings if p.code == "lint.no_licence"
    ]
    assert line == text.splitlines().index("constraints:") + 2  # its first entry, as no_consent
    assert message.startswith("no licence constraint for clinical: any agent may be assigned")
    intact = compile_text(text)
    assert [p.code for p in intact.warnings if p.code == "lint.no_licence"] == []
