"""One fingerprint home: the hash definitions as recorded before, computed once per request."""

import subprocess
import sys
from dataclasses import fields

import pytest

from caseroute.domain import fingerprint
from caseroute.domain.roster import Agent, Capacity, Role, Roster
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.service import DecideCommand, RoutingCore, request_decision_id, request_sha256
from caseroute.testing import NOW, make_agent, make_case, make_roster

ROSTER = make_roster(
    make_agent("a1"), make_agent("a2", capacity=Capacity(5, 3)), make_agent("s1", role=Role.SENIOR)
)
# Computed by the code before this change (commit acbffce): old records must keep verifying,
# replaying and answering idempotent retries, so the definitions may not move.
ROSTER_SHA256 = "332240d698a2217d8023f64bf30b572e90086f90080be92c9158f51e09477559"
INPUT_SHA256 = "f75dd4ef6ee91cf1833b804f976af97df7ae774e47a8881b378d1185cae41370"
REQUEST_SHA256 = "2fa58a365ff46f8b014297b5a92aa4763904fa9ad7423e3b325428f0d26e492f"
REQUEST_SHA256_UNPINNED = "c29ef1e18f1fb3646f8025cf25ba0ae3089817fec035f4b2bb6190d0e6f27a9f"


def test_the_roster_hash_is_the_one_recorded_before() -> None:
    """roster_sha256, its fingerprint and the stored-form hash all give the old value."""
    stored = fingerprint.roster_dict_sha256(fingerprint.roster_to_dict(ROSTER))
    assert (
        fingerprint.roster_sha256(ROSTER),
        fingerprint.fingerprint_roster(ROSTER).sha256,
        stored,
    ) == (ROSTER_SHA256, ROSTER_SHA256, ROSTER_SHA256)


def test_the_input_hash_from_the_fingerprint_is_the_one_recorded_before() -> None:
    """input_sha256_of(case JSON, roster fingerprint) == input_sha256(case, roster) == old."""
    case = make_case()
    fast = fingerprint.input_sha256_of(
        fingerprint.case_json(case), fingerprint.fingerprint_roster(ROSTER)
    )
    assert (fast, fingerprint.input_sha256(case, ROSTER)) == (INPUT_SHA256, INPUT_SHA256)


def test_the_request_hash_is_the_one_recorded_before() -> None:
    """service.request_sha256 (now defined in the fingerprint module) keeps its old values."""
    pinned = DecideCommand(
        "r1",
        "patient-enquiries",
        "",
        (make_case(), make_case(case_id="C2")),
        ROSTER,
        NOW,
        agent_detail=False,
    )
    unpinned = DecideCommand("r1", "", "2026.12.1", (make_case(),), ROSTER, None)
    assert (request_sha256(pinned), request_sha256(unpinned)) == (
        REQUEST_SHA256,
        REQUEST_SHA256_UNPINNED,
    )


def test_a_command_s_fingerprint_is_used_and_never_compared() -> None:
    """A command carrying its roster's fingerprint hashes the same and equals one without."""
    bare = DecideCommand("r1", "patient-enquiries", "", (make_case(),), ROSTER, NOW)
    carried = DecideCommand(
        "r1",
        "patient-enquiries",
        "",
        (make_case(),),
        ROSTER,
        NOW,
        roster_fingerprint=fingerprint.fingerprint_roster(ROSTER),
    )
    assert (carried == bare, request_sha256(carried)) == (True, request_sha256(bare))


def test_both_decision_id_rules_keep_their_old_values() -> None:
    """The served rule (request id, index) and the local rule (input, ruleset, now)."""
    assert (
        request_decision_id("r1", 0),
        request_decision_id("r1", 3),
        fingerprint.derive_decision_id(INPUT_SHA256, "ab" * 32, NOW),
    ) == (
        "dec_70951deba8c50126892769e8cf7e",
        "dec_65267220a5d431bd89443ac54658",
        "dec_76823f6aaf90f710acf8228f0e9c",
    )


def test_after_an_assignment_only_that_agent_is_hashed_again() -> None:
    """The batch's next fingerprint equals one computed afresh from the changed roster."""
    before = fingerprint.fingerprint_roster(ROSTER)
    after = roster_after_assignment(ROSTER, "a2", NOW)
    moved = before.after_assignment(after, "a2")
    assert moved == fingerprint.fingerprint_roster(after)
    assert moved.agent_digests[0::2] == before.agent_digests[0::2]
    assert moved.agent_digests[1] != before.agent_digests[1]


def test_an_assignment_to_an_agent_not_on_the_roster_changes_nothing() -> None:
    """An agent id the roster lacks leaves the fingerprint as it was."""
    before = fingerprint.fingerprint_roster(ROSTER)
    assert before.after_assignment(ROSTER, "nobody") is before


@pytest.mark.parametrize("kind", [Agent, Roster])
def test_domain_values_carry_no_digest_cache(kind: type) -> None:
    """Digests live with whoever keeps a roster (its cache entry), not on Agent or Roster."""
    assert "digest_cache" not in {f.name for f in fields(kind)}


def test_a_batch_records_the_input_hash_of_the_roster_each_case_saw(core: RoutingCore) -> None:
    """Case 2 of a batch has the input hash of case 2 alone against the roster after case 1."""
    cases = (make_case(case_id="B1"), make_case(case_id="B2"))
    roster = make_roster(make_agent("a1", capacity=Capacity(1, 0)), make_agent("a2"))
    first, second = core.decide(DecideCommand("b-1", "", "", cases, roster, NOW)).decisions
    after = roster_after_assignment(roster, "a1", NOW)
    alone = [
        core.decide(DecideCommand(f"s-{i}", "", "", (case,), seen, NOW)).decisions[0]
        for i, (case, seen) in enumerate(((cases[0], roster), (cases[1], after)))
    ]
    assert first.agent_id == "a1"
    assert [first.explanation.input_sha256, second.explanation.input_sha256] == [
        d.explanation.input_sha256 for d in alone
    ]
    assert first.explanation.input_sha256 != second.explanation.input_sha256


def test_the_client_imports_neither_the_service_nor_the_engine() -> None:
    """``import caseroute.client`` loads no caseroute.service, engine, registry or rules."""
    probe = (
        "import sys, caseroute.client; print(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith('caseroute.') and m.split('.')[1] in "
        "('service', 'engine', 'registry', 'rules', 'audit')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out == "[]\n"
