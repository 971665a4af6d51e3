"""Edges of request parsing: full-string patterns, flag normalisation, strict JSON files."""

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.config import check_masked_fields
from caseroute.cli import main
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.decision import Outcome
from caseroute.domain.errors import ConfigError, FieldViolation
from caseroute.domain.fingerprint import case_to_dict
from caseroute.domain.json_source import JsonSourceError, parse_json_bytes
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.engine.decide import decide
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    REPO_ROOT,
    agent_data,
    case_data,
    reference_ruleset,
    request_violations,
    roster_data,
)

ROSTER_FILE = REPO_ROOT / "examples" / "roster.json"


_case = partial(case_data, region="US-TX")  # the reference ruleset routes by region


def _outcome(case_data: dict[str, Any]) -> tuple[Outcome, str, str | None]:
    roster = parse_roster(json.loads(ROSTER_FILE.read_text()))
    decision = decide(parse_case(case_data), roster, reference_ruleset(), NOW)
    return decision.outcome, decision.queue, decision.agent_id


# --- Item 1: every pattern matches the whole string ------------------------------------------

CODE_HINT = " (letters, digits and _ . : / -, starting with a letter or digit)"


@pytest.mark.parametrize(
    ("data", "parse", "field"),
    [
        (roster_data(agent_data("a1\n")), parse_roster, "roster.agents[0].agent_id"),
        (_case(region="US-TX\n"), parse_case, "case.region"),
        (
            _case(required_skills=[{"name": "triage\n", "min_level": 1}]),
            parse_case,
            "case.required_skills[0].name",
        ),
        (
            _case(
                sla_clocks=[
                    {"name": "rtt\n", "started_at": NOW.isoformat(), "deadline": NOW.isoformat()}
                ]
            ),
            parse_case,
            "case.sla_clocks[0].name",
        ),
        (
            roster_data(agent_data(territories=["US-TX\n"])),
            parse_roster,
            "roster.agents[0].territories[0]",
        ),
        (roster_data(agent_data(teams=["south\n"])), parse_roster, "roster.agents[0].teams[0]"),
        (
            roster_data(agent_data(skills=[{"name": "triage\n", "level": 1}])),
            parse_roster,
            "roster.agents[0].skills[0].name",
        ),
        (
            roster_data(
                agent_data(
                    licences=[{"type": "RN\n", "jurisdiction": "US-TX", "expires_on": "2030-01-01"}]
                )
            ),
            parse_roster,
            "roster.agents[0].licences[0].type",
        ),
    ],
)
def test_code_with_a_trailing_newline_is_rejected(data: object, parse: Any, field: str) -> None:
    """A code (CODE_RE) that only matches up to a final newline is invalid, naming the field."""
    assert [field] == [v.field for v in request_violations(data, parse)]


def test_agent_id_with_trailing_newline_message() -> None:
    """The violation quotes the bad id and says what a valid code looks like."""
    violations = request_violations(roster_data(agent_data("a1\n")), parse_roster)
    assert [
        FieldViolation("roster.agents[0].agent_id", f"'a1\\n' is not a valid identifier{CODE_HINT}")
    ] == violations


def test_attribute_key_with_trailing_newline_is_rejected() -> None:
    """An attribute key (ATTRIBUTE_KEY_RE) with a final newline is invalid: never stored."""
    violations = request_violations(_case(attributes={"patient_name\n": "Ann"}))
    assert [
        FieldViolation(
            "case.attributes['patient_name\\n']",
            "'patient_name\\n' is not a valid attribute name (lower_snake_case: a-z, 0-9 and _, "
            "not starting with a digit)",
        )
    ] == violations


def test_agent_attribute_key_with_trailing_newline_is_rejected() -> None:
    """Agent attribute keys are held to the same full-string pattern."""
    violations = request_violations(
        roster_data(agent_data(attributes={"grade\n": 1})), parse_roster
    )
    assert [v.field for v in violations] == ["roster.agents[0].attributes['grade\\n']"]


def test_jurisdiction_and_language_are_trimmed_before_the_full_string_check() -> None:
    """JURISDICTION_RE and LANGUAGE_RE see trimmed text: a trailing newline is dropped, not kept."""
    case = parse_case(_case(patient_location="US-TX\n", preferred_language="en\n"))
    assert (case.patient_location, case.preferred_language) == ("US-TX", "en")


def test_jurisdiction_with_inner_newline_is_rejected() -> None:
    """A newline inside a jurisdiction is not trimmed away and fails the full-string pattern."""
    violations = request_violations(_case(patient_location="US\n-TX"))
    assert [v.field for v in violations] == ["case.patient_location"]


def test_licence_jurisdiction_language_list_item_with_newline_inside_is_rejected() -> None:
    """Agent licence jurisdictions and languages use the same full-string patterns."""
    agent = agent_data(
        licences=[{"type": "RN", "jurisdiction": "US-T\nX", "expires_on": "2030-01-01"}],
        languages=["e\nn"],
    )
    violations = request_violations(roster_data(agent), parse_roster)
    assert [v.field for v in violations] == [
        "roster.agents[0].licences[0].jurisdiction",
        "roster.agents[0].languages[0]",
    ]


def test_masked_field_path_with_trailing_newline_is_rejected() -> None:
    """The audit masked-field path pattern matches the whole string (no final newline)."""
    with pytest.raises(ConfigError):
        check_masked_fields(("case.attributes.notes\n",))


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_that_overflows_utc_is_invalid_not_a_crash(stamp: str) -> None:
    """An instant at the edge of the calendar that cannot be put in UTC is a field error."""
    violations = request_violations(_case(created_at=stamp))
    assert [v.field for v in violations] == ["case.created_at"]


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_a_huge_integer_is_out_of_range_not_a_crash(value: int) -> None:
    """An integer too big for a float is a range violation (no OverflowError)."""
    violations = request_violations(_case(classification_confidence=value, attributes={"n": value}))
    assert violations == [
        FieldViolation(
            "case.classification_confidence",
            "must be a finite number within ±1e+15, got an integer too large to show",
        ),
        FieldViolation(
            "case.attributes.n",
            "must be a number within ±1e+15 (or a string or boolean), got one beyond that; its "
            "value is not quoted (attribute values may be patient data): send an identifier as "
            "a string",
        ),
    ]


def test_an_attribute_text_with_a_lone_surrogate_is_invalid() -> None:
    """Text that cannot be encoded as UTF-8 is refused (it would break hashing and storage)."""
    violations = request_violations(_case(attributes={"notes": "a\ud800b"}))
    assert violations == [
        FieldViolation(
            "case.attributes.notes", "must be valid Unicode text (it holds an unpaired surrogate)"
        )
    ]


def test_an_attribute_text_holding_a_nul_is_invalid() -> None:
    """A NUL means no text; PostgreSQL's jsonb cannot hold it, so an auditor's query failed."""
    violations = request_violations(_case(attributes={"notes": "a\x00b"}))
    assert violations == [
        FieldViolation(
            "case.attributes.notes",
            "must not hold a NUL character (U+0000), which no text means; remove it",
        )
    ]


def test_case_id_with_control_characters_is_rejected() -> None:
    """Identifiers carry no control characters (a newline or escape could forge log lines)."""
    violations = request_violations(_case(case_id="C1\n\x1b[31m"))
    assert [
        FieldViolation(
            "case.case_id",
            "must not contain control or invisible formatting characters; got 'C1\\n\\x1b[31m'",
        )
    ] == violations


# --- Item 2: flags are normalised on input ----------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "safeguarding\n",
        "Safeguarding",
        " SAFEGUARDING ",
        "\uff53\uff41\uff46\uff45\uff47\uff55\uff41\uff52\uff44\uff49\uff4e\uff47",  # fullwidth
        "\u017fafeguarding",  # long s: NFKC folds it to "s"
    ],
)
def test_any_spelling_of_the_safeguarding_flag_escalates(spelling: str) -> None:
    """Case, surrounding whitespace and compatibility forms cannot hide the safeguarding flag."""
    assert _outcome(_case(flags=[spelling])) == (Outcome.ESCALATE, "safeguarding", None)


@pytest.mark.parametrize(
    "spelling", ["Consent_Missing", " consent_missing ", "CONSENT_MISSING\t", "consent-missing"]
)
def test_any_spelling_of_the_consent_flag_blocks_assignment(spelling: str) -> None:
    """A differently spelled consent flag still means: assign to nobody."""
    data = _case(intent="clinical", patient_location="US-TX", flags=[spelling])
    assert _outcome(data) == (Outcome.QUEUE, "clinical", None)


def test_the_consent_case_is_assigned_without_the_flag() -> None:
    """Control for the consent test: the same case without the flag is assigned."""
    data = _case(intent="clinical", patient_location="US-TX")
    assert _outcome(data) == (Outcome.ASSIGN, "clinical", "nurse-tx-02")


def test_flags_are_normalised_and_deduplicated_deterministically() -> None:
    """Spellings of one flag collapse to one lower-case flag; the canonical form is sorted."""
    case = parse_case(_case(flags=["VIP", " vip", "vip", "Safeguarding"]))
    assert frozenset({"vip", "safeguarding"}) == case.flags
    assert case_to_dict(case)["flags"] == ["safeguarding", "vip"]


@pytest.mark.parametrize(
    "flag",
    [
        "safe guarding",
        "s\u0430feguarding",  # Cyrillic a: a confusable that NFKC does not fold
        "",
        "   ",
        "safeguarding\u200b",  # zero-width space
    ],
)
def test_a_flag_that_is_no_valid_token_after_normalisation_is_invalid(flag: str) -> None:
    """Anything that does not normalise to a flag token is INVALID_ARGUMENT at case.flags[i].

    One that is ``safeguarding`` but for a space or an invisible character gets the
    safeguarding notice first (tests/domain/test_safeguarding_notice_malformed.py).
    """
    violations = request_violations(_case(flags=["vip", flag]))
    notice = ["case.flags"] if flag in ("safe guarding", "safeguarding\u200b") else []
    assert [*notice, "case.flags[1]"] == [v.field for v in violations]


def test_flag_violation_message_says_what_a_flag_is() -> None:
    """The flag message quotes the value and states the normalisation rule."""
    violations = request_violations(_case(flags=["safe guarding"]))
    assert [
        FieldViolation("case.flags", SAFEGUARDING_NOTICE),
        FieldViolation(
            "case.flags[0]",
            "'safe guarding' is not a valid flag (a flag is lower-case letters, digits and "
            "_ . : /, starting with a letter or digit; a case's flags are trimmed, lower-cased and "
            "have - folded to _ first)",
        ),
    ] == violations


# --- Item 4: a flagged case with invalid data is refused, never routed -------------------------


def test_safeguarding_case_with_invalid_data_is_refused_with_a_notice_first() -> None:
    """INVALID_ARGUMENT (nothing assigned); the first violation tells a human it was not routed."""
    violations = request_violations(
        _case(flags=["safeguarding"], urgency="soon", created_at="today")
    )
    assert [
        FieldViolation("case.flags", SAFEGUARDING_NOTICE),
        FieldViolation(
            "case.created_at",
            "must be an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or "
            "+HH:MM / -HH:MM, e.g. 2026-11-21T09:30:00Z; got 'today'",
        ),
        FieldViolation(
            "case.urgency",
            "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got 'soon'",
        ),
    ] == violations


def test_a_case_without_safeguarding_gets_no_notice() -> None:
    """The notice is only for flagged cases; other invalid cases list just their fields."""
    violations = request_violations(_case(flags=["vip"], urgency="soon"))
    assert [v.field for v in violations] == ["case.urgency"]


# --- Item 3: JSON files are strict -------------------------------------------------------------


def test_duplicate_key_is_rejected_naming_its_path() -> None:
    """A repeated key (which would silently drop the first value) is an error at its JSON path."""
    text = b'{"case_id": "C1", "flags": ["safeguarding"], "flags": []}'
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(text, root="case", source="case.json")
    assert [
        FieldViolation(
            "case.flags",
            "duplicate key in case.json; give each key once (a JSON reader would silently keep "
            "only the last value)",
        )
    ] == list(exc.value.violations)


def test_nested_duplicate_keys_are_each_named() -> None:
    """Duplicates deep inside lists and objects are found and named by path."""
    text = b'{"agents": [{"agent_id": "a"}, {"capacity": {"max": 1, "max": 9}}], "agents": []}'
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(text, root="roster", source="r.json")
    assert [v.field for v in exc.value.violations] == [
        "roster.agents",
        "roster.agents[1].capacity.max",
    ]


@pytest.mark.parametrize(
    ("text", "field", "literal"),
    [
        (b'{"classification_confidence": NaN}', "case.classification_confidence", "NaN"),
        (b'{"sentiment": [{"score": -Infinity}]}', "case.sentiment[0].score", "-Infinity"),
        (b'{"attributes": {"x": 1e999}}', "case.attributes.x", "1e999"),
    ],
)
def test_non_finite_numbers_are_rejected(text: bytes, field: str, literal: str) -> None:
    """NaN / Infinity literals and overflowing numbers are errors naming the path."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(text, root="case", source="c.json")
    assert [
        FieldViolation(
            field,
            f"{literal} in c.json is not a finite number; JSON has no NaN or Infinity: "
            "send a number",
        )
    ] == list(exc.value.violations)


def test_huge_integer_literal_is_rejected_not_crashing() -> None:
    """An integer of thousands of digits is a clear error, not Python's int-size ValueError."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b'{"n": ' + b"9" * 5000 + b"}", root="case", source="c.json")
    assert [v.field for v in exc.value.violations] == ["case.n"]


def test_syntax_error_names_file_line_and_column() -> None:
    """Invalid JSON is reported at file:line:col."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b'{\n  "case_id": "x",\n}', root="case", source="c.json")
    assert [
        FieldViolation(
            "case",
            "c.json:3:1: case file is not valid JSON: "
            "Expecting property name enclosed in double quotes",
        )
    ] == list(exc.value.violations)


def test_invalid_utf8_is_reported_with_its_offset() -> None:
    """Bytes that are not UTF-8 are an error with the byte offset, not a UnicodeDecodeError."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b'{"case_id": "\xff"}', root="case", source="c.json")
    assert [
        FieldViolation(
            "case", "c.json: not UTF-8 text (invalid byte at offset 13); save it as UTF-8"
        )
    ] == list(exc.value.violations)


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    """A document nested beyond the parser's depth is a clear error."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b"[" * 100_000, root="case", source="c.json")
    assert [
        FieldViolation(
            "case", "c.json: nested too deeply to read; a case or roster is a few levels deep"
        )
    ] == list(exc.value.violations)


def _write_case(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.json"
    path.write_text(text)
    return path


def test_cli_decide_refuses_a_case_file_with_a_duplicate_flags_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`decide --case` exits 2 naming case.flags and the file, after the safeguarding notice."""
    data = json.dumps(_case(flags=["safeguarding"]))[:-1] + ', "flags": []}'
    path = _write_case(tmp_path, data)
    code = main(
        [
            "decide",
            "--case",
            str(path),
            "--roster",
            str(ROSTER_FILE),
            "--ruleset",
            str(REFERENCE_RULESET),
        ]
    )
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert (
        "caseroute: invalid request (2 problem(s)):\n"
        f"  - case.flags: {SAFEGUARDING_NOTICE}\n"
        f"  - case.flags: duplicate key in {path}; give each key once (a JSON reader would "
        "silently keep only the last value)\n"
    ) == captured.err


def test_cli_decide_reports_a_non_utf8_file_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A binary case file is a usage error, not a traceback."""
    path = tmp_path / "case.json"
    path.write_bytes(b"\xff\xfe{}")
    code = main(["decide", "--case", str(path), "--roster", str(ROSTER_FILE)])
    assert code == 2
    assert (
        "caseroute: invalid request (1 problem(s)):\n"
        f"  - case: {path}: not UTF-8 text (invalid byte at offset 0); save it as UTF-8\n"
    ) == capsys.readouterr().err


def test_nesting_past_64_levels_is_refused_even_when_python_could_read_it() -> None:
    """The documented depth bound holds below Python's own recursion limit too."""
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b"[" * 65 + b"]" * 65, root="case", source="c.json")
    assert list(exc.value.violations) == [
        FieldViolation(
            "case", "c.json: nested too deeply to read; a case or roster is a few levels deep"
        )
    ]


def test_a_valid_file_reads_exactly_as_plain_json() -> None:
    """Strict reading changes nothing for a valid document (64 levels are fine)."""
    data = ROSTER_FILE.read_bytes()
    assert parse_json_bytes(data, root="roster", source="r.json") == json.loads(data)
    deep = b"[" * 64 + b"]" * 64
    assert parse_json_bytes(deep, root="case", source="c.json") == json.loads(deep)


def test_many_duplicate_keys_give_a_capped_list_and_a_count() -> None:
    """Thousands of repeated keys: 20 violations named, then one line counting the rest."""
    pairs = b",".join(b'"k%d": 1, "k%d": 2' % (i, i) for i in range(1_000))
    with pytest.raises(JsonSourceError) as exc:
        parse_json_bytes(b"{" + pairs + b"}", root="case", source="c.json")
    violations = list(exc.value.violations)
    assert [v.field for v in violations] == [f"case.k{i}" for i in range(20)] + ["case"]
    assert violations[-1] == FieldViolation(
        "case", "980 more problem(s) in c.json not shown; fix these first"
    )
