"""Instants in a clock change's fold: equal in Python, an hour apart, each written as its own."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from caseroute.domain.case import SentimentReading
from caseroute.domain.fingerprint import (
    canonical_json,
    case_forms,
    case_to_dict,
    roster_sha256,
)
from caseroute.domain.fingerprint import request_sha256 as fingerprint_request
from caseroute.service.routing import DecideCommand, request_sha256
from caseroute.testing import make_agent, make_case, make_roster

LONDON = ZoneInfo("Europe/London")
FIRST = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON)  # BST, 00:30Z
SECOND = FIRST.replace(fold=1)  # GMT, the hour again: 01:30Z


def test_the_two_instants_compare_equal_in_python() -> None:
    """The premise: a cache keyed by datetime would give the second the first one's text."""
    assert (FIRST == SECOND, hash(FIRST) == hash(SECOND)) == (True, True)


def test_a_case_writes_each_of_the_two_as_its_own_instant() -> None:
    """created_at in the first 01:30 and a sentiment reading in the second: two UTC instants."""
    case = make_case(created_at=FIRST, sentiment=(SentimentReading(-0.5, SECOND),))
    for data in (case_to_dict(case), case_forms(case).data):
        assert (data["created_at"], data["sentiment"][0]["at"]) == (
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
        )


def test_a_request_whose_now_is_in_the_fold_hashes_that_instant() -> None:
    """A request at the second 01:30 for a case created at the first: now is hashed as 01:30Z."""
    case = make_case(created_at=FIRST)
    roster = make_roster(make_agent())
    cmd = DecideCommand("r-fold", "", "", (case,), roster, SECOND)
    assert request_sha256(cmd) == fingerprint_request(
        ruleset_name="",
        ruleset_version="",
        agent_detail=True,
        now=SECOND,
        case_texts=[canonical_json(case_to_dict(case))],
        roster_sha256=roster_sha256(roster),
        now_text="2026-10-25T01:30:00Z",
    )
