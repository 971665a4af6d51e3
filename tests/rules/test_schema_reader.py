"""One mistake, one wording: a request and a ruleset with the same mistake get the same words.

Each location type keeps its own subject: a request names the field path beside the message
(``case.required_skills[0].min_level: must be an integer, ...``), a ruleset names the place in
the message before the same words, its ``file:line`` beside it (``skill min_level must be an
integer, ...``). What follows the subject comes from ``caseroute.domain.reader`` for both.
"""

from __future__ import annotations

from typing import Any

import pytest

from caseroute.domain.codec import parse_roster
from caseroute.domain.errors import FieldViolation, Severity
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.rules.schema import NAME_RE, SchemaReader, read_ruleset
from caseroute.rules.source import Node, parse_yaml
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    agent_data,
    case_data,
    request_violations,
    roster_data,
    ruleset_with_rules,
)

_SKILLS = "a skill in rule r1 route.skills"


def _schema_messages(text: str) -> list[str]:
    """The messages of the schema pass's errors on ruleset ``text``."""
    _, problems = read_ruleset(parse_yaml(text, "r.yaml").root, "r.yaml")
    return [p.message for p in problems if p.severity is Severity.ERROR]


def _route(extra: str) -> list[str]:
    """Schema errors of a ruleset whose rule r1 routes with ``extra`` route keys."""
    rule = (
        "  - id: r1\n    when: \"case.intent == 'billing'\"\n"
        f"    then: {{route: {{queue: billing, {extra}}}}}\n"
    )
    return _schema_messages(ruleset_with_rules(rule + CATCH_ALL_RULE))


def _section(section: str) -> list[str]:
    """Schema errors of the smallest valid ruleset with ``section`` added after the header."""
    return _schema_messages(ruleset_with_rules(CATCH_ALL_RULE, MINIMAL_HEADER + section))


def _case_skill(skill: object) -> list[FieldViolation]:
    return request_violations(case_data(required_skills=[skill]))


def _agent(**fields: Any) -> list[FieldViolation]:
    return request_violations(roster_data(agent_data(**fields)), parse_roster)


def _licence(**fields: Any) -> list[FieldViolation]:
    licence = {"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-01", **fields}
    return _agent(licences=[licence])


_LONG = "x" * 201


@pytest.mark.parametrize(
    ("request_errors", "ruleset_errors", "field", "message", "place"),
    [
        (
            _case_skill({"name": "triage", "min_level": "one"}),
            _route("skills: [{name: triage, min_level: one}]"),
            "case.required_skills[0].min_level",
            "must be an integer, got string 'one'",
            "skill min_level",
        ),
        (
            _case_skill({"name": "triage", "min_level": "5"}),
            _route("skills: [{name: triage, min_level: '5'}]"),
            "case.required_skills[0].min_level",
            "must be an integer, got string '5' (write the number without quotes)",
            "skill min_level",
        ),
        (
            _case_skill({"name": "triage", "min_level": 11}),
            _route("skills: [{name: triage, min_level: 11}]"),
            "case.required_skills[0].min_level",
            "must be between 0 and 10, got 11",
            "skill min_level",
        ),
        (
            _case_skill({"name": True, "min_level": 1}),
            _route("skills: [{name: true, min_level: 1}]"),
            "case.required_skills[0].name",
            "must be a non-empty string, got boolean true",
            "skill name",
        ),
        (
            _case_skill({"name": "tri age", "min_level": 1}),
            _route("skills: [{name: tri age, min_level: 1}]"),
            "case.required_skills[0].name",
            (
                "'tri age' is not a valid identifier (letters, digits and _ . : / -, starting with "
                "a letter or digit)"
            ),
            "skill name",
        ),
        (
            request_violations(case_data(required_skills="triage")),
            _route("skills: triage"),
            "case.required_skills",
            "must be a list, got string 'triage'",
            "rule r1 route.skills",
        ),
        (
            _licence(multistate="yes"),
            _route("territory: 'yes'"),
            "roster.agents[0].licences[0].multistate",
            "must be true or false, got string 'yes'",
            "rule r1 route.territory",
        ),
        (
            _licence(jurisdiction="U-TX"),
            _section(
                "compacts:\n  - name: nlc\n    licence_types: [RN]\n"
                "    members: [{jurisdiction: U-TX, since: 2020-01-01}]\n"
            ),
            "roster.agents[0].licences[0].jurisdiction",
            (
                "'U-TX' is not a valid jurisdiction (expected an ISO 3166 code such as US-TX or "
                "GB-ENG)"
            ),
            "member jurisdiction",
        ),
        (
            _licence(expires_on="2027-13-01"),
            _section(
                "compacts:\n  - name: nlc\n    licence_types: [RN]\n"
                "    members: [{jurisdiction: US-TX, since: '2027-13-01'}]\n"
            ),
            "roster.agents[0].licences[0].expires_on",
            "must be a date YYYY-MM-DD, got '2027-13-01'",
            "member since",
        ),
        (
            request_violations(case_data(classification_confidence="0.9")),
            _section("signals: {negative_sentiment: '0.9'}\n"),
            "case.classification_confidence",
            "must be a number, got string '0.9' (write the number without quotes)",
            "signals.negative_sentiment",
        ),
        (
            _case_skill({"name": _LONG, "min_level": 1}),
            _route(f"skills: [{{name: {_LONG}, min_level: 1}}]"),
            "case.required_skills[0].name",
            None,  # the limits differ (a request's is configurable); the words do not
            "skill name",
        ),
    ],
    ids=[
        "integer-type",
        "quoted-integer",
        "range",
        "non-string",
        "identifier-shape",
        "list",
        "boolean",
        "jurisdiction",
        "date",
        "quoted-number",
        "length",
    ],
)
def test_same_mistake_same_words(
    request_errors: list[FieldViolation],
    ruleset_errors: list[str],
    field: str,
    message: str | None,
    place: str,
) -> None:
    """The request's field message, after the ruleset's place, is the ruleset's message."""
    if message is None:  # the length check: same words, each reader's own limit
        start = repr("x" * 40)
        request_message = (
            f"has 201 characters; the limit is 200 (configurable: --max-id-chars); "
            f"it starts {start}…"
        )
        assert [FieldViolation(field, request_message)] == request_errors
        assert [f"{place} has 201 characters; the limit is 64; it starts {start}…"] == (
            ruleset_errors
        )
        return
    assert [FieldViolation(field, message)] == request_errors
    assert [f"{place} {message}"] == ruleset_errors


def test_flag_pattern_same_words() -> None:
    """A flag that is not a flag token is refused with the same words and hint in both."""
    hint = (
        " (a flag is lower-case letters, digits and _ . : /, starting with a letter or digit; "
        "a case's flags are trimmed, lower-cased and have - folded to _ first)"
    )
    header = MINIMAL_HEADER.replace("{flag: safeguarding,", "{flag: safe guarding,")
    # after the safeguarding notice: the refused flag reads as safeguarding but for a space
    assert [
        FieldViolation("case.flags", SAFEGUARDING_NOTICE),
        FieldViolation("case.flags[0]", f"'safe guarding' is not a valid flag{hint}"),
    ] == request_violations(case_data(flags=["safe guarding"]))
    assert [
        f"constraints.safeguarding.flag 'safe guarding' is not a valid flag{hint}"
    ] == _schema_messages(ruleset_with_rules(CATCH_ALL_RULE, header))


def test_not_an_object_same_words() -> None:
    """A list item that should be an object is refused with the same words in both."""
    message = "must be an object (key: value pairs), got string 'triage'"
    assert [
        FieldViolation("case.required_skills[0]", message),
        FieldViolation("case.required_skills[0].name", "is required"),  # as before this change
    ] == _case_skill("triage")
    assert [f"{_SKILLS} {message}"] == _route("skills: [triage]")


def test_unknown_key_near_miss_same_words() -> None:
    """A misspelt key gets the same "did you mean", in backticks, in both."""
    assert [
        FieldViolation(
            "case.required_skills[0].min_levl", "unknown field (did you mean `min_level`?)"
        )
    ] == _case_skill({"name": "triage", "min_levl": 1})
    # One finding: the key it meant is not also "required" (it was written, misspelt).
    assert [f"unknown field `min_levl` in {_SKILLS} (did you mean `min_level`?)"] == _route(
        "skills: [{name: triage, min_levl: 1}]"
    )


def test_unknown_key_without_near_miss_lists_allowed_the_same_way() -> None:
    """An unknown key like nothing allowed lists the allowed keys in parentheses in both."""
    assert [
        FieldViolation("case.required_skills[0].zzz", "unknown field (allowed: name, min_level)")
    ] == _case_skill({"name": "triage", "min_level": 1, "zzz": 1})
    assert [f"unknown field `zzz` in {_SKILLS} (allowed: name, min_level)"] == _route(
        "skills: [{name: triage, min_level: 1, zzz: 1}]"
    )


def test_missing_key_same_words() -> None:
    """A missing required key "is required" in both; a ruleset names the key and its place."""
    assert [FieldViolation("case.required_skills[0].name", "is required")] == _case_skill(
        {"min_level": 1}
    )
    assert [f"`name` is required in {_SKILLS}"] == _route("skills: [{min_level: 1}]")


def test_enum_near_miss_same_words() -> None:
    """An unknown enum value: "must be one of ...; got ..." and a value hint in quotes."""
    wire = "AGENT_STATUS_AVAILABLE, AGENT_STATUS_BUSY, AGENT_STATUS_AWAY, AGENT_STATUS_OFFLINE"
    assert [
        FieldViolation(
            "roster.agents[0].status",
            f"must be one of {wire}; got 'AGENT_STATUS_AVAILBLE' "
            "(did you mean 'AGENT_STATUS_AVAILABLE'?)",
        )
    ] == _agent(status="AGENT_STATUS_AVAILBLE")
    assert _section("matching: {statuses: [availble]}\n") == [
        (
            "each of matching.statuses must be one of available, busy, away, offline; got "
            "'availble' (did you mean 'available'?)"
        )
    ]


def test_attribute_name_same_words() -> None:
    """An attribute name that is not lower_snake_case is refused with the same words."""
    message = (
        "'Patient' is not a valid attribute name (lower_snake_case: a-z, 0-9 and _, not "
        "starting with a digit)"
    )
    assert [FieldViolation("case.attributes.Patient", message)] == request_violations(
        case_data(attributes={"Patient": 1})
    )
    assert [message] == _section("attributes: {Patient: string}\n")


def test_not_finite_same_words() -> None:
    """A number beyond ±1e15 is refused in both with the same words."""
    message = "must be a finite number within ±1e+15, got 1e+16"
    assert [FieldViolation("case.classification_confidence", message)] == request_violations(
        case_data(classification_confidence=1e16)
    )
    assert [f"signals.sla_at_risk_minutes {message}"] == _section(
        "signals: {sla_at_risk_minutes: 1.0e+16}\n"
    )


def test_a_shape_outside_the_table_is_checked_as_given() -> None:
    """A bare regex (golden case names, ladder steps) keeps its own words and hint."""
    reader = SchemaReader("g.yaml")
    assert reader.string(Node("Bad Name", 3, 9), "case name", None, NAME_RE, " (a-z)") is None
    assert [(p.code, p.location, p.message) for p in reader.problems] == [
        ("schema.format", "g.yaml:3:9", "case name 'Bad Name' is not valid (a-z)")
    ]
