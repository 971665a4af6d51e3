"""The reply's instants are filled by datetime arithmetic: the same seconds and nanos as before."""

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from caseroute.engine.decide import decide
from caseroute.testing import NOW, make_case, make_roster, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.convert import datetime_to_timestamp, decision_to_proto

OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
INSTANTS = st.datetimes(  # hypothesis takes naive bounds and adds the zones itself
    min_value=datetime(2, 1, 1),  # noqa: DTZ001
    max_value=datetime(9998, 12, 30),  # noqa: DTZ001
    timezones=OFFSETS,
)


def _from_datetime(value: datetime) -> Timestamp:
    """What the converter did before: protobuf's own FromDatetime of the UTC instant."""
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


@given(INSTANTS)
def test_datetime_to_timestamp_equals_from_datetime(value: datetime) -> None:
    """Any aware instant (any offset, before 1970 too) converts to FromDatetime's message."""
    assert _from_datetime(value) == datetime_to_timestamp(value)


def test_known_instants_convert_exactly() -> None:
    """The epoch, a pre-epoch instant with microseconds and an offset instant, by value."""
    cases = [
        (datetime(1970, 1, 1, tzinfo=UTC), (0, 0)),
        (datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), (-1, 500_000_000)),
        (
            datetime(2026, 11, 21, 11, 30, 0, 7, tzinfo=timezone(timedelta(hours=2))),
            (1795253400, 7000),
        ),
    ]
    assert [expected for _, expected in cases] == [
        (datetime_to_timestamp(value).seconds, datetime_to_timestamp(value).nanos)
        for value, _ in cases
    ]


def test_naive_instant_is_read_as_local_time_as_before() -> None:
    """A naive datetime (the Python API allows it) converts as astimezone read it: local time."""
    value = datetime(2026, 11, 21, 9, 30, 15, 250)  # noqa: DTZ001 - naive on purpose
    assert _from_datetime(value) == datetime_to_timestamp(value)


def test_decision_reply_instants_equal_from_datetime() -> None:
    """A decision's explanation instant fills the reply as FromDatetime filled it."""
    decision = decide(make_case(), make_roster(), reference_ruleset(), NOW)
    msg: pb.Decision = decision_to_proto(decision)
    assert _from_datetime(NOW) == msg.explanation.now
