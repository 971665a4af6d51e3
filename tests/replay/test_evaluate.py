"""RecordReplayer: each way a record lacks what replay needs is not_replayable, with a reason."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import AuditRecord
from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.codec import parse_roster
from caseroute.domain.fingerprint import canonical_json, fingerprint_roster
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay.candidate import CandidateSource
from caseroute.replay.evaluate import ROSTER_CACHE, RecordReplayer
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
)
from tests.replay.recorded import (
    BASE,
    REST_RULE,
    URGENT_RULE,
    candidate,
    candidate_text,
    record_log,
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[AuditRecord], str]:
    """The recorded log's records (C1, C3, C2) and their roster snapshot's content."""
    store: SqliteAuditStore = record_log(tmp_path_factory.mktemp("evaluate"))
    records = list(store.records())
    blob = store.get_blob(records[0].input["roster"]["sha256"])
    store.close()
    assert blob is not None
    return records, blob.content


def _replayer(name: str = "identity") -> RecordReplayer:
    return RecordReplayer(candidate(name).load(EngineKind.PYTHON))


def _with_input(record: AuditRecord, **changes: Any) -> AuditRecord:
    return replace(record, input={**record.input, **changes})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"case": None}, "the record holds no stored case"),
        ({"roster": {"sha256": 7}}, "the record holds no roster reference"),
    ],
)
def test_record_missing_input_parts_is_invalid_input(
    stored: tuple[list[AuditRecord], str], change: dict[str, Any], reason: str
) -> None:
    """A record without its case or roster reference is invalid_input, saying which."""
    records, roster = stored
    result = _replayer().replay(_with_input(records[0], **change), roster)
    assert (result.classes, result.reason_code, result.reason) == (
        ("not_replayable",),
        "invalid_input",
        reason,
    )


def test_unreadable_now_is_invalid_input(stored: tuple[list[AuditRecord], str]) -> None:
    """A record whose `now` is not an instant is not replayed."""
    records, roster = stored
    result = _replayer().replay(replace(records[1], now="yesterday"), roster)
    assert result.reason == "the record's `now` is not an instant"


def test_unparseable_roster_snapshot_is_invalid_input(
    stored: tuple[list[AuditRecord], str],
) -> None:
    """A snapshot blob that is not a roster is named by its sha256 prefix."""
    records, _ = stored
    sha = records[1].input["roster"]["sha256"]
    result = _replayer().replay(records[1], '{"agents": 1}')
    assert result.reason == f"roster snapshot {sha[:12]} does not parse"


def test_assigned_agent_missing_from_snapshot_is_invalid_input(
    stored: tuple[list[AuditRecord], str],
) -> None:
    """assigned_before naming an agent the snapshot lacks cannot rebuild the roster."""
    records, roster = stored
    ref = {**records[1].input["roster"], "assigned_before": ["ghost"]}
    result = _replayer().replay(_with_input(records[1], roster=ref), roster)
    assert result.reason == "the record's assigned_before names an agent the roster snapshot lacks"


def test_declared_masked_attribute_is_not_replayable(
    stored: tuple[list[AuditRecord], str],
) -> None:
    """A candidate declaring a type for a masked attribute (a data check reads it) skips it."""
    records, roster = stored
    text = candidate_text(
        URGENT_RULE + REST_RULE, MINIMAL_HEADER + "attributes:\n  notes: string\n"
    )
    replayer = RecordReplayer(CandidateSource("declared.yaml", text).load(EngineKind.PYTHON))
    result = replayer.replay(records[0], roster)
    assert (result.reason_code, result.reason) == (
        "masked_field",
        (
            "the candidate declares a type for `case.attributes.notes`, which the log stores "
            "only as a digest"
        ),
    )


def _snapshot(roster: str, snapshot_id: str) -> tuple[str, str]:
    """``roster``'s text under another snapshot_id, and that snapshot's sha256."""
    data = json.loads(roster)
    text = canonical_json({**data, "snapshot_id": snapshot_id})
    return text, fingerprint_roster(parse_roster(json.loads(text))).sha256


def test_roster_cache_evicts_beyond_its_size(stored: tuple[list[AuditRecord], str]) -> None:
    """More distinct snapshots than the cache holds still replay (the oldest is parsed again)."""
    records, roster = stored
    replayer = _replayer()
    snapshots = [_snapshot(roster, f"snap-{n}") for n in range(ROSTER_CACHE + 2)]
    classes = []
    for text, sha in [*snapshots, snapshots[0]]:
        ref = {**records[2].input["roster"], "sha256": sha}
        classes.append(replayer.replay(_with_input(records[2], roster=ref), text).classes)
    assert classes == [("unchanged",)] * (ROSTER_CACHE + 3)


@pytest.mark.parametrize("edit", ["capacity", "snapshot_id"])
def test_a_snapshot_edited_in_the_log_is_not_replayed(
    stored: tuple[list[AuditRecord], str], edit: str
) -> None:
    """A snapshot that still parses but is not the one recorded is refused, not replayed on.

    Before, replay decided the record again on whatever the blob held: an edited capacity
    replayed as if the agents had had it.
    """
    records, roster = stored
    data = json.loads(roster)
    if edit == "capacity":
        data["agents"][0]["capacity"] = {"active": 0, "max": 99}
    else:
        data["snapshot_id"] = "other"
    sha = records[0].input["roster"]["sha256"]
    result = _replayer().replay(records[0], canonical_json(data))
    assert (result.classes, result.reason_code, result.reason) == (
        ("not_replayable",),
        "invalid_input",
        (
            f"roster snapshot {sha[:12]} does not hash to its sha256 (edited in the decision "
            "log? run `caseroute audit verify`)"
        ),
    )
    assert _replayer().replay(records[0], roster).classes == ("unchanged",)


def test_base_ruleset_is_what_decided(stored: tuple[list[AuditRecord], str]) -> None:
    """The fixture's records were decided by test@1, the BASE text (a guard on the fixture)."""
    records, _ = stored
    assert {(r.ruleset_name, r.ruleset_version) for r in records} == {("test", "1")}
    assert "id: urgent" in BASE


def test_a_snapshot_nested_past_the_parser_s_depth_is_invalid_input(
    stored: tuple[list[AuditRecord], str],
) -> None:
    """200,000 nested brackets in a snapshot blob: invalid_input, not a RecursionError."""
    records, _ = stored
    result = _replayer().replay(records[0], "[" * 200_000)
    sha = records[0].input["roster"]["sha256"]
    assert (result.reason_code, result.reason) == (
        "invalid_input",
        f"roster snapshot {sha[:12]} does not parse",
    )


def test_a_roster_built_in_code_with_values_the_parser_normalises_still_replays(
    tmp_path: Path,
) -> None:
    """An upper-case language tag: the stored text hashes to the record, so it is no edit.

    The parsed roster re-encodes to another hash (the parser lower-cases the tag), and replay
    called the unedited snapshot "edited in the decision log?" (review R28). RoutingCore now
    reads code-built commands through the parsers (``EN`` is recorded as ``en``);
    ``parsed=True`` records the tag as the versions before that did.
    """
    roster = make_roster(make_agent("a1", languages=frozenset({"EN"})), make_agent("a2"))
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    case = make_case(case_id="C1")
    core.decide(DecideCommand("r1", "", "", (case,), roster, NOW, parsed=True))
    registry.close()
    (record,) = list(core.audit.records())
    blob = core.audit.get_blob(record.input["roster"]["sha256"])
    core.audit.close()
    assert blob is not None
    assert fingerprint_roster(parse_roster(json.loads(blob.content))).sha256 != blob.sha256
    assert _replayer().replay(record, blob.content).classes == ("unchanged",)
