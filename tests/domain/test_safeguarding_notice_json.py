"""A JSON case the strict reader refuses still gets the safeguarding notice when flagged.

``json_source`` refuses a repeated key, ``NaN`` or an overflowing number before ``parse_case``
runs, and the notice was only ever added by ``parse_case``: ``{"flags": ["safeguarding"],
"flags": []}``, or any other key given twice in a flagged case, was refused with no word that
the case was a safeguarding concern. The notice is now read from every copy of every key.
"""

from __future__ import annotations

import json
from functools import partial

import pytest

from caseroute.domain.errors import FieldViolation
from caseroute.domain.json_source import JsonSourceError, parse_json_bytes, readings
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE, json_refusal_notices
from caseroute.testing import case_data

NOTICE = FieldViolation("case.flags", SAFEGUARDING_NOTICE)


def _case_text(**fields: object) -> str:
    """A valid case's JSON without its closing brace, ``fields`` changed (flags unset)."""
    data = case_data(**fields)
    data.pop("flags", None)
    return json.dumps(data)[:-1]


def _refused_case(text: str, flags: frozenset[str] = frozenset()) -> list[FieldViolation]:
    """The violations of a case document the strict reader refuses."""
    notices = partial(json_refusal_notices, request=False, safeguarding_flags=flags)
    with pytest.raises(JsonSourceError) as caught:
        parse_json_bytes(text.encode(), root="case", source="c.json", refusal_notices=notices)
    return list(caught.value.violations)


@pytest.mark.parametrize(
    "tail",
    [
        ', "flags": ["safeguarding"], "flags": []}',  # the flag in the copy that was dropped
        ', "flags": [], "flags": ["safeguarding"]}',  # the flag in the copy that was kept
        ', "flags": ["vip"], "flags": "Safeguarding"}',  # a malformed copy that reads as it
        ', "flags": ["safeguarding"], "case_id": "again"}',  # another key given twice
        ', "flags": ["safeguarding"], "classification_confidence": NaN}',  # not a number
        ', "flags": ["safeguarding"], "attributes": {"x": 1, "x": 2}}',  # nested duplicate
    ],
)
def test_a_flagged_case_refused_by_the_json_reader_gets_the_notice_first(tail: str) -> None:
    """The notice comes first, and the reader's own refusal is still given after it."""
    violations = _refused_case(_case_text() + tail)
    assert violations[0] == NOTICE
    assert len(violations) == 2
    assert "c.json" in violations[1].message


def test_a_ruleset_s_own_flag_gets_the_notice_too() -> None:
    """A duplicate key in a case flagged with the ruleset's own safeguarding flag."""
    text = _case_text() + ', "flags": ["sg_concern"], "flags": []}'
    assert _refused_case(text, frozenset({"sg_concern"}))[0] == NOTICE


@pytest.mark.parametrize(
    "tail",
    [', "flags": ["vip"], "flags": []}', ', "flags": ["vip"], "case_id": "again"}'],
)
def test_an_unflagged_case_refused_by_the_json_reader_gets_no_notice(tail: str) -> None:
    """The control: the notice is not given to every refused document."""
    assert SAFEGUARDING_NOTICE not in [v.message for v in _refused_case(_case_text() + tail)]


def _refused_request(text: str) -> list[FieldViolation]:
    """The violations of a request document the strict reader refuses."""
    notices = partial(json_refusal_notices, request=True)
    with pytest.raises(JsonSourceError) as caught:
        parse_json_bytes(
            text.encode(),
            root="request",
            source="r.json",
            members_under_root=False,
            refusal_notices=notices,
        )
    return list(caught.value.violations)


def test_a_request_whose_dropped_case_copy_is_flagged_gets_the_notice() -> None:
    """`case` given twice: the flagged copy a plain JSON reader would drop still counts."""
    flagged = json.dumps(case_data(flags=["safeguarding"]))
    plain = json.dumps(case_data(flags=[]))
    violations = _refused_request(f'{{"case": {flagged}, "case": {plain}, "roster": {{}}}}')
    assert violations[0] == NOTICE


def test_a_batch_names_the_flagged_case_s_position() -> None:
    """In a batch the notice is at the flagged case's own path, once per case."""
    flagged = _case_text() + ', "flags": ["safeguarding"], "flags": []}'
    plain = json.dumps(case_data(flags=[]))
    violations = _refused_request(f'{{"cases": [{plain}, {flagged}], "roster": {{}}}}')
    assert [FieldViolation("cases[1].flags", SAFEGUARDING_NOTICE)] == [
        v for v in violations if v.message == SAFEGUARDING_NOTICE
    ]
    assert violations[0].message == SAFEGUARDING_NOTICE


def test_readings_lists_every_copy_of_a_key_in_document_order() -> None:
    """`readings` gives the copies a repeated key replaced, then the one kept."""
    assert readings(json.loads('{"a": 0}'), "a") == [0]
    assert readings(json.loads('{"a": 0}'), "b") == []
    assert readings([1], "a") == []
    with pytest.raises(JsonSourceError) as caught:
        parse_json_bytes(
            b'{"a": 1, "a": 2, "a": 3}',
            root="case",
            source="c.json",
            refusal_notices=lambda doc: [FieldViolation("seen", str(readings(doc, "a")))],
        )
    assert FieldViolation("seen", "[1, 2, 3]") == caught.value.violations[0]


def test_a_request_whose_cases_is_no_list_has_no_case_to_read() -> None:
    """``cases`` given as something other than a list (in any copy): no case, no notice."""
    from caseroute.domain.safeguarding_notice import json_refusal_notices

    assert json_refusal_notices({"cases": "safeguarding"}, request=True) == []


def test_a_broken_file_spelling_the_flag_in_escapes_gets_the_notice() -> None:
    """Single escapes and surrogate pairs are decoded before the flag is looked for."""
    from caseroute.domain.safeguarding_notice import unreadable_json_notices

    text = '{"note": "\\ud83d\\ude00", "flags": ["\\u0073afeguarding"],}'
    assert [v.field for v in unreadable_json_notices(text, root="case")] == ["case"]
    assert unreadable_json_notices('{"note": "\\ud83d\\ude00",}', root="case") == []
