"""Rules stored as results, shown as text: the log, its readers, and records of both forms."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from weakref import WeakValueDictionary

import pytest

from caseroute.audit.explain import StoredExplainer, StoredRulesetError
from caseroute.audit.masking import Masker, mask_decision
from caseroute.audit.record import AuditRecord, Blob, BlobKind
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.fingerprint import case_to_dict
from caseroute.engine import trace
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.service import (
    DecideCommand,
    DecideResult,
    DecisionLog,
    DecisionQuery,
    RoutingCore,
    RulesetRegistry,
)
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    audit_config,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
    ruleset_with_rules,
)
from caseroute.wire.json_dialect import record_to_json

ROSTER = make_roster(make_agent("a1"), make_agent("a2"))
CASE = make_case(case_id="C1", intent=Intent.BILLING, urgency=Urgency.ROUTINE)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the reference ruleset (python engine) with its own decision log."""
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    yield core
    core.audit.close()


def _forget_rulesets(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in another process: no ruleset prepared here, readers compile the log's own copy."""
    monkeypatch.setattr(trace, "_PLANS", OrderedDict())
    monkeypatch.setattr(trace, "_LIVE", WeakValueDictionary())


def _decide(core: RoutingCore, request_id: str = "r1") -> DecideResult:
    return core.decide(DecideCommand(request_id, "", "", (CASE,), ROSTER, NOW))


def _without_results(decision: Decision) -> Decision:
    return replace(decision, explanation=replace(decision.explanation, rule_results=None))


def test_the_log_stores_results_and_no_clause_text(core: RoutingCore) -> None:
    """The decision column holds rule_results (fired rules, values read), never clause texts."""
    decision = _decide(core).decisions[0]
    record = core.audit.get(decision.decision_id)
    assert record is not None
    stored = record.decision["explanation"]
    assert ("rules" in stored, stored["rule_results"]["fired"]) == (False, ["by-intent"])
    assert stored["rule_results"]["actuals"]["case.intent"] == "case.intent = 'billing'"
    assert "case.intent == 'clinical'" not in json.dumps(record.decision)
    assert len(decision.explanation.rules) == len(reference_ruleset().compiled.rules)


def test_a_reader_in_another_process_renders_what_the_caller_got(
    core: RoutingCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetDecision/ListDecisions compile the stored ruleset source: the same decision."""
    decision = _decide(core).decisions[0]
    _forget_rulesets(monkeypatch)
    log = DecisionLog(core.audit)
    assert trace.known_plan(decision.explanation.ruleset_sha256) is None
    assert log.get(decision.decision_id).decision == decision
    page = log.list(DecisionQuery(case_id="C1"))
    assert [a.decision for a in page.decisions] == [decision]


def test_a_retry_after_a_restart_gets_the_first_reply(
    core: RoutingCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idempotent retry renders the stored results from the log: equal to the first reply."""
    first = _decide(core)
    _forget_rulesets(monkeypatch)
    again = _decide(core)
    assert (again.replayed, again.decisions) == (True, first.decisions)


def test_audit_show_names_every_rule_and_its_failing_clause(
    core: RoutingCore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`audit show` (another process: nothing prepared) prints each rule's outcome and clauses."""
    decision = _decide(core).decisions[0]
    core.audit.close()
    _forget_rulesets(monkeypatch)
    db = str(tmp_path / "audit.db")
    assert main(["audit", "show", decision.decision_id, "--audit-db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("Rules (tried in order; the first that applies decides):")
    rules = out[start : out.index("", start)]
    assert rules[:6] == [
        "Rules (tried in order; the first that applies decides):",
        "  1. safeguarding: does not apply",
        "      fails: 'safeguarding' in case.flags   [case.flags = []]",
        "  2. missing-patient-location: does not apply",
        "      fails: case.intent in params.licensed_intents   [case.intent = 'billing']",
        "      fails: not exists(case.patient_location)   [case.patient_location = 'US-TX']",
    ]
    statuses = {(True, True): "APPLIES - decided", (True, False): "would apply (not reached)"}
    assert [line for line in rules if line.startswith("  ") and line[2].isdigit()] == [
        f"  {i}. {t.rule_id}: {statuses.get((t.fired, t.decided), 'does not apply')}"
        for i, t in enumerate(decision.explanation.rules, 1)
    ]


def test_an_older_record_with_clause_texts_still_shows_exports_and_verifies(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record written before issue 13 (rules rendered in it) reads as it did."""
    decision = _decide(core).decisions[0]
    record = core.audit.get(decision.decision_id)
    assert record is not None
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    old = audited_core(core.registry, old_dir)
    sha = decision.explanation.ruleset_sha256
    blobs = [
        b
        for b in (core.audit.get_blob(sha), core.audit.get_blob(record.input["roster"]["sha256"]))
        if b
    ]
    old.audit.append(
        [
            replace(
                record,
                seq=0,
                prev_hash="",
                record_hash="",
                decision=decision_to_dict(_without_results(decision)),
            )
        ],
        blobs,
    )
    old.audit.close()
    db = str(old_dir / "audit.db")
    assert main(["audit", "verify", "--audit-db", db]) == 0
    assert main(["audit", "show", decision.decision_id, "--audit-db", db]) == 0
    assert main(["audit", "export", "--audit-db", db]) == 0
    out = capsys.readouterr().out
    assert "      fails: case.urgency == 'critical'   [case.urgency = 'routine']" in out
    assert "  7. by-intent: APPLIES - decided" in out
    exported = json.loads(out.splitlines()[-1])
    assert len(exported["decision"]["explanation"]["rules"]) == len(decision.explanation.rules)
    store = SqliteAuditStore(old_dir / "audit.db", readonly=True)
    try:
        assert DecisionLog(store).get(decision.decision_id).decision == decision
    finally:
        store.close()


def test_export_renders_from_the_log_and_without_it_names_no_decision(
    core: RoutingCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_to_json renders with the log's blobs; with no source anywhere, no decision."""
    decision = _decide(core).decisions[0]
    record = core.audit.get(decision.decision_id)
    assert record is not None
    _forget_rulesets(monkeypatch)
    bare = record_to_json(record)
    rendered = record_to_json(record, core.audit.get_blob)
    assert len(rendered["decision"]["explanation"]["rules"]) == len(decision.explanation.rules)
    assert ("decision" in bare, bare["record_hash"]) == (False, record.record_hash)


def _record_naming(core: RoutingCore, sha: str) -> AuditRecord:
    decision = _decide(core).decisions[0]
    record = core.audit.get(decision.decision_id)
    assert record is not None
    data = decision_to_dict(decision)
    data["explanation"]["ruleset_sha256"] = sha
    return replace(record, decision=data)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (None, "the decision log has no ruleset source {sha}"),
        ("name: [", "the stored ruleset {sha} does not compile"),
        (None, "the stored ruleset {sha} hashes to another sha256"),
    ],
    ids=["missing", "broken", "other"],
)
def test_a_ruleset_the_log_cannot_give_is_refused(
    core: RoutingCore,
    monkeypatch: pytest.MonkeyPatch,
    blob: str | None,
    message: str,
    request: pytest.FixtureRequest,
) -> None:
    """No source, a source that does not compile, or another ruleset's: StoredRulesetError."""
    sha = "ab" * 32
    record = _record_naming(core, sha)
    _forget_rulesets(monkeypatch)
    source = reference_ruleset().compiled.source_text
    content = {"missing": None, "broken": blob, "other": source}[request.node.callspec.id]

    def get_blob(wanted: str) -> Blob | None:
        return None if content is None else Blob(wanted, BlobKind.RULESET, content)

    with pytest.raises(StoredRulesetError) as exc:
        StoredExplainer(get_blob).decision(record)
    assert str(exc.value) == message.format(sha=sha)


def test_masked_values_are_digests_in_the_stored_results(tmp_path: Path) -> None:
    """A rule reading a masked attribute: its stored value is the digest, as in the reply."""
    text = ruleset_with_rules(
        """\
  - id: named
    when: "case.attributes.patient_name == 'Ada Lovelace'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
        MINIMAL_HEADER + "attributes: {patient_name: string}\n",
    )
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(text), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    case = make_case(attributes={"patient_name": "Ada Lovelace"})
    decision = core.decide(DecideCommand("r", "", "", (case,), ROSTER, NOW)).decisions[0]
    record = core.audit.get(decision.decision_id)
    core.audit.close()
    assert record is not None
    digest = audit_config(tmp_path).masker().digest("Ada Lovelace")
    expected = f"case.attributes.patient_name = {digest}"
    stored = record.decision["explanation"]["rule_results"]["actuals"]
    assert (
        stored["case.attributes.patient_name"],
        decision.explanation.rules[1].clauses[0].actual,
    ) == (
        expected,
        expected,
    )
    assert "Ada" not in json.dumps(record.decision)


def test_masking_copies_only_the_traces_of_rules_that_read_a_masked_value() -> None:
    """mask_decision keeps a rule's trace as it is unless a clause value changes."""
    text = ruleset_with_rules(
        """\
  - id: named
    when: "case.attributes.patient_name == 'Ada Lovelace'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
        MINIMAL_HEADER + "attributes: {patient_name: string}\n",
    )
    case = make_case(attributes={"patient_name": "Ada Lovelace"})
    loaded = prepare_ruleset(compile_text(text), EngineKind.PYTHON)
    decision = decide(case, ROSTER, loaded, NOW)
    masked = mask_decision(decision, case_to_dict(case), Masker(b"k" * 32))
    same = [
        m is d for m, d in zip(masked.explanation.rules, decision.explanation.rules, strict=True)
    ]
    assert same == [True, False, True]  # safeguarding, named (reads the name), rest


def test_an_explanation_without_results_keeps_its_rules(core: RoutingCore) -> None:
    """StoredExplainer on rules stored as text (or none evaluated) returns them unchanged."""
    e = _decide(core).decisions[0].explanation
    older = replace(e, rule_results=None)
    assert StoredExplainer(core.audit.get_blob)(older) == e.rules
