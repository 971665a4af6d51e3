"""RoutingCore at its edges: replies refused before recording, batch limits, audit health."""

import base64
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.record import GENESIS, Appended, AuditRecord, Blob
from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import (
    AuditUnavailableError,
    FieldViolation,
    NoRulesetLoadedError,
    RecordRefusedError,
    RequestError,
    ResponseTooLargeError,
)
from caseroute.domain.limits import InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.service import (
    DecideCommand,
    DecideResult,
    DecisionLog,
    DecisionQuery,
    RoutingCore,
    RulesetRegistry,
    load_registry,
)
from caseroute.testing import (
    NOW,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)

ROSTER = make_roster(make_agent("a1"), make_agent("a2"))


def _command(request_id: str = "r1", cases: int = 1, *, agent_detail: bool = True) -> DecideCommand:
    batch = tuple(replace(make_case(), case_id=f"C{i}") for i in range(cases))
    return DecideCommand(request_id, "", "", batch, ROSTER, NOW, agent_detail)


def test_before_record_sees_the_result_before_anything_is_stored(core: RoutingCore) -> None:
    """The callback gets the very result returned, at a moment the log holds no record of it."""
    seen: list[tuple[DecideResult, int]] = []
    result = core.decide(
        _command(), before_record=lambda r: seen.append((r, len(core.audit.by_request("r1"))))
    )
    assert [(result, 0)] == [(r, n) for r, n in seen]
    assert seen[0][0] is result
    assert len(core.audit.by_request("r1")) == 1


def test_a_refused_reply_records_nothing_and_summary_then_succeeds(core: RoutingCore) -> None:
    """A callback that refuses leaves no record; the same request_id with SUMMARY then decides."""

    def refuse_full(result: DecideResult) -> None:
        matching = result.decisions[0].explanation.matching
        if matching is not None and matching.agents:  # per-agent verdicts: FULL only
            raise ResponseTooLargeError("too large")

    with pytest.raises(ResponseTooLargeError):
        core.decide(_command(), before_record=refuse_full)
    assert core.audit.by_request("r1") == []
    assert core.audit.head()[0] == 0
    summary = core.decide(_command(agent_detail=False), before_record=refuse_full)
    assert (summary.replayed, len(core.audit.by_request("r1"))) == (False, 1)


def test_a_replay_is_checked_too(core: RoutingCore) -> None:
    """A retry's stored result also passes through the callback (one conversion per reply)."""
    core.decide(_command())
    seen: list[bool] = []
    replay = core.decide(_command(), before_record=lambda r: seen.append(r.replayed))
    assert (seen, replay.replayed) == ([True], True)


TIGHT = InputLimits(max_batch_cases=3, max_batch_pairs=5, max_id_chars=16)


@pytest.mark.parametrize(
    ("command", "violation"),
    [
        (
            _command("r" * 17),
            FieldViolation(
                "request_id",
                "must be 1-16 characters (an idempotency key); got 17 characters "
                "(server setting --max-id-chars)",
            ),
        ),
        (
            _command(cases=4),
            FieldViolation(
                "cases",
                "has 4 cases; the limit is 3 per batch (server setting --max-batch-cases); "
                "split the batch",
            ),
        ),
        (
            _command(cases=3),
            FieldViolation(
                "cases",
                "3 cases x 2 agents = 6 case-agent pairs; the limit is 5 per batch (server "
                "setting --max-batch-pairs); split the batch",
            ),
        ),
        (_command(cases=0), FieldViolation("cases", "must hold at least 1 case")),
    ],
)
def test_batch_limits_name_the_field_limit_and_size(
    registry: RulesetRegistry, tmp_path: Path, command: DecideCommand, violation: FieldViolation
) -> None:
    """Over a batch limit: RequestError naming the field, the limit, the size and the setting."""
    config = audit_config(tmp_path)
    core = RoutingCore(registry, config.open_store(), config.masker(), limits=TIGHT)
    with pytest.raises(RequestError) as caught:
        core.decide(command)
    core.audit.close()
    assert caught.value.violations == (violation,)


def test_within_tight_limits_decides(registry: RulesetRegistry, tmp_path: Path) -> None:
    """Two cases x two agents is within five pairs: decided.

    (The roster's longest identifier, ``clinical-triage``, is within 16 characters: a command
    built in code meets every limit a transport's would.)
    """
    config = audit_config(tmp_path)
    core = RoutingCore(registry, config.open_store(), config.masker(), limits=TIGHT)
    result = core.decide(_command(cases=2))
    core.audit.close()
    assert [d.case_id for d in result.decisions] == ["C0", "C1"]


def test_no_ruleset_message_carries_no_path_or_exception_text(tmp_path: Path) -> None:
    """Nothing loaded: a generic, actionable message; the paths and causes stay in the log."""
    broken = tmp_path / "secret-dir" / "broken"
    broken.mkdir(parents=True)
    (broken / "ruleset.yaml").write_text("ruleset: broken\nrules: []\n")
    registry = load_registry(tmp_path / "secret-dir", EngineKind.PYTHON)
    with pytest.raises(NoRulesetLoadedError) as caught:
        registry.resolve("", "")
    assert str(caught.value) == (
        "no ruleset is loaded on this server; its operators must fix the rulesets (the server "
        "log lists every problem) and restart or reload it; retry later or call another server"
    )


class _SwitchableSink:
    """The real store, refusing every write while ``broken`` is set."""

    def __init__(self, store: SqliteAuditStore) -> None:
        self.store = store
        self.broken = False

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        if self.broken:
            raise AuditUnavailableError("the decision log cannot be written")
        return self.store.append(records, blobs)

    def by_request(self, request_id: str) -> list[AuditRecord]:
        return self.store.by_request(request_id)

    def has_blob(self, sha256: str) -> bool:
        return self.store.has_blob(sha256)


def test_watchers_hear_audit_failure_and_recovery_once_each(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Watchers get False at the first failed write and True at the next success, no repeats."""
    config = audit_config(tmp_path)
    sink = _SwitchableSink(config.open_store())
    core = RoutingCore(registry, sink, config.masker())  # type: ignore[arg-type]  # a partial sink
    heard: list[bool] = []
    core.watch_audit(heard.append)
    core.decide(_command("ok-1"))
    sink.broken = True
    for request_id in ("down-1", "down-2"):
        with pytest.raises(AuditUnavailableError):
            core.decide(_command(request_id))
    assert (heard, core.probe_audit()) == ([False], False)
    sink.broken = False
    core.decide(_command("up-1"))
    core.decide(_command("up-2"))
    sink.store.close()
    assert heard == [False, True]


class _RefusingSink(_SwitchableSink):
    """The real store, refusing the records of calls whose request_id starts with "refuse"."""

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        if records[0].request_id.startswith("refuse"):
            raise RecordRefusedError("the decision log refused this call's records")
        return self.store.append(records, blobs)


def test_a_record_refused_for_its_values_leaves_health_alone(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """One call's refused values say nothing of the log (review R32c F2): health stays up.

    Before, PostgreSQL's refusal of a value came back as AuditUnavailableError, which turned
    the worker NOT_SERVING and counted as an audit refusal; any caller could do that.
    """
    config = audit_config(tmp_path)
    sink = _RefusingSink(config.open_store())
    core = RoutingCore(registry, sink, config.masker())  # type: ignore[arg-type]  # a partial sink
    heard: list[bool] = []
    core.watch_audit(heard.append)
    with pytest.raises(RecordRefusedError):
        core.decide(_command("refuse-1"))
    assert (heard, core.audit_writable, core.audit_refusals) == ([], True, 0)
    assert sink.by_request("refuse-1") == []
    core.decide(_command("ok-1"))
    sink.store.close()
    assert heard == []


def test_probe_restores_writable_without_traffic(registry: RulesetRegistry, tmp_path: Path) -> None:
    """After a failure, a successful probe (an empty write) reports the log writable again."""
    config = audit_config(tmp_path)
    sink = _SwitchableSink(config.open_store())
    core = RoutingCore(registry, sink, config.masker())  # type: ignore[arg-type]  # a partial sink
    heard: list[bool] = []
    core.watch_audit(heard.append)
    sink.broken = True
    with pytest.raises(AuditUnavailableError):
        core.decide(_command())
    sink.broken = False
    assert (core.probe_audit(), heard, sink.store.head()) == (True, [False, True], (0, GENESIS))
    sink.store.close()


@pytest.mark.parametrize(
    "token",
    [
        # Base64 of "[[[[...]]]]" nested past Python's recursion limit: json.loads would raise
        # RecursionError, which is no request error and reached callers as INTERNAL.
        base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),
        "x" * 5_000,
    ],
    ids=["deeply-nested", "oversized"],
)
def test_a_hostile_page_token_is_a_field_error(core: RoutingCore, token: str) -> None:
    """A page token the service never issued is INVALID_ARGUMENT on page_token, never a crash."""
    with pytest.raises(RequestError) as exc:
        DecisionLog(core.audit).list(DecisionQuery(page_token=token))
    assert [v.field for v in exc.value.violations] == ["page_token"]
