"""A Masker whose paths mask the case whole: the record keeps one digest (text) as its case."""

from caseroute.audit.masking import Masker
from caseroute.audit.recorder import RequestFacts, build_records
from caseroute.domain.fingerprint import canonical_json, case_to_dict
from caseroute.engine.decide import decide
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset

KEY = bytes(range(32))


def test_a_case_masked_whole_is_recorded_as_its_digest_text() -> None:
    """Masked paths ("case",): input.case is the digest of the whole case dict (a str)."""
    loaded = reference_ruleset()
    roster = make_roster(make_agent("a1"))
    case = make_case(case_id="C1", attributes={"patient_name": "Ada Lovelace"})
    clear = case_to_dict(case)
    masker = Masker(KEY, ("case",))
    (record,) = build_records(
        RequestFacts("r1", "0" * 64, "", "2026-11-21T10:00:00Z"),
        loaded.compiled,
        [case],
        roster,
        [decide(case, roster, loaded, NOW)],
        masker,
        case_dicts=[clear],
        case_texts=[canonical_json(clear)],
    )
    assert record.input["case"] == masker.digest(clear)
    assert "Ada Lovelace" not in canonical_json(record.input)
