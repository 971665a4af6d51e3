"""The JSON dialect on input: proto spellings, short spellings, camelCase, AttributeValue forms."""

from __future__ import annotations

from typing import Any

import pytest

from caseroute.domain.case import Channel, ContinuityReason, Tier, Urgency
from caseroute.domain.codec import parse_case, parse_request, parse_roster
from caseroute.domain.dialect import case_data_from_wire, case_data_to_wire
from caseroute.domain.enums import ExplanationLevel
from caseroute.domain.errors import FieldViolation
from caseroute.domain.fingerprint import case_to_dict, input_sha256
from caseroute.domain.roster import AgentStatus, Role
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.testing import agent_data, case_data, request_violations, roster_data

SHORT = case_data(
    channel="phone",
    intent="clinical",
    urgency="urgent",
    tier="gold",
    attributes={"plan": "hmo", "visits": 3, "consented": True},
    preferred_agents=[{"agent_id": "n1", "reason": "named_clinician"}],
)
PROTO = case_data(
    channel="CHANNEL_PHONE",
    intent="INTENT_CLINICAL",
    urgency="URGENCY_URGENT",
    tier="TIER_GOLD",
    attributes={
        "plan": {"string_value": "hmo"},
        "visits": {"number_value": 3},
        "consented": {"bool_value": True},
    },
    preferred_agents=[{"agent_id": "n1", "reason": "CONTINUITY_REASON_NAMED_CLINICIAN"}],
)
CAMEL: dict[str, Any] = {
    "caseId": "C1",
    "createdAt": "2026-11-21T09:00:00Z",
    "channel": 2,
    "intent": "INTENT_CLINICAL",
    "urgency": "URGENCY_URGENT",
    "tier": "TIER_GOLD",
    "attributes": {
        "plan": {"stringValue": "hmo"},
        "visits": {"numberValue": 3},
        "consented": {"boolValue": True},
    },
    "preferredAgents": [{"agentId": "n1", "reason": "CONTINUITY_REASON_NAMED_CLINICIAN"}],
}


@pytest.mark.parametrize("data", [PROTO, CAMEL], ids=["proto", "camel"])
def test_every_spelling_parses_to_the_same_case(data: dict[str, Any]) -> None:
    """Proto names, enum numbers, camelCase and AttributeValue forms give the short form's case."""
    assert parse_case(SHORT) == parse_case(data)


def test_the_canonical_form_and_hash_do_not_depend_on_the_spelling() -> None:
    """The input hash (so decision ids and idempotency) is over the parsed case, not its text."""
    roster = parse_roster(roster_data(agent_data()))
    assert input_sha256(parse_case(SHORT), roster) == input_sha256(parse_case(CAMEL), roster)


def test_enum_errors_list_the_proto_names() -> None:
    """An unknown enum value is refused with the proto names (was: `email, phone, ...`)."""
    assert [
        FieldViolation(
            "case.channel",
            "must be one of CHANNEL_EMAIL, CHANNEL_PHONE, CHANNEL_PORTAL, CHANNEL_CHAT; got 'fax'",
        )
    ] == request_violations(case_data(channel="fax"))


@pytest.mark.parametrize(
    ("value", "hint"),
    [("URGENCY_CRITICL", "URGENCY_CRITICAL"), ("critcal", "URGENCY_CRITICAL")],
)
def test_enum_near_misses_suggest_the_proto_name(value: str, hint: str) -> None:
    """A near miss of either spelling suggests the proto name."""
    assert [
        FieldViolation(
            "case.urgency",
            "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; "
            f"got {value!r} (did you mean {hint!r}?)",
        )
    ] == request_violations(case_data(urgency=value))


@pytest.mark.parametrize(
    ("value", "shown"), [("URGENCY_UNSPECIFIED", "'URGENCY_UNSPECIFIED'"), (0, "0")]
)
def test_unspecified_means_not_set(value: object, shown: str) -> None:
    """`*_UNSPECIFIED` and 0 mean not set: a required enum says it is required."""
    assert [FieldViolation("case.urgency", f"is required ({shown} means not set)")] == (
        request_violations(case_data(urgency=value))
    )


def test_unspecified_optional_enum_takes_its_default() -> None:
    """TIER_UNSPECIFIED is an unset tier: the case is STANDARD."""
    assert parse_case(case_data(tier="TIER_UNSPECIFIED")).tier == Tier.STANDARD


@pytest.mark.parametrize("value", [9, -1, True, "PHONE", "Phone"])
def test_enum_numbers_out_of_range_and_other_casings_are_refused(value: object) -> None:
    """Only the exact short value, the proto name or a defined number is an enum value."""
    violations = request_violations(case_data(channel=value))
    assert [v.field for v in violations] == ["case.channel"]
    assert violations[0].message.startswith(
        "must be one of CHANNEL_EMAIL, CHANNEL_PHONE, CHANNEL_PORTAL, CHANNEL_CHAT; got "
    )


def test_roster_enums_take_both_spellings() -> None:
    """Agent role and status read proto names and numbers as well."""
    roster = parse_roster(
        roster_data(
            agent_data("a1", role="ROLE_SENIOR", status="AGENT_STATUS_BUSY"),
            agent_data("a2", role=3, status="away"),
        )
    )
    assert [(a.role, a.status) for a in roster.agents] == [
        (Role.SENIOR, AgentStatus.BUSY),
        (Role.MANAGER, AgentStatus.AWAY),
    ]


def test_camel_case_roster_fields_are_accepted() -> None:
    """snapshotId, takenAt, agentId, lastAssignedAt, expiresOn... are the proto JSON names."""
    data = {
        "snapshotId": "s",
        "takenAt": "2026-11-21T09:00:00Z",
        "agents": [
            {
                "agentId": "a1",
                "status": "AGENT_STATUS_AVAILABLE",
                "capacity": {"max": 3, "active": 0},
                "licences": [{"type": "RN", "jurisdiction": "US-TX", "expiresOn": "2027-01-01"}],
                "lastAssignedAt": "2026-11-21T08:00:00Z",
            }
        ],
    }
    snake = roster_data(
        agent_data(
            licences=[{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-01"}],
            last_assigned_at="2026-11-21T08:00:00Z",
        )
    )
    assert parse_roster(snake) == parse_roster(data)


@pytest.mark.parametrize(
    ("field", "camel", "first", "second"),
    [("sla_clocks", "slaClocks", [], []), ("case_id", "caseId", "C1", "C2")],
)
def test_a_field_under_both_spellings_is_refused(
    field: str, camel: str, first: object, second: object
) -> None:
    """One field sent as `sla_clocks` and `slaClocks` is an error naming it, never a choice."""
    data = case_data(**{field: first})
    data[camel] = second
    assert [
        FieldViolation(
            f"case.{field}",
            f"is given twice, as `{field}` and `{camel}`; send it once (either spelling is "
            "accepted, not both)",
        )
    ] == request_violations(data)


def test_a_safeguarding_flag_under_the_second_spelling_still_gets_the_notice() -> None:
    """`declined_agents` twice is refused; a safeguarding flag only in a refused copy is noticed."""
    data = case_data(flags=["safeguarding"], declined_agents=["a1"])
    data["declinedAgents"] = []
    violations = request_violations(data)
    assert [
        FieldViolation("case.flags", SAFEGUARDING_NOTICE),
        FieldViolation(
            "case.declined_agents",
            "is given twice, as `declined_agents` and `declinedAgents`; send it once (either "
            "spelling is accepted, not both)",
        ),
    ] == violations


def test_attribute_value_forms_are_checked() -> None:
    """An AttributeValue object holds exactly one kind, of the right JSON type."""
    data = case_data(
        attributes={
            "a": {},
            "b": {"string_value": "x", "bool_value": True},
            "c": {"number_value": "1.5"},
            "d": {"bool_value": "yes"},
            "e": {"int_value": 1},
        }
    )
    forms = '{"string_value": "..."}, {"number_value": 1.5} or {"bool_value": true}'
    assert [
        FieldViolation(
            "case.attributes.a",
            f"must be a string, number or boolean, or one of {forms}; got an empty object",
        ),
        FieldViolation(
            "case.attributes.b",
            f"must be a string, number or boolean, or one of {forms}; got an object with 2 "
            "field(s)",
        ),
        FieldViolation(
            "case.attributes.c",
            "number_value must be a number, got a string (write the number without quotes); its "
            "value is not quoted (attribute values may be patient data)",
        ),
        FieldViolation(
            "case.attributes.d",
            "bool_value must be true or false, got a string; its value is not quoted (attribute "
            "values may be patient data)",
        ),
        FieldViolation(
            "case.attributes.e",
            f"must be a string, number or boolean, or one of {forms}; got an object with 1 "
            "field(s)",
        ),
    ] == request_violations(data)


def test_quoted_numbers_are_refused_with_advice() -> None:
    """Proto JSON allows "0.9" for a double; this dialect asks for the number unquoted."""
    assert [
        FieldViolation(
            "case.classification_confidence",
            "must be a number, got string '0.9' (write the number without quotes)",
        )
    ] == request_violations(case_data(classification_confidence="0.9"))


def test_null_means_unset() -> None:
    """`null` for an optional field is the same as leaving it out (as proto JSON parsers do)."""
    assert parse_case(case_data()) == parse_case(case_data(tier=None, region=None, flags=None))


def test_wire_form_of_a_canonical_case_round_trips() -> None:
    """case_data_to_wire writes proto spellings; case_data_from_wire gives the canonical form."""
    canonical = case_to_dict(parse_case(SHORT))
    wire = case_data_to_wire(canonical)
    assert (wire["channel"], wire["attributes"]["plan"], wire["preferred_agents"][0]["reason"]) == (
        "CHANNEL_PHONE",
        {"string_value": "hmo"},
        "CONTINUITY_REASON_NAMED_CLINICIAN",
    )
    assert canonical == case_data_from_wire(wire)
    assert parse_case(SHORT) == parse_case(wire)


def test_wire_form_keeps_masked_digests() -> None:
    """A masked (digest) value is not an enum or number: the walk keeps it as it is."""
    masked = {"channel": "hmac-sha256:ab", "attributes": {"mrn": "hmac-sha256:cd"}}
    assert case_data_to_wire(masked) == {
        "channel": "hmac-sha256:ab",
        "attributes": {"mrn": {"string_value": "hmac-sha256:cd"}},
    }


def test_a_request_reads_the_envelope_and_either_case_form() -> None:
    """parse_request reads DecideRequest and DecideBatchRequest JSON, camelCase included."""
    single = parse_request(
        {
            "requestId": "r1",
            "ruleset": {"name": "patient-enquiries", "version": "2026.12.1"},
            "case": PROTO,
            "roster": roster_data(),
            "now": "2026-11-21T10:00:00Z",
            "explanationLevel": "EXPLANATION_LEVEL_SUMMARY",
        }
    )
    batch = parse_request({"cases": [SHORT, CAMEL], "roster": roster_data()})
    assert (
        single.request_id,
        single.ruleset_name,
        single.ruleset_version,
        single.batch,
        single.explanation_level,
        single.cases[0].channel,
    ) == (
        "r1",
        "patient-enquiries",
        "2026.12.1",
        False,
        ExplanationLevel.SUMMARY,
        Channel.PHONE,
    )
    assert (
        batch.request_id,
        batch.batch,
        batch.now,
        batch.explanation_level,
        len(batch.cases),
    ) == ("", True, None, None, 2)


def test_a_request_names_every_bad_field_with_grpc_paths() -> None:
    """Envelope, batch case and roster problems come together, with the paths gRPC gives."""
    violations = request_violations(
        {
            "cases": [SHORT, case_data(urgency="soon")],
            "roster": {"snapshot_id": "s"},
            "explanation_level": "EVERYTHING",
            "extra": 1,
        },
        parse_request,
    )
    assert [
        FieldViolation(
            "extra",
            "unknown field (allowed: request_id, ruleset, case, cases, roster, now, "
            "explanation_level, roster_sha256)",
        ),
        FieldViolation(
            "explanation_level",
            "must be one of EXPLANATION_LEVEL_SUMMARY, EXPLANATION_LEVEL_FULL; got 'EVERYTHING'",
        ),
        FieldViolation(
            "cases[1].urgency",
            "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got 'soon'",
        ),
        FieldViolation("roster.taken_at", "is required"),
    ] == violations


def test_a_request_without_roster_or_case_says_what_is_missing() -> None:
    """No case and no roster: both named."""
    assert [
        FieldViolation("case", "is required"),
        FieldViolation("roster", "is required (it may have no agents)"),
    ] == request_violations({}, parse_request)


def test_wire_enum_tables_cover_continuity_reasons() -> None:
    """ContinuityReason, Urgency: numbers follow declaration order from 1."""
    assert (
        parse_case(case_data(preferred_agents=[{"agent_id": "a", "reason": 3}]))
        .preferred_agents[0]
        .reason,
        parse_case(case_data(urgency=3)).urgency,
    ) == (ContinuityReason.CARE_TEAM, Urgency.CRITICAL)


def test_a_request_with_case_and_cases_or_odd_keys_is_refused() -> None:
    """`case` beside `cases` is refused (never one of them ignored); odd top-level keys quoted."""
    violations = request_violations(
        {"case": SHORT, "cases": [SHORT], "roster": roster_data(), "a b": 1}, parse_request
    )
    assert violations == [
        FieldViolation(
            "['a b']",
            "unknown field (allowed: request_id, ruleset, case, cases, roster, now, "
            "explanation_level, roster_sha256)",
        ),
        FieldViolation("case", "a request has `case` (Decide) or `cases` (DecideBatch), not both"),
    ]


def test_omitted_numbers_read_as_zero_as_over_grpc() -> None:
    """Proto3 leaves zeros out of JSON: omitted capacity, levels and scores read as 0 like gRPC."""
    from google.protobuf import json_format

    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import convert

    agent = agent_data(
        status="AGENT_STATUS_AVAILABLE", capacity={"max": 3}, skills=[{"name": "triage"}]
    )
    roster = roster_data(agent)
    parsed = parse_roster(roster, "roster")
    assert (parsed.agents[0].capacity.max, parsed.agents[0].capacity.active) == (3, 0)
    assert parsed.agents[0].skills == {"triage": 0}
    assert parsed == convert.roster_from_proto(json_format.ParseDict(roster, pb.Roster()))
    case = case_data_to_wire(
        case_data(required_skills=[{"name": "triage"}], sentiment=[{"at": "2026-11-21T09:50:00Z"}])
    )
    parsed_case = parse_case(case, "case")
    assert (parsed_case.required_skills[0].min_level, parsed_case.sentiment[0].score) == (0, 0.0)
    assert parsed_case == convert.case_from_proto(json_format.ParseDict(case, pb.Case()))
    without_capacity = roster_data(agent_data(capacity=None))
    assert request_violations(without_capacity, parse_roster) == [
        FieldViolation("roster.agents[0].capacity", "is required")
    ]
