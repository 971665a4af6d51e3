"""The schema pass on operator mistakes: each one's code, file:line:col, rule id and advice."""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError, Severity
from caseroute.testing import CATCH_ALL_RULE, MINIMAL_HEADER, compile_text, ruleset_with_rules

Found = list[tuple[str, int, int, str | None, str]]
_BASE = ruleset_with_rules(CATCH_ALL_RULE)
_NAME_HINT = " (lower-case letters, digits, - and _, starting with a letter or digit)"
_CODE_HINT = " (letters, digits and _ . : / -, starting with a letter or digit)"


def _errors(text: str) -> Found:
    """The errors of compiling ``text`` (warnings such as unused params are not pinned here)."""
    with pytest.raises(RulesetError) as exc:
        compile_text(text)
    return [
        (p.code, p.line, p.column, p.rule_id, p.message)
        for p in exc.value.problems
        if p.severity is Severity.ERROR
    ]


def _with(section: str) -> str:
    """The smallest valid ruleset with ``section`` added on line 10, after the header."""
    return ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + section)


def _with_rule(then: str) -> str:
    """A ruleset whose rule r1 (its `then:` on line 16) has ``then``."""
    rule = f"  - id: r1\n    when: \"case.intent == 'billing'\"\n    then: {then}\n"
    return ruleset_with_rules(rule + CATCH_ALL_RULE)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "signals: {sla_at_risk_minutes: soon}\n",
            [
                (
                    "schema.type",
                    10,
                    32,
                    None,
                    "signals.sla_at_risk_minutes must be a number, got string 'soon'",
                )
            ],
        ),
        (
            "signals: {sentiment_window: 2.5}\n",
            [
                (
                    "schema.type",
                    10,
                    29,
                    None,
                    "signals.sentiment_window must be an integer, got number 2.5",
                )
            ],
        ),
        (
            "signals: {negative_sentiment: 2}\n",
            [
                (
                    "schema.range",
                    10,
                    31,
                    None,
                    "signals.negative_sentiment must be within [-1, 1], got 2",
                )
            ],
        ),
        (
            "params: {t: x}\nsignals: {sla_at_risk_minutes: params.t}\n",
            [
                (
                    "schema.unknown_param",
                    11,
                    32,
                    None,
                    (
                        "signals.sla_at_risk_minutes refers to `params.t`, which is not a numeric "
                        "param; make `params.t` a number"
                    ),
                )
            ],
        ),
        (
            (
                "compacts:\n  - name: nlc\n    licence_types: [RN]\n    members:\n"
                "      - {jurisdiction: US-TX, since: '2026-13-01'}\n"
                "      - {jurisdiction: US-OK, since: 5}\n"
                "      - {jurisdiction: US-AZ, since: '2026-02-01', until: 2026-01-01}\n"
                "      - {since: 2026-01-01}\n"
                "      - {jurisdiction: US-NM, since: 2026-01-01T10:00:00}\n"
            ),
            [
                (
                    "schema.type",
                    14,
                    38,
                    None,
                    "member since must be a date YYYY-MM-DD, got '2026-13-01'",
                ),
                (
                    "schema.type",
                    15,
                    38,
                    None,
                    "member since must be a date YYYY-MM-DD, got 5",
                ),
                ("schema.range", 16, 59, None, "membership of US-AZ ends before it starts"),
                (
                    "schema.missing_key",
                    17,
                    9,
                    None,
                    "`jurisdiction` is required in a member of compact nlc",
                ),
                (
                    "schema.type",
                    18,
                    38,
                    None,
                    "member since must be a date YYYY-MM-DD, got '2026-01-01T10:00:00'",
                ),
            ],
        ),
        (
            "compacts:\n  - {name: nlc, licence_types: [RN], members: [{jurisdiction: US-TX}]}\n",
            [
                (
                    "schema.missing_key",
                    11,
                    48,
                    None,
                    "`since` is required in a member of compact nlc",
                )
            ],
        ),
        (
            "matching: {statuses: available}\n",
            [
                (
                    "schema.type",
                    10,
                    22,
                    None,
                    "matching.statuses must be a list, got string 'available'",
                )
            ],
        ),
        (
            "matching: {statuses: [availble]}\n",
            [
                (
                    "schema.value",
                    10,
                    23,
                    None,
                    (
                        "each of matching.statuses must be one of available, busy, away, offline; "
                        "got 'availble' (did you mean 'available'?)"
                    ),
                )
            ],
        ),
        (
            "matching: {ranking: [longest_idle, longest_idle]}\n",
            [("schema.value", 10, 21, None, "matching.ranking lists a criterion twice")],
        ),
        (
            "matching: {ranking: [fastest]}\n",
            [
                (
                    "schema.value",
                    10,
                    22,
                    None,
                    (
                        "each of matching.ranking must be one of lowest_utilisation, "
                        "highest_skill_level, longest_idle, highest_seniority; got 'fastest'"
                    ),
                )
            ],
        ),
        (
            "params: [a, b]\n",
            [
                (
                    "schema.type",
                    10,
                    9,
                    None,
                    "`params` must be an object (key: value pairs), got a list",
                )
            ],
        ),
        (
            "params: {Bad-Name: 1}\n",
            [
                (
                    "schema.format",
                    10,
                    10,
                    None,
                    (
                        "'Bad-Name' is not a valid param name (lower_snake_case: a-z, 0-9 and _, "
                        "not starting with a digit)"
                    ),
                )
            ],
        ),
        (
            "params:\n  codes: [a, {b: 1}, ~]\n",
            [
                (
                    "schema.type",
                    11,
                    14,
                    None,
                    "param `codes` lists must hold strings, numbers or booleans, got an object",
                ),
                (
                    "schema.type",
                    11,
                    22,
                    None,
                    (
                        "param `codes` lists must hold strings, numbers or booleans, got null "
                        "(an empty value)"
                    ),
                ),
            ],
        ),
        (
            "params:\n  table: {a: 1}\n",
            [
                (
                    "schema.type",
                    11,
                    10,
                    None,
                    (
                        "param `table` must be a string, number, boolean or a list of them, got an "
                        "object"
                    ),
                )
            ],
        ),
        (
            "attributes: [vip]\n",
            [
                (
                    "schema.type",
                    10,
                    13,
                    None,
                    "`attributes` must map attribute names to string, number or boolean",
                )
            ],
        ),
        (
            "attributes: {Vip: boolean}\n",
            [
                (
                    "schema.format",
                    10,
                    19,
                    None,
                    (
                        "'Vip' is not a valid attribute name (lower_snake_case: a-z, 0-9 and _, "
                        "not starting with a digit)"
                    ),
                )
            ],
        ),
        (
            "attributes: {vip: text}\n",
            [
                (
                    "schema.value",
                    10,
                    19,
                    None,
                    (
                        "attribute `vip` must be declared as string, number or boolean, got string "
                        "'text'"
                    ),
                )
            ],
        ),
        (
            "attributes:\n" + "".join(f"  a{i}: string\n" for i in range(228)),
            [
                (
                    "limit.attributes",
                    10,
                    1,
                    None,
                    (
                        "228 attributes are declared; the rule engine can carry at most 227 on a "
                        "case (its facts hold 254 values, and the built-in fields use the rest). "
                        "Declare only the attributes rules read"
                    ),
                )
            ],
        ),
    ],
)
def test_a_mistaken_optional_section_is_reported_where_it_is_written(
    section: str, expected: Found
) -> None:
    """params, signals, attributes, compacts and matching mistakes: code, line:col, advice."""
    assert _errors(_with(section)) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "description: test ruleset",
            "description: [a]",
            [("schema.type", 3, 14, None, "`description` must be a non-empty string, got a list")],
        ),
        (
            "description: test ruleset",
            "description: true",
            [
                (
                    "schema.type",
                    3,
                    14,
                    None,
                    "`description` must be a non-empty string, got boolean true",
                )
            ],
        ),
        (
            "general: general}",
            "general: General Queue}",
            [
                (
                    "schema.format",
                    9,
                    42,
                    None,
                    f"queue for intent `general` 'General Queue' is not a valid name{_NAME_HINT}",
                ),
            ],
        ),
        (
            "  - id: rest\n    when: true\n",
            "  - id: rest\n",
            [
                ("schema.missing_key", 14, 5, "rest", "`when` is required in rule `rest`"),
            ],
        ),
        (
            "description: test ruleset",
            "description: {a: 1}",
            [
                (
                    "schema.type",
                    3,
                    14,
                    None,
                    "`description` must be a non-empty string, got an object",
                )
            ],
        ),
        (
            "licence: {clinical: [RN]}",
            "licence: {clinical: []}",
            [
                (
                    "schema.value",
                    7,
                    23,
                    None,
                    (
                        "constraints.licence.clinical must list at least one licence type (remove "
                        "the key if none is required)"
                    ),
                )
            ],
        ),
        (
            "licence: {clinical: [RN]}",
            "licence: {clinical: [RN, ~]}",
            [
                (
                    "schema.type",
                    7,
                    28,
                    None,
                    (
                        "each entry of constraints.licence.clinical must be a non-empty string, "
                        "got null (an empty value)"
                    ),
                )
            ],
        ),
        (
            "licence: {clinical: [RN]}",
            "licence: {clinical: [R N]}",
            [
                (
                    "schema.format",
                    7,
                    24,
                    None,
                    (
                        "each entry of constraints.licence.clinical 'R N' is not a valid "
                        f"identifier{_CODE_HINT}"
                    ),
                )
            ],
        ),
        (
            "owner: tests\n",
            "owner:\n",
            [
                (
                    "schema.type",
                    4,
                    1,
                    None,
                    "`owner` must be a non-empty string, got null (an empty value)",
                )
            ],
        ),
        (
            "    when: true\n",
            "    when:\n",
            [
                (
                    "schema.type",
                    15,
                    5,
                    "rest",
                    (
                        "`when` must be a condition in quotes, or `true` for the catch-all; got "
                        "null (an empty value)"
                    ),
                ),
            ],
        ),
        (
            "    when: true\n",
            "    when: 5\n",
            [
                (
                    "schema.type",
                    15,
                    11,
                    "rest",
                    (
                        "`when` must be a condition in quotes, or `true` for the catch-all; got "
                        "number 5"
                    ),
                ),
            ],
        ),
        (
            "rules:\n",
            "rules:\n  - just text\n",
            [
                (
                    "schema.type",
                    11,
                    5,
                    None,
                    "rule `?` must be an object (key: value pairs), got string 'just text'",
                )
            ],
        ),
        (
            "rules:\n",
            "rules:\n  - {when: true, then: {route: {queue: q}}}\n",
            [("schema.missing_key", 11, 5, None, "`id` is required in rule `?`")],
        ),
    ],
)
def test_a_mistake_in_the_header_or_a_rule_is_reported_where_it_is_written(
    old: str, new: str, expected: Found
) -> None:
    """Empty values, wrong types and malformed codes: code, the line:col written, advice."""
    assert old in _BASE
    assert _errors(_BASE.replace(old, new, 1)) == expected


def test_a_param_written_with_no_value_is_reported_on_its_own_line() -> None:
    """`name:` with nothing after it points at the param's line, not the line below it."""
    assert _errors(_with("params:\n  nothing:\n")) == [
        (
            "schema.type",
            11,
            3,
            None,
            (
                "param `nothing` must be a string, number, boolean or a list of them, got null "
                "(an empty value)"
            ),
        )
    ]


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        (
            "{route: {queue: q, territory: 'yes'}}",
            [
                (
                    "schema.type",
                    16,
                    41,
                    "r1",
                    "rule r1 route.territory must be true or false, got string 'yes'",
                )
            ],
        ),
        (
            (
                "{route: {queue: q, skills: [{name: triage, min_level: 11}, "
                "{name: x, min_level: one}]}}"
            ),
            [
                ("schema.range", 16, 65, "r1", "skill min_level must be between 0 and 10, got 11"),
                (
                    "schema.type",
                    16,
                    91,
                    "r1",
                    "skill min_level must be an integer, got string 'one'",
                ),
            ],
        ),
        (
            "{route: {queue: q, skills: [{name: 'tri age', min_level: 1}]}}",
            [
                (
                    "schema.format",
                    16,
                    46,
                    "r1",
                    f"skill name 'tri age' is not a valid identifier{_CODE_HINT}",
                )
            ],
        ),
        (
            "{escalate: {queue: q, reason: r, level: 0, assign: {roles: [nurse]}}}",
            [
                ("schema.range", 16, 51, "r1", "escalation level must be between 1 and 9, got 0"),
                (
                    "schema.value",
                    16,
                    71,
                    "r1",
                    (
                        "each of rule r1 escalate.assign.roles must be one of agent, senior, "
                        "manager; got 'nurse'"
                    ),
                ),
            ],
        ),
        (
            "{route: {queue: q}, exception: {queue: q, reason: r}}",
            [
                (
                    "rules.action_count",
                    16,
                    11,
                    "r1",
                    (
                        "`then` needs exactly one of route, escalate, exception (found: route, "
                        "exception)"
                    ),
                )
            ],
        ),
        (
            "{priority: high}",
            [
                (
                    "rules.action_count",
                    16,
                    11,
                    "r1",
                    "`then` needs exactly one of route, escalate, exception (found: none)",
                )
            ],
        ),
        (
            "{route: {queue: q}, priority: urgentt}",
            [
                (
                    "schema.value",
                    16,
                    41,
                    "r1",
                    (
                        "priority must be one of low, normal, high, urgent; got 'urgentt' (did you "
                        "mean 'urgent'?)"
                    ),
                )
            ],
        ),
        (
            "{exception: {queue: Bad Q, reason: Not Valid}}",
            [
                (
                    "schema.format",
                    16,
                    31,
                    "r1",
                    f"exception queue 'Bad Q' is not a valid name{_NAME_HINT}",
                ),
                (
                    "schema.format",
                    16,
                    46,
                    "r1",
                    f"exception reason 'Not Valid' is not a valid name{_NAME_HINT}",
                ),
            ],
        ),
        (
            "{route: {queue: q, reason: Not Valid}}",
            [
                (
                    "schema.format",
                    16,
                    38,
                    "r1",
                    f"route reason 'Not Valid' is not a valid name{_NAME_HINT}",
                )
            ],
        ),
    ],
)
def test_a_mistaken_action_is_reported_with_its_rule_id(then: str, expected: Found) -> None:
    """route/escalate/exception mistakes carry the rule id, line:col and what is valid."""
    assert _errors(_with_rule(then)) == expected


def test_a_numeric_description_is_kept_as_its_text() -> None:
    """`description: 3` is accepted as the text "3" (only patterned strings refuse numbers)."""
    compiled = compile_text(_BASE.replace("description: test ruleset", "description: 3"))
    assert compiled.description == "3"


def test_a_stale_overlapping_membership_of_a_compact_is_an_error() -> None:
    """R31a F4: a stale `since` line beside a later `until` kept a state that left a member.

    Membership is the union of a jurisdiction's periods; overlapping periods are refused at
    the later line, naming the earlier.
    """
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19, until: 2026-06-30}\n"
        "      - {jurisdiction: US-FL, since: 2018-01-19}\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19}\n"
    )
    assert _errors(_with(section)) == [
        (
            "schema.range",
            16,
            9,
            None,
            (
                "membership of US-TX in compact nlc (2018-01-19 to open) overlaps its membership "
                "at line 14 (2018-01-19 to 2026-06-30): list a jurisdiction again only for a "
                "later, separate period; remove the stale entry"
            ),
        )
    ]


def test_a_compact_named_twice_is_an_error_and_its_members_are_still_checked() -> None:
    """M4: a second `- name: nlc` block slipped a stale membership past the overlap check.

    The repeated name is refused at the second `name:`, naming the first's line, and the
    second block's membership overlapping the first's is reported too.
    """
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN, LPN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19, until: 2026-06-30}\n"
        "  - name: NLC\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19}\n"
    )
    assert _errors(_with(section)) == [
        (
            "schema.duplicate_name",
            15,
            11,
            None,
            (
                "compact name `NLC` is used twice (first at line 11, as `nlc`): a compact is "
                "one block; move these members into the first, or name a different compact "
                "differently"
            ),
        ),
        (
            "schema.range",
            18,
            9,
            None,
            (
                "membership of US-TX in compact NLC (2018-01-19 to open) overlaps its "
                "membership in compact nlc at line 14 (2018-01-19 to 2026-06-30), which also "
                "covers RN: list a jurisdiction again only for a later, separate period; "
                "remove the stale entry"
            ),
        ),
    ]


def test_a_compact_named_twice_on_one_line_is_an_error() -> None:
    """Flow style puts both compacts on one line: the name is still refused the second time."""
    section = (
        "compacts: [{name: nlc, licence_types: [RN], members: []}, "
        "{name: nlc, licence_types: [LPN], members: []}]\n"
    )
    assert _errors(_with(section)) == [
        (
            "schema.duplicate_name",
            10,
            66,
            None,
            (
                "compact name `nlc` is used twice (first at line 10): a compact is one block; "
                "move these members into the first, or name a different compact differently"
            ),
        )
    ]


def test_overlapping_membership_in_compacts_sharing_a_licence_type_is_an_error() -> None:
    """M4: a stale member in another compact of the same licence type kept it licensing.

    The engine grants through any compact covering the licence's type, so two compacts
    sharing a type act as one for it: a jurisdiction's periods must not overlap across them.
    """
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN, LPN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19, until: 2026-06-30}\n"
        "  - name: nlc-legacy\n"
        "    licence_types: [lpn]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2026-06-30}\n"
    )
    assert _errors(_with(section)) == [
        (
            "schema.range",
            18,
            9,
            None,
            (
                "membership of US-TX in compact nlc-legacy (2026-06-30 to open) overlaps its "
                "membership in compact nlc at line 14 (2018-01-19 to 2026-06-30), which also "
                "covers LPN: list a jurisdiction again only for a later, separate period; "
                "remove the stale entry"
            ),
        )
    ]


def test_compacts_of_different_licence_types_may_share_members() -> None:
    """The NLC (RN, LPN) and the APRN Compact (APRN) may both list Texas, with any dates."""
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN, LPN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19}\n"
        "  - name: aprn\n"
        "    licence_types: [APRN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2024-01-01}\n"
    )
    assert [c.name for c in compile_text(_with(section)).compacts] == ["nlc", "aprn"]


@pytest.mark.parametrize("country", ["US", "CA"])
def test_a_country_that_licenses_by_state_is_not_a_compact_member(country: str) -> None:
    """M5: member `US` made a patient located only as `US` licensable through the compact."""
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19}\n"
        f"      - {{jurisdiction: {country}, since: 2018-01-19}}\n"
    )
    example = {"US": "US-TX", "CA": "CA-ON"}[country]
    assert _errors(_with(section)) == [
        (
            "schema.value",
            15,
            24,
            None,
            (
                f"compact nlc member {country} is a whole country, and {country} licenses by "
                "state or province, so only its states or provinces can be members; list each "
                f"member one by one (e.g. {example})"
            ),
        )
    ]


def test_a_country_that_registers_nationally_may_be_a_compact_member() -> None:
    """`AU` and `NZ` register nationally (as `GB` does): a mutual-recognition compact lists them."""
    section = (
        "compacts:\n"
        "  - name: ttmr\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: AU, since: 2010-07-01}\n"
        "      - {jurisdiction: NZ, since: 2010-07-01}\n"
    )
    (compact,) = compile_text(_with(section)).compacts
    assert compact.members_on(compact.members[0].since) == {"AU", "NZ"}


def test_a_later_separate_membership_period_is_kept() -> None:
    """A state that left and rejoined is two periods: both kept, each checked by date."""
    section = (
        "compacts:\n"
        "  - name: nlc\n"
        "    licence_types: [RN]\n"
        "    members:\n"
        "      - {jurisdiction: US-TX, since: 2018-01-19, until: 2026-06-30}\n"
        "      - {jurisdiction: US-TX, since: 2026-07-01}\n"
    )
    compiled = compile_text(_with(section))
    (compact,) = compiled.compacts
    assert [(m.since.isoformat(), m.until) for m in compact.members] == [
        ("2018-01-19", compact.members[0].until),
        ("2026-07-01", None),
    ]


@pytest.mark.parametrize(
    ("section", "got"),
    [
        ("signals: {sla_at_risk_minutes: -60}\n", "-60"),
        ("signals: {sla_at_risk_minutes: 0}\n", "0"),
        ("signals: {sla_at_risk_minutes: 5256001}\n", "5256001"),
        (
            "params: {risk: -60}\nsignals: {sla_at_risk_minutes: params.risk}\n",
            "-60 (from `params.risk`, line 10)",
        ),
    ],
)
def test_an_sla_threshold_that_could_never_be_at_risk_is_a_range_error(
    section: str, got: str
) -> None:
    """signals.sla_at_risk_minutes (literal or via a param) must be in (0, 3650 days] (R33a M1)."""
    message = (
        "signals.sla_at_risk_minutes must be more than 0 and at most 5256000 (3650 days), "
        f"got {got}: a clock is at_risk when at most this many minutes are left, and "
        "breached below 0"
    )
    expected = [("schema.range", 9 + section.count("\n"), 32, None, message)]
    assert expected == _errors(_with(section))


def test_a_negative_sentiment_param_out_of_range_names_the_param() -> None:
    """A signals.negative_sentiment param outside [-1, 1] is reported with its value and line."""
    message = (
        "signals.negative_sentiment must be within [-1, 1], got -2 (from `params.neg`, line 10)"
    )
    expected = [("schema.range", 11, 31, None, message)]
    assert expected == _errors(
        _with("params: {neg: -2}\nsignals: {negative_sentiment: params.neg}\n")
    )


def test_an_sla_threshold_in_range_loads() -> None:
    """The smallest and largest accepted sla_at_risk_minutes load unchanged."""
    for minutes in ("0.5", "5256000"):
        compiled = compile_text(_with(f"signals: {{sla_at_risk_minutes: {minutes}}}\n"))
        assert float(minutes) == compiled.signals.sla_at_risk_minutes


NUMBER_ADVICE = (
    "to YAML, not text (YAML reads an unquoted version such as 2026.10 as the number 2026.1): "
    'quote it as written, e.g. "2026.10"'
)


@pytest.mark.parametrize(
    ("written", "read"), [("2026.10", "2026.1"), ("2026.1", "2026.1"), ("3", "3")]
)
def test_a_version_yaml_reads_as_a_number_is_refused_saying_to_quote_it(
    written: str, read: str
) -> None:
    """Docs walk, finding 4: `version: 2026.10` was silently the version 2026.1 (YAML's float)."""
    text = _BASE.replace('version: "1"', f"version: {written}", 1)
    assert _errors(text) == [
        ("schema.type", 2, 10, None, f"`version` is the number {read} {NUMBER_ADVICE}")
    ]


def test_a_version_with_surrounding_whitespace_is_refused_naming_it() -> None:
    """A quoted version with a trailing space: said to be the whitespace, with what to write."""
    text = _BASE.replace('version: "1"', 'version: "2026.10 "', 1)
    assert _errors(text) == [
        (
            "schema.format",
            2,
            10,
            None,
            "`version` must not start or end with whitespace; got '2026.10 ': write \"2026.10\"",
        )
    ]


def test_whitespace_around_what_is_no_version_anyway_is_not_the_advice() -> None:
    """`" ../x "` is not a version once stripped: it is said to be no version, not to strip it."""
    text = _BASE.replace('version: "1"', 'version: " ../x "', 1)
    assert _errors(text) == [
        (
            "schema.format",
            2,
            10,
            None,
            (
                "`version` ' ../x ' is not a valid version (letters, digits and . _ + -, "
                "starting with a letter or digit, e.g. 2026.11.1)"
            ),
        )
    ]
