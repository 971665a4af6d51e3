"""The client's edges: arguments refused before any call, and status details it cannot use."""

import dataclasses
import re
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from caseroute.client import Client, InvalidRequestError, NotFoundError
from caseroute.domain.case import Case, RequiredSkill, SentimentReading
from caseroute.domain.code_built import checked_roster
from caseroute.domain.errors import FieldViolation
from caseroute.domain.roster import Roster
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb

from .conftest import case_dict, roster_dict

NOWHERE = "127.0.0.1:1"
"""A target nobody listens on: a call that reached the network would fail UNAVAILABLE."""

INSTANT_ADVICE = (
    "must be an aware datetime or an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] ending in "
    "Z or +HH:MM / -HH:MM, e.g. 2026-11-21T10:00:00Z"
)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be 1-5, not 0"),
        ({"max_attempts": 6}, "max_attempts must be 1-5, not 6"),
        ({"max_receive_mb": 0}, "max_receive_mb must be at least 1, not 0"),
        (
            {"timeout": 0.0},
            "timeout must be a number of seconds above 0 and at most 86400, not 0.0",
        ),
        (
            {"timeout": -1.5},
            "timeout must be a number of seconds above 0 and at most 86400, not -1.5",
        ),
    ],
)
def test_an_out_of_range_number_is_refused_when_the_client_is_made(
    argument: dict[str, float], message: str
) -> None:
    """max_attempts outside 1-5, max_receive_mb under 1, a timeout <= 0: ValueError saying so."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Client(NOWHERE, **argument)  # type: ignore[arg-type]


def test_a_case_roster_and_level_of_the_wrong_kind_are_all_named_before_sending() -> None:
    """A str case, a list roster and an unknown level: one error naming all three, nothing sent."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(
            "CASE-1",  # type: ignore[arg-type]
            [roster_dict()],  # type: ignore[arg-type]
            now=NOW,
            explanation_level="verbose",
        )
    error = caught.value
    assert (error.code, error.sent, error.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        False,
        (
            FieldViolation("case", "must be a Case or a dict, not str"),
            FieldViolation("roster", "must be a Roster or a dict, not list"),
            FieldViolation("explanation_level", "must be 'summary' or 'full', not 'verbose'"),
        ),
    )
    assert str(error) == (
        "invalid request: 3 problem(s); nothing was sent\n"
        "  - case: must be a Case or a dict, not str\n"
        "  - roster: must be a Roster or a dict, not list\n"
        "  - explanation_level: must be 'summary' or 'full', not 'verbose'"
    )


def test_a_batch_names_the_case_of_the_wrong_kind_by_its_index() -> None:
    """decide_batch with None as its second case: the violation is at cases[1]."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide_batch([case_dict("B-1"), None], roster_dict(), now=NOW)  # type: ignore[list-item]
    assert caught.value.violations == (
        FieldViolation("cases[1]", "must be a Case or a dict, not NoneType"),
    )


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"until": "tomorrow"}, "until"),
        ({"since": "2026-11-21T10:00:00"}, "since"),  # no offset
        ({"since": NOW, "until": datetime(2026, 11, 22)}, "until"),  # naive datetime  # noqa: DTZ001
    ],
)
def test_a_bad_log_filter_is_refused_before_the_first_page_is_asked_for(
    filters: dict[str, object], field: str
) -> None:
    """since/until without an offset (text or naive datetime): InvalidRequestError, nothing sent."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        list(client.list_decisions(**filters))  # type: ignore[arg-type]
    error = caught.value
    assert (error.sent, error.violations) == (False, (FieldViolation(field, INSTANT_ADVICE),))


@contextmanager
def _one_answer(
    answer: Callable[[grpc.ServicerContext], None],
) -> Iterator[str]:
    """A server whose DecisionLog.GetDecision only runs ``answer`` (which aborts); its target."""

    def get_decision(_request: pb.GetDecisionRequest, context: grpc.ServicerContext) -> None:
        answer(context)

    handler = grpc.method_handlers_generic_handler(
        "caseroute.v1.DecisionLog",
        {
            "GetDecision": grpc.unary_unary_rpc_method_handler(
                get_decision,
                request_deserializer=pb.GetDecisionRequest.FromString,
                response_serializer=pb.AuditedDecision.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _packed(detail: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)  # type: ignore[arg-type]
    return packed


def test_details_other_than_bad_request_are_skipped_and_bad_request_still_read() -> None:
    """ErrorInfo (from a proxy, a newer server) beside BadRequest: only the violations are read."""
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="decision_id", description="must start with dec_"
            )
        ]
    )
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="invalid request: 1 problem(s)",
        details=[
            _packed(error_details_pb2.ErrorInfo(reason="QUOTA", domain="proxy")),
            _packed(bad),
        ],
    )

    def answer(context: grpc.ServicerContext) -> None:
        context.abort_with_status(rpc_status.to_status(status))

    with (
        _one_answer(answer) as target,
        Client(target, max_attempts=1) as client,
        pytest.raises(InvalidRequestError) as caught,
    ):
        client.get_decision("x")
    error = caught.value
    assert (error.code, error.details, error.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request: 1 problem(s)",
        (FieldViolation("decision_id", "must start with dec_"),),
    )


def test_status_details_that_contradict_the_status_are_ignored_not_raised() -> None:
    """Details whose code disagrees with the call's: the typed error, its message, no violations."""
    contradicting = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="other")

    def answer(context: grpc.ServicerContext) -> None:
        context.set_trailing_metadata(
            (("grpc-status-details-bin", contradicting.SerializeToString()),)
        )
        context.abort(grpc.StatusCode.NOT_FOUND, "no decision dec_x: check the id")

    with (
        _one_answer(answer) as target,
        Client(target, max_attempts=1) as client,
        pytest.raises(NotFoundError) as caught,
    ):
        client.get_decision("dec_x")
    error = caught.value
    assert (error.code, error.details, error.violations, str(error)) == (
        grpc.StatusCode.NOT_FOUND,
        "no decision dec_x: check the id",
        (),
        "server answered NOT_FOUND: no decision dec_x: check the id",
    )


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("flags", "safeguarding", "case.flags"),  # ("safeguarding") without its comma
        ("declined_agents", "a1", "case.declined_agents"),
        ("created_at", datetime(2026, 11, 21, 9, 55), "case.created_at"),  # noqa: DTZ001
    ],
)
def test_a_case_object_whose_field_the_message_would_reshape_is_refused_before_sending(
    field: str, value: object, path: str
) -> None:
    """A ``Case`` built in code is refused naming the field (review R29 F1).

    ``flags="safeguarding"`` became the one-letter flags ``a, d, e, ...`` in the message, which
    the server accepts: the case was ASSIGNED.
    """
    built: Any = make_case()  # any field's type: what a caller's code can build
    case = dataclasses.replace(built, **{field: value})
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(case, make_roster(make_agent("a1")), now=NOW)
    assert (caught.value.sent, caught.value.violations[-1].field) == (False, path)


def test_a_roster_object_is_checked_and_a_bad_one_refused_before_sending() -> None:
    """An agent's territories given as one str: named, nothing sent."""
    built: Any = make_agent("a1")
    agent = dataclasses.replace(built, territories="US-TX")
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(make_case(), make_roster(agent), now=NOW)
    assert [v.field for v in caught.value.violations] == ["roster.agents[0].territories"]


def _any(cls: type) -> Any:
    """``cls`` as a constructor of any argument types: what a caller's code can build."""
    return cls


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: make_case(required_skills=(_any(RequiredSkill)("triage", 2.5),)), "min_level"),
        (lambda: make_case(required_skills=(_any(RequiredSkill)(["triage"], 2),)), "name"),
        (lambda: make_case(sentiment=(_any(SentimentReading)("-0.9", NOW),)), "score"),
    ],
)
def test_a_nested_value_the_message_cannot_carry_is_named_not_raised(
    build: Callable[[], Case], path: str
) -> None:
    """A float ``min_level``, a list ``name``, a text ``score``: named, nothing sent.

    Protobuf raised TypeError out of ``Client.decide`` (review R29b).
    """
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(build(), make_roster(make_agent("a1")), now=NOW)
    assert caught.value.sent is False
    assert [v.field.rsplit(".", 1)[-1] for v in caught.value.violations] == [path]


def test_a_roster_object_is_read_once_and_sent_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same ``Roster`` object twice: parsed once (the second call reuses it)."""
    calls = []
    real = checked_roster

    def counting(roster: Roster, *args: Any, **kwargs: Any) -> Roster:
        calls.append(roster)
        return real(roster, *args, **kwargs)

    monkeypatch.setattr("caseroute.client.calls.checked_roster", counting)
    roster = make_roster(make_agent("a1", languages=frozenset({"EN"})))
    with Client(NOWHERE) as client:
        first = client._roster_of(roster)
        second = client._roster_of(roster)
    assert (len(calls), first is second, first.agents[0].languages) == (1, True, frozenset({"en"}))
