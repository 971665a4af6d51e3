"""An instant is RFC 3339 in every JSON-path reader (review R31d 8).

Python 3.11's ``datetime.fromisoformat`` also reads ISO 8601 basic format, week dates, a space
(or any character) for ``T``, hour-only and ``+0100`` offsets and reduced precision, so a
case's ``created_at``, the CLI's ``--now`` and a golden file's ``now`` took shapes the contract
(docs/json.md) does not name. Each is now refused, naming where and the shape wanted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.codec import parse_case, parse_timestamp
from caseroute.domain.errors import FieldViolation, RequestError, RulesetError
from caseroute.rules.golden import load_golden_file
from caseroute.testing import REFERENCE_RULESET, REPO_ROOT, case_data

SHAPE = "an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM"
OTHER_SHAPES = [
    "20261121T090000Z",  # basic format
    "2026-W47-6T09:00:00Z",  # week date
    "2026-325T09:00:00Z",  # ordinal date
    "2026-11-21 09:00:00Z",  # space for T
    "2026-11-21X09:00:00Z",  # any other character for T
    "2026-11-21t09:00:00Z",  # lower-case t (protobuf's parser refuses it too)
    "2026-11-21T09:00:00z",  # lower-case z
    "2026-11-21T09:00Z",  # no seconds
    "2026-11-21T09Z",  # hour only
    "2026-11-21T09:00:00,5Z",  # comma fraction
    "2026-11-21T09:00:00.Z",  # empty fraction
    "2026-11-21T09:00:00+01",  # hour-only offset
    "2026-11-21T09:00:00+0100",  # basic offset
    "2026-11-21T09:00:00+01:00:30",  # seconds in the offset
    "2026-11-21T09:00:00",  # no offset
    "\uff12\uff10\uff12\uff16-11-21T09:00:00Z",  # full-width digits
]


@pytest.mark.parametrize("text", OTHER_SHAPES)
def test_parse_timestamp_takes_only_the_rfc_3339_shape(text: str) -> None:
    """Each other shape Python reads is no instant here."""
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T09:00:00Z", datetime(2026, 11, 21, 9, tzinfo=UTC)),
        ("2026-11-21T10:00:00+01:00", datetime(2026, 11, 21, 9, tzinfo=UTC)),
        ("2026-11-21T09:00:00-00:00", datetime(2026, 11, 21, 9, tzinfo=UTC)),
        ("2026-11-21T09:00:00.5Z", datetime(2026, 11, 21, 9, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-21T09:00:00.123456789Z", datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_keeps_every_documented_form(text: str, expected: datetime) -> None:
    """Z, +HH:MM, -00:00 and a fraction of any length (cut to microseconds) still read."""
    assert expected == parse_timestamp(text)


@pytest.mark.parametrize("text", OTHER_SHAPES)
def test_a_created_at_in_another_shape_is_refused_at_its_field(text: str) -> None:
    """A request field names its path and the shape wanted."""
    with pytest.raises(RequestError) as exc:
        parse_case(case_data(created_at=text))
    assert [
        FieldViolation(
            "case.created_at", f"must be {SHAPE}, e.g. 2026-11-21T09:30:00Z; got {text!r}"
        )
    ] == list(exc.value.violations)


def test_cli_now_in_basic_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`decide --now 20261121T100000Z` exits 2 naming the flag and the shape."""
    code = main(
        [
            "decide",
            "--case",
            str(REPO_ROOT / "examples" / "cases" / "clinical-tx.json"),
            "--roster",
            str(REPO_ROOT / "examples" / "roster.json"),
            "--ruleset",
            str(REFERENCE_RULESET),
            "--now",
            "20261121T100000Z",
        ]
    )
    assert (
        2,
        f"caseroute: --now '20261121T100000Z' is not {SHAPE}; e.g. 2026-11-21T10:00:00Z\n",
    ) == (
        code,
        capsys.readouterr().err,
    )


def test_a_golden_now_with_a_space_is_located(tmp_path: Path) -> None:
    """A golden file's `now` written with a space is `golden.now` at its file:line."""
    path = tmp_path / "g.yaml"
    path.write_text('now: "2026-11-21 10:00:00Z"\ncases: []\n')
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path)
    assert [("golden.now", 1, f'`now` must be {SHAPE}, e.g. "2026-11-21T10:00:00Z"')] == [
        (p.code, p.line, p.message) for p in exc.value.problems
    ]
