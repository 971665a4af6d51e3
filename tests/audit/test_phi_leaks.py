"""PHI never reaches a stored record, a reply's explanation, or a log line in clear."""

import hashlib
import hmac
import json
import logging
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.masking import DEFAULT_MASKED_PATHS, MASK_PREFIX, Masker, masked_reads
from caseroute.audit.store import WRITE_UNAVAILABLE, SqliteAuditStore
from caseroute.domain.case import Case, RequiredSkill
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.errors import AuditUnavailableError
from caseroute.domain.fingerprint import input_sha256
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.facts import Fact
from caseroute.service import (
    DecideCommand,
    RoutingCore,
    RulesetRegistry,
    request_decision_id,
    request_sha256,
)
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    TEST_AUDIT_KEY,
    ScriptedMatcher,
    audit_config,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.serve_process import start_serve

NOTES = "ZQXNOTES patient fell at home, daughter Ximena Quarrel worried"
NAME = "Zebedee Quarrelsome"
NHS = 9434765919
MARKERS = (NOTES, NAME, str(NHS), "ZQXNOTES", "Quarrelsome", "Ximena", "4765919")

PHI_RULES = ruleset_with_rules(
    """\
  - id: notes-fall
    when: "case.attributes.notes == 'fall' or case.attributes.patient_name == 'Ada'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
    MINIMAL_HEADER + "attributes: {notes: string, patient_name: string, nhs_number: number}\n",
)
KEY = bytes.fromhex(TEST_AUDIT_KEY)


class Exploding:
    """An engine of record that fails quoting the whole fact, as a C extension's error might."""

    label = "exploding"

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Raise with the fact in the message."""
        raise RuntimeError(f"cannot match fact {fact}")


def _phi_case(**attributes: object) -> Case:
    values = {"notes": NOTES, "patient_name": NAME, "nhs_number": NHS, **attributes}
    return make_case(case_id="CASE-PHI", attributes=values)


def _core(tmp_path: Path, loaded: LoadedRuleset) -> RoutingCore:
    """A core deciding with ``loaded`` and recording to a fresh log in ``tmp_path``."""
    registry = RulesetRegistry()
    registry.add(loaded)
    config = audit_config(tmp_path)
    return RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)


def _command(case: Case, request_id: str = "r1") -> DecideCommand:
    return DecideCommand(
        request_id=request_id,
        ruleset_name="",
        ruleset_version="",
        cases=(case,),
        roster=make_roster(make_agent("a1")),
        now=NOW,
    )


def _stored_bytes(directory: Path) -> bytes:
    """Every byte of the decision log: the database, its WAL and shared memory, blobs inside."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("audit.db*")) if p.is_file())


def _leaks(text: str) -> list[str]:
    return [m for m in MARKERS if m in text]


@pytest.fixture
def python_core(tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the PHI-reading ruleset, python engine, recording to tmp_path."""
    core = _core(tmp_path, prepare_ruleset(compile_text(PHI_RULES), EngineKind.PYTHON))
    yield core
    core.audit.close()


def test_clause_values_of_masked_fields_are_digests_in_record_and_reply(
    python_core: RoutingCore, tmp_path: Path
) -> None:
    """A rule reading a masked attribute shows its keyed digest, in the reply and the record."""
    result = python_core.decide(_command(_phi_case()))
    decision = result.decisions[0]
    digest = Masker(KEY).digest
    clauses = decision.explanation.rules[1].clauses
    assert [c.actual for c in clauses] == [
        f"case.attributes.notes = {digest(NOTES)}",
        f"case.attributes.patient_name = {digest(NAME)}",
    ]
    record = python_core.audit.get(decision.decision_id)
    assert record is not None
    assert decision_to_dict(decision) == record.decision
    assert _leaks(json.dumps(record.as_dict())) == []
    assert _leaks(json.dumps(decision_to_dict(decision))) == []
    python_core.audit.close()
    assert [m for m in MARKERS if m.encode() in _stored_bytes(tmp_path)] == []


def test_a_retry_answers_exactly_the_first_reply(python_core: RoutingCore) -> None:
    """The reply is masked once, before recording: the stored answer equals the first one."""
    first = python_core.decide(_command(_phi_case()))
    again = python_core.decide(_command(_phi_case()))
    assert (True, first.decisions) == (again.replayed, again.decisions)


def test_invalid_masked_attribute_detail_carries_the_digest(python_core: RoutingCore) -> None:
    """A masked attribute of the wrong type is named, but its value is shown as a digest."""
    decision = python_core.decide(_command(_phi_case(nhs_number=NAME))).decisions[0]
    assert decision.explanation.data_problems == (
        (
            f"case.attributes.nhs_number is str {Masker(KEY).digest(NAME)}, but the ruleset "
            "declares it number"
        ),
    )


def test_engine_error_text_never_carries_masked_values(tmp_path: Path) -> None:
    """An engine failure whose text quotes the fact is stored and returned without the PHI."""
    core = _core(tmp_path, prepare_ruleset(compile_text(PHI_RULES), matcher=Exploding()))
    decision = core.decide(_command(_phi_case())).decisions[0]
    core.audit.close()
    assert decision.reason_codes == ("engine_error",)
    assert _leaks(json.dumps(decision_to_dict(decision))) == []
    assert [m for m in MARKERS if m.encode() in _stored_bytes(tmp_path)] == []


def test_every_logging_path_is_free_of_case_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Disagreement, engine error, audit failure and shutdown log ids, never case values."""
    caplog.set_level(logging.DEBUG)
    compiled = compile_text(PHI_RULES)
    # The real engine of record (C extension: anything it prints lands in capfd).
    durable = _core(tmp_path / "ok", prepare_ruleset(compiled, EngineKind.DURABLE))
    assert durable.decide(_command(_phi_case())).decisions[0].rule_id == "rest"
    # Disagreement: a matcher that claims every leaf holds, unlike the python evaluator.
    every_leaf = ScriptedMatcher(frozenset(compiled.leaves))
    disagreeing = _core(tmp_path / "d", prepare_ruleset(compiled, matcher=every_leaf))
    decided = disagreeing.decide(_command(_phi_case())).decisions[0]
    assert decided.reason_codes == ("engine_disagreement",)
    # Engine error: the engine of record raises quoting the fact.
    failing = _core(tmp_path / "e", prepare_ruleset(compiled, matcher=Exploding()))
    assert failing.decide(_command(_phi_case())).decisions[0].reason_codes == ("engine_error",)
    # Audit failure: the database refuses every insert.
    with closing(sqlite3.connect(tmp_path / "e" / "audit.db")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON decisions "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        conn.commit()
    with pytest.raises(AuditUnavailableError):
        failing.decide(_command(_phi_case(), request_id="r2"))
    # Shutdown: release every engine and close every store.
    for core in (durable, disagreeing, failing):
        core.registry.close()
        core.audit.close()
    first, second = request_decision_id("r1", 0), request_decision_id("r2", 0)
    withheld = "engine exploding failed: RuntimeError (message withheld: it may quote case values)"
    assert [m.splitlines()[0] for m in caplog.messages] == [
        (
            f"ENGINE DISAGREEMENT decision_id={first} case_id='CASE-PHI' ruleset=test@1 "
            "leaves=L0(case.flags),L1(case.attributes.notes),L2(case.attributes.patient_name)"
        ),
        withheld,
        (
            f"ENGINE ERROR decision_id={first} case_id='CASE-PHI' ruleset=test@1: the decision is "
            "an EXCEPTION"
        ),
        withheld,
        (
            f"ENGINE ERROR decision_id={second} case_id='CASE-PHI' ruleset=test@1: the decision is "
            "an EXCEPTION"
        ),
        (
            f"AUDIT WRITE FAILED (1 calls refused) on {tmp_path / 'e' / 'audit.db'}: "
            "IntegrityError: database or disk is full"
        ),
        "decision refused, audit store unavailable: request_id='r2' cases=1 audit_refusals_total=1",
    ]
    out, err = capfd.readouterr()
    assert (_leaks(caplog.text), _leaks(out), _leaks(err)) == ([], [], [])
    stored = b"".join(_stored_bytes(tmp_path / d) for d in ("ok", "d", "e"))
    assert [m for m in MARKERS if m.encode() in stored] == []


def test_masked_field_warning_says_what_is_stored_and_returned() -> None:
    """`rules check` says the explanation stored and returned shows a digest, not the value."""
    (warning, _) = masked_reads(compile_text(PHI_RULES), Masker(b"k"))
    assert warning.message == (
        "rule reads `case.attributes.notes`, which is masked: the decision log stores it, and "
        "the explanation (recorded and returned to the caller) shows it, only as a keyed "
        "digest, so readers cannot see the value this rule decided on and replay cannot "
        "reproduce its decisions. Route on a non-identifying field instead, or stop masking "
        "this field (--audit-masked-fields) if it is not PHI"
    )


def test_store_failure_tells_the_caller_nothing_about_the_server(
    python_core: RoutingCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed write answers a fixed, actionable message; the cause (no PHI) is logged."""
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON decisions "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        conn.commit()
    with pytest.raises(AuditUnavailableError) as caught:
        python_core.decide(_command(_phi_case()))
    assert str(caught.value) == (
        "the decision log cannot be written; no decision was made; retry later or with "
        "another replica"
    )
    assert [m.splitlines()[0] for m in caplog.messages] == [
        (
            f"AUDIT WRITE FAILED (1 calls refused) on {tmp_path / 'audit.db'}: IntegrityError: "
            "database or disk is full"
        ),
        "decision refused, audit store unavailable: request_id='r1' cases=1 audit_refusals_total=1",
    ]


def test_store_read_failure_tells_the_caller_nothing_about_the_server(
    python_core: RoutingCore, tmp_path: Path
) -> None:
    """A failed read (the request_id lookup) answers a fixed message without path or cause."""
    python_core.audit.close()
    (tmp_path / "audit.db").unlink()
    (tmp_path / "audit.db").mkdir()
    with pytest.raises(AuditUnavailableError) as caught:
        python_core.decide(_command(_phi_case()))
    assert str(caught.value) == (
        "the decision log cannot be read; nothing was decided or changed; retry later or with "
        "another replica"
    )


def test_stored_hashes_cannot_test_guesses_of_a_masked_value(python_core: RoutingCore) -> None:
    """request_sha256 and input_sha256 are keyed: the log cannot confirm a guessed name or DOB."""
    command = _command(_phi_case())
    decision = python_core.decide(command).decisions[0]
    record = python_core.audit.get(decision.decision_id)
    assert record is not None

    def keyed(text: str) -> str:
        return hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()

    plain_input = input_sha256(command.cases[0], command.roster)
    assert (record.request_sha256, decision.explanation.input_sha256) == (
        keyed(request_sha256(command)),
        MASK_PREFIX + keyed(plain_input),
    )


def test_a_decision_after_shutdown_is_refused_not_hung(
    python_core: RoutingCore, caplog: pytest.LogCaptureFixture
) -> None:
    """A call still running when the log closed gets UNAVAILABLE at once; the log has ids only."""
    store = python_core.audit
    assert isinstance(store, SqliteAuditStore)
    store.close()
    outcome: list[BaseException] = []

    def late_call() -> None:
        try:
            python_core.decide(_command(_phi_case()))
        except AuditUnavailableError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=late_call, daemon=True)
    caller.start()
    caller.join(timeout=10)  # a safety net only: the refusal is immediate
    assert (caller.is_alive(), [str(e) for e in outcome]) == (False, [WRITE_UNAVAILABLE])
    assert [m.splitlines()[0] for m in caplog.messages] == [
        f"append refused: the decision log {store.path} is closed (shutting down)",
        "decision refused, audit store unavailable: request_id='r1' cases=1 audit_refusals_total=1",
    ]
    assert _leaks(caplog.text) == []


def test_masking_leaves_unrelated_text_alone(tmp_path: Path) -> None:
    """A masked `true` or short value is replaced where it is that field's value, not elsewhere."""
    text = ruleset_with_rules(
        """\
  - id: vip
    when: "case.attributes.notes == 'x' or not case.attributes.consent or not case.attributes.vip"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
        MINIMAL_HEADER + "attributes: {notes: string, consent: boolean, vip: boolean}\n",
    )
    masker = Masker(KEY, ("case.attributes.notes", "case.attributes.consent"))
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(text), EngineKind.PYTHON))
    core = RoutingCore(registry, audit_config(tmp_path).open_store(), masker, lambda: NOW)
    case = make_case(attributes={"notes": "en", "consent": True, "vip": True})
    decision = core.decide(_command(case)).decisions[0]
    core.audit.close()
    assert [c.actual for c in decision.explanation.rules[1].clauses] == [
        f"case.attributes.notes = {masker.digest('en')}",
        f"case.attributes.consent = {masker.digest(value=True)}",
        "case.attributes.vip = true",
    ]


def test_a_served_decision_and_shutdown_leave_no_case_values_on_stderr(tmp_path: Path) -> None:
    """`caseroute serve` decides a PHI case, drains on SIGTERM: stderr and files hold no PHI."""
    (tmp_path / "rulesets" / "phi").mkdir(parents=True)
    (tmp_path / "rulesets" / "phi" / "ruleset.yaml").write_text(PHI_RULES)
    with start_serve(tmp_path / "audit.db", rulesets=tmp_path / "rulesets") as served:
        request = pb.DecideRequest(
            request_id="served",
            case=convert.case_to_proto(_phi_case()),
            roster=convert.roster_to_proto(make_roster(make_agent("a1"))),
            now=convert.datetime_to_timestamp(NOW),
        )
        with grpc.insecure_channel(served.address) as channel:
            reply = routing_pb2_grpc.RoutingServiceStub(channel).Decide(request, timeout=60)
        assert reply.decision.rule_id == "rest"
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(60)
    assert served.proc.returncode == 0
    assert _leaks(served.stderr()) == []
    assert [m for m in MARKERS if m.encode() in _stored_bytes(tmp_path)] == []


def test_a_masked_required_skill_never_shows_in_the_ranking(tmp_path: Path) -> None:
    """`highest_skill_level` was labelled with the case's skill ("hivcounsel level") in clear.

    Review R34c F1: with case.required_skills masked, the skill was a digest in the stored
    input and the requirements, but the ranking's criterion label kept it, in the reply, the
    record and every auditor output.
    """
    skill = "zqxhivcounsel"
    config = AuditConfig(
        db=tmp_path / "audit.db",
        key_hex=TEST_AUDIT_KEY,
        masked_fields=(*DEFAULT_MASKED_PATHS, "case.required_skills"),
    )
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE))))
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    case = make_case(required_skills=(RequiredSkill(skill, 1),))
    agents = (make_agent("a1", skills={skill: 3}), make_agent("a2", skills={skill: 2}))
    command = replace(_command(case), roster=make_roster(*agents))
    decision = core.decide(command).decisions[0]
    assert decision.agent_id == "a1"  # ranked on the skill: the criterion is there
    matching = decision.explanation.matching
    assert matching is not None
    label = matching.ranking[0].criteria[1][0]
    # The requirement line's digest (the same spelling, the same digest, wherever it shows).
    (line,) = [r for r in matching.requirements if r.startswith("skills: ")]
    assert label == f"{line.removeprefix('skills: ').removesuffix(' >= 1')} level"
    assert label.startswith(MASK_PREFIX)
    record = core.audit.get(decision.decision_id)
    assert record is not None
    assert skill not in json.dumps(record.as_dict())
    assert skill not in json.dumps(decision_to_dict(decision))
    core.audit.close()
    # Not the whole file: the roster snapshot names the agents' own skills (not PHI); what
    # must not be stored is the case tied to the skill, i.e. the record checked above.
