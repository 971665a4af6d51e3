"""Who may call which service: bearer tokens, mTLS allow-lists, and what a refusal says."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from caseroute.cli import main
from caseroute.cli.command import build_parser
from caseroute.cli.serve import server_config
from caseroute.domain.errors import ConfigError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AccessPolicy, AuthConfig, read_token_file
from caseroute.grpc_api.server import ADMIN_SERVICE, RunningServer
from caseroute.grpc_api.tls import ClientTls, ServerTls
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc, routing_pb2_grpc
from caseroute.v1 import routing_pb2 as pb
from tests.serve_process import start_serve

from .conftest import decide_request, serving_reference
from .test_tls import Pki, pki  # noqa: F401 - the fixture, used by name

ALICE = "alice-token-0123456789abcdef"
AUDITOR = "auditor-token-0123456789abcdef"
CALLER = "caller-token-0123456789abcdef"
NEEDS_CREDENTIALS = (
    "this call needs credentials: send `authorization: Bearer <token>` or a client "
    "certificate on the allow-list"
)
DENIED = (
    "these credentials are not allowed to call this service; ask the operators for a token "
    "or an allow-listed client certificate"
)
ADMIN_UNCONFIGURED = (
    "ruleset administration is not enabled on this server: the operators must start it with "
    "--admin-token-file FILE (lines `<identity> <token>`) or --admin-allow IDENTITY (mutual "
    "TLS); see docs/security.md"
)


def token_file(path: Path, text: str, mode: int = 0o600) -> Path:
    """A token file with ``text`` and ``mode``."""
    path.write_text(text)
    path.chmod(mode)
    return path


def bearer(token: str) -> tuple[tuple[str, str]]:
    """Call metadata with a bearer token."""
    return (("authorization", f"Bearer {token}"),)


def _code_and_details(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    call: Any = error  # unary errors are also grpc.Call objects (grpc's _InactiveRpcError)
    return call.code(), call.details() or ""


@pytest.fixture
def tokens(tmp_path: Path) -> AuthConfig:
    """Admin, auditor and caller token files (mode 0600)."""
    return AuthConfig(
        admin_token_file=token_file(
            tmp_path / "admin.tokens", f"# operators\n\nadmin:alice {ALICE}\n"
        ),
        audit_token_file=token_file(tmp_path / "audit.tokens", f"auditor:ann {AUDITOR}\n"),
        caller_token_file=token_file(tmp_path / "caller.tokens", f"flow-engine {CALLER}\n"),
    )


@pytest.fixture
def protected(tmp_path: Path, tokens: AuthConfig) -> Iterator[RunningServer]:
    """A plaintext server with a token policy on all three services."""
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, auth=tokens) as server:
        yield server


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server with no access policy at all."""
    with serving_reference(tmp_path, engine=EngineKind.PYTHON) as server:
        yield server


def _list(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> apb.ListRulesetsResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply: apb.ListRulesetsResponse = admin_pb2_grpc.RulesetAdminStub(channel).ListRulesets(
            apb.ListRulesetsRequest(), timeout=10, metadata=metadata
        )
        return reply


def _refused_list(
    port: int, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        _list(port, metadata)
    return _code_and_details(exc.value)


def test_a_token_file_reads_identity_token_lines_skipping_comments(tmp_path: Path) -> None:
    """`<identity> <token>` per line; comments and blank lines are ignored."""
    path = token_file(
        tmp_path / "t",
        f"# who may administer\n\nadmin:alice {ALICE}\n  admin:bob   {AUDITOR}  \n",
    )
    assert read_token_file(path, "--admin-token-file") == (
        ("admin:alice", ALICE.encode()),
        ("admin:bob", AUDITOR.encode()),
    )


def test_a_token_file_other_users_can_read_is_refused(tmp_path: Path) -> None:
    """Like the masking key: a token file readable by group or others stops the start."""
    path = token_file(tmp_path / "t", f"admin:alice {ALICE}\n", mode=0o640)
    with pytest.raises(ConfigError) as exc:
        read_token_file(path, "--admin-token-file")
    assert str(exc.value) == (
        f"--admin-token-file: the token file {path} is accessible to other users (mode 640); "
        f"run `chmod 600 {path}`"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"admin:alice {ALICE} extra\n",
            (
                "{path}:1: expected `<identity> <token>` (two fields separated by a space), "
                "found 3 field(s)"
            ),
        ),
        (
            "# c\nadmin:alice short\n",
            (
                "{path}:2: the token of admin:alice is shorter than 16 characters; make one with "
                "`openssl rand -hex 32`"
            ),
        ),
        (
            f"admin:alice {ALICE}\nadmin:alice {AUDITOR}\n",
            "{path}:2: admin:alice is given a token twice; keep one line",
        ),
        (
            f"admin:alice {ALICE}\nadmin:bob {ALICE}\n",
            (
                "{path}:2: the token of admin:bob is also another identity's token; give each "
                "identity its own"
            ),
        ),
        (
            "# nobody\n",
            "{path} holds no `<identity> <token>` line; add one, or drop the flag",
        ),
    ],
)
def test_a_malformed_token_file_names_file_and_line_never_the_token(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each malformation is a ConfigError with file:line; no token text is quoted."""
    path = token_file(tmp_path / "t", text)
    with pytest.raises(ConfigError) as exc:
        read_token_file(path, "--admin-token-file")
    assert str(exc.value) == "--admin-token-file: " + expected.format(path=path)
    assert ALICE not in str(exc.value)


def test_admin_without_any_policy_refuses_every_call_and_says_how_to_configure(
    open_server: RunningServer,
) -> None:
    """RulesetAdmin is never open: no policy configured, even a token is UNAUTHENTICATED."""
    assert _refused_list(open_server.port) == (grpc.StatusCode.UNAUTHENTICATED, ADMIN_UNCONFIGURED)
    assert _refused_list(open_server.port, bearer(ALICE)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        ADMIN_UNCONFIGURED,
    )


def test_admin_call_without_credentials_is_unauthenticated(protected: RunningServer) -> None:
    """No authorization metadata and no certificate: UNAUTHENTICATED saying what to send."""
    assert _refused_list(protected.port) == (grpc.StatusCode.UNAUTHENTICATED, NEEDS_CREDENTIALS)


def test_admin_call_with_a_wrong_token_is_permission_denied(protected: RunningServer) -> None:
    """A token nobody holds (or another service's token): PERMISSION_DENIED."""
    assert _refused_list(protected.port, bearer("not-a-token-of-anyone-here")) == (
        grpc.StatusCode.PERMISSION_DENIED,
        DENIED,
    )
    assert _refused_list(protected.port, bearer(AUDITOR)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        DENIED,
    )


def test_authorization_that_is_not_a_bearer_token_is_unauthenticated(
    protected: RunningServer,
) -> None:
    """`authorization: Basic ...` is not a credential this server takes: it says the form."""
    assert _refused_list(protected.port, (("authorization", f"Basic {ALICE}"),)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        (
            "the `authorization` metadata must read `Bearer <token>`; send the token the "
            "operators gave you in that form"
        ),
    )


def test_admin_call_with_the_right_token_is_served(protected: RunningServer) -> None:
    """A configured admin token passes; the ruleset list comes back."""
    reply = _list(protected.port, bearer(ALICE))
    assert [s.name for s in reply.rulesets] == ["patient-enquiries"]


def test_no_token_reaches_any_log_line(
    protected: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Right, wrong and malformed tokens: the log has the method and peer, never the token."""
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-abcdefghijklmnop"
    _list(protected.port, bearer(ALICE))
    _refused_list(protected.port, bearer(wrong))
    _refused_list(protected.port, (("authorization", f"Token {wrong}"),))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert (ALICE in text, wrong in text) == (False, False)
    refusals = [
        r.getMessage().split(": peer ")[0] for r in caplog.records if r.name == "caseroute.auth"
    ]
    assert refusals == [
        "/caseroute.v1.RulesetAdmin/ListRulesets refused (PERMISSION_DENIED)",
        "/caseroute.v1.RulesetAdmin/ListRulesets refused (UNAUTHENTICATED)",
    ]


def _get_decision(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            routing_pb2_grpc.DecisionLogStub(channel).GetDecision(
                pb.GetDecisionRequest(decision_id="nope"), timeout=10, metadata=metadata
            )
        except grpc.RpcError as error:
            return _code_and_details(error)[0]
    return grpc.StatusCode.OK


def test_decision_log_is_open_without_a_policy(open_server: RunningServer) -> None:
    """No --audit-token-file/--audit-allow: DecisionLog answers anyone (here NOT_FOUND)."""
    assert _get_decision(open_server.port) == grpc.StatusCode.NOT_FOUND


def test_decision_log_is_protected_when_configured(protected: RunningServer) -> None:
    """With an audit policy: no token UNAUTHENTICATED, admin's token DENIED, auditor's served."""
    assert [
        _get_decision(protected.port),
        _get_decision(protected.port, bearer(ALICE)),
        _get_decision(protected.port, bearer(AUDITOR)),
    ] == [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
    ]


def test_a_token_authenticated_decision_records_the_token_identity_as_caller(
    protected: RunningServer,
) -> None:
    """RoutingService with a caller token: the audited caller is the token's identity."""
    with grpc.insecure_channel(f"127.0.0.1:{protected.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            stub.Decide(decide_request("no-token"), timeout=10)
        reply = stub.Decide(decide_request("tok-1"), timeout=10, metadata=bearer(CALLER))
    assert _code_and_details(exc.value)[0] == grpc.StatusCode.UNAUTHENTICATED
    record = protected.core.audit.get(reply.decision.decision_id)
    assert record is not None
    assert (record.request_id, record.caller) == ("tok-1", "flow-engine")


def test_health_and_reflection_stay_open_on_a_protected_server(protected: RunningServer) -> None:
    """Load balancers and grpcurl need no token: health and reflection answer without one."""
    with grpc.insecure_channel(f"127.0.0.1:{protected.port}") as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks Check
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        reflect: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(
            reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
        )
    names = sorted(s.name for s in replies[0].list_services_response.service)
    assert (status.status, ADMIN_SERVICE in names) == (health_pb2.HealthCheckResponse.SERVING, True)


def test_an_access_policy_matches_every_token_in_constant_time() -> None:
    """token_identity compares with every token and returns the matching identity or None."""
    policy = AccessPolicy((("a", b"x" * 16), ("b", b"y" * 16)))
    assert [
        policy.token_identity(b"y" * 16),
        policy.token_identity(b"z" * 16),
        policy.token_identity(b""),
    ] == ["b", None, None]


@pytest.fixture
def mtls_admin(pki: Pki, tmp_path: Path) -> Iterator[RunningServer]:  # noqa: F811 - fixture use
    """Mutual TLS; admin allow-list names the test client, DecisionLog's names someone else."""
    tls = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca)
    auth = AuthConfig(admin_allow=("flow-engine.example.org",), audit_allow=("auditor.example",))
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, tls=tls, auth=auth) as server:
        yield server


def test_an_allow_listed_client_certificate_passes_and_another_is_denied(
    pki: Pki,  # noqa: F811 - fixture use
    mtls_admin: RunningServer,
) -> None:
    """An mTLS identity on the admin list: served; not on DecisionLog's list: PERMISSION_DENIED."""
    tls = ClientTls(pki.ca, pki.client_cert, pki.client_key)
    with grpc.secure_channel(f"localhost:{mtls_admin.port}", tls.credentials()) as channel:
        reply = admin_pb2_grpc.RulesetAdminStub(channel).ListRulesets(
            apb.ListRulesetsRequest(), timeout=10
        )
        with pytest.raises(grpc.RpcError) as exc:
            routing_pb2_grpc.DecisionLogStub(channel).GetDecision(
                pb.GetDecisionRequest(decision_id="x"), timeout=10
            )
    assert [s.name for s in reply.rulesets] == ["patient-enquiries"]
    assert _code_and_details(exc.value) == (grpc.StatusCode.PERMISSION_DENIED, DENIED)


def test_allow_lists_need_mutual_tls(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--admin-allow without --tls-client-ca is a usage error: no certificate to check."""
    assert main(["serve", "--admin-allow", "ops", "--audit-db", str(tmp_path / "a.db")]) == 2
    assert capsys.readouterr().err == (
        "caseroute: --admin-allow names client-certificate identities, which only mutual TLS "
        "provides: add --tls-cert, --tls-key and --tls-client-ca, or use a token file\n"
    )


@pytest.mark.slow
def test_every_worker_applies_the_admin_policy_and_reloads_on_sighup(tmp_path: Path) -> None:
    """Two workers: each call is judged alike; SIGHUP to the parent reloads in both workers."""
    tokens = token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n")
    served = start_serve(
        tmp_path / "audit.db",
        *("--grace", "30"),
        workers=2,
        env={"CASEROUTE_ADMIN_TOKEN_FILE": str(tokens)},
    )
    try:
        port = int(served.address.rsplit(":", 1)[1])
        # Each call on a new connection: the kernel spreads them over both workers.
        outcomes = [
            (len(_list(port, bearer(ALICE)).rulesets), _refused_list(port)[0]) for _ in range(8)
        ]
        served.proc.send_signal(signal.SIGHUP)
        served.wait_for("reload on SIGHUP: 0 change(s), 0 source(s) not loaded", 2)
    finally:
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(60)
        served.reap()
    assert outcomes == [(1, grpc.StatusCode.UNAUTHENTICATED)] * 8


def test_serve_refuses_to_start_with_a_token_file_others_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caseroute serve --admin-token-file` with a 0644 file exits 2 before creating anything."""
    shared = token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n", mode=0o644)
    db = tmp_path / "audit.db"
    code = main(["serve", "--admin-token-file", str(shared), "--audit-db", str(db), "--port", "0"])
    assert (code, capsys.readouterr().err, db.exists()) == (
        2,
        (
            f"caseroute: --admin-token-file: the token file {shared} is accessible to other users "
            f"(mode 644); run `chmod 600 {shared}`\n"
        ),
        False,
    )


def test_serve_reads_credentials_and_reload_interval_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--admin-allow replaces CASEROUTE_ADMIN_ALLOW (flags beat variables); the rest map 1:1."""
    monkeypatch.setenv("CASEROUTE_ADMIN_ALLOW", "ops-a.example, ops-b.example")
    monkeypatch.setenv("CASEROUTE_AUDIT_TOKEN_FILE", str(tmp_path / "audit.tokens"))
    monkeypatch.setenv("CASEROUTE_RELOAD_INTERVAL", "0")
    args = build_parser().parse_args(
        [
            "serve",
            *("--tls-cert", "s.pem", "--tls-key", "s.key", "--tls-client-ca", "ca.pem"),
            *("--admin-allow", "ops-c.example", "--caller-allow", "flow.example"),
        ]
    )
    config = server_config(args)
    assert (config.auth, config.reload_interval_s) == (
        AuthConfig(
            admin_allow=("ops-c.example",),
            audit_token_file=tmp_path / "audit.tokens",
            caller_allow=("flow.example",),
        ),
        0.0,
    )


def test_a_negative_reload_interval_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--reload-interval -1 is refused by the parser, naming the environment variable too."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["serve", "--reload-interval", "-1"])
    assert (exc.value.code, capsys.readouterr().err.splitlines()[-1]) == (
        2,
        (
            "caseroute serve: error: argument --reload-interval: must be a number of seconds of at "
            "least 0, got '-1' (set by the flag or $CASEROUTE_RELOAD_INTERVAL)"
        ),
    )


def test_undecodable_admin_bytes_are_invalid_argument_after_the_credentials_check(
    protected: RunningServer,
) -> None:
    """Bytes that are not the admin message: INVALID_ARGUMENT with a token, refused without."""
    with grpc.insecure_channel(f"127.0.0.1:{protected.port}") as channel:
        raw: Any = channel.unary_unary("/caseroute.v1.RulesetAdmin/GetRuleset")
        with pytest.raises(grpc.RpcError) as without:
            raw(b"\xff\xff\xff", timeout=10)
        with pytest.raises(grpc.RpcError) as with_token:
            raw(b"\xff\xff\xff", timeout=10, metadata=bearer(ALICE))
    assert [_code_and_details(without.value)[0], _code_and_details(with_token.value)] == [
        grpc.StatusCode.UNAUTHENTICATED,
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            (
                "invalid request: 1 problem(s); first: request: is not a valid "
                "caseroute.v1.GetRulesetRequest protobuf message; send the message the .proto "
                "defines (every problem is in the google.rpc.BadRequest details)"
            ),
        ),
    ]
