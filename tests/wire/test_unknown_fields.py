"""Unknown protobuf fields (a newer or other .proto's field numbers) are refused, never ignored.

Review M6: protobuf keeps a field number its generated code does not define as an unknown
field and reads the message as if it were absent; the JSON path refuses an unknown field. Every
message of a Case or Roster (and a request's envelope) is checked: the fast path doubts it, the
strict path names the message's field path and the number.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from caseroute.domain.case import ContinuityReason, PreferredAgent
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS, VIOLATIONS_PER_LIST
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.testing import NOW, clock, make_agent, make_case, make_roster, reading, skill
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast
from caseroute.wire.unknown_fields import ADVICE

FIELD_99 = bytes([0x98, 0x06, 0x01])
"""Field 99, varint 1: a field no caseroute.v1 message defines."""
FIELD_1_AS_VARINT = bytes([0x08, 0x01])
"""Field 1 with wire type 0 (a varint): for a string field 1, a form protobuf keeps unknown."""


def full_case() -> pb.Case:
    """A valid Case message with every nested message set (each list and map one item)."""
    msg = convert.case_to_proto(
        make_case(
            required_skills=(skill("clinical-triage", 2),),
            sentiment=(reading(-0.2, 3),),
            sla_clocks=(clock("first-response", 30),),
            attributes={"plan": "gold"},
            waiting_since=NOW - timedelta(minutes=4),
            preferred_agents=(
                PreferredAgent("a1", ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=1)),
            ),
        )
    )
    assert convert.case_from_proto(msg) is not None  # valid as built
    return msg


def full_roster() -> pb.Roster:
    """A valid one-agent Roster message with every nested message set."""
    agent = make_agent("a1", last_assigned_at=NOW - timedelta(minutes=9), attributes={"grade": 3})
    msg = convert.roster_to_proto(make_roster(agent))
    assert convert.roster_from_proto(msg) is not None
    return msg


CASE_PATHS = [
    "case",
    "case.created_at",
    "case.required_skills[0]",
    "case.sentiment[0]",
    "case.sentiment[0].at",
    "case.sla_clocks[0]",
    "case.sla_clocks[0].started_at",
    "case.sla_clocks[0].deadline",
    "case.attributes.plan",
    "case.waiting_since",
    "case.preferred_agents[0]",
    "case.preferred_agents[0].last_contact_at",
]
ROSTER_PATHS = [
    "roster",
    "roster.taken_at",
    "roster.agents[0]",
    "roster.agents[0].licences[0]",
    "roster.agents[0].skills[0]",
    "roster.agents[0].capacity",
    "roster.agents[0].last_assigned_at",
    "roster.agents[0].attributes.grade",
]


def nested(msg: Message, path: str) -> Iterator[tuple[str, Message]]:
    """``(path, message)`` for ``msg`` and every message in it, as the server names them."""
    yield path, msg
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        at = f"{path}.{field.name}"
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    yield from nested(item, f"{at}.{key}")
        elif field.is_repeated:
            for i, item in enumerate(value):
                yield from nested(item, f"{at}[{i}]")
        else:
            yield from nested(value, at)


def with_unknown(root: Message, root_path: str, path: str, extra: bytes = FIELD_99) -> Any:
    """A copy of ``root`` whose message at ``path`` also holds ``extra`` (unknown) bytes."""
    copy = type(root)()
    copy.CopyFrom(root)
    dict(nested(copy, root_path))[path].MergeFromString(extra)
    return copy


def message_types(descriptor: Any, seen: set[str] | None = None) -> set[str]:
    """Every message type reachable from ``descriptor`` (map entries stand for their values)."""
    seen = set() if seen is None else seen
    if descriptor.GetOptions().map_entry:
        value = descriptor.fields_by_name["value"].message_type
        return seen if value is None else message_types(value, seen)
    if descriptor.full_name in seen:
        return seen
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.message_type is not None:
            message_types(field.message_type, seen)
    return seen


def test_the_sample_messages_hold_every_nested_message_type() -> None:
    """The messages below carry one of every message type a Case or Roster can hold."""
    case_types = {type(m).DESCRIPTOR.full_name for _, m in nested(full_case(), "case")}
    roster_types = {type(m).DESCRIPTOR.full_name for _, m in nested(full_roster(), "roster")}
    assert (message_types(pb.Case.DESCRIPTOR), message_types(pb.Roster.DESCRIPTOR)) == (
        case_types,
        roster_types,
    )
    assert (
        [p for p, _ in nested(full_case(), "case")],
        [p for p, _ in nested(full_roster(), "roster")],
    ) == (CASE_PATHS, ROSTER_PATHS)


@pytest.mark.parametrize("path", CASE_PATHS)
def test_an_unknown_field_anywhere_in_a_case_is_refused_at_its_message(path: str) -> None:
    """Field 99 on the case or any message in it: the fast path doubts, the strict one names it."""
    msg = with_unknown(full_case(), "case", path)
    with pytest.raises(fast.Doubt):
        fast.case_from_proto(msg, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    name = type(dict(nested(msg, "case"))[path]).DESCRIPTOR.full_name
    assert caught.value.violations == (
        FieldViolation(path, f"has field number 99, which {name} does not define; {ADVICE}"),
    )


@pytest.mark.parametrize("path", ROSTER_PATHS)
def test_an_unknown_field_anywhere_in_a_roster_is_refused_at_its_message(path: str) -> None:
    """Field 99 on the roster, an agent, a licence, a skill, capacity, a Timestamp or a value."""
    msg = with_unknown(full_roster(), "roster", path)
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, DEFAULT_LIMITS)
    if path not in {"roster", "roster.taken_at"}:  # the roster cache's per-agent path
        with pytest.raises(fast.Doubt):
            fast.known_agents_from_proto(msg.agents, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    name = type(dict(nested(msg, "roster"))[path]).DESCRIPTOR.full_name
    assert caught.value.violations == (
        FieldViolation(path, f"has field number 99, which {name} does not define; {ADVICE}"),
    )


def test_a_known_number_sent_in_another_wire_type_is_named_as_that_field() -> None:
    """agent_id (1) sent as a varint is kept unknown by protobuf: refused naming agent_id."""
    msg = with_unknown(full_roster(), "roster", "roster.agents[0]", FIELD_1_AS_VARINT)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    assert caught.value.violations == (
        FieldViolation(
            "roster.agents[0]",
            "has `agent_id` (1) in a form caseroute.v1.Agent does not read (another wire type, "
            f"or a map entry with a field of its own); {ADVICE}",
        ),
    )


def test_a_map_entry_with_a_field_of_its_own_is_refused() -> None:
    """An attributes entry holding field 5: upb keeps the whole entry unknown on the agent."""
    value = pb.AttributeValue(string_value="x").SerializeToString()
    entry = b"\n\x05grade\x12" + bytes([len(value)]) + value + b"\x28\x01"
    tag = (pb.Agent.DESCRIPTOR.fields_by_name["attributes"].number << 3) | 2
    msg = with_unknown(
        full_roster(), "roster", "roster.agents[0]", bytes([tag, len(entry)]) + entry
    )
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    assert [v.field for v in caught.value.violations] == ["roster.agents[0]"]
    assert "`attributes` (12)" in caught.value.violations[0].message


def test_unknown_fields_are_named_beside_the_other_problems() -> None:
    """A case with field 99 and a bad intent: both named in one answer (unknown ones first)."""
    msg = with_unknown(full_case(), "case", "case.required_skills[0]")
    msg.intent = 999
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    assert [v.field for v in caught.value.violations] == ["case.required_skills[0]", "case.intent"]


def test_a_safeguarding_case_refused_for_an_unknown_field_says_so_first() -> None:
    """Only an unknown field wrong, the case carries safeguarding: the notice comes first."""
    msg = with_unknown(full_case(), "case", "case")
    msg.flags.append("safeguarding")
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    assert [
        (v.field, v.message if v.message == SAFEGUARDING_NOTICE else "99")
        for v in caught.value.violations
        if v.message == SAFEGUARDING_NOTICE or "number 99" in v.message
    ] == [("case.flags", SAFEGUARDING_NOTICE), ("case", "99")]
    assert caught.value.violations[0].message == SAFEGUARDING_NOTICE


def test_many_agents_with_unknown_fields_are_capped_with_a_count() -> None:
    """Every agent with field 99: the first few named, the rest counted at the roster."""
    msg = convert.roster_to_proto(make_roster(*(make_agent(f"a{i}") for i in range(8))))
    for agent in msg.agents:
        agent.MergeFromString(FIELD_99)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    fields = [v.field for v in caught.value.violations]
    assert [f"roster.agents[{i}]" for i in range(VIOLATIONS_PER_LIST)] + ["roster"] == fields
    assert caught.value.violations[-1].message.startswith("3 more message(s) with unknown")


def _request(kind: type[Any]) -> Any:
    case = convert.case_to_proto(make_case())
    roster = convert.roster_to_proto(make_roster(make_agent("a1")))
    fields: dict[str, Any] = {"case": case} if kind is pb.DecideRequest else {"cases": [case]}
    return kind(
        request_id="r-1",
        roster=roster,
        now=convert.datetime_to_timestamp(NOW),
        ruleset=pb.RulesetSelector(name="reference"),
        **fields,
    )


@pytest.mark.parametrize("kind", [pb.DecideRequest, pb.DecideBatchRequest])
@pytest.mark.parametrize(
    ("where", "path"), [("", "request"), ("ruleset", "ruleset"), ("now", "now")]
)
def test_an_unknown_field_in_a_request_envelope_is_refused(
    kind: type[Any], where: str, path: str
) -> None:
    """Field 99 on the DecideRequest / DecideBatchRequest itself, its ruleset or its now."""
    msg = _request(kind)
    (getattr(msg, where) if where else msg).MergeFromString(FIELD_99)
    build = convert.decide_command if kind is pb.DecideRequest else convert.batch_command
    with pytest.raises(RequestError) as caught:
        build(msg)
    name = (type(getattr(msg, where)) if where else kind).DESCRIPTOR.full_name
    assert caught.value.violations == (
        FieldViolation(path, f"has field number 99, which {name} does not define; {ADVICE}"),
    )


@pytest.mark.parametrize("kind", [pb.DecideRequest, pb.DecideBatchRequest])
def test_an_unknown_field_in_a_requests_case_or_roster_is_named_by_its_path(
    kind: type[Any],
) -> None:
    """Through the command builders: the case's path (case / cases[0]) and the roster's."""
    msg = _request(kind)
    case = msg.case if kind is pb.DecideRequest else msg.cases[0]
    case.MergeFromString(FIELD_99)
    msg.roster.agents[0].licences[0].MergeFromString(FIELD_99)
    build = convert.decide_command if kind is pb.DecideRequest else convert.batch_command
    with pytest.raises(RequestError) as caught:
        build(msg)
    case_path = "case" if kind is pb.DecideRequest else "cases[0]"
    assert [case_path, "roster.agents[0].licences[0]"] == [v.field for v in caught.value.violations]


def test_the_envelope_messages_checked_shallowly_hold_no_message_field() -> None:
    """RulesetSelector and Timestamp hold only scalars: their own unknown fields are all of it."""
    shallow = [pb.RulesetSelector.DESCRIPTOR, Timestamp.DESCRIPTOR]
    assert [f.name for d in shallow for f in d.fields if f.message_type is not None] == []
    assert [
        pb.DecideRequest.DESCRIPTOR.fields_by_name[name].message_type for name in ("ruleset", "now")
    ] == shallow


def test_a_message_with_many_unknown_numbers_lists_a_few_and_counts_the_rest() -> None:
    """Fields 100-139 on one agent: the first five numbers named, 35 more counted."""
    msg = full_roster()
    for number in range(100, 140):  # each tag (number << 3, a varint) is two bytes here
        tag = number << 3
        msg.agents[0].MergeFromString(bytes([tag & 0x7F | 0x80, tag >> 7, 1]))
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg)
    assert caught.value.violations == (
        FieldViolation(
            "roster.agents[0]",
            "has field numbers 100, 101, 102 and 37 more, which caseroute.v1.Agent "
            f"does not define; {ADVICE}",
        ),
    )


class _Found:
    """An unknown field as ``UnknownFieldSet`` yields it: only its number is read."""

    def __init__(self, number: int) -> None:
        self.field_number = number


def _every_message() -> Iterator[Any]:
    import importlib
    import pkgutil

    from caseroute import v1

    def walk(messages: Any) -> Iterator[Any]:
        for message in messages:
            yield message
            yield from walk(message.nested_types)

    for module in pkgutil.iter_modules(v1.__path__):
        if module.name.endswith("_pb2"):
            loaded = importlib.import_module(f"caseroute.v1.{module.name}")
            yield from walk(loaded.DESCRIPTOR.message_types_by_name.values())


def test_the_advice_survives_the_served_clip_on_every_message() -> None:
    """Worst case per message, unknown numbers and known fields in another form: advice whole.

    A served violation is clipped to ``MAX_DESCRIPTION_BYTES``; the advice came last and was
    cut mid-sentence when known fields were listed (noticed in stop 38).
    """
    from caseroute.grpc_api.status import MAX_DESCRIPTION_BYTES
    from caseroute.wire.unknown_fields import _words

    class Shaped:
        def __init__(self, descriptor: Any) -> None:
            self.DESCRIPTOR = descriptor

    worst = 0
    for descriptor in _every_message():
        longest = sorted(descriptor.fields, key=lambda f: -len(f"`{f.name}` ({f.number})"))
        found = [_Found(f.number) for f in longest[:9]]
        found += [_Found(536_870_000 + n) for n in range(9)]  # 9-digit numbers, none defined
        text = _words(Shaped(descriptor), found)  # type: ignore[arg-type]
        worst = max(worst, len(text.encode()))
        assert text.endswith(ADVICE), text
    assert worst <= MAX_DESCRIPTION_BYTES, worst
