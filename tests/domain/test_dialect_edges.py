"""The JSON dialect's edges: odd values named by type, licence fields, requests, record walks."""

from typing import Any

import pytest

from caseroute.domain.codec import parse_case, parse_request, parse_roster
from caseroute.domain.dialect import (
    case_data_from_wire,
    case_data_to_wire,
    record_input_from_wire,
    record_input_to_wire,
)
from caseroute.domain.errors import RequestError
from tests.client.conftest import agent_dict, case_dict, roster_dict


def _violations(parse: Any, data: Any) -> list[tuple[str, str]]:
    """The (field, message) pairs ``parse(data)`` raises."""
    with pytest.raises(RequestError) as caught:
        parse(data)
    return [(v.field, v.message) for v in caught.value.violations]


def _licence(**fields: Any) -> dict[str, Any]:
    """A roster with one agent holding one RN licence in Texas with ``fields``."""
    return roster_dict(
        agent_dict("a1", licences=[{"type": "RN", "jurisdiction": "US-TX", **fields}])
    )


def test_a_licence_without_an_expiry_date_is_refused() -> None:
    """A licence must say when it expires: expires_on missing is "is required" at its path."""
    assert _violations(parse_roster, _licence()) == [
        ("roster.agents[0].licences[0].expires_on", "is required")
    ]


def test_a_licence_expiry_and_multistate_of_the_wrong_type_are_named() -> None:
    """expires_on as a number and multistate as text: each named with what was sent."""
    assert _violations(parse_roster, _licence(expires_on=20300101, multistate="yes")) == [
        ("roster.agents[0].licences[0].expires_on", "must be a date YYYY-MM-DD, got 20300101"),
        ("roster.agents[0].licences[0].multistate", "must be true or false, got string 'yes'"),
    ]


def test_a_multistate_licence_given_as_a_boolean_is_read() -> None:
    """multistate: true is kept on the licence (the compact-licence check reads it)."""
    roster = parse_roster(_licence(expires_on="2030-01-01", multistate=True))
    assert [(lic.jurisdiction, lic.multistate) for lic in roster.agents[0].licences] == [
        ("US-TX", True)
    ]


def test_python_values_json_cannot_hold_are_named_by_their_type() -> None:
    """From Python (the client takes dicts): bytes, a set, an object, an int key named as such."""
    data = case_dict("C-1", channel={"phone"}, urgency=object(), attributes={1: "x", "ok": b"x"})
    data["case_id"] = b"C-1"
    assert _violations(parse_case, data) == [
        ("case.case_id", "must be a non-empty string, got bytes"),
        (
            "case.channel",
            "must be one of CHANNEL_EMAIL, CHANNEL_PHONE, CHANNEL_PORTAL, CHANNEL_CHAT; got set",
        ),
        (
            "case.urgency",
            "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got object",
        ),
        ("case.attributes.1", "attribute names must be strings"),
        ("case.attributes.ok", "must be a string, finite number or boolean, got bytes"),
    ]


def test_two_sla_clocks_with_one_name_are_refused_at_the_second() -> None:
    """SLA clocks are told apart by name: the repeat is named, not silently merged."""
    clock = {
        "name": "first-response",
        "started_at": "2026-11-21T09:55:00Z",
        "deadline": "2026-11-21T13:55:00Z",
    }
    assert _violations(parse_case, case_dict("C-2", sla_clocks=[clock, clock])) == [
        (
            "case.sla_clocks[1].name",
            "duplicate SLA clock name 'first-response'; each clock needs its own name",
        )
    ]


def test_a_batch_request_with_no_cases_says_to_send_one() -> None:
    """DecideBatchRequest with "cases": [] is refused: is empty, send at least one case."""
    request = {"request_id": "r-1", "cases": [], "roster": roster_dict()}
    assert _violations(parse_request, request) == [("cases", "is empty: send at least one case")]


def test_a_decide_request_names_case_and_roster_problems_together() -> None:
    """A bad case and a bad roster in one DecideRequest: every problem in one error."""
    request = {
        "request_id": "r-2",
        "case": case_dict("C-3", intent="astrology"),
        "roster": {"agents": "x"},
    }
    assert _violations(parse_request, request) == [
        (
            "case.intent",
            (
                "must be one of INTENT_CLINICAL, INTENT_PRESCRIPTION, INTENT_APPOINTMENT, "
                "INTENT_BILLING, INTENT_COMPLAINT, INTENT_GENERAL; got 'astrology'"
            ),
        ),
        ("roster.snapshot_id", "is required"),
        ("roster.taken_at", "is required"),
        ("roster.agents", "must be a list, got string 'x'"),
    ]


def test_the_case_walk_keeps_attribute_values_it_does_not_know_both_ways() -> None:
    """Stored attributes that are no scalar or wrapper (a damaged record) survive the round trip."""
    stored = {
        "case_id": "C-4",
        "channel": "phone",
        "attributes": {
            "plain": "x",
            "odd": None,
            "listed": [1, 2],
            "two_kinds": {"string_value": "a", "bool_value": True},
            "unknown_kind": {"bytes_value": "eA=="},
        },
    }
    wire = case_data_to_wire(stored)
    assert wire == {
        "case_id": "C-4",
        "channel": "CHANNEL_PHONE",
        "attributes": {
            "plain": {"string_value": "x"},
            "odd": None,
            "listed": [1, 2],
            "two_kinds": {"string_value": "a", "bool_value": True},
            "unknown_kind": {"bytes_value": "eA=="},
        },
    }
    assert case_data_from_wire(wire) == stored


def test_a_record_input_without_a_case_object_is_kept_as_it_is() -> None:
    """A stored input whose case is missing or not an object is exported and read back unchanged."""
    for stored in (
        {"roster": {"sha256": "ab", "assigned_before": []}},
        {"case": "sha256:digest", "roster": {"sha256": "ab", "assigned_before": []}},
    ):
        assert record_input_to_wire(stored) == stored
        assert record_input_from_wire(stored) == stored


@pytest.mark.parametrize(
    ("sha", "fault"),
    [
        ("f" * 150, "got 150 characters"),
        ("F" * 64, "it holds upper-case letters (send it in lower case)"),
        ("g" * 64, "it holds characters that are not hex digits (0-9, a-f)"),
    ],
    ids=["long", "upper-case", "not-hex"],
)
def test_a_request_files_roster_sha256_of_the_wrong_shape_says_what_is_wrong(
    sha: str, fault: str
) -> None:
    """A request file's roster_sha256 is held to gRPC's shape, and never quoted whole.

    It was compared with the roster's hash and quoted in full (up to the 200-character id
    limit), beside that hash, with no word on what shape it must have.
    """
    request = {"request_id": "r-3", "case": case_dict("C-4"), "roster": roster_dict()}
    request["roster_sha256"] = sha
    assert _violations(parse_request, request) == [
        (
            "roster_sha256",
            (
                "must be 64 lowercase hex characters (a roster's roster_sha256, as the "
                f"decision log records it); {fault}"
            ),
        )
    ]
