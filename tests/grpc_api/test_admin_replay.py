"""RulesetAdmin.Replay end to end: a real server replays its own recorded log, and every refusal."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.audit.record import AuditRecord, Blob
from caseroute.domain.errors import (
    AuditUnavailableError,
    EngineValidationError,
    RulesetError,
    RulesetStateError,
)
from caseroute.domain.fingerprint import canonical_json
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.replay import RecordFilter
from caseroute.replay_admin import ReplayCandidate, ReplayRunner, ServerReplay
from caseroute.testing import audit_config
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc
from tests.replay.recorded import CANDIDATES, record_log

from .test_admin import FakeAdmin, admin_server
from .test_auth import ALICE, NEEDS_CREDENTIALS, bearer, token_file

BROKEN = CANDIDATES["queue"].replace("case.urgency == 'urgent'", "case.urgncy == 'urgent'")
"""The `queue` candidate with a misspelt field (an error at line 15, column 11)."""
UNKNOWN_FIELD = (
    "15:11: error expr.unknown_field [rule urgent]: unknown field `case.urgncy` (did you mean "
    "`case.urgency`?)"
)
NOT_FOUND_TEXT = (
    "no ruleset version test@9 on this server (neither under its rulesets directory nor "
    "decided in its decision log); ListRulesets shows the loaded versions, or send the "
    "candidate's source instead"
)


def replay_home(base: Path) -> Path:
    """``base`` with the recorded three-record log, test@2 (active) and a broken test@3."""
    record_log(base / "audit").close()
    version = base / "rulesets" / "test" / "2"
    version.mkdir(parents=True)
    (version / "ruleset.yaml").write_text(CANDIDATES["queue"])
    (base / "rulesets" / "test" / "serving.yaml").write_text("active: '2'\n")
    broken = base / "rulesets" / "test" / "3" / "ruleset.yaml"
    broken.parent.mkdir()
    broken.write_text(BROKEN.replace('version: "2"', 'version: "3"'))
    token_file(base / "admin.tokens", f"alice {ALICE}\n")
    return base


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded log, rulesets and admin tokens a server replays from."""
    return replay_home(tmp_path_factory.mktemp("admin-replay"))


def start_server(home: Path) -> RunningServer:
    """A started server over ``home`` (python engine), recording into its log."""
    config = ServerConfig(
        rulesets=home / "rulesets",
        port=0,
        engine=EngineKind.PYTHON,
        audit=audit_config(home / "audit"),
        auth=AuthConfig(admin_token_file=home / "admin.tokens"),
        reload_interval_s=0,
    )
    server = build_server(config, reuse_port=False)
    server.load(config)
    return server


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[RunningServer]:
    """One server for the module (Replay changes nothing)."""
    server = start_server(home)
    try:
        yield server
    finally:
        server.stop(1)


def _replay(server: RunningServer, request: apb.ReplayRequest, **call: Any) -> apb.ReplayResponse:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = admin_pb2_grpc.RulesetAdminStub(channel)
        reply: apb.ReplayResponse = stub.Replay(
            request, timeout=60, **({"metadata": bearer(ALICE)} | call)
        )
        return reply


def _refusal(
    server: RunningServer, request: apb.ReplayRequest, **call: Any
) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    with pytest.raises(grpc.RpcError) as exc:
        _replay(server, request, **call)
    error: Any = exc.value
    status = rpc_status.from_call(error)
    violations: list[tuple[str, str]] = []
    for detail in status.details if status is not None else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations = [(v.field, v.description) for v in bad.field_violations]
    return error.code(), error.details(), violations


def by_name(spec: str, **fields: Any) -> apb.ReplayRequest:
    """A Replay request for the candidate ``spec`` (NAME@VERSION)."""
    return apb.ReplayRequest(candidate=apb.ReplayCandidate(ruleset=spec), **fields)


def test_name_at_version_under_the_rulesets_dir_reports_typed_totals(
    served: RunningServer,
) -> None:
    """test@2 found under the rulesets dir: typed totals, classes, rates, and the JSON report."""
    reply = _replay(served, by_name("test@2"))
    report = json.loads(reply.report_json)
    assert (
        reply.ruleset_name,
        reply.ruleset_version,
        reply.total,
        reply.changed,
        reply.not_replayable,
        reply.other_ruleset,
        reply.classes["queue_changed"],
        reply.classes["unchanged"],
        reply.rates["queue_changed"],
        reply.limit_reached,
    ) == ("test", "2", 3, 2, 0, 0, 2, 1, 2 / 3, False)
    assert (dict(reply.classes), reply.ruleset_sha256) == (
        report["classes"],
        report["candidate"]["ruleset_sha256"],
    )
    assert reply.report_json == canonical_json(report)


def test_source_text_gives_the_same_report_as_its_version(served: RunningServer) -> None:
    """The candidate sent as text replays exactly as the same version found by name."""
    request = apb.ReplayRequest(
        candidate=apb.ReplayCandidate(source=CANDIDATES["queue"], file_name="queue.yaml")
    )
    assert _replay(served, request).report_json == _replay(served, by_name("test@2")).report_json


def test_name_at_version_only_in_the_log_is_read_from_the_stored_source(
    served: RunningServer,
) -> None:
    """test@1 is not under the rulesets dir: its stored source replays unchanged."""
    reply = _replay(served, by_name("test@1"))
    assert (reply.ruleset_version, reply.total, reply.changed, reply.classes["unchanged"]) == (
        "1",
        3,
        0,
        3,
    )


def test_filters_case_and_time(served: RunningServer) -> None:
    """case_id keeps one record; an until before every recorded now keeps none."""
    one = _replay(served, by_name("test@2", case_id="C3"))
    until = apb.ReplayRequest(candidate=apb.ReplayCandidate(ruleset="test@2"))
    until.until.FromDatetime(datetime(2000, 1, 1, tzinfo=UTC))
    none = _replay(served, until)
    assert (one.total, one.changed, none.total) == (1, 1, 0)


def test_limit_counts_records_and_says_it_was_reached(served: RunningServer) -> None:
    """A limit of 2 replays the first two records and sets limit_reached."""
    reply = _replay(served, by_name("test@2", limit=2))
    assert (reply.total, reply.limit_reached) == (2, True)


def test_limit_and_sample_size_over_the_maximum_are_refused(served: RunningServer) -> None:
    """A limit over 100000 and a sample over 50 are INVALID_ARGUMENT naming each field."""
    code, _, violations = _refusal(served, by_name("test@2", limit=100_001, sample_size=51))
    assert (code, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [
            (
                "limit",
                (
                    "is 100001; at most 100000 records per call (0: that maximum): narrow "
                    "since/until, or replay a copy of the log locally"
                ),
            ),
            ("sample_size", "is 51; at most 50"),
        ],
    )


def test_until_not_after_since_is_refused(served: RunningServer) -> None:
    """An until at or before since is INVALID_ARGUMENT naming until."""
    request = by_name("test@2")
    request.since.FromDatetime(datetime(2026, 1, 2, tzinfo=UTC))
    request.until.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    assert _refusal(served, request)[2] == [("until", "must be after since")]


def test_unknown_version_is_not_found_without_server_paths(
    served: RunningServer, home: Path
) -> None:
    """An unknown NAME@VERSION is NOT_FOUND with a text naming it and no server path."""
    code, message, _ = _refusal(served, by_name("test@9"))
    assert (code, message, str(home) in message) == (
        grpc.StatusCode.NOT_FOUND,
        NOT_FOUND_TEXT,
        False,
    )


@pytest.mark.parametrize(
    ("spec", "violation"),
    [
        ("../etc@1", "its name must be a plain name, not a path"),
        ("test@..", "its version must be a plain name, not a path"),
        ("test", "is not NAME@VERSION (at most 401 characters), e.g. patient-enquiries@2026.11.1"),
        ("@1", "its name is required"),
    ],
)
def test_a_spec_that_could_name_a_path_is_refused(
    served: RunningServer, spec: str, violation: str
) -> None:
    """NAME@VERSION must be two plain names: nothing outside the rulesets dir is ever read."""
    code, _, violations = _refusal(served, by_name(spec))
    assert (code, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("candidate.ruleset", violation)],
    )


def test_no_candidate_is_refused(served: RunningServer) -> None:
    """A request without a candidate is INVALID_ARGUMENT naming candidate."""
    assert _refusal(served, apb.ReplayRequest())[2] == [
        (
            "candidate",
            (
                "is required: send the candidate's YAML in candidate.source or NAME@VERSION "
                "in candidate.ruleset"
            ),
        )
    ]


def test_a_candidate_source_with_errors_lists_its_problems_by_file_line(
    served: RunningServer,
) -> None:
    """A source that does not compile: INVALID_ARGUMENT, one candidate.source violation each."""
    request = apb.ReplayRequest(candidate=apb.ReplayCandidate(source=BROKEN, file_name="mine.yaml"))
    code, _, violations = _refusal(served, request)
    assert (code, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("candidate.source", f"mine.yaml:{UNKNOWN_FIELD}")],
    )


def test_a_broken_version_on_disk_names_its_file_relative_to_the_rulesets_dir(
    served: RunningServer,
) -> None:
    """test@3 does not compile: candidate.ruleset violations name test/3/ruleset.yaml:line."""
    code, _, violations = _refusal(served, by_name("test@3"))
    assert (code, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("candidate.ruleset", f"test/3/ruleset.yaml:{UNKNOWN_FIELD}")],
    )


def test_without_credentials_replay_is_unauthenticated(served: RunningServer) -> None:
    """RulesetAdmin's auth applies to Replay: no token, UNAUTHENTICATED."""
    code, message, _ = _refusal(served, by_name("test@2"), metadata=())
    assert (code, message) == (grpc.StatusCode.UNAUTHENTICATED, NEEDS_CREDENTIALS)


class UnreadableLogAdmin(FakeAdmin):
    """An admin core whose decision log cannot be read."""

    def replay(
        self,
        wanted: ReplayCandidate,  # noqa: ARG002 - the protocol's signature
        where: RecordFilter,  # noqa: ARG002
        sample_size: int,  # noqa: ARG002
    ) -> ServerReplay:
        """Always: the log is unreadable."""
        raise AuditUnavailableError("the decision log cannot be read; retry later")


def test_an_unreadable_log_is_unavailable(tmp_path: Path) -> None:
    """AuditUnavailableError from the core reaches the caller as UNAVAILABLE with its text."""
    with admin_server(tmp_path, admin=UnreadableLogAdmin()) as server:
        code, message, _ = _refusal(server, by_name("test@2"))
    assert (code, message) == (
        grpc.StatusCode.UNAVAILABLE,
        "the decision log cannot be read; retry later",
    )


class StubSink:
    """Just enough of an AuditSink for ReplayRunner: records() as scripted."""

    def __init__(self, records: Any) -> None:
        """``records`` is called with the filter's arguments."""
        self._records = records

    def records(self, **_where: Any) -> Iterator[AuditRecord]:
        """Scripted."""
        result: Iterator[AuditRecord] = self._records()
        return result

    def get_blob(self, sha256: str) -> Blob | None:  # noqa: ARG002
        """None."""
        return None


SOURCE = ReplayCandidate(source=CANDIDATES["queue"], file_name="queue.yaml")


def test_runner_maps_a_sqlite_error_to_audit_unavailable(tmp_path: Path) -> None:
    """A log that fails while read is AuditUnavailableError with a text naming no path."""

    def broken() -> Iterator[AuditRecord]:
        raise sqlite3.OperationalError(f"unable to open database file {tmp_path}")

    runner = ReplayRunner(EngineKind.PYTHON, StubSink(broken))  # type: ignore[arg-type]
    with pytest.raises(AuditUnavailableError) as exc:
        runner.replay(tmp_path, SOURCE, RecordFilter())
    assert str(exc.value) == (
        "the decision log cannot be read; retry later (the server log has why)"
    )


def test_runner_names_an_engine_refusal_without_the_engine_s_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine refusing the candidate: engine.rejected at the candidate's file, text logged.

    Its message may name server paths: it goes to the server log, never to the caller.
    """

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise EngineValidationError("durable_rules rejected: /srv/caseroute/lib/engine.so")

    monkeypatch.setattr("caseroute.replay_admin.replay", refuse)
    runner = ReplayRunner(EngineKind.PYTHON, StubSink(lambda: iter(())))  # type: ignore[arg-type]
    with caplog.at_level("WARNING", "caseroute.replay_admin"), pytest.raises(RulesetError) as exc:
        runner.replay(tmp_path, SOURCE, RecordFilter())
    ((problem),) = exc.value.problems
    assert (problem.code, problem.file, "/srv" in problem.message) == (
        "engine.rejected",
        "queue.yaml",
        False,
    )
    logged = (
        "Replay: the engine refused candidate queue.yaml: durable_rules rejected: "
        "/srv/caseroute/lib/engine.so"
    )
    assert caplog.messages == [logged]


def test_runner_without_a_log_is_audit_unavailable(tmp_path: Path) -> None:
    """A server with no decision log refuses Replay with AuditUnavailableError."""
    with pytest.raises(AuditUnavailableError) as exc:
        ReplayRunner(EngineKind.PYTHON, None).replay(tmp_path, SOURCE, RecordFilter())
    assert str(exc.value) == (
        "this server has no decision log to replay; replay a log locally with "
        "`caseroute replay --audit-db`"
    )


def test_runner_refuses_a_second_replay_while_one_runs(tmp_path: Path) -> None:
    """One replay at a time: a second call meanwhile is RulesetStateError (FAILED_PRECONDITION)."""
    reading = threading.Event()
    release = threading.Event()

    def slow() -> Iterator[AuditRecord]:
        reading.set()
        release.wait(30)
        return iter(())

    runner = ReplayRunner(EngineKind.PYTHON, StubSink(slow))  # type: ignore[arg-type]
    results: list[ServerReplay] = []
    first = threading.Thread(
        target=lambda: results.append(runner.replay(tmp_path, SOURCE, RecordFilter()))
    )
    first.start()
    assert reading.wait(30)
    try:
        with pytest.raises(RulesetStateError) as exc:
            runner.replay(tmp_path, SOURCE, RecordFilter())
    finally:
        release.set()
        first.join(30)
    assert (str(exc.value), results[0].report.total) == (
        "another replay is running on this server; retry when it has finished",
        0,
    )


def test_an_instant_out_of_range_is_refused(served: RunningServer) -> None:
    """A since beyond year 9999 is INVALID_ARGUMENT naming since."""
    request = by_name("test@2")
    request.since.seconds = 10**12
    assert _refusal(served, request)[2] == [
        ("since", "is not an instant between years 1 and 9999; send a valid one")
    ]


def test_a_source_candidate_names_its_fields_under_candidate(served: RunningServer) -> None:
    """An empty source and a file name with a directory are named candidate.source/file_name."""
    request = apb.ReplayRequest(candidate=apb.ReplayCandidate(source="", file_name="a/b.yaml"))
    assert _refusal(served, request)[2] == [
        ("candidate.source", "is required: send the ruleset's YAML text"),
        ("candidate.file_name", "is a name, not a path: drop the directory"),
    ]


def test_a_server_whose_admin_core_does_not_replay_refuses(tmp_path: Path) -> None:
    """An admin core without replay: FAILED_PRECONDITION saying to replay locally."""
    with admin_server(tmp_path, admin=FakeAdmin()) as server:
        code, message, _ = _refusal(server, by_name("test@2"))
    assert (code, message) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "this server does not replay; replay its log locally",
    )
