import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.audit.masking import Masker
from caseroute.audit.record import BlobKind
from caseroute.audit.verify import verify_chain
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.errors import (
    AuditUnavailableError,
    DecisionNotFoundError,
    IdempotencyConflictError,
    NoRulesetLoadedError,
    RequestError,
    RulesetNotFoundError,
)
from caseroute.domain.fingerprint import roster_to_dict
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import roster_after_assignment
from caseroute.service import (
    DecideCommand,
    DecisionLog,
    DecisionQuery,
    RoutingCore,
    RulesetRegistry,
    load_registry,
    request_decision_id,
)
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    TEST_AUDIT_KEY,
    audited_core,
    make_agent,
    make_case,
    make_roster,
)

REGISTRY = load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON)


def _command(**overrides: object) -> DecideCommand:
    values: dict[str, object] = {
        "request_id": "r1",
        "ruleset_name": "",
        "ruleset_version": "",
        "cases": (make_case(),),
        "roster": make_roster(make_agent("a1")),
        "now": NOW,
    }
    values.update(overrides)
    return DecideCommand(**values)  # type: ignore[arg-type]


@pytest.fixture
def core(tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the reference ruleset recording to a fresh decision log."""
    made = audited_core(REGISTRY, tmp_path)
    yield made
    made.audit.close()


def test_default_ruleset_and_server_clock(tmp_path: Path) -> None:
    """No name selects the default ruleset; no now uses the injected clock."""
    later = NOW + timedelta(hours=1)
    core = audited_core(REGISTRY, tmp_path, clock=lambda: later)
    result = core.decide(_command(now=None))
    core.audit.close()
    assert result.now == later
    assert result.decisions[0].explanation.ruleset_name == "patient-enquiries"


def test_every_decision_is_recorded_before_it_is_returned(core: RoutingCore) -> None:
    """The returned decision is in the log, field for field, with the chain intact."""
    decision = core.decide(_command()).decisions[0]
    record = core.audit.get(decision.decision_id)
    assert record is not None  # narrows the type; every field is compared below
    assert record.decision == decision_to_dict(decision)
    assert (record.request_id, record.case_id, record.now) == (
        "r1",
        "CASE-T1",
        "2026-11-21T10:00:00Z",
    )
    assert (record.ruleset_name, record.ruleset_sha256) == (
        "patient-enquiries",
        decision.explanation.ruleset_sha256,
    )
    store = core.audit
    assert verify_chain(store.records(), store.head(), store.get_blob).ok


def test_retry_returns_the_stored_decision_without_re_evaluating(core: RoutingCore) -> None:
    """Same request_id and input: the stored decision, even with no ruleset loaded any more."""
    first = core.decide(_command())
    core.registry = RulesetRegistry()  # evaluating now would fail with NoRulesetLoadedError
    again = core.decide(_command())
    assert again.replayed
    assert not first.replayed
    assert again.decisions == first.decisions
    assert again.decisions[0].decision_id == request_decision_id("r1", 0)
    assert core.audit.head()[0] == 1


def test_retry_without_now_gets_the_stored_instant(tmp_path: Path) -> None:
    """A server-chosen now is not input: a later retry returns the first call's instant."""
    current = [NOW]
    core = audited_core(REGISTRY, tmp_path, clock=lambda: current[0])
    first = core.decide(_command(now=None))
    current[0] = NOW + timedelta(minutes=7)  # the clock moves on before the retry
    again = core.decide(_command(now=None))
    core.audit.close()
    assert again.now == first.now == NOW
    assert again.decisions == first.decisions


def test_reused_request_id_with_other_input_is_refused(core: RoutingCore) -> None:
    """A request_id names one request: another case, now or level under it is a conflict."""
    core.decide(_command())
    for changed in (
        _command(cases=(make_case(case_id="OTHER"),)),
        _command(now=NOW + timedelta(seconds=1)),
        _command(agent_detail=False),
        _command(roster=make_roster(make_agent("a2"))),
    ):
        with pytest.raises(IdempotencyConflictError, match="new request_id"):
            core.decide(changed)
    assert core.audit.head()[0] == 1


def test_concurrent_retries_store_one_decision(core: RoutingCore) -> None:
    """Sixteen threads sending one request: one record, and every caller gets that decision."""
    results = []
    barrier = threading.Barrier(16)

    def call() -> None:
        barrier.wait()
        results.append(core.decide(_command(now=None)))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert core.audit.head()[0] == 1
    assert len(results) == 16
    assert {r.decisions[0] for r in results} == {results[0].decisions[0]}


def test_unwritable_store_refuses_the_call(
    core: RoutingCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Store locked by another writer: AuditUnavailableError, no decision, a counted log line."""
    core.audit._busy_ms = 100  # type: ignore[attr-defined]  # fail fast instead of waiting 10 s
    with closing(sqlite3.connect(tmp_path / "audit.db", isolation_level=None)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(AuditUnavailableError, match="cannot be written"):
            core.decide(_command())
        blocker.execute("ROLLBACK")
    assert core.audit_refusals == 1
    assert [r.getMessage() for r in caplog.records if r.name == "caseroute.service"] == [
        "decision refused, audit store unavailable: request_id='r1' cases=1 audit_refusals_total=1"
    ]
    assert core.audit.head()[0] == 0
    recovered = core.decide(_command())  # the store recovers once the lock is gone
    assert [d.decision_id for d in recovered.decisions] == [request_decision_id("r1", 0)]
    assert core.audit.head()[0] == 1


def test_phi_is_masked_in_the_log_file(core: RoutingCore, tmp_path: Path) -> None:
    """Configured PHI paths never reach the database file in clear; other attributes do."""
    case = make_case(attributes={"patient_name": "Ada Lovelace", "payer": "acme-health"})
    core.decide(_command(cases=(case,)))
    core.audit.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    assert b"Ada Lovelace" not in raw
    assert b"acme-health" in raw
    record = core.audit.get(request_decision_id("r1", 0))
    assert record is not None
    assert record.input["case"]["attributes"] == {
        "patient_name": Masker(bytes.fromhex(TEST_AUDIT_KEY)).digest("Ada Lovelace"),
        "payer": "acme-health",
    }


def test_batch_records_reproduce_every_decision(core: RoutingCore) -> None:
    """A batch stores the roster once; snapshot + assigned_before + now re-derive each decision."""
    roster = make_roster(make_agent("a1", capacity=Capacity(1, 0)), make_agent("a2"))
    cases = (make_case(case_id="C1"), make_case(case_id="C2"), make_case(case_id="C3"))
    result = core.decide(_command(cases=cases, roster=roster))
    records = core.audit.by_request("r1")
    agents = [d.agent_id for d in result.decisions]
    assert [r.input["roster"]["assigned_before"] for r in records] == [agents[:i] for i in range(3)]
    assert agents == ["a1", "a2", "a2"]  # a1 has one free slot, so the batch moves on to a2
    (snapshot_sha,) = {r.input["roster"]["sha256"] for r in records}
    blob = core.audit.get_blob(snapshot_sha)
    assert blob is not None
    assert (blob.kind, json.loads(blob.content)) == (BlobKind.ROSTER, roster_to_dict(roster))
    ruleset = REGISTRY.resolve("", "")
    for record, decision in zip(records, result.decisions, strict=True):
        seen = parse_roster(json.loads(blob.content))
        for agent_id in record.input["roster"]["assigned_before"]:
            seen = roster_after_assignment(seen, agent_id, NOW)
        again = decide(
            parse_case(record.input["case"]),
            seen,
            ruleset,
            NOW,
            decision_id=record.decision_id,
        )
        assert again == decision


def test_decision_log_get_and_pages(core: RoutingCore) -> None:
    """GetDecision finds a record; ListDecisions filters by case and time and pages stably."""
    for i in range(7):
        core.decide(
            _command(
                request_id=f"r{i}",
                cases=(make_case(case_id=f"C{i % 2}"),),
                now=NOW + timedelta(minutes=i),
            )
        )
    log = DecisionLog(core.audit)
    assert log.get(request_decision_id("r3", 0)).record.case_id == "C1"
    with pytest.raises(DecisionNotFoundError, match="dec_"):
        log.get("dec_nope")
    seen, token = [], ""
    while True:
        page = log.list(DecisionQuery(case_id="C0", page_size=2, page_token=token))
        seen += [a.record.request_id for a in page.decisions]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["r0", "r2", "r4", "r6"]
    window = log.list(
        DecisionQuery(since=NOW + timedelta(minutes=2), until=NOW + timedelta(minutes=5))
    )
    assert [a.record.request_id for a in window.decisions] == ["r2", "r3", "r4"]
    with pytest.raises(RequestError) as exc:
        log.list(DecisionQuery(case_id="C1", page_size=2, page_token=token or "eyJ4IjoxfQ"))
    assert [v.field for v in exc.value.violations] == ["page_token"]
    first = log.list(DecisionQuery(case_id="C0", page_size=2))
    with pytest.raises(RequestError, match="other filters"):
        log.list(DecisionQuery(case_id="C1", page_size=2, page_token=first.next_page_token))


def test_decision_log_list_names_a_bad_page_size_and_an_empty_range(core: RoutingCore) -> None:
    """Every filter problem at once, each at its field, with what it must be."""
    log = DecisionLog(core.audit)
    with pytest.raises(RequestError) as exc:
        log.list(DecisionQuery(page_size=501, since=NOW, until=NOW))
    assert [(v.field, v.message) for v in exc.value.violations] == [
        ("page_size", "must be 0-500"),
        ("until", "must be later than since"),
    ]


def test_command_validation_names_fields(core: RoutingCore) -> None:
    """Empty request ids and oversized batches are request errors."""
    with pytest.raises(RequestError) as exc:
        core.decide(_command(request_id="", cases=()))
    assert [v.field for v in exc.value.violations] == ["request_id", "cases"]


def test_batch_consumes_capacity(core: RoutingCore) -> None:
    """The second case of a batch cannot take the slot the first one used."""
    roster = make_roster(make_agent("a1", capacity=Capacity(1, 0)))
    result = core.decide(
        _command(cases=(make_case(), replace(make_case(), case_id="C2")), roster=roster)
    )
    assert [d.outcome.value for d in result.decisions] == ["ASSIGN", "QUEUE"]


def test_unknown_and_missing_rulesets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unknown names/versions are NOT_FOUND-type errors; a broken ruleset is logged, skipped."""
    with pytest.raises(RulesetNotFoundError, match="unknown ruleset 'x'"):
        REGISTRY.resolve("x", "")
    with pytest.raises(RulesetNotFoundError, match="no version '9'"):
        REGISTRY.resolve("patient-enquiries", "9")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ruleset.yaml").write_text("ruleset: broken\nrules: []\n")
    empty = load_registry(tmp_path, EngineKind.PYTHON)
    assert empty.names() == []
    with pytest.raises(NoRulesetLoadedError, match="problem"):
        empty.resolve("", "")
    assert empty.load_errors == [f"{broken}: 5 problem(s)"]
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "caseroute.registry"]
    assert logged.splitlines()[:3] == [
        f"ruleset {broken} not loaded:",
        "ruleset has 5 error(s):",
        (
            f"  {broken / 'ruleset.yaml'}:1:1: error schema.missing_key: `version` is required in "
            "the ruleset file"
        ),
    ]
