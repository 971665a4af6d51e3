"""Input size limits: defaults, over-limit violations, cheap refusal, bounded error text."""

import dataclasses
from typing import Any

import pytest

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import FieldViolation
from caseroute.domain.limits import (
    DEFAULT_LIMITS,
    QUOTE_BYTES,
    InputLimits,
    clip,
    limit_flag,
    quote_clipped,
    quote_value,
)
from caseroute.testing import agent_data, case_data, request_violations


def _roster(agents: list[Any]) -> dict[str, Any]:
    """Roster JSON holding ``agents`` itself, not a copy as ``roster_data`` makes.

    A test passes a list that refuses to be read, to prove an oversized roster is never iterated.
    """
    return {"snapshot_id": "s", "taken_at": "2026-11-21T09:00:00Z", "agents": agents}


def test_default_limits() -> None:
    """The documented defaults: generous for real use, finite for hostile use."""
    assert dataclasses.asdict(DEFAULT_LIMITS) == {
        "max_agents": 20_000,
        "max_batch_cases": 1_000,
        "max_batch_pairs": 2_000_000,
        "max_id_chars": 200,
        "max_text_chars": 1_000,
        "max_list_items": 200,
        "max_attributes": 200,
        "max_sentiment_readings": 500,
        "max_sla_clocks": 50,
    }


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_a_limit_below_one_is_refused_naming_its_flag(bad: Any) -> None:
    """A limit is a whole number >= 1; the error names the flag that sets it."""
    with pytest.raises(ValueError, match=r"^--max-attributes must") as exc:
        InputLimits(max_attributes=bad)
    assert str(exc.value) == f"--max-attributes must be a whole number of at least 1, got {bad!r}"


def test_limit_flag_and_quote_value() -> None:
    """Flags are derived from field names; long values are quoted as a short prefix."""
    assert limit_flag("max_sla_clocks") == "--max-sla-clocks"
    assert quote_value("ab") == "'ab'"
    assert quote_value("a" * 50, max_chars=4) == "'aaaa'… (50 characters)"


@pytest.mark.parametrize("value", ["\u00e9" * 200, "\\" * 200, "\x00" * 200, "\U0001f600" * 50])
def test_quote_clipped_is_bounded_in_bytes_whatever_the_value(value: str) -> None:
    """A quoted caller value costs at most QUOTE_BYTES + 2 bytes, however repr escapes it."""
    quoted = quote_clipped(value)
    assert len(quoted.encode()) <= QUOTE_BYTES + 2
    assert "\u2026" in quoted  # marked as cut
    assert quote_clipped("abc") == "'abc'"
    assert clip("abcdef", 5) == "ab\u2026"


# --- roster size --------------------------------------------------------------------------------


def test_roster_over_the_default_agent_limit_is_refused_in_one_violation() -> None:
    """20,001 agents: one violation at roster.agents, and no agent is even looked at."""
    violations = request_violations(_roster([None] * 20_001), parse_roster)
    assert [
        FieldViolation(
            "roster.agents",
            "has 20001 agents; the limit is 20000 (configurable: --max-agents): split the "
            "roster by team or territory",
        )
    ] == violations


def test_roster_agent_limit_is_configurable_and_inclusive() -> None:
    """With max_agents=2, two agents pass and three are refused."""
    limits = InputLimits(max_agents=2)
    two = parse_roster(_roster([agent_data("a1"), agent_data("a2")]), limits=limits)
    assert tuple(a.agent_id for a in two.agents) == ("a1", "a2")
    violations = request_violations(
        _roster([agent_data("a1"), agent_data("a2"), agent_data("a3")]), parse_roster, limits=limits
    )
    assert [v.field for v in violations] == ["roster.agents"]


# --- case lists and maps ------------------------------------------------------------------------


def test_100k_attributes_are_refused_with_one_violation() -> None:
    """A huge attribute map is one violation naming the size, the limit and the flag."""
    attributes = {f"k{i}": i for i in range(100_000)}
    violations = request_violations(case_data(attributes=attributes))
    assert [
        FieldViolation(
            "case.attributes",
            "has 100000 entries; the limit is 200 (configurable: --max-attributes): send "
            "only the attributes the ruleset reads",
        )
    ] == violations


class _Untouchable(list[object]):
    """A list whose items must not be looked at (its size is all a limit check may read)."""

    def __iter__(self) -> Any:
        raise AssertionError("an item was looked at")

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("an item was looked at")


@pytest.mark.parametrize("field", ["flags", "required_skills", "sentiment", "sla_clocks"])
def test_an_over_limit_list_is_refused_before_any_item_is_read(field: str) -> None:
    """The size check comes first: no per-item work for a list over its limit."""
    items = _Untouchable([None] * 1_000)
    violations = request_violations(case_data(**{field: items}))
    assert [v.field for v in violations] == [f"case.{field}"]


def test_an_over_limit_roster_is_refused_before_any_agent_is_read() -> None:
    """max_agents is checked on the list's size alone."""
    violations = request_violations(
        _roster(_Untouchable([None] * 3)), parse_roster, limits=InputLimits(max_agents=2)
    )
    assert [v.field for v in violations] == ["roster.agents"]


@pytest.mark.parametrize(
    ("field", "item", "message"),
    [
        ("flags", "vip", "has 100000 items; the limit is 200 (configurable: --max-list-items)"),
        (
            "required_skills",
            {"name": "s", "min_level": 1},
            "has 100000 items; the limit is 200 (configurable: --max-list-items)",
        ),
        (
            "sentiment",
            {"score": 0, "at": "2026-11-21T09:00:00Z"},
            (
                "has 100000 items; the limit is 500 (configurable: --max-sentiment-readings): "
                "send the most recent readings"
            ),
        ),
        (
            "sla_clocks",
            {"name": "x", "started_at": "2026-11-21T09:00:00Z"},
            "has 100000 items; the limit is 50 (configurable: --max-sla-clocks)",
        ),
    ],
)
def test_long_case_lists_are_refused_with_one_violation(
    field: str, item: object, message: str
) -> None:
    """Every repeated case field has a limit, checked before looking at any item."""
    violations = request_violations(case_data(**{field: [item] * 100_000}))
    assert [FieldViolation(f"case.{field}", message)] == violations


@pytest.mark.parametrize("field", ["territories", "languages", "teams", "licences", "skills"])
def test_long_agent_lists_are_refused(field: str) -> None:
    """Every repeated agent field is limited by max_list_items."""
    limits = InputLimits(max_list_items=3)
    extra: dict[str, Any] = {field: ["x"] * 4}
    violations = request_violations(
        _roster([agent_data("a1", **extra)]), parse_roster, limits=limits
    )
    assert [
        FieldViolation(
            f"roster.agents[0].{field}",
            "has 4 items; the limit is 3 (configurable: --max-list-items)",
        )
    ] == violations


def test_agent_attributes_are_limited() -> None:
    """An agent's attribute map has the same limit as a case's."""
    limits = InputLimits(max_attributes=1)
    violations = request_violations(
        _roster([agent_data(attributes={"a": 1, "b": 2})]), parse_roster, limits=limits
    )
    assert [v.field for v in violations] == ["roster.agents[0].attributes"]


def test_lists_at_their_limit_are_accepted() -> None:
    """Limits are inclusive: exactly max items parse."""
    limits = InputLimits(max_list_items=2, max_attributes=2, max_sla_clocks=1)
    case = parse_case(
        case_data(flags=["vip", "callback"], attributes={"x": 1, "y": 2}), limits=limits
    )
    assert (frozenset({"vip", "callback"}), {"x": 1, "y": 2}) == (case.flags, case.attributes)


# --- strings ------------------------------------------------------------------------------------


def test_a_megabyte_case_id_is_refused_quoting_only_a_prefix() -> None:
    """Ids over max_id_chars are refused; the message quotes 40 characters, not the value."""
    violations = request_violations(case_data(case_id="x" * 1_000_000))
    assert [
        FieldViolation(
            "case.case_id",
            f"has 1000000 characters; the limit is 200 (configurable: --max-id-chars); "
            f"it starts {'x' * 40!r}…",
        )
    ] == violations


@pytest.mark.parametrize(
    ("data", "parse", "field"),
    [
        (case_data(region="R" * 201), parse_case, "case.region"),
        (case_data(flags=["f" * 201]), parse_case, "case.flags[0]"),
        (case_data(preferred_language="e" * 201), parse_case, "case.preferred_language"),
        (case_data(patient_location="U" * 201), parse_case, "case.patient_location"),
        (
            case_data(required_skills=[{"name": "s" * 201, "min_level": 1}]),
            parse_case,
            "case.required_skills[0].name",
        ),
        (_roster([agent_data("a" * 201)]), parse_roster, "roster.agents[0].agent_id"),
        ({**_roster([]), "snapshot_id": "s" * 201}, parse_roster, "roster.snapshot_id"),
        (_roster([agent_data(teams=["t" * 201])]), parse_roster, "roster.agents[0].teams[0]"),
    ],
)
def test_every_identifier_field_is_limited(data: object, parse: Any, field: str) -> None:
    """Identifiers and codes over max_id_chars are refused at their own field path."""
    violations = request_violations(data, parse)
    assert [field] == [v.field for v in violations]
    assert violations[0].message.startswith(
        "has 201 characters; the limit is 200 (configurable: --max-id-chars)"
    )


def test_attribute_text_values_are_limited_by_max_text_chars() -> None:
    """A string attribute value over max_text_chars is refused, unquoted; at the limit it is kept.

    R31b F1: the message quoted the value's first 40 characters, a masked patient name or
    date of birth among them, back to the caller (status message and BadRequest details).
    """
    ok = parse_case(case_data(attributes={"notes": "n" * 1_000}))
    assert len(str(ok.attributes["notes"])) == 1_000
    violations = request_violations(case_data(attributes={"notes": "Zelda " + "n" * 995}))
    assert [
        FieldViolation(
            "case.attributes.notes",
            "has 1001 characters; the limit is 1000 (configurable: --max-text-chars); its "
            "text is not quoted (attribute values may be patient data)",
        )
    ] == violations
    roster = request_violations(
        _roster([agent_data(attributes={"bio": "Zelda " + "n" * 995})]), parse_roster
    )
    assert [v.field for v in roster] == ["roster.agents[0].attributes.bio"]
    assert "Zelda" not in roster[0].message


_WITHHELD = "; its value is not quoted (attribute values may be patient data)"
_WITHIN = "must be a number within ±1e+15 (or a string or boolean)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            4111111111111111,
            f"{_WITHIN}, got one beyond that{_WITHHELD}: send an identifier as a string",
        ),
        (-(10**400), f"{_WITHIN}, got one beyond that{_WITHHELD}: send an identifier as a string"),
        (float("nan"), f"{_WITHIN}, got NaN"),
        (float("-inf"), f"{_WITHIN}, got -infinity"),
        (
            {"number_value": "9434765919"},
            "number_value must be a number, got a string (write the number without quotes)"
            + _WITHHELD,
        ),
        (
            {"bool_value": "Zelda Quarrel"},
            f"bool_value must be true or false, got a string{_WITHHELD}",
        ),
        ({"string_value": 9434765919}, f"string_value must be a string, got a number{_WITHHELD}"),
        ({"number_value": True}, f"number_value must be a number, got a boolean{_WITHHELD}"),
        ({"string_value": None}, "string_value must be a string, got null (an empty value)"),
    ],
    ids=[
        "16-digit-id",
        "huge-int",
        "nan",
        "minus-infinity",
        "quoted-number",
        "text-as-bool",
        "number-as-text",
        "bool-as-number",
        "null-as-text",
    ],
)
def test_a_refused_attribute_value_is_described_never_quoted(value: object, message: str) -> None:
    """A refused attribute value (a masked member_id, say) is named by its kind, not shown.

    The text's own limit withheld it since R31b F1; a number past ±1e15 (a 16-digit id) and
    the wrong kind in an AttributeValue form were still quoted back, digits and all.
    """
    assert [FieldViolation("case.attributes.member_id", message)] == request_violations(
        case_data(attributes={"member_id": value})
    )


def test_attributes_sent_as_text_are_refused_unquoted() -> None:
    """An attributes map sent as one string (a name, say) is refused without quoting it."""
    assert [
        FieldViolation(
            "case.attributes",
            f"must be an object of string/number/boolean values, got a string{_WITHHELD}",
        )
    ] == request_violations(case_data(attributes="Zelda Quarrel, born 1901-02-03"))


def test_a_long_attribute_name_is_refused_without_echoing_it() -> None:
    """An attribute name over max_id_chars is refused; the path quotes a prefix only."""
    violations = request_violations(case_data(attributes={"k" * 5_000: 1}))
    assert [
        FieldViolation(
            f"case.attributes[{'k' * 40!r}… (5000 characters)]",
            "has 5000 characters; the limit is 200 (configurable: --max-id-chars); "
            f"it starts {'k' * 40!r}…",
        )
    ] == violations


_Z40 = "z" * 40
_TIMESTAMP = (
    "must be an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM, "
    "e.g. 2026-11-21T09:30:00Z; got "
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "urgency",
            "z" * 1_000_000,
            (
                "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got "
                f"{_Z40!r}… (1000000 characters)"
            ),
        ),
        (
            "urgency",
            list(range(100_000)),
            (
                "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got a list of "
                "100000 item(s)"
            ),
        ),
        ("created_at", "z" * 1_000_000, f"{_TIMESTAMP}{_Z40!r}… (1000000 characters)"),
        ("created_at", list(range(100_000)), f"{_TIMESTAMP}a list of 100000 item(s)"),
        (
            "classification_confidence",
            "z" * 1_000_000,
            f"must be a number, got string {_Z40!r}… (1000000 characters)",
        ),
        ("classification_confidence", list(range(100_000)), "must be a number, got a list"),
    ],
)
def test_huge_wrong_values_are_described_briefly(field: str, value: object, message: str) -> None:
    """A megabyte string or a 100k-item list in a typed field gives a short message."""
    assert request_violations(case_data(**{field: value})) == [
        FieldViolation(f"case.{field}", message)
    ]


# --- bounded violation lists -------------------------------------------------------------------


def test_violations_per_list_are_capped_with_a_count() -> None:
    """150 bad flags give 5 violations and one line counting the other 145."""
    violations = request_violations(case_data(flags=["bad flag"] * 150))
    assert [f"case.flags[{i}]" for i in range(5)] + ["case.flags"] == [v.field for v in violations]
    assert (
        FieldViolation(
            "case.flags",
            "145 more problem(s) in this list not shown; fix the ones above and resend",
        )
        == violations[-1]
    )


def test_bad_agents_are_capped_per_roster() -> None:
    """Many invalid agents do not make one violation each."""
    agents = [{"agent_id": f"a{i}"} for i in range(1_000)]
    violations = request_violations(_roster(agents), parse_roster)
    assert len(violations) == 6
    assert (
        FieldViolation(
            "roster.agents",
            "1995 more problem(s) in this list not shown; fix the ones above and resend",
        )
        == violations[-1]
    )


def test_unknown_keys_are_capped_per_object() -> None:
    """An object with thousands of unknown keys gives a handful of violations and a count."""
    data = case_data(**{f"extra{i}": 1 for i in range(5_000)})
    violations = request_violations(data)
    assert len(violations) == 6
    assert (
        FieldViolation(
            "case", "4995 more unknown field(s) not shown; remove fields the API does not define"
        )
        == violations[-1]
    )


def test_an_unknown_key_of_a_megabyte_is_quoted_briefly() -> None:
    """An unknown key's path quotes a prefix of it, not the whole key."""
    violations = request_violations(case_data(**{"q" * 1_000_000: 1}))
    assert [f"case[{'q' * 40!r}… (1000000 characters)]"] == [v.field for v in violations]
