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

from caseroute.audit.masking import MASK_PREFIX, Masker, mask_case
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.case import Case
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import CandidateSource, ReplayOptions, SinkRecords, replay
from caseroute.service import DecideCommand, DecideResult, RulesetRegistry
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


def _decided(tmp_path: Path, case: Case) -> tuple[SqliteAuditStore, DecideResult]:
    """``case`` decided and recorded (the rules of ``BASE``): the log and the reply."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    result = core.decide(DecideCommand(f"r-{case.case_id}", "", "", (case,), roster_of_two(), NOW))
    registry.close()
    assert isinstance(core.audit, SqliteAuditStore)
    return core.audit, result


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """One decision of a case whose masked patient_id is part of its first clock's name."""
    case = make_case(
        case_id="M1",
        attributes={"patient_id": PATIENT},
        sla_clocks=(clock(f"rtt-{PATIENT}", 30), clock("first-response", 90)),
    )
    store, _ = _decided(tmp_path, case)
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


def _case_with_clock(name: str, **attributes: object) -> dict[str, object]:
    """A case as the log reads it: the given attributes and one SLA clock called ``name``."""
    return {
        "case_id": "M2",
        "attributes": dict(attributes),
        "sla_clocks": [{"name": name, "started_at": "2026-01-01T00:00:00Z"}],
    }


def test_a_case_masked_whole_is_its_digest_whatever_its_clock_names_quote() -> None:
    """With ``case`` itself a masked path the stored case is one digest: no clock name is left."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case",))
    stored = mask_case(_case_with_clock(f"rtt-{PATIENT}", patient_id=PATIENT), masker)
    assert isinstance(stored, str)
    assert (stored.startswith(MASK_PREFIX), PATIENT in stored) == (True, False)


def test_masked_nulls_and_booleans_leave_clock_names_as_sent() -> None:
    """A masked ``null`` or ``true`` is spelled by no code: the clock names are not rewritten."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case.attributes.a", "case.attributes.b"))
    case = _case_with_clock("rtt-true-None", a=None, b=True)
    stored = mask_case(case, masker)
    assert isinstance(stored, dict)
    assert (stored["sla_clocks"], stored["attributes"]["b"].startswith(MASK_PREFIX)) == (
        case["sla_clocks"],
        True,
    )


def test_a_masked_object_quoted_in_a_clock_name_is_scrubbed_by_its_members() -> None:
    """A masked object's member values are spellings too: one quoted in a clock name is masked."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case.attributes.patient",))
    case = _case_with_clock(f"rtt-{PATIENT}", patient={"id": PATIENT, "ward": "W1"})
    stored = mask_case(case, masker)
    assert isinstance(stored, dict)
    (name,) = [c["name"] for c in stored["sla_clocks"]]
    assert (PATIENT in name, name.startswith("rtt-" + MASK_PREFIX)) == (False, True)


def test_a_masked_object_no_clock_name_quotes_leaves_the_names_as_sent() -> None:
    """An object is looked for by its members: none quoted, the clock names stay as sent."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case.attributes.patient",))
    case = _case_with_clock("rtt-18-weeks", patient={"id": PATIENT, "ward": "W1"})
    stored = mask_case(case, masker)
    assert isinstance(stored, dict)
    assert (stored["sla_clocks"], stored["attributes"]["patient"].startswith(MASK_PREFIX)) == (
        case["sla_clocks"],
        True,
    )


def test_a_clock_name_quoting_a_masked_value_in_another_letter_case_is_masked(
    tmp_path: Path,
) -> None:
    """``rtt-pt-4471`` quotes ``PT-4471`` as surely as ``rtt-PT-4471``: stored and explained masked.

    Review of stop 38 (PHI): only the spelling as sent was looked for, so a clock name that
    quoted a masked id in lower case was stored and returned in clear.
    """
    case = make_case(
        case_id="M3",
        attributes={"patient_id": PATIENT},
        sla_clocks=(clock(f"rtt-{PATIENT.lower()}", 30),),
    )
    store, result = _decided(tmp_path, case)
    (record,) = store.records()
    store.close()
    stored = [c["name"] for c in record.input["case"]["sla_clocks"]]
    replied = [c.name for c in result.decisions[0].explanation.signals.sla_clocks]
    assert (stored, replied) == ([f"rtt-{DIGEST}"], [f"rtt-{DIGEST}"])
    assert "4471" not in json.dumps([record.input, record.decision])


def test_values_differing_only_in_letter_case_each_keep_their_own_digest() -> None:
    """Each spelling as written is matched before another value's in any letter case."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case.attributes.a", "case.attributes.b"))
    stored = mask_case(_case_with_clock("Smith-SMITH-smith", a="Smith", b="SMITH"), masker)
    assert isinstance(stored, dict)
    (name,) = [c["name"] for c in stored["sla_clocks"]]
    smith, upper = masker.digest("Smith"), masker.digest("SMITH")
    assert name == f"{smith}-{upper}-{smith}"


def test_a_short_masked_value_is_matched_only_as_written() -> None:
    """Under 4 characters a value identifies no one: ``EN`` is left alone for a masked ``en``."""
    masker = Masker(bytes.fromhex(TEST_AUDIT_KEY), paths=("case.attributes.lang",))
    stored = mask_case(_case_with_clock("rtt EN en", lang="en"), masker)
    assert isinstance(stored, dict)
    (name,) = [c["name"] for c in stored["sla_clocks"]]
    assert name == f"rtt EN {masker.digest('en')}"
