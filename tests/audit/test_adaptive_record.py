"""Decisions made with ladders and continuity in the decision log: stored, verified, masked."""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker
from caseroute.cli import main
from caseroute.domain.case import Case, ContinuityReason, PreferredAgent
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.roster import Licence, Roster
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.trace import explain_known
from caseroute.service import DecideCommand, DecideResult, RoutingCore, RulesetRegistry
from caseroute.testing import (
    NOW,
    TEST_AUDIT_KEY,
    audit_config,
    compile_text,
    make_agent,
    make_case,
    make_roster,
)
from tests.domain.test_adaptive_codec import ADAPTIVE_ROSTER, ADAPTIVE_TEXT, PREFERRED


@pytest.fixture(scope="module")
def registry() -> Iterator[RulesetRegistry]:
    """The adaptive test ruleset (a ladder and continuity), with the Python evaluator."""
    reg = RulesetRegistry()
    reg.add(prepare_ruleset(compile_text(ADAPTIVE_TEXT), EngineKind.PYTHON))
    yield reg
    reg.close()


def _core(registry: RulesetRegistry, directory: Path, masker: Masker | None = None) -> RoutingCore:
    config = audit_config(directory)
    return RoutingCore(registry, config.open_store(), masker or config.masker(), lambda: NOW)


def _decide(
    core: RoutingCore, request_id: str, case: Case, roster: Roster = ADAPTIVE_ROSTER
) -> DecideResult:
    return core.decide(DecideCommand(request_id, "", "", (case,), roster, NOW))


HELD_CASE = make_case(
    case_id="H1",
    preferred_language="es",
    waiting_since=NOW - timedelta(minutes=5),
    declined_agents=frozenset({"far"}),
    preferred_agents=PREFERRED,
    attributes={"patient_name": "Ada"},
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_an_adaptive_decision_is_stored_verified_and_shown(
    registry: RulesetRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify` passes over held and relaxed decisions; `audit show` renders the held one."""
    core = _core(registry, tmp_path)
    held = _decide(core, "r-held", HELD_CASE).decisions[0]
    _decide(core, "r-late", make_case(case_id="L1", preferred_agents=PREFERRED))
    core.audit.close()
    db = str(tmp_path / "audit.db")
    code, out = _run(capsys, "audit", "verify", "--audit-db", db)
    assert (code, out.split(";")[0]) == (0, "ok: 2 record(s), every link and blob verified")
    code, out = _run(capsys, "audit", "show", held.decision_id, "--audit-db", db)
    assert held.explanation.relaxation is not None
    assert (
        code,
        out.splitlines()[0],
        held.explanation.relaxation.summary in " ".join(out.split()),
    ) == (
        0,
        f"Audit record 1: decision {held.decision_id}",
        True,
    )
    assert "Ada" not in out


def test_the_stored_decision_is_the_returned_one_traces_included(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """The record decodes to exactly the decision returned, and a retry returns it again."""
    core = _core(registry, tmp_path)
    first = _decide(core, "r-held", HELD_CASE)
    decision = first.decisions[0]
    (record,) = core.audit.by_request("r-held")
    again = _decide(core, "r-held", HELD_CASE)
    core.audit.close()
    assert decision.explanation.continuity is not None
    assert (
        decision_from_dict(record.decision, explain_known),
        again.replayed,
        again.decisions,
    ) == (
        decision,
        True,
        first.decisions,
    )


def test_staff_ids_and_the_wait_anchor_are_stored_in_clear(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Preferred and declined agent ids are staff ids and waiting_since a queue time: not PHI."""
    core = _core(registry, tmp_path)
    _decide(core, "r-held", HELD_CASE)
    (record,) = core.audit.by_request("r-held")
    core.audit.close()
    case = record.input["case"]
    assert (
        case["waiting_since"],
        case["declined_agents"],
        case["preferred_agents"],
        case["attributes"]["patient_name"].startswith("hmac-sha256:"),
    ) == (
        "2026-11-21T09:55:00Z",
        ["far"],
        [
            {
                "agent_id": "busy",
                "reason": "previous_contact",
                "last_contact_at": "2026-11-18T10:00:00Z",
            },
            {"agent_id": "ghost", "reason": "care_team"},
        ],
        True,
    )


def test_a_masked_location_is_never_in_clear_in_the_continuity_detail(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """With case.patient_location masked, "not licensed in US-TX" is stored with the digest."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), (*DEFAULT_MASKED_PATHS, "case.patient_location"))
    core = _core(registry, tmp_path, masker)
    roster = make_roster(
        make_agent("a1"),
        make_agent(
            "ca",
            licences=(Licence("RN", "US-CA", NOW.date() + timedelta(days=400)),),
        ),
    )
    case = make_case(
        case_id="M1",
        preferred_agents=(PreferredAgent("ca", ContinuityReason.NAMED_CLINICIAN),),
    )
    returned = _decide(core, "r-masked", case, roster).decisions[0]
    (record,) = core.audit.by_request("r-masked")
    core.audit.close()
    assert returned.explanation.continuity is not None
    assert [(p.status, p.detail) for p in returned.explanation.continuity.preferred] == [
        ("not_eligible", f"not licensed in {masker.digest('US-TX')} (RN US-CA (single-state))")
    ]
    assert "US-TX" not in canonical_json(record.decision)
    assert json.loads(canonical_json(record.decision)) == record.decision
