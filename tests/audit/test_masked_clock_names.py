"""A masked value inside an SLA clock name is masked in the stored input too (review R31b F4).

The explanation's clock names had every masked value's spelling replaced by its digest, but
the recorded input kept the case's clock names as sent: a patient id used in a clock name
(``rtt-PT-4471``) was stored in clear beside its digest. Replay reads the masked name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.audit.masking import MASK_PREFIX, Masker
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import CandidateSource, ReplayOptions, SinkRecords, replay
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import NOW, TEST_AUDIT_KEY, audited_core, clock, compile_text, make_case
from tests.replay.recorded import (
    BASE,
    REST_RULE,
    URGENT_RULE,
    candidate,
    candidate_text,
    roster_of_two,
)

PATIENT = "PT-4471"
DIGEST = Masker(bytes.fromhex(TEST_AUDIT_KEY)).digest(PATIENT)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """One decision of a case whose masked patient_id is part of its first clock's name."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    case = make_case(
        case_id="M1",
        attributes={"patient_id": PATIENT},
        sla_clocks=(clock(f"rtt-{PATIENT}", 30), clock("first-response", 90)),
    )
    core.decide(DecideCommand("r1", "", "", (case,), roster_of_two(), NOW))
    registry.close()
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    yield store
    store.close()


def test_the_stored_clock_name_holds_the_digest_the_explanation_shows(
    log: SqliteAuditStore,
) -> None:
    """Stored input and explanation name the clock alike; the clear id is in neither."""
    (record,) = log.records()
    stored = [c["name"] for c in record.input["case"]["sla_clocks"]]
    explained = [c["name"] for c in record.decision["explanation"]["signals"]["sla_clocks"]]
    assert (stored, sorted(explained)) == (
        [f"rtt-{DIGEST}", "first-response"],
        sorted([f"rtt-{DIGEST}", "first-response"]),
    )
    assert PATIENT not in json.dumps([record.input, record.decision])


def test_a_log_with_a_masked_clock_name_verifies_and_replays_unchanged(
    log: SqliteAuditStore,
) -> None:
    """`audit verify` checks the stored bytes; replay under the same rules changes nothing."""
    report = replay(SinkRecords(log), candidate("identity"), ReplayOptions(EngineKind.PYTHON))
    assert (
        verify_chain(log.records(), log.head()).ok,
        report.total,
        report.count("unchanged"),
    ) == (
        True,
        1,
        1,
    )


def test_a_candidate_reading_sla_name_cannot_replay_a_masked_clock_name(
    log: SqliteAuditStore,
) -> None:
    """It would read the digest, not the name decided on: not_replayable, masked_field."""
    reads_name = "  - id: rtt\n    when: \"sla.name == 'rtt'\"\n    then: {route: {queue: rtt}}\n"
    text = candidate_text(URGENT_RULE + reads_name + REST_RULE)
    report = replay(
        SinkRecords(log), CandidateSource("reads.yaml", text), ReplayOptions(EngineKind.PYTHON)
    )
    (sample,) = dict(report.samples)["not_replayable"]
    assert (report.reasons, sample.reason) == (
        (("masked_field", 1),),
        (
            "candidate rule `rtt` reads `sla.name`, and the log masks a value inside a stored "
            "SLA clock name (case.sla_clocks[0].name)"
        ),
    )
    assert MASK_PREFIX not in (sample.reason or "")
