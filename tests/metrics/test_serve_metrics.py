"""`caseroute serve --metrics-port`: /metrics across workers, refusals by code, bad ports."""

import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.serve_process import Served, serve_argv, serve_env, start_serve

from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

ROSTER = convert.roster_to_proto(make_roster(make_agent("AGENT-ZQ-1"), make_agent("AGENT-ZQ-2")))


def _decide(request_id: str, case_id: str) -> pb.DecideRequest:
    return pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case(case_id=case_id)),
        roster=ROSTER,
        now=convert.datetime_to_timestamp(NOW),
    )


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition at ``url``: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - a local test server
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _serve(tmp_path: Path, *extra: str) -> tuple[Served, str]:
    """`caseroute serve --workers 2 --metrics-port 0`; both workers SERVING; its metrics URL."""
    served = start_serve(tmp_path / "audit.db", "--metrics-port", "0", *extra, workers=2)
    metrics = served.stdout_line(30)
    match = re.fullmatch(r"caseroute metrics on (http://127\.0\.0\.1:\d+/metrics)\n", metrics)
    assert match is not None, metrics
    return served, match.group(1)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """A two-worker server with metrics on a free port; killed if a test leaves it running."""
    served, url = _serve(tmp_path)
    yield served, url
    served.reap()


@pytest.mark.slow
def test_metrics_sum_the_calls_every_worker_answered(two_workers: tuple[Served, str]) -> None:
    """30 decisions on 30 connections (spread by the kernel), 3 refusals, 1 retry: all counted."""
    served, url = two_workers
    refused: list[grpc.StatusCode] = []
    # A connection sticks to one worker; the kernel spreads connections at random, so all 30
    # landing on one worker has odds of 2**-29.
    for conn in range(30):
        with grpc.insecure_channel(
            served.address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            stub.Decide(_decide(f"REQ-ZQ-{conn}", f"CASE-ZQ-{conn}"), timeout=60)
            if conn == 0:
                stub.Decide(_decide("REQ-ZQ-0", "CASE-ZQ-0"), timeout=60)  # a retry
                for bad in (_decide("", "CASE-ZQ-X"), _decide("REQ-ZQ-0", "CASE-ZQ-OTHER")):
                    with pytest.raises(grpc.RpcError) as exc:
                        stub.Decide(bad, timeout=60)
                    refused.append(exc.value.code())
                log = routing_pb2_grpc.DecisionLogStub(chan)
                with pytest.raises(grpc.RpcError) as exc:
                    log.GetDecision(pb.GetDecisionRequest(decision_id="dec_nope"), timeout=60)
                refused.append(exc.value.code())
    assert refused == [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
    ]
    samples = _scrape(url)
    decisions = (
        "caseroute_decisions_total",
        (("outcome", "ASSIGN"), ("ruleset", "patient-enquiries"), ("version", "2026.12.1")),
    )
    assert samples[decisions] == 30.0
    assert samples["caseroute_decision_replays_total", (("ruleset", "patient-enquiries"),)] == 1.0
    assert {
        code: samples.get(("caseroute_requests_refused_total", (("code", code),)))
        for code in ("INVALID_ARGUMENT", "ALREADY_EXISTS", "NOT_FOUND")
    } == {"INVALID_ARGUMENT": 1.0, "ALREADY_EXISTS": 1.0, "NOT_FOUND": 1.0}
    # 31 successful Decide calls (30 decisions and the retry) are timed.
    assert samples["caseroute_decision_seconds_count", (("method", "Decide"),)] == 31.0
    triage = ("caseroute_time_to_triage_seconds_bucket", "clinical", "routine")
    assert {
        le: samples[triage[0], (("intent", triage[1]), ("le", le), ("urgency", triage[2]))]
        for le in ("60.0", "300.0", "+Inf")
    } == {"60.0": 0.0, "300.0": 30.0, "+Inf": 30.0}
    assert not any("ZQ" in value for _, labels in samples for _, value in labels)
    # Each worker loaded the rulesets once; the version gauge reads 1 (max), not 2 (sum).
    assert samples["caseroute_reloads_total", (("action", "load"), ("result", "ok"))] == 2.0
    active = (("role", "active"), ("ruleset", "patient-enquiries"), ("version", "2026.12.1"))
    assert samples["caseroute_ruleset_version_info", active] == 1.0
    # Counts come from the worker processes' files, which the parent removes when it exits.
    served.wait_for("metrics: workers write to")
    directory = next(  # the line is JSON: stderr is no terminal (--log-format auto)
        Path(json.loads(line)["event"].rsplit(" to ", 1)[1].removesuffix(" (removed at exit)"))
        for line in served.seen
        if "metrics: workers write to" in line
    )
    assert len({p.name for p in directory.glob("counter_*.db")}) == 2  # one file per worker
    os.kill(served.proc.pid, signal.SIGTERM)
    assert served.proc.wait(60) == 0
    assert not directory.exists()


def _serve_fails(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`caseroute serve` that must stop before serving: its exit code and stderr."""
    done = subprocess.run(
        serve_argv("--workers", "2", *args),
        capture_output=True,
        text=True,
        env=serve_env(env),
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {},
            ("--metrics-port", "abc"),
            "argument --metrics-port: must be a TCP port 0-65535 (0 picks a free one), got 'abc'",
        ),
        (
            {},
            ("--metrics-port", "65536"),
            "argument --metrics-port: must be a TCP port 0-65535 (0 picks a free one), got '65536'",
        ),
        (
            {"CASEROUTE_METRICS_PORT": "-1"},
            (),
            (
                "argument --metrics-port: must be a TCP port 0-65535 (0 picks a free one), got "
                "'-1' (set by the flag or $CASEROUTE_METRICS_PORT; unset it to serve no metrics)"
            ),
        ),
        (
            {},
            ("--port", "50999", "--metrics-port", "50999"),
            (
                "caseroute: --metrics-port 50999 is also --port (gRPC); give metrics a port of "
                "their own"
            ),
        ),
    ],
)
def test_a_bad_metrics_port_is_a_usage_error(
    env: dict[str, str], args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    """A port that is not 0-65535 or is the gRPC port: exit 2, one clear line, no traceback."""
    code, stderr = _serve_fails(env, "--audit-db", str(tmp_path / "audit.db"), *args)
    assert (code, message in stderr, "Traceback" in stderr) == (2, True, False), stderr


def test_a_metrics_port_in_use_stops_the_start(tmp_path: Path) -> None:
    """Another listener on the port: exit 2 naming the port and what to do; no worker starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = _serve_fails(
            {},
            "--port",
            "0",
            "--metrics-port",
            str(port),
            "--audit-db",
            str(tmp_path / "audit.db"),
        )
    assert code == 2
    assert (
        f"caseroute: --metrics-port {port}: cannot listen on 127.0.0.1:{port} (the address is "
        "in use); choose a free port ($CASEROUTE_METRICS_PORT), or leave metrics off"
    ) in stderr
    assert "Traceback" not in stderr
    assert "worker listening" not in stderr


def test_an_empty_metrics_port_variable_means_no_metrics() -> None:
    """CASEROUTE_METRICS_PORT= (set but empty) leaves metrics off rather than failing."""
    from caseroute.cli.command import build_parser
    from caseroute.cli.serve import server_config

    os.environ["CASEROUTE_METRICS_PORT"] = ""
    try:
        args = build_parser().parse_args(["serve"])
    finally:
        del os.environ["CASEROUTE_METRICS_PORT"]
    assert server_config(args).metrics_port is None


def test_a_refused_call_of_any_service_is_counted_by_its_code(tmp_path: Path) -> None:
    """In one process: INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED (unknown method), OK not."""
    from prometheus_client import CollectorRegistry

    collector = CollectorRegistry()
    config = ServerConfig(rulesets=REFERENCE_RULESET.parent, port=0, audit=audit_config(tmp_path))
    running = build_server(
        config, reuse_port=False, metrics=MetricsRecorder(define_metrics(collector))
    )
    try:
        running.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            stub.Decide(_decide("REQ-ZQ-1", "CASE-ZQ-1"), timeout=30)
            for call in (
                lambda: stub.Decide(_decide("", "CASE-ZQ-2"), timeout=30),
                lambda: routing_pb2_grpc.DecisionLogStub(chan).GetDecision(
                    pb.GetDecisionRequest(decision_id="dec_nope"), timeout=30
                ),
                lambda: chan.unary_unary(
                    "/caseroute.v1.RoutingService/Nope",
                    request_serializer=bytes,
                    response_deserializer=bytes,
                )(b"", timeout=30),
            ):
                with pytest.raises(grpc.RpcError):
                    call()
    finally:
        running.stop(1)
    refused = {
        code: collector.get_sample_value("caseroute_requests_refused_total", {"code": code})
        for code in ("INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED", "OK")
    }
    assert refused == {"INVALID_ARGUMENT": 1.0, "NOT_FOUND": 1.0, "UNIMPLEMENTED": 1.0, "OK": None}
    decisions = collector.get_sample_value(
        "caseroute_decisions_total",
        {"ruleset": "patient-enquiries", "version": "2026.12.1", "outcome": "ASSIGN"},
    )
    assert decisions == 1.0


@pytest.mark.slow
def test_one_worker_serves_its_own_metrics_and_counts_access_refusals(tmp_path: Path) -> None:
    """--workers 1: the process's registry is served; a call without its token is counted."""
    tokens = tmp_path / "callers"
    tokens.write_text("crm s3cret-token-for-tests\n")
    tokens.chmod(0o600)
    served = start_serve(
        tmp_path / "audit.db",
        *("--caller-token-file", str(tokens)),
        env={"CASEROUTE_METRICS_PORT": "0"},
    )
    proc = served.proc
    try:
        listening = served.listening
        assert listening.endswith("(1 worker)\n"), listening
        url = served.stdout_line(30).split()[3]
        auth = (("authorization", "Bearer s3cret-token-for-tests"),)
        with grpc.insecure_channel(served.address) as chan:
            stub = routing_pb2_grpc.RoutingServiceStub(chan)
            stub.Decide(_decide("REQ-ZQ-1", "CASE-ZQ-1"), timeout=60, metadata=auth)
            with pytest.raises(grpc.RpcError) as exc:
                stub.Decide(_decide("REQ-ZQ-2", "CASE-ZQ-2"), timeout=60)
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        samples = _scrape(url)
        labels = (("outcome", "ASSIGN"), ("ruleset", "patient-enquiries"), ("version", "2026.12.1"))
        assert samples["caseroute_decisions_total", labels] == 1.0
        refused = ("caseroute_requests_refused_total", (("code", "UNAUTHENTICATED"),))
        assert samples[refused] == 1.0
        assert samples["caseroute_decision_seconds_count", (("method", "Decide"),)] == 1.0
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        served.reap()
