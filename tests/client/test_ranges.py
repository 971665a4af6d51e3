"""Instants past a Timestamp's range and timeouts that cannot work are refused before sending.

Review R34a F5. Before: an aware ``now`` that is year 0 or 10000 once in UTC raised a bare
``OverflowError`` out of ``decide`` when no request_id was given (from deriving the id), and was
sent (and refused by the server) when one was; the same instant as text got the RFC 3339 *shape*
message although its shape was right; a ``Case`` with such a ``created_at`` was refused at
``case`` as "a field of the wrong type (OverflowError)". ``Client(timeout=inf)`` (or NaN, or
1e10) passed the constructor's check, and every call then failed at once with
DEADLINE_EXCEEDED although nothing was sent; per-call timeouts were not checked at all.
"""

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from caseroute.client import Client, InvalidRequestError
from caseroute.domain.errors import FieldViolation
from caseroute.testing import NOW, make_agent, make_case, make_roster

from .conftest import case_dict, roster_dict

NOWHERE = "127.0.0.1:1"
"""A target nobody listens on: a call that reached the network would fail UNAVAILABLE."""

OUT_OF_RANGE = (
    "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z once converted to "
    "UTC (the range of a protobuf Timestamp)"
)
BEFORE_YEAR_1 = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))  # 0000-12-31 UTC
AFTER_YEAR_9999 = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))

INSTANTS: dict[str, datetime | str] = {
    "aware datetime before year 1": BEFORE_YEAR_1,
    "aware datetime after year 9999": AFTER_YEAR_9999,
    "text before year 1": "0001-01-01T00:00:00+01:00",
    "text after year 9999": "9999-12-31T23:30:00-01:00",
}

BAD_TIMEOUTS = {
    "infinite": float("inf"),
    "not a number": float("nan"),
    "zero": 0.0,
    "negative": -5.0,
    "past what gRPC can represent": 1e10,
}

TIMEOUT_RANGE = "must be a number of seconds above 0 and at most 86400"


def _decide(client: Client, **arguments: Any) -> object:
    return client.decide(case_dict(), roster_dict(), **arguments)


def _decide_batch(client: Client, **arguments: Any) -> object:
    return client.decide_batch([case_dict()], roster_dict(), **arguments)


CALLS: dict[str, Callable[..., object]] = {"decide": _decide, "decide_batch": _decide_batch}


@pytest.mark.parametrize("request_id", [None, "r34a-f5"], ids=["derived id", "given id"])
@pytest.mark.parametrize("call", CALLS.values(), ids=list(CALLS))
@pytest.mark.parametrize("now", INSTANTS.values(), ids=list(INSTANTS))
def test_now_outside_the_timestamp_range_is_refused_before_sending(
    call: Callable[..., object], now: object, request_id: str | None
) -> None:
    """InvalidRequestError at now with the range, with or without a request_id; nothing sent."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        call(client, now=now, request_id=request_id)
    assert (caught.value.sent, caught.value.violations) == (
        False,
        (FieldViolation("now", OUT_OF_RANGE),),
    )


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("instant", INSTANTS.values(), ids=list(INSTANTS))
def test_a_log_filter_outside_the_timestamp_range_is_refused_before_sending(
    field: str, instant: datetime | str
) -> None:
    """Since / until past the range: InvalidRequestError at that field with the range."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        list(client.list_decisions(**{field: instant}))  # type: ignore[arg-type]
    assert (caught.value.sent, caught.value.violations) == (
        False,
        (FieldViolation(field, OUT_OF_RANGE),),
    )


def test_a_case_object_created_outside_the_range_is_named_at_its_field() -> None:
    """A Case whose created_at is year 0 in UTC: refused at case.created_at, not at case."""
    case = dataclasses.replace(make_case(), created_at=BEFORE_YEAR_1)
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(case, make_roster(make_agent("a1")), now=NOW)
    assert (caught.value.sent, caught.value.violations) == (
        False,
        (FieldViolation("case.created_at", OUT_OF_RANGE),),
    )


def test_a_case_dict_created_outside_the_range_gets_the_range_not_the_shape() -> None:
    """Well-shaped text past the range at case.created_at: the range message, and the text."""
    case = case_dict(created_at="0001-01-01T00:00:00+01:00")
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        client.decide(case, roster_dict(), now=NOW)
    assert (caught.value.sent, caught.value.violations) == (
        False,
        (FieldViolation("case.created_at", f"{OUT_OF_RANGE}; got '0001-01-01T00:00:00+01:00'"),),
    )


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS.values(), ids=list(BAD_TIMEOUTS))
def test_a_client_timeout_that_cannot_work_is_refused_when_the_client_is_made(
    timeout: float,
) -> None:
    """inf, NaN, 0, negative or 1e10 seconds: ValueError at construction, saying the range."""
    message = f"timeout {TIMEOUT_RANGE}, not {timeout!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Client(NOWHERE, timeout=timeout)


def _get_decision(client: Client, timeout: float) -> object:
    return client.get_decision("dec_x", timeout=timeout)


def _list_decisions(client: Client, timeout: float) -> object:
    return list(client.list_decisions(timeout=timeout))


EVERY_CALL: dict[str, Callable[..., object]] = {
    **CALLS,
    "get_decision": _get_decision,
    "list_decisions": _list_decisions,
}


@pytest.mark.parametrize("call", EVERY_CALL.values(), ids=list(EVERY_CALL))
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS.values(), ids=list(BAD_TIMEOUTS))
def test_a_per_call_timeout_that_cannot_work_is_refused_before_sending(
    call: Callable[..., object], timeout: float
) -> None:
    """The same per call: InvalidRequestError at timeout, nothing sent (no DEADLINE_EXCEEDED)."""
    with Client(NOWHERE) as client, pytest.raises(InvalidRequestError) as caught:
        call(client, timeout=timeout)
    assert (caught.value.sent, caught.value.violations) == (
        False,
        (FieldViolation("timeout", f"{TIMEOUT_RANGE}, not {timeout!r}"),),
    )
