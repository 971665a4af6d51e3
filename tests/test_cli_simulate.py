"""`caseroute simulate`: JSON lines to a file or stdout, or a bounded load on a real server."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import closing
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self

import grpc
import pytest

from caseroute.cli import main
from caseroute.cli.simulate import LoadSummary, run_load
from caseroute.client import BatchDecided, ClientError, ClientTls, Decided, ExplanationLevel
from caseroute.domain.case import Case
from caseroute.domain.decision import Decision
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import ROUTING_SERVICE, RunningServer, add_service
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore
from caseroute.simulate import SimulatedRequest, request_from_json, simulate
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset
from caseroute.wire.json_dialect import simulated_request_to_json

from .grpc_api import test_tls
from .grpc_api.conftest import serving_reference
from .grpc_api.test_auth import CALLER, token_file
from .grpc_api.test_tls import Pki


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _expected_lines(cases: int, agents: int, seed: int) -> str:
    return "".join(
        canonical_json(simulated_request_to_json(r)) + "\n" for r in simulate(cases, agents, seed)
    )


def _decisions_stored(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM decisions").fetchone()
    return int(count)


# The mutual-TLS fixtures of tests/grpc_api/test_tls.py, made visible to this module's tests.
pki = test_tls.pki
mtls_server = test_tls.mtls_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real in-process server over the reference ruleset, logging to tmp_path/audit.db."""
    with serving_reference(tmp_path, engine=EngineKind.PYTHON) as running:
        yield running


def test_without_server_the_lines_go_to_stdout_and_are_the_same_each_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Standard output gets one canonical JSON line per request; a rerun prints the same bytes."""
    argv = ("simulate", "--cases", "40", "--agents", "6", "--seed", "11")
    first = _run(capsys, *argv)
    again = _run(capsys, *argv)
    assert first == (0, _expected_lines(40, 6, 11), "")
    assert again == first


def test_out_writes_the_same_lines_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out writes the lines to the file (nothing on stdout); another seed writes others."""
    out = tmp_path / "traffic.jsonl"
    code, stdout, err = _run(
        capsys, "simulate", "--cases", "25", "--agents", "4", "--seed", "2", "--out", str(out)
    )
    assert (code, stdout, err) == (0, "", "")
    assert out.read_text(encoding="utf-8") == _expected_lines(25, 4, 2)
    assert out.read_text(encoding="utf-8") != _expected_lines(25, 4, 3)


def test_server_mode_fills_the_decision_log_and_audit_verify_passes(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every case becomes a stored decision; the summary counts them; `audit verify` is ok."""
    code, out, err = _run(
        capsys,
        "simulate",
        "--cases",
        "60",
        "--agents",
        "8",
        "--seed",
        "5",
        "--server",
        f"127.0.0.1:{server.port}",
        "--concurrency",
        "3",
    )
    requests = list(simulate(60, 8, 5))
    lines = out.splitlines()
    assert (code, err, len(lines)) == (0, "", 4)
    assert lines[0].startswith(f"sent {len(requests)} requests (60 cases) in ")
    assert lines[1].startswith(f"ok {len(requests)} requests, 60 decisions (")
    assert lines[1].endswith(" decisions/s)")
    assert lines[2:] == [
        "outcomes: ASSIGN 15, ESCALATE 3, QUEUE 35, EXCEPTION 7",
        "refused 0 requests",
    ]
    db = tmp_path / "audit.db"
    assert _decisions_stored(db) == 60
    code, out, _ = _run(capsys, "audit", "verify", "--audit-db", str(db))
    assert (code, out.splitlines()[0].split("; head")[0]) == (
        0,
        "ok: 61 record(s) (1 of them ruleset event(s)), every link and blob verified",
    )


def test_refused_calls_are_counted_by_status_code_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server taking one case per batch refuses each batch (INVALID_ARGUMENT), counted.

    The summary quotes the server's message for the first batch sent (the client's
    ClientError text), which names the limit and what to do.
    """
    limits = InputLimits(max_batch_cases=1)
    requests = list(simulate(60, 8, 5))
    batches = [r for r in requests if len(r.cases) > 1]
    singles = len(requests) - len(batches)
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, limits=limits) as running:
        code, out, err = _run(
            capsys,
            "simulate",
            "--cases",
            "60",
            "--agents",
            "8",
            "--seed",
            "5",
            "--server",
            f"127.0.0.1:{running.port}",
        )
    lines = out.splitlines()
    assert (code, err, len(batches) > 0) == (1, "", True)
    assert lines[1].startswith(f"ok {singles} requests, {singles} decisions (")
    assert lines[3:] == [
        f"refused {len(batches)} requests",
        (
            f"  INVALID_ARGUMENT: {len(batches)} (first: server answered INVALID_ARGUMENT: "
            f"invalid request: 1 problem(s); first: cases: has {len(batches[0].cases)} cases; "
            "the limit is 1 per batch (server setting --max-batch-cases); split the batch "
            "(every problem is in the google.rpc.BadRequest details))"
        ),
    ]
    assert _decisions_stored(tmp_path / "audit.db") == singles


def test_a_caller_token_is_sent_and_its_absence_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --token-file every call is accepted; without it each is refused UNAUTHENTICATED."""
    tokens = AuthConfig(
        caller_token_file=token_file(tmp_path / "caller.tokens", f"flow-engine {CALLER}\n")
    )
    mine = token_file(tmp_path / "me.token", f"{CALLER}\n")
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, auth=tokens) as running:
        target = f"127.0.0.1:{running.port}"
        argv = ("simulate", "--cases", "5", "--agents", "3", "--seed", "1", "--server", target)
        requests = len(list(simulate(5, 3, 1)))
        with_token = _run(capsys, *argv, "--token-file", str(mine))
        without = _run(capsys, *argv)
    assert (with_token[0], with_token[1].splitlines()[3]) == (0, "refused 0 requests")
    assert (without[0], without[1].splitlines()[3]) == (1, f"refused {requests} requests")
    assert without[1].splitlines()[4].startswith(f"  UNAUTHENTICATED: {requests} (first: ")


def test_an_unreachable_server_is_counted_as_unavailable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No server listening: each call is counted UNAVAILABLE and the exit code is 1."""
    code, out, _ = _run(
        capsys,
        "simulate",
        *("--cases", "3", "--agents", "2", "--seed", "1", "--server", "127.0.0.1:1"),
        *("--timeout", "5"),
    )
    requests = len(list(simulate(3, 2, 1)))
    assert (code, out.splitlines()[3]) == (1, f"refused {requests} requests")
    assert out.splitlines()[4].startswith(f"  UNAVAILABLE: {requests} (first: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ("--token-file", "t"),
            "caseroute: --token-file and --tls-* apply only with --server HOST:PORT\n",
        ),
        (
            ("--out", "."),
            "caseroute: --out . is a directory; give a file name, e.g. traffic.jsonl\n",
        ),
        *(
            (
                ("--start", start),
                (
                    f"caseroute: --start {start} is outside the years 1900-9000 the simulator "
                    "dates around; give an instant in that range, e.g. 2026-11-21T07:00:00Z\n"
                ),
            )
            for start in ("9999-12-30T00:00:00Z", "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z")
        ),
        (
            ("--start", "07:00"),
            (
                "caseroute: --start '07:00' is not an RFC 3339 instant "
                "YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM; e.g. "
                "2026-11-21T10:00:00Z\n"
            ),
        ),
    ],
)
def test_usage_mistakes_exit_2_saying_what_to_do(
    extra: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Misused flags exit 2 with one line naming the flag and the fix; nothing is written."""
    code, out, err = _run(
        capsys, "simulate", "--cases", "1", "--agents", "1", "--seed", "1", *extra
    )
    assert (code, out, err) == (2, "", message)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--cases", "0", "--cases must be a whole number from 1 to 10000000, got '0'"),
        ("--agents", "x", "--agents must be a whole number from 1 to 20000, got 'x'"),
        ("--concurrency", "65", "--concurrency must be a whole number from 1 to 64, got '65'"),
        ("--seed", "-1", f"--seed must be a whole number from 0 to {2**64 - 1}, got '-1'"),
        (
            "--timeout",
            "0",
            "--timeout must be a number of seconds above 0 and at most 3600, got '0'",
        ),
        (
            "--timeout",
            "nan",
            "--timeout must be a number of seconds above 0 and at most 3600, got 'nan'",
        ),
    ],
)
def test_out_of_range_counts_are_refused_by_the_parser(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts out of range stop the command with exit 2, naming the flag and its range."""
    argv = {"--cases": "1", "--agents": "1", "--concurrency": "1", "--timeout": "1"} | {flag: value}
    with pytest.raises(SystemExit) as raised:
        main(["simulate", "--seed", "1", *[x for kv in argv.items() for x in kv]])
    err = capsys.readouterr().err
    assert (raised.value.code, err.splitlines()[-1]) == (
        2,
        f"caseroute simulate: error: argument {flag}: {message}",
    )


def test_the_summary_reports_a_rate_and_each_refusal_once() -> None:
    """LoadSummary lines: sent, ok with decisions/s, refused total and per code with its first."""
    summary = LoadSummary(requests=5, cases=9, ok=3, decisions=6, seconds=2.0)
    summary.refused.update({"UNAVAILABLE": 2})
    summary.outcomes.update({"ASSIGN": 4, "EXCEPTION": 2})
    summary.first_error["UNAVAILABLE"] = "server answered UNAVAILABLE: down\nmore"
    assert summary.lines() == [
        "sent 5 requests (9 cases) in 2.0 s",
        "ok 3 requests, 6 decisions (3.0 decisions/s)",
        "outcomes: ASSIGN 4, ESCALATE 0, QUEUE 0, EXCEPTION 2",
        "refused 2 requests",
        "  UNAVAILABLE: 2 (first: server answered UNAVAILABLE: down)",
    ]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        """Claim to be a terminal, as an interactive shell's stderr is."""
        return True


def test_progress_is_shown_on_a_terminal(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal stderr a `deciding` progress bar is drawn and reaches 100%."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ("simulate", "--cases", "8", "--agents", "3", "--seed", "4")
    code = main([*argv, "--server", f"127.0.0.1:{server.port}"])
    assert (code, "deciding" in terminal.getvalue(), "100%" in terminal.getvalue()) == (
        0,
        True,
        True,
    )


def test_a_lines_case_and_roster_decide_with_caseroute_decide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first line's case and roster, as files, are what `caseroute decide` reads."""
    (request,) = list(simulate(1, 5, 7))
    line = json.loads(canonical_json(simulated_request_to_json(request)))
    (tmp_path / "case.json").write_text(json.dumps(line["case"]))
    (tmp_path / "roster.json").write_text(json.dumps(line["roster"]))
    code, out, err = _run(
        capsys,
        *("decide", "--case", str(tmp_path / "case.json"), "--roster"),
        *(str(tmp_path / "roster.json"), "--now", line["now"], "--engine", "python"),
    )
    assert (code, err, out.splitlines()[0]) == (
        0,
        "",
        "SIM-7-000000: ASSIGN to sim7-agent-0004 (queue appointments), priority normal",
    )


@cache
def _a_decision() -> Decision:
    """One real decision (fakes answer every case with it)."""
    case, roster = make_case(), make_roster(make_agent())
    return decide(case, roster, reference_ruleset(EngineKind.PYTHON), NOW)


class _FakeCalls:
    """A fake of ``caseroute.client.Client``'s decide calls, keeping each call's arguments.

    ``answer`` is called with each request id and may block or raise.
    """

    def __init__(self, answer: Callable[[str], None] = lambda _id: None) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def _answer(self, cases: int, kwargs: dict[str, Any]) -> tuple[Decision, ...]:
        with self.lock:
            self.calls.append({"cases": cases, **kwargs})
        self.answer(kwargs["request_id"])
        return (_a_decision(),) * cases

    def decide(
        self,
        case: Case,
        roster: Roster,
        *,
        now: datetime,
        ruleset: str | None,
        version: str | None,
        request_id: str,
        explanation_level: ExplanationLevel,
    ) -> Decided:
        """Decide: answers ``_a_decision()``."""
        del case, roster
        kwargs = {"now": now, "ruleset": ruleset, "version": version}
        kwargs |= {"request_id": request_id, "explanation_level": explanation_level}
        (decision,) = self._answer(1, kwargs)
        return Decided(decision, now, replayed=False, request_id=request_id)

    def decide_batch(
        self,
        cases: Sequence[Case],
        roster: Roster,
        *,
        now: datetime,
        ruleset: str | None,
        version: str | None,
        request_id: str,
        explanation_level: ExplanationLevel,
    ) -> BatchDecided:
        """DecideBatch: answers ``_a_decision()`` per case."""
        del roster
        kwargs = {"now": now, "ruleset": ruleset, "version": version}
        kwargs |= {"request_id": request_id, "explanation_level": explanation_level}
        decisions = self._answer(len(cases), kwargs)
        return BatchDecided(decisions, now, replayed=False, request_id=request_id)


class _RendezvousClient(_FakeCalls):
    """A fake Client whose calls meet in groups of `parties`, tracking calls in flight."""

    def __init__(self, parties: int) -> None:
        super().__init__(self._meet)
        self.barrier = threading.Barrier(parties, timeout=30)
        self.in_flight = 0
        self.most = 0
        self.completed = 0
        self.release = threading.Event()

    def _meet(self, request_id: str) -> None:
        """Wait until `parties` calls are in flight together, then answer."""
        del request_id
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        self.barrier.wait()  # breaks (and fails the test) unless `parties` calls are in flight
        self.release.wait(timeout=30)
        with self.lock:
            self.in_flight -= 1
            self.completed += 1


def test_the_load_keeps_exactly_concurrency_calls_in_flight() -> None:
    """With --concurrency 4, four calls are in flight together, never a fifth, none queued."""
    requests = list(simulate(40, 2, 1))[:8]
    client = _RendezvousClient(4)
    early: list[tuple[int, int]] = []

    def pulled() -> Iterator[SimulatedRequest]:
        for index, request in enumerate(requests):
            # Bounded: request i is taken only once i - 4 calls have completed. No call
            # completes before the loop asks for the fifth request.
            if client.completed < index - 4:
                early.append((index, client.completed))
            if index == 4:
                client.release.set()
            yield request

    total = sum(len(r.cases) for r in requests)
    summary = run_load(client, pulled(), 4, total)
    assert (summary.requests, summary.ok, client.most, early) == (8, 8, 4, [])


def test_sending_the_same_seed_again_gets_the_stored_decisions(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun repeats the request ids and inputs: all ok, nothing stored twice; seed 6 adds."""
    argv = ("simulate", "--cases", "20", "--agents", "4", "--server", f"127.0.0.1:{server.port}")
    first = _run(capsys, *argv, "--seed", "5")
    again = _run(capsys, *argv, "--seed", "5")
    stored_after_rerun = _decisions_stored(tmp_path / "audit.db")
    other = _run(capsys, *argv, "--seed", "6")
    assert (first[0], again[0], other[0]) == (0, 0, 0)
    assert first[1].splitlines()[2:] == again[1].splitlines()[2:]
    assert (stored_after_rerun, _decisions_stored(tmp_path / "audit.db")) == (20, 40)


def test_every_line_is_the_request_grpcurl_can_send(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each line parses with json_format: a DecideRequest for one case, else DecideBatchRequest."""
    from google.protobuf import json_format

    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import convert

    code, out, _ = _run(capsys, "simulate", "--cases", "30", "--agents", "6", "--seed", "3")
    requests = list(simulate(30, 6, 3))
    lines = out.splitlines()
    assert (code, len(lines)) == (0, len(requests))
    assert {len(r.cases) == 1 for r in requests} == {True, False}  # both shapes are exercised
    for line, request in zip(lines, requests, strict=True):
        if len(request.cases) == 1:
            one = json_format.Parse(line, pb.DecideRequest(), ignore_unknown_fields=False)
            cases, roster, request_id, now = [one.case], one.roster, one.request_id, one.now
        else:
            many = json_format.Parse(line, pb.DecideBatchRequest(), ignore_unknown_fields=False)
            cases, roster, request_id, now = (
                list(many.cases),
                many.roster,
                many.request_id,
                many.now,
            )
        assert [convert.case_from_proto(c) for c in cases] == list(request.cases)
        assert convert.roster_from_proto(roster) == request.roster
        assert (request_id, convert.timestamp_to_datetime(now)) == (request.request_id, request.now)
        assert request_from_json(json.loads(line)) == request


def test_a_line_sent_after_simulate_server_is_a_retry_of_the_same_request(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A written line sent by decide --request --server gets the stored decision, not a conflict."""
    target = f"127.0.0.1:{server.port}"
    argv = ("simulate", "--cases", "12", "--agents", "4", "--seed", "8")
    assert _run(capsys, *argv, "--server", target)[0] == 0
    assert _run(capsys, *argv, "--out", str(tmp_path / "lines.jsonl"))[0] == 0
    stored = _decisions_stored(tmp_path / "audit.db")
    for number, line in enumerate((tmp_path / "lines.jsonl").read_text().splitlines()):
        path = tmp_path / f"line-{number}.json"
        path.write_text(line)
        code, _, err = _run(capsys, "decide", "--server", target, "--request", str(path))
        assert (number, code, err) == (number, 0, "")
    assert _decisions_stored(tmp_path / "audit.db") == stored == 12


def test_the_first_refusal_quoted_is_the_first_request_sent() -> None:
    """Per code the summary quotes the earliest request sent, even when a later one failed first."""
    requests = list(simulate(40, 2, 1))[:3]
    ids = [r.request_id for r in requests]
    third_started = threading.Event()

    def answer(request_id: str) -> None:
        # The second call fails at once and is settled before the third is sent; the first
        # fails only once the third has started.
        if request_id == ids[0]:
            third_started.wait(timeout=30)
            raise ClientError(grpc.StatusCode.UNAVAILABLE, "the first")
        if request_id == ids[1]:
            raise ClientError(grpc.StatusCode.UNAVAILABLE, "the second")
        third_started.set()

    total = sum(len(r.cases) for r in requests)
    summary = run_load(_FakeCalls(answer), iter(requests), 2, total)
    assert (summary.ok, summary.refused, summary.first_error) == (
        1,
        {"UNAVAILABLE": 2},
        {"UNAVAILABLE": "server answered UNAVAILABLE: the first"},
    )


class _RecordingClient(_FakeCalls):
    """Stands in for ``caseroute.client.Client``: keeps what it was opened with."""

    made: ClassVar[list[_RecordingClient]] = []

    def __init__(
        self, target: str, *, tls: ClientTls | None, token: str | None, timeout: float
    ) -> None:
        super().__init__()
        self.opened = (target, tls, token, timeout)
        self.made.append(self)

    def __enter__(self) -> Self:
        """The client itself."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Nothing to close."""


def test_the_flags_reach_the_client_and_each_call_carries_its_seeded_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--server/--token-file/--timeout open the Client; ruleset, level and seeded ids per call."""
    monkeypatch.setattr(_RecordingClient, "made", [])
    monkeypatch.setattr("caseroute.client.Client", _RecordingClient)
    mine = token_file(tmp_path / "me.token", "s3cret-token\n")
    argv = ("simulate", "--cases", "30", "--agents", "3", "--seed", "9", "--server", "h:1")
    pinned = _run(
        capsys,
        *argv,
        *("--token-file", str(mine), "--timeout", "7.5", "--ruleset-name", "patient-enquiries"),
        *("--ruleset-version", "v9", "--no-agent-detail"),
    )
    default = _run(capsys, *argv)
    requests = list(simulate(30, 3, 9))
    sent = {r.request_id: (len(r.cases), r.now) for r in requests}
    first, second = _RecordingClient.made
    assert (pinned[0], default[0]) == (0, 0)
    assert [first.opened, second.opened] == [
        ("h:1", None, "s3cret-token", 7.5),
        ("h:1", None, None, 30.0),
    ]
    for client, ruleset, version, level in [
        (first, "patient-enquiries", "v9", ExplanationLevel.SUMMARY),
        (second, None, None, ExplanationLevel.FULL),
    ]:
        assert sorted(c["request_id"] for c in client.calls) == sorted(sent)
        assert [
            (c["cases"], c["now"], c["ruleset"], c["version"], c["explanation_level"])
            for c in client.calls
        ] == [(*sent[c["request_id"]], ruleset, version, level) for c in client.calls]


class _FirstAttemptUnavailable(grpc.ServerInterceptor):
    """Answers UNAVAILABLE to the first attempt of every request id, as a restarting server may.

    Attributes:
        seen: The request_id of every attempt that reached the server.
    """

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """The handler, wrapped to refuse each request id's first attempt."""
        handler = continuation(handler_call_details)
        inner = handler.unary_unary

        def flaky(request: Any, context: grpc.ServicerContext) -> Any:
            with self.lock:
                first = request.request_id not in self.seen
                self.seen.append(request.request_id)
            if first:
                context.abort(grpc.StatusCode.UNAVAILABLE, "not now")
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            flaky,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def test_calls_answered_unavailable_are_retried_with_the_same_request_id(
    core: RoutingCore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The client's retry policy resends each UNAVAILABLE call: all ok, each decided once."""
    flaky = _FirstAttemptUnavailable()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[flaky])
    add_service(server, ROUTING_SERVICE, RoutingServicer(core))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        code, out, err = _run(
            capsys,
            *("simulate", "--cases", "12", "--agents", "3", "--seed", "8"),
            *("--server", f"127.0.0.1:{port}", "--concurrency", "2"),
        )
    finally:
        server.stop(None)
    requests = list(simulate(12, 3, 8))
    ids = sorted(r.request_id for r in requests)
    assert (code, err, out.splitlines()[3]) == (0, "", "refused 0 requests")
    assert sorted(flaky.seen) == sorted(ids * 2)
    assert [len(core.audit.by_request(i)) for i in ids] == [
        len(r.cases) for r in sorted(requests, key=lambda r: r.request_id)
    ]


def test_mutual_tls_flags_reach_the_server_and_name_the_caller(
    pki: Pki, mtls_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tls-ca/--tls-cert/--tls-key: decided as the certificate's name; no cert: refused."""
    argv = ("simulate", "--cases", "6", "--agents", "3", "--seed", "2")
    target = ("--server", f"localhost:{mtls_server.port}", "--tls-ca", str(pki.ca))
    mutual = _run(
        capsys, *argv, *target, "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)
    )
    no_cert = _run(capsys, *argv, *target)
    requests = list(simulate(6, 3, 2))
    stored = [r for q in requests for r in mtls_server.core.audit.by_request(q.request_id)]
    assert (mutual[0], mutual[1].splitlines()[3]) == (0, "refused 0 requests")
    assert ({r.caller for r in stored}, len(stored)) == ({"flow-engine.example.org"}, 6)
    assert (no_cert[0], no_cert[1].splitlines()[3]) == (1, f"refused {len(requests)} requests")
    assert no_cert[1].splitlines()[4].startswith(f"  UNAVAILABLE: {len(requests)} (first: ")


STOPPED = (
    "stopped early: 8 calls in a row were UNAVAILABLE after the client's retries, so the rest "
    "was not sent; check the server is up and ready (caseroute health --server HOST:PORT), then "
    "send the same seed again (decisions already recorded come back as stored)"
)


@pytest.mark.parametrize(
    ("code", "fails", "sent", "stopped"),
    [
        (grpc.StatusCode.UNAVAILABLE, lambda _i: True, 8, True),
        (grpc.StatusCode.UNAVAILABLE, lambda i: i % 8 != 7, 40, False),
        (grpc.StatusCode.INVALID_ARGUMENT, lambda _i: True, 40, False),
    ],
    ids=["unavailable-throughout", "an-answer-every-eighth", "invalid-throughout"],
)
def test_the_load_stops_after_eight_unavailable_calls_in_a_row(
    code: grpc.StatusCode, fails: Callable[[int], bool], sent: int, *, stopped: bool
) -> None:
    """8 UNAVAILABLE in a row (no answer between) stop the sending; other codes never do."""
    requests = list(simulate(100, 2, 1))[:40]
    index = {r.request_id: i for i, r in enumerate(requests)}

    def answer(request_id: str) -> None:
        if fails(index[request_id]):
            raise ClientError(code, "down")

    total = sum(len(r.cases) for r in requests)
    summary = run_load(_FakeCalls(answer), iter(requests), 1, total)
    refused = sum(1 for i in range(sent) if fails(i))
    assert (summary.requests, summary.refused[code.name], summary.stopped) == (
        sent,
        refused,
        stopped,
    )
    assert (summary.lines()[-1] == STOPPED) is stopped


def test_an_unreachable_server_stops_the_load_early_saying_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No server: after 8 UNAVAILABLE calls in a row the rest is not sent; exit 1 with a hint."""
    code, out, err = _run(
        capsys,
        *("simulate", "--cases", "200", "--agents", "2", "--seed", "1"),
        *("--server", "127.0.0.1:1", "--concurrency", "8"),
    )
    lines = out.splitlines()
    refused = int(lines[3].split()[1])  # 8, and those in flight when the 8th settled
    assert (code, err, lines[-1], 8 <= refused <= 15) == (1, "", STOPPED, True)
    assert lines[0].startswith(f"sent {refused} requests (")
    assert lines[4].startswith(
        f"  UNAVAILABLE: {refused} (first: no answer from 127.0.0.1:1 (UNAVAILABLE: "
    )
