"""A roster passed as a dict is parsed once per exact content, never by equality or identity."""

from collections import OrderedDict
from typing import Any

import pytest

from caseroute.client import Client, InvalidRequestError
from caseroute.client import calls as client_calls
from caseroute.domain.codec import parse_roster
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.roster import Roster
from tests.client.test_roster_hash import Recording

from .conftest import NOW_TEXT, agent_dict, case_dict, roster_dict


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every roster dict the client parses, in order."""
    seen: list[dict[str, Any]] = []

    def counted(data: dict[str, Any]) -> Roster:
        seen.append(data)
        return parse_roster(data)

    monkeypatch.setattr(client_calls, "parse_roster", counted)
    return seen


def test_the_same_roster_dict_content_is_parsed_once_and_then_sent_by_hash(
    client: Client, parses: list[dict[str, Any]]
) -> None:
    """Two equal dicts (new objects each call): one parse, one hash, the second call by hash."""
    log = Recording(client)
    first = client.decide(case_dict("D-1"), roster_dict(agent_dict("d1")), now=NOW_TEXT)
    second = client.decide(case_dict("D-2"), roster_dict(agent_dict("d1")), now=NOW_TEXT)
    sha = roster_sha256(parse_roster(roster_dict(agent_dict("d1"))))
    assert (len(parses), log.shapes()) == (1, [(True, sha), (False, sha)])
    assert (first.decision.agent_id, second.decision.agent_id) == ("d1", "d1")


def test_a_dict_changed_in_place_is_parsed_again_and_its_new_content_sent(
    client: Client, parses: list[dict[str, Any]]
) -> None:
    """The key is the content, not the object: the same dict mutated decides on what it holds."""
    roster = roster_dict(agent_dict("m1"))
    first = client.decide(case_dict("M-1"), roster, now=NOW_TEXT)
    roster["agents"][0]["agent_id"] = "m2"
    second = client.decide(case_dict("M-2"), roster, now=NOW_TEXT)
    assert (len(parses), first.decision.agent_id, second.decision.agent_id) == (2, "m1", "m2")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # 5.0 is read as 5 since R34a F4 (as protobuf's JSON parser reads it): not refused.
        (True, "must be an integer, got boolean true"),
    ],
)
def test_content_equal_in_python_but_not_in_type_is_refused_as_before(
    client: Client, value: object, message: str
) -> None:
    """``True`` after ``max: 1`` (== equal) still fails: types are in the key."""
    kind = "int" if value is True else "five"
    good = agent_dict(kind, capacity={"max": 1 if value is True else 5, "active": 0})
    client.decide(case_dict("T-1"), roster_dict(good), now=NOW_TEXT)
    bad = roster_dict(agent_dict(kind, capacity={"max": value, "active": 0}))
    assert bad == roster_dict(good)
    with pytest.raises(InvalidRequestError) as caught:
        client.decide(case_dict("T-2"), bad, now=NOW_TEXT)
    assert [(v.field, v.message) for v in caught.value.violations] == [
        ("roster.agents[0].capacity.max", message)
    ]


def test_a_roster_that_fails_to_parse_is_refused_every_time(
    client: Client, parses: list[dict[str, Any]]
) -> None:
    """A refused dict is not kept: sent twice, it is parsed and refused twice."""
    bad = roster_dict(agent_dict("x", capacity={"max": "five", "active": 0}))
    for case_id in ("F-1", "F-2"):
        with pytest.raises(InvalidRequestError):
            client.decide(case_dict(case_id), bad, now=NOW_TEXT)
    assert len(parses) == 2


def test_at_most_parsed_rosters_are_kept_the_oldest_going_first(
    client: Client, parses: list[dict[str, Any]]
) -> None:
    """PARSED_ROSTERS + 1 distinct dicts: the first is parsed again, the last is not."""
    count = client_calls.PARSED_ROSTERS + 1
    dicts = [roster_dict(agent_dict(f"k{n}")) for n in range(count)]
    for roster in dicts:
        client._prepare(
            [(case_dict("K"), "case")],
            roster,
            now=NOW_TEXT,
            ruleset=None,
            version=None,
            request_id="k",
            level="summary",
        )
    for roster in (dicts[-1], dicts[0]):
        client._prepare(
            [(case_dict("K"), "case")],
            roster,
            now=NOW_TEXT,
            ruleset=None,
            version=None,
            request_id="k",
            level="summary",
        )
    assert [p["agents"][0]["agent_id"] for p in parses] == [
        *(f"k{n}" for n in range(count)),
        "k0",
    ]


class _Text(str):
    """A str subclass: marshal refuses it, so no content key."""

    __slots__ = ()


@pytest.mark.parametrize(
    "make",
    [
        lambda: OrderedDict(roster_dict(agent_dict("o1"))),  # a Mapping, not a dict
        lambda: roster_dict(agent_dict("o1", status=_Text("available"))),  # marshal refuses
    ],
    ids=["mapping", "str-subclass"],
)
def test_a_roster_without_a_content_key_is_parsed_on_every_call(
    client: Client, parses: list[dict[str, Any]], make: Any
) -> None:
    """No key (not a plain dict, or a value marshal does not write): parsed each time, decided."""
    agents = [
        client.decide(case_dict(case_id), make(), now=NOW_TEXT).decision.agent_id
        for case_id in ("O-1", "O-2")
    ]
    assert (len(parses), agents) == (2, ["o1", "o1"])
