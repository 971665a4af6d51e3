"""A record's input text is built from the request's case text, and equals encoding it again."""

from typing import Any

import pytest

from caseroute.audit.masking import Masker
from caseroute.audit.record import encode_record, hashed_text, with_input_text
from caseroute.audit.recorder import RequestFacts, build_records, masked_case_text
from caseroute.domain.fingerprint import canonical_json, case_to_dict
from caseroute.engine.decide import decide
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset

KEY = bytes(range(32))
FACTS = RequestFacts("r1", "0" * 64, "", "2026-11-21T10:00:00Z")
PHI = {"patient_name": "Ada Lovelace", "mrn": 12345678, "note": "é ünïcode"}


def _records(masker: Masker, *, texts: bool) -> list[Any]:
    loaded = reference_ruleset()
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    cases = [
        make_case(case_id="C1", attributes=PHI, patient_location="US-NY"),
        make_case(case_id="C2"),
    ]
    decisions = [decide(case, roster, loaded, NOW) for case in cases]
    dicts = [case_to_dict(case) for case in cases]
    return build_records(
        FACTS,
        loaded.compiled,
        cases,
        roster,
        decisions,
        masker,
        case_dicts=dicts,
        case_texts=[canonical_json(d) for d in dicts] if texts else None,
    )


@pytest.mark.parametrize(
    "paths",
    [
        ("case.attributes.patient_name", "case.attributes.mrn"),  # under attributes: spliced
        ("case.attributes.*",),
        ("case.patient_location", "case.attributes.mrn"),  # outside: encoded again
        ("case",),  # the whole case a digest: encoded again
    ],
)
def test_records_store_the_same_texts_with_and_without_the_case_texts(
    paths: tuple[str, ...],
) -> None:
    """Every record's hashed text is the same whether the case texts are given or not."""
    masker = Masker(KEY, paths)
    given = _records(masker, texts=True)
    built = _records(masker, texts=False)
    assert built == given
    assert [hashed_text(encode_record(r), 1) for r in built] == [
        hashed_text(encode_record(r), 1) for r in given
    ]
    assert [canonical_json(r.content() | {"seq": 1}) for r in built] == [
        hashed_text(encode_record(r), 1) for r in given
    ]


def test_given_case_texts_attach_the_input_text_when_only_attributes_are_masked() -> None:
    """Attributes-only masking: each record carries exactly ``canonical_json(input)``."""
    records = _records(Masker(KEY, ("case.attributes.mrn",)), texts=True)
    assert [canonical_json(r.input) for r in records] == [r._input_text for r in records]
    assert [r.case_id for r in records] == ["C1", "C2"]


def test_masking_outside_the_attributes_attaches_no_input_text() -> None:
    """A masked location changes the case's text elsewhere: the record is encoded whole."""
    records = _records(Masker(KEY, ("case.patient_location",)), texts=True)
    assert [getattr(r, "_input_text", None) for r in records] == [None, None]


def test_encode_record_uses_the_attached_input_text() -> None:
    """``encode_record`` takes the attached text as the input's (its maker vouches for it)."""
    record = _records(Masker(KEY, ("case.attributes.mrn",)), texts=False)[0]
    with_input_text(record, '{"case":{},"roster":{}}')
    encoded = encode_record(record)
    assert encoded.input_text == '{"case":{},"roster":{}}'
    assert ',"input":{"case":{},"roster":{}},' in encoded.head


def _clear() -> dict[str, Any]:
    return case_to_dict(make_case(attributes=PHI))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.pop("case_id"), None),  # a key fewer
        (lambda m: m.update(case_id=m.pop("case_id")), "same"),  # same values, other order
        (lambda m: m.update(region="EU"), None),  # a key more
        (lambda m: m.update(tier="x"), None),  # another value outside the attributes
        (lambda m: m.update(flags=list(m["flags"])), None),  # an equal copy is not trusted
        (lambda m: m["attributes"].update(mrn="mask:x"), "masked"),
    ],
)
def test_masked_case_text_splices_only_when_nothing_but_the_attributes_differ(
    change: Any, expected: str | None
) -> None:
    """The splice equals canonical_json of the masked case; anything else gives None."""
    clear = _clear()
    masked = dict(clear, attributes=dict(clear["attributes"]))
    change(masked)
    text = masked_case_text(canonical_json(clear), clear, masked)
    assert (None if expected is None else canonical_json(masked)) == text
    if expected == "masked":
        assert '"mrn":"mask:x"' in (text or "")


def test_masked_case_text_refuses_a_digest_a_case_without_attributes_and_a_foreign_text() -> None:
    """Not a dict, no ``attributes`` key, or a text that is not the clear case's: None."""
    clear = _clear()
    no_attributes = {k: v for k, v in clear.items() if k != "attributes"}
    masked = dict(clear, attributes={})
    assert masked_case_text(canonical_json(clear), clear, "mask:abc") is None
    assert (
        masked_case_text(canonical_json(no_attributes), no_attributes, dict(no_attributes)) is None
    )
    assert masked_case_text('{"case_id":"x"}', clear, masked) is None
