"""`caseroute simulate`: JSON lines to a file or stdout, or a bounded load on a real server."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.cli.simulate import LoadSummary, run_load
from caseroute.domain.case import Case
from caseroute.domain.codec import canonical_json
from caseroute.domain.decision import Decision
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import Roster
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer
from caseroute.simulate import SimulatedRequest, request_from_json, simulate
from caseroute.wire.json_dialect import simulated_request_to_json

from .grpc_api.conftest import serving_reference
from .grpc_api.test_auth import CALLER, token_file


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
        "outcomes: ASSIGN 17, ESCALATE 3, QUEUE 35, EXCEPTION 5",
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
    """A server taking one case per batch refuses each batch (INVALID_ARGUMENT), counted."""
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
            "invalid request:)"
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
        (
            ("--start", "07:00"),
            (
                "caseroute: --start '07:00' is not an ISO-8601 instant with offset; e.g. "
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
    ],
)
def test_out_of_range_counts_are_refused_by_the_parser(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts out of range stop the command with exit 2, naming the flag and its range."""
    argv = {"--cases": "1", "--agents": "1", "--concurrency": "1"} | {flag: value}
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
    (tmp_path / "case.json").write_text(json.dumps(line["cases"][0]))
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


class _RendezvousClient:
    """A fake RoutingClient whose calls meet in groups of `parties`, tracking calls in flight."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=30)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.completed = 0
        self.release = threading.Event()

    def decide(
        self, request_id: str, cases: tuple[Case, ...], roster: Roster, now: datetime
    ) -> tuple[Decision, ...]:
        """Wait until `parties` calls are in flight together, then answer nothing."""
        del request_id, cases, roster, now
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        self.barrier.wait()  # breaks (and fails the test) unless `parties` calls are in flight
        self.release.wait(timeout=30)
        with self.lock:
            self.in_flight -= 1
            self.completed += 1
        return ()


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
    summary = run_load(client, pulled(), 4, total)  # type: ignore[arg-type]
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


def test_every_line_is_a_decide_batch_request_grpcurl_can_send(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each simulate line parses with json_format as caseroute.v1.DecideBatchRequest, unchanged."""
    from google.protobuf import json_format

    from caseroute.v1 import routing_pb2 as pb
    from caseroute.wire import convert

    code, out, _ = _run(capsys, "simulate", "--cases", "30", "--agents", "6", "--seed", "3")
    requests = list(simulate(30, 6, 3))
    lines = out.splitlines()
    assert (code, len(lines)) == (0, len(requests))
    for line, request in zip(lines, requests, strict=True):
        msg = json_format.Parse(line, pb.DecideBatchRequest(), ignore_unknown_fields=False)
        assert [convert.case_from_proto(c) for c in msg.cases] == list(request.cases)
        assert convert.roster_from_proto(msg.roster) == request.roster
        assert (msg.request_id, convert.timestamp_to_datetime(msg.now)) == (
            request.request_id,
            request.now,
        )
        assert request_from_json(json.loads(line)) == request
