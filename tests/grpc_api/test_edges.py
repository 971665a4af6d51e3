"""The gRPC surface under hostile or unusual input: a real server on port 0, default clients."""

import base64
import logging
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import build_parser, main, server_config
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ROUTING_SERVICE, RunningServer, ServerConfig, build_server
from caseroute.grpc_api.servicer import DecisionLogServicer
from caseroute.grpc_api.status import METADATA_BUDGET, status_for
from caseroute.service import DecisionLog, RoutingCore, RulesetRegistry
from caseroute.testing import (
    REFERENCE_RULESET,
    audit_config,
    audited_core,
    make_agent,
    make_roster,
    reference_ruleset,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import decide_request, serving_reference

MAX_METADATA = 8 * 1024  # gRPC's default limit on a client's received metadata


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset loaded."""
    audit_dir = tmp_path_factory.mktemp("audit")
    with serving_reference(audit_dir, engine=EngineKind.PYTHON, threads=4) as server:
        yield server


def _failure(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return exc.value


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an RpcError is a Call
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


def _metadata_bytes(error: grpc.RpcError) -> int:
    call: Any = error
    trailing = call.trailing_metadata() or ()
    return sum(len(k) + len(v) for k, v in trailing) + len(call.details() or "")


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.mark.parametrize(
    ("service", "method", "message"),
    [
        ("RoutingService", "Decide", "caseroute.v1.DecideRequest"),
        ("RoutingService", "DecideBatch", "caseroute.v1.DecideBatchRequest"),
        ("DecisionLog", "GetDecision", "caseroute.v1.GetDecisionRequest"),
        ("DecisionLog", "ListDecisions", "caseroute.v1.ListDecisionsRequest"),
    ],
)
def test_undecodable_bytes_are_invalid_argument_without_traceback(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture, service: str, method: str, message: str
) -> None:
    """Bytes that are not the method's protobuf: INVALID_ARGUMENT naming `request`, one log line."""
    raw: Any = channel.unary_unary(f"/caseroute.v1.{service}/{method}")  # bytes in, bytes out
    with caplog.at_level(logging.INFO):
        error = _failure(lambda: raw(b"\xff\xff\xff\xff", timeout=10))
    expected_violation = (
        "request",
        f"is not a valid {message} protobuf message; send the message the .proto defines",
    )
    assert (grpc.StatusCode.INVALID_ARGUMENT, [expected_violation]) == (
        error.code(),
        _violations(error),
    )
    assert _tracebacks(caplog) == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("caseroute")]
    assert [
        f"{method} refused: request bytes are not a valid {message} (4 bytes)",
        "rpc",  # the call line (caseroute.rpc): its size, never the bytes
    ] == lines
    assert [(method, "INVALID_ARGUMENT", 4)] == [
        (getattr(r, "method", ""), getattr(r, "code", ""), getattr(r, "undecodable_bytes", 0))
        for r in caplog.records
        if r.name == "caseroute.rpc"
    ]


def _bad(seconds: int = 0, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


TOO_EARLY = -62135596801  # one second before 0001-01-01T00:00:00Z
TOO_LATE = 253402300800  # one second after 9999-12-31T23:59:59Z


def _set_created_at(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.case.created_at.CopyFrom(ts)


def _set_sentiment_at(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.case.sentiment.add(score=0.1).at.CopyFrom(ts)


def _set_sla_deadline(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.case.sla_clocks.add(name="first", started_at=r.now, deadline=r.now)
    r.case.sla_clocks.add(name="second", started_at=r.now).deadline.CopyFrom(ts)


def _set_sla_started(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.case.sla_clocks.add(name="first", deadline=r.now).started_at.CopyFrom(ts)


def _set_last_assigned(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.roster.agents[2].last_assigned_at.CopyFrom(ts)


def _set_taken_at(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.roster.taken_at.CopyFrom(ts)


def _set_now(r: pb.DecideRequest, ts: Timestamp) -> None:
    r.now.CopyFrom(ts)


@pytest.mark.parametrize(
    ("setter", "field"),
    [
        (_set_created_at, "case.created_at"),
        (_set_sentiment_at, "case.sentiment[0].at"),
        (_set_sla_deadline, "case.sla_clocks[1].deadline"),
        (_set_sla_started, "case.sla_clocks[0].started_at"),
        (_set_last_assigned, "roster.agents[2].last_assigned_at"),
        (_set_taken_at, "roster.taken_at"),
        (_set_now, "now"),
    ],
)
@pytest.mark.parametrize(
    ("seconds", "nanos"), [(TOO_EARLY, 0), (TOO_LATE, 0), (0, -1), (0, 1_000_000_000)]
)
def test_out_of_range_timestamps_name_the_field(
    channel: grpc.Channel,
    caplog: pytest.LogCaptureFixture,
    setter: Callable[[pb.DecideRequest, Timestamp], None],
    field: str,
    seconds: int,
    nanos: int,
) -> None:
    """A Timestamp outside 0001-9999 or with bad nanos: INVALID_ARGUMENT naming it, no traceback."""
    request_id = f"ts-{field}-{seconds}-{nanos}"
    request = decide_request(request_id=request_id)
    setter(request, _bad(seconds, nanos))
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    with caplog.at_level(logging.INFO):
        error = _failure(lambda: stub.Decide(request, timeout=10))
    expected = (
        field,
        (
            "must be a Timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z "
            f"with nanos in [0, 999999999]; got seconds={seconds}, nanos={nanos}"
        ),
    )
    assert (grpc.StatusCode.INVALID_ARGUMENT, [expected]) == (error.code(), _violations(error))
    assert _tracebacks(caplog) == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("caseroute")]
    assert lines == [
        f"Decide refused: request_id={request_id!r} invalid: 1 problem(s) at {field}",
        "rpc",  # the call line (caseroute.rpc)
    ]


def test_batch_timestamps_name_the_case_index(channel: grpc.Channel) -> None:
    """In a batch the path carries the case index, e.g. cases[1].sla_clocks[0].deadline."""
    single = decide_request()
    request = pb.DecideBatchRequest(
        request_id="ts-batch", cases=[single.case, single.case], roster=single.roster
    )
    request.cases[1].sla_clocks.add(name="x", started_at=single.now).deadline.CopyFrom(
        _bad(TOO_LATE)
    )
    request.now.CopyFrom(_bad(0, -5))
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.DecideBatch(request, timeout=10))
    assert sorted(f for f, _ in _violations(error)) == ["cases[1].sla_clocks[0].deadline", "now"]


@pytest.mark.parametrize("field", ["since", "until"])
def test_list_decisions_range_timestamps_name_the_field(channel: grpc.Channel, field: str) -> None:
    """ListDecisions' since/until out of range: INVALID_ARGUMENT naming since or until."""
    request = pb.ListDecisionsRequest()
    getattr(request, field).CopyFrom(_bad(TOO_EARLY))
    stub = routing_pb2_grpc.DecisionLogStub(channel)
    error = _failure(lambda: stub.ListDecisions(request, timeout=10))
    assert [field] == [f for f, _ in _violations(error)]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_extreme_but_valid_timestamps_decide(channel: grpc.Channel) -> None:
    """Instants at the very ends of the range are decided, not an INTERNAL error."""
    request = decide_request(request_id="ts-extremes")
    request.case.created_at.CopyFrom(_bad(-62135596800))
    request.now.CopyFrom(_bad(253402300799, 999_999_999))
    request.roster.taken_at.CopyFrom(_bad(-62135596800))
    request.roster.agents[0].last_assigned_at.CopyFrom(_bad(253402300799))
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    response = stub.Decide(request, timeout=10)
    assert response.decision.decision_id != "ts-extremes"  # a real decision id came back
    assert pb.Outcome.Name(response.decision.outcome).startswith("OUTCOME_")


def _agents_with_bad_ids(count: int, agent_id: Callable[[int], str]) -> pb.DecideRequest:
    request = decide_request(request_id=f"many-bad-{count}")
    agents = [make_agent(f"a{i}") for i in range(count)]
    request.roster.CopyFrom(convert.roster_to_proto(make_roster(*agents)))
    for i, agent in enumerate(request.roster.agents):
        agent.agent_id = agent_id(i)
    return request


def test_fifty_invalid_agents_fit_the_default_metadata_limit(channel: grpc.Channel) -> None:
    """50 bad agents: INVALID_ARGUMENT (not RESOURCE_EXHAUSTED) with the bad agents named."""
    request = _agents_with_bad_ids(50, lambda i: f"bad id {i}!" * 20)
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.Decide(request, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in _violations(error)][:3] == [
        f"roster.agents[{i}].agent_id" for i in range(3)
    ]
    assert _metadata_bytes(error) < MAX_METADATA // 2


def test_thirty_problems_show_twenty_and_count_the_rest(channel: grpc.Channel) -> None:
    """30 violations: the first 20 in BadRequest, one line counting 10 more, a one-line summary."""
    single = decide_request()
    request = pb.DecideBatchRequest(
        request_id="thirty", cases=[single.case] * 30, roster=single.roster, now=single.now
    )
    for case in request.cases:
        case.intent = pb.INTENT_UNSPECIFIED
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.DecideBatch(request, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    expected = [(f"cases[{i}].intent", "is required") for i in range(20)] + [
        ("request", "10 more violations not shown; fix these and resend to see the rest")
    ]
    assert _violations(error) == expected
    assert str(error.details()) == (
        "invalid request: 30 problem(s); first: cases[0].intent: is required "
        "(every problem is in the google.rpc.BadRequest details)"
    )
    assert _metadata_bytes(error) < MAX_METADATA // 2


def test_a_one_megabyte_invalid_value_is_quoted_briefly(channel: grpc.Channel) -> None:
    """A 1 MB invalid agent id: INVALID_ARGUMENT with a short description, metadata well bounded."""
    request = _agents_with_bad_ids(1, lambda _: "\u00e9" * 1_000_000 + "!")
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.Decide(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    ((field, description),) = _violations(error)
    assert field == "roster.agents[0].agent_id"
    assert len(description.encode()) <= 400
    assert _metadata_bytes(error) < MAX_METADATA // 2


def test_an_unknown_one_megabyte_ruleset_name_is_clipped(channel: grpc.Channel) -> None:
    """NOT_FOUND quoting a 1 MB ruleset name is clipped: the caller sees NOT_FOUND."""
    request = decide_request(request_id="big-ruleset-name")
    request.ruleset.name = "r" * 1_000_000
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.Decide(request, timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _metadata_bytes(error) < MAX_METADATA // 2


def test_an_unknown_one_megabyte_decision_id_is_clipped(channel: grpc.Channel) -> None:
    """NOT_FOUND quoting a 1 MB decision id is clipped: the caller sees NOT_FOUND."""
    request = pb.GetDecisionRequest(decision_id="d" * 1_000_000)
    stub = routing_pb2_grpc.DecisionLogStub(channel)
    error = _failure(lambda: stub.GetDecision(request, timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _metadata_bytes(error) < MAX_METADATA // 2


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose largest message is 1 MiB."""
    audit_dir = tmp_path_factory.mktemp("audit-small")
    with serving_reference(
        audit_dir, engine=EngineKind.PYTHON, threads=2, max_message_mb=1
    ) as server:
        yield server


def _wide_batch(request_id: str, level: "pb.ExplanationLevel.ValueType") -> pb.DecideBatchRequest:
    single = decide_request()
    roster = convert.roster_to_proto(make_roster(*[make_agent(f"a{i:04}") for i in range(2000)]))
    request = pb.DecideBatchRequest(
        request_id=request_id,
        cases=[single.case] * 8,
        roster=roster,
        now=single.now,
        explanation_level=level,
    )
    for i, case in enumerate(request.cases):
        case.case_id = f"C{i}"
    return request


def test_a_reply_too_large_to_send_is_refused_before_it_is_recorded(
    small_server: RunningServer,
) -> None:
    """RESOURCE_EXHAUSTED saying what to do, no record; the same request_id with SUMMARY works."""
    full = _wide_batch("wide-1", pb.EXPLANATION_LEVEL_FULL)
    assert full.ByteSize() < 1024 * 1024  # the request itself fits
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as chan:
        stub = routing_pb2_grpc.RoutingServiceStub(chan)
        error = _failure(lambda: stub.DecideBatch(full, timeout=60))
        size = re.fullmatch(
            r"the reply would be (\d+) bytes, over this server's limit of 1048576 bytes "
            r"\(--max-message-mb\); nothing was recorded: ask for EXPLANATION_LEVEL_SUMMARY "
            r"\(the same request_id may be reused\), split the batch, or raise your client's "
            r"receive limit and ask the operators to raise --max-message-mb",
            str(error.details()),
        )
        assert (error.code(), size is not None) == (grpc.StatusCode.RESOURCE_EXHAUSTED, True)
        assert small_server.core.audit.by_request("wide-1") == []
        summary = _wide_batch("wide-1", pb.EXPLANATION_LEVEL_SUMMARY)
        reply = stub.DecideBatch(summary, timeout=60)
    assert (len(reply.decisions), reply.replayed) == (8, False)
    assert len(small_server.core.audit.by_request("wide-1")) == 8


def _health_of(chan: grpc.Channel) -> str:
    stub: Any = health_pb2_grpc.HealthStub(chan)  # typeshed's stub lacks Check
    status = stub.Check(health_pb2.HealthCheckRequest(service=ROUTING_SERVICE), timeout=5).status
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    return name


def _locked_store_server(directory: Path, probe_s: float) -> RunningServer:
    """A loaded server whose decision log gives up after 100 ms when another writer holds it."""
    config = ServerConfig(
        rulesets=REFERENCE_RULESET.parent,
        port=0,
        engine=EngineKind.PYTHON,
        threads=2,
        audit=audit_config(directory),
        audit_probe_s=probe_s,
    )
    store = SqliteAuditStore(config.audit.db, busy_timeout_ms=100)
    core = RoutingCore(RulesetRegistry(), store, config.audit.masker())
    server = build_server(config, reuse_port=False, core=core)
    server.load(config)
    return server


def test_health_follows_the_decision_log(tmp_path: Path) -> None:
    """SERVING -> NOT_SERVING when a write fails -> SERVING when the next write succeeds."""
    server = _locked_store_server(tmp_path, probe_s=0)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        stub = routing_pb2_grpc.RoutingServiceStub(chan)
        seen = [_health_of(chan)]
        with closing(sqlite3.connect(tmp_path / "audit.db", isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            error = _failure(lambda: stub.Decide(decide_request("locked"), timeout=30))
            seen.append(_health_of(chan))
            blocker.execute("ROLLBACK")
        assert stub.Decide(decide_request("after"), timeout=30).decision.agent_id == "a1"
        seen.append(_health_of(chan))
    server.stop(1)
    assert (error.code(), seen) == (
        grpc.StatusCode.UNAVAILABLE,
        ["SERVING", "NOT_SERVING", "SERVING"],
    )


def test_health_recovers_by_probe_without_traffic(tmp_path: Path) -> None:
    """With traffic gone (as a load balancer does), the probe's empty write restores SERVING."""
    server = _locked_store_server(tmp_path, probe_s=0.05)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        stub = routing_pb2_grpc.RoutingServiceStub(chan)
        health_stub: Any = health_pb2_grpc.HealthStub(chan)  # typeshed's stub lacks Watch
        watch = health_stub.Watch(
            health_pb2.HealthCheckRequest(service=ROUTING_SERVICE), timeout=30
        )
        seen = [next(watch).status]
        with closing(sqlite3.connect(tmp_path / "audit.db", isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            _failure(lambda: stub.Decide(decide_request("locked"), timeout=30))
            seen.append(next(watch).status)
            blocker.execute("ROLLBACK")
        seen.append(next(watch).status)  # no call made: the probe wrote
        watch.cancel()
    server.stop(1)
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert seen == [serving, not_serving, serving]


def test_serve_flags_and_environment_set_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """--max-* flags and CASEROUTE_MAX_* variables reach ServerConfig.limits; the cache in MiB."""
    monkeypatch.setenv("CASEROUTE_MAX_BATCH_PAIRS", "999")
    args = build_parser().parse_args(
        ["serve", "--max-agents", "7", "--max-batch-cases", "3", "--roster-cache-mb", "0"]
    )
    config = server_config(args)
    assert (config.limits, config.roster_cache_mb) == (
        replace(DEFAULT_LIMITS, max_agents=7, max_batch_cases=3, max_batch_pairs=999),
        0,
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--max-agents", "0"],
            {},
            (
                "argument --max-agents: must be a whole number of at least 1, got '0' "
                "(set by the flag or $CASEROUTE_MAX_AGENTS)"
            ),
        ),
        (
            [],
            {"CASEROUTE_MAX_SLA_CLOCKS": "many"},
            (
                "argument --max-sla-clocks: must be a whole number of at least 1, got 'many' "
                "(set by the flag or $CASEROUTE_MAX_SLA_CLOCKS)"
            ),
        ),
        (
            ["--roster-cache-mb", "-1"],
            {},
            (
                "argument --roster-cache-mb: must be a whole number of at least 0, got '-1' "
                "(set by the flag or $CASEROUTE_ROSTER_CACHE_MB)"
            ),
        ),
        (
            [],
            {"CASEROUTE_PORT": "http"},
            (
                "argument --port: must be a TCP port 0-65535 (0 picks a free one), got 'http' "
                "(set by the flag or $CASEROUTE_PORT)"
            ),
        ),
    ],
)
def test_a_bad_limit_is_a_usage_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    """A bad flag or environment value: exit 2 with one line naming it."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *argv])
    assert (exit_.value.code, capsys.readouterr().err.splitlines()[-1]) == (
        2,
        f"caseroute serve: error: {message}",
    )


@pytest.mark.parametrize("expires_on", ["0000-12-31", "10000-01-01", "2026-02-30", "\x00"])
def test_impossible_licence_dates_name_the_field(channel: grpc.Channel, expires_on: str) -> None:
    """A licence date outside the calendar: INVALID_ARGUMENT naming it, not INTERNAL."""
    request = decide_request(request_id=f"licence-{expires_on!r}")
    request.roster.agents[0].licences[0].expires_on = expires_on
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    error = _failure(lambda: stub.Decide(request, timeout=10))
    fields = [f for f, _ in _violations(error)]
    assert (error.code(), fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["roster.agents[0].licences[0].expires_on"],
    )


def test_a_page_too_large_to_send_is_cut_short_and_continues(small_server: RunningServer) -> None:
    """Decisions worth ~2 MiB listed on a 1 MiB server: smaller pages, every decision once."""
    then = Timestamp(seconds=1_900_000_000)  # 2030: apart from other tests' decisions
    request = _wide_batch("page-1", pb.EXPLANATION_LEVEL_FULL)
    del request.cases[5:]
    request.now.CopyFrom(then)
    listed: list[str] = []
    pages = 0
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as chan:
        stub = routing_pb2_grpc.RoutingServiceStub(chan)
        stub.DecideBatch(request, timeout=60)
        request.request_id = "page-2"
        stub.DecideBatch(request, timeout=60)
        log_stub = routing_pb2_grpc.DecisionLogStub(chan)
        query = pb.ListDecisionsRequest(since=then, page_size=50)
        while True:
            page = log_stub.ListDecisions(query, timeout=60)
            pages += 1
            listed += [d.decision.decision_id for d in page.decisions]
            if not page.next_page_token:
                break
            query.page_token = page.next_page_token
    stored = [r.decision_id for r in small_server.core.audit.query(since=then.ToDatetime(UTC))]
    assert (pages > 1, listed) == (True, stored)
    assert len(stored) == 10


def test_a_stored_decision_too_large_to_send_says_where_to_read_it(tmp_path: Path) -> None:
    """GetDecision and a one-item page over the limit: RESOURCE_EXHAUSTED naming the decision."""
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    decision_id = core.decide(convert.decide_command(decide_request())).decisions[0].decision_id
    service = pb.DESCRIPTOR.services_by_name["DecisionLog"]
    server = grpc_testing.server_from_dictionary(
        {service: DecisionLogServicer(DecisionLog(core.audit), max_reply_bytes=1000)},
        grpc_testing.strict_real_time(),
    )
    outcomes = []
    for method, request in (
        ("GetDecision", pb.GetDecisionRequest(decision_id=decision_id)),
        ("ListDecisions", pb.ListDecisionsRequest()),
    ):
        rpc = server.invoke_unary_unary(service.methods_by_name[method], (), request, None)
        _, _, code, details = rpc.termination()
        outcomes.append((code, re.sub(r"is \d+ bytes", "is N bytes", details)))
    core.audit.close()
    expected = (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        (
            f"decision {decision_id} is N bytes, over this server's limit of 1000 bytes "
            "(--max-response-mb); read it on the server with `caseroute audit show`, or raise "
            "your client's receive limit and ask the operators to raise --max-response-mb"
        ),
    )
    assert outcomes == [expected, expected]


def _wire_bytes(status: grpc.Status) -> int:
    """Bytes the status costs in HTTP/2 trailers: base64 for -bin keys, percent-encoded text."""
    total = len("grpc-status") + 2 + len("grpc-message")
    total += len(urllib.parse.quote(status.details, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"))
    for key, value in status.trailing_metadata:
        raw = value if isinstance(value, bytes) else value.encode()
        total += len(key) + (len(base64.b64encode(raw)) if key.endswith("-bin") else len(raw))
    return total


def test_the_worst_case_error_fits_the_metadata_budget() -> None:
    """100 violations of long non-ASCII fields and messages still cost under 6 KiB on the wire."""
    violations = [
        FieldViolation(f"cases[{i}]." + "\u00e9" * 5000, "\u4e2d" * 5000) for i in range(100)
    ]
    wire = _wire_bytes(status_for(RequestError(violations), "r"))
    assert (wire <= METADATA_BUDGET, METADATA_BUDGET) == (True, 6 * 1024)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest"),
        (
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflectionRequest",
        ),
    ],
)
def test_undecodable_bytes_to_health_or_reflection_are_invalid_argument(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture, method: str, message: str
) -> None:
    """Garbage sent to health Check or reflection: INVALID_ARGUMENT and no traceback logged."""
    if method.endswith("Check"):
        call: Any = channel.unary_unary(method)
        error = _failure(lambda: call(b"\xff\xff\xff\xff", timeout=10))
    else:
        stream: Any = channel.stream_stream(method)
        error = _failure(lambda: list(stream(iter([b"\xff\xff\xff\xff"]), timeout=10)))
    assert (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"request: is not a valid {message} protobuf message",
    ) == (
        error.code(),
        error.details(),
    )
    assert _tracebacks(caplog) == []


def test_undecodable_bytes_to_health_watch_log_one_line(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """Watch keeps grpcio's handler (INTERNAL), but the log gets one line, not a traceback."""
    watch: Any = channel.unary_stream("/grpc.health.v1.Health/Watch")
    error = _failure(lambda: list(watch(b"\xff\xff\xff\xff", timeout=10)))
    assert error.code() == grpc.StatusCode.INTERNAL  # grpcio's answer; see docs/security.md
    assert _tracebacks(caplog) == []
    expected = (
        "a request could not be decoded as the protobuf message its method expects; "
        "grpcio answered INTERNAL"
    )
    assert [r.getMessage() for r in caplog.records if r.name == "grpc._common"] == [expected]
