"""build_records takes the request's canonical case dicts instead of building them again."""

from pathlib import Path

from caseroute.audit.config import AuditConfig
from caseroute.audit.recorder import RequestFacts, build_records
from caseroute.domain.fingerprint import case_to_dict, roster_sha256
from caseroute.engine.decide import decide
from caseroute.testing import (
    NOW,
    TEST_AUDIT_KEY,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)


def test_records_from_given_case_dicts_equal_records_built_here(tmp_path: Path) -> None:
    """Same records with the caller's dicts as without; the dicts stay unmasked (mask copies)."""
    masker = AuditConfig(db=tmp_path / "audit.db", key_hex=TEST_AUDIT_KEY).masker()
    loaded = reference_ruleset()
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    cases = [
        make_case(case_id="C1", attributes={"patient_name": "Ada Lovelace"}),
        make_case(case_id="C2"),
    ]
    decisions = [decide(case, roster, loaded, NOW) for case in cases]
    facts = RequestFacts("r1", "0" * 64, "", "2026-11-21T10:00:00Z")
    dicts = [case_to_dict(case) for case in cases]
    given = build_records(
        facts, loaded.compiled, cases, roster, decisions, masker, case_dicts=dicts
    )
    built = build_records(facts, loaded.compiled, cases, roster, decisions, masker)
    assert built == given
    assert [case_to_dict(case) for case in cases] == dicts
    assert masker.digest("Ada Lovelace") == given[0].input["case"]["attributes"]["patient_name"]
    assert roster_sha256(roster) == given[1].input["roster"]["sha256"]
