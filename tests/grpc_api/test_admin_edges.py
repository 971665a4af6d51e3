"""RulesetAdmin's refusals at the edges: malformed requests, undecodable bytes, auth wiring."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from caseroute.domain.errors import ConfigError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.admin_servicer import RulesetAdminServicer
from caseroute.grpc_api.auth import (
    MAX_TOKEN_FILE_BYTES,
    AuthConfig,
    Authenticated,
)
from caseroute.grpc_api.client import AdminClient, RemoteCallError
from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.testing import audit_config
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import admin_pb2_grpc

from .test_admin import FakeAdmin, _refusal, admin_server, rulesets_tree
from .test_auth import ALICE, DENIED, NEEDS_CREDENTIALS, bearer, token_file


def _details(first: str, count: int = 1) -> str:
    return (
        f"invalid request: {count} problem(s); first: {first} (every problem is in the "
        "google.rpc.BadRequest details)"
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """A real server over routing 1 and 2, alice's admin token accepted."""
    with admin_server(tmp_path) as server:
        yield server


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("ListRulesets", "ListRulesetsRequest"),
        ("ValidateRuleset", "ValidateRulesetRequest"),
        ("ActivateRuleset", "ActivateRulesetRequest"),
        ("Rollback", "RollbackRequest"),
        ("Reload", "ReloadRequest"),
    ],
)
def test_undecodable_bytes_to_any_admin_method_are_invalid_argument(
    served: Any, method: str, message: str
) -> None:
    """Bytes that are not the method's message: INVALID_ARGUMENT naming `request` and the type."""
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        raw: Any = channel.unary_unary(f"/caseroute.v1.RulesetAdmin/{method}")
        with pytest.raises(grpc.RpcError) as exc:
            raw(b"\xff\xff\xff", timeout=30, metadata=bearer(ALICE))
    error: Any = exc.value
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        _details(
            f"request: is not a valid caseroute.v1.{message} protobuf message; send the message "
            "the .proto defines"
        ),
    )


@pytest.mark.parametrize(
    ("method", "request_message", "expected"),
    [
        (
            "GetRuleset",
            apb.GetRulesetRequest(name="r" * 201),
            _details("name: is 201 characters; at most 200"),
        ),
        (
            "ActivateRuleset",
            apb.ActivateRulesetRequest(name="routing", version="2\n"),
            _details("version: holds control or invisible characters; remove them"),
        ),
        (
            "ActivateRuleset",
            apb.ActivateRulesetRequest(),
            _details("name: is required", count=2),
        ),
        (
            "Rollback",
            apb.RollbackRequest(name="rout\x00ing"),
            _details("name: holds control or invisible characters; remove them"),
        ),
        (
            "ValidateRuleset",
            apb.ValidateRulesetRequest(file_name="r.yaml"),
            _details("source: is required: send the ruleset's YAML text"),
        ),
        (
            "ValidateRuleset",
            apb.ValidateRulesetRequest(source="x: 1\n", file_name="C:\\rules\\r.yaml"),
            _details("file_name: is a name, not a path: drop the directory"),
        ),
    ],
)
def test_a_malformed_admin_request_is_invalid_argument_naming_the_field(
    served: Any, method: str, request_message: Any, expected: str
) -> None:
    """Missing, over-long or unprintable names and empty sources are refused by field."""
    assert _refusal(served, method, request_message) == (grpc.StatusCode.INVALID_ARGUMENT, expected)


def test_an_unknown_admin_method_is_unimplemented(served: Any) -> None:
    """A method RulesetAdmin does not have: UNIMPLEMENTED, even with a valid token."""
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        raw: Any = channel.unary_unary("/caseroute.v1.RulesetAdmin/DeleteEverything")
        with pytest.raises(grpc.RpcError) as exc:
            raw(b"", timeout=30, metadata=bearer(ALICE))
    error: Any = exc.value
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.fixture
def bare_admin() -> Iterator[tuple[Any, FakeAdmin, list[Authenticated | None]]]:
    """RulesetAdmin served with no auth interceptor; ``who`` answers from a list the test sets."""
    core = FakeAdmin()
    who: list[Authenticated | None] = [None]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    admin_pb2_grpc.add_RulesetAdminServicer_to_server(
        RulesetAdminServicer(core, who=lambda: who[0]), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield admin_pb2_grpc.RulesetAdminStub(channel), core, who
    finally:
        server.stop(None)


def test_an_admin_call_that_skipped_the_auth_check_is_internal_and_changes_nothing(
    bare_admin: tuple[Any, FakeAdmin, list[Authenticated | None]],
) -> None:
    """Wired without the interceptor (no identity): INTERNAL, generic text, the core never runs."""
    stub, core, who = bare_admin
    refusals = []
    for identity in (None, Authenticated("", by_token=False)):
        who[0] = identity
        with pytest.raises(grpc.RpcError) as exc:
            stub.Reload(apb.ReloadRequest(), timeout=30)
        error: Any = exc.value
        refusals.append((error.code(), error.details()))
    assert refusals == 2 * [
        (
            grpc.StatusCode.INTERNAL,
            "internal error; quote reference 'Reload' to the caseroute operators",
        )
    ]
    assert core.actors == []


def test_a_change_without_an_after_change_hook_still_replies_with_the_outcome(
    bare_admin: tuple[Any, FakeAdmin, list[Authenticated | None]],
) -> None:
    """A servicer built with no after_change hook returns the change as admin:<identity>."""
    stub, core, who = bare_admin
    who[0] = Authenticated("alice", by_token=True)
    outcome = stub.Rollback(apb.RollbackRequest(name="routing"), timeout=30)
    assert (outcome.action, outcome.actor, core.actors) == (
        "rollback",
        "admin:alice",
        ["admin:alice"],
    )


def test_a_token_caller_without_a_certificate_on_a_server_with_an_allow_list(
    tmp_path: Path,
) -> None:
    """Tokens and an allow-list, no client certificate: the token passes, a wrong one is denied."""
    tokens = token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n")
    config = ServerConfig(
        rulesets=rulesets_tree(tmp_path / "rulesets"),
        port=0,
        engine=EngineKind.PYTHON,
        audit=audit_config(tmp_path / "audit"),
        auth=AuthConfig(admin_token_file=tokens, admin_allow=("ops.example.org",)),
        reload_interval_s=0,
    )
    server = build_server(config, reuse_port=False)
    results = []
    try:
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = admin_pb2_grpc.RulesetAdminStub(channel)
            reply = stub.ListRulesets(apb.ListRulesetsRequest(), timeout=30, metadata=bearer(ALICE))
            for metadata in (bearer("not-alice-token-0123456789"), ()):
                with pytest.raises(grpc.RpcError) as exc:
                    stub.ListRulesets(apb.ListRulesetsRequest(), timeout=30, metadata=metadata)
                error: Any = exc.value
                results.append((error.code(), error.details()))
    finally:
        server.stop(1)
    assert [s.name for s in reply.rulesets] == ["routing"]
    assert results == [
        (grpc.StatusCode.PERMISSION_DENIED, DENIED),
        (grpc.StatusCode.UNAUTHENTICATED, NEEDS_CREDENTIALS),
    ]


def test_an_unreadable_oversized_or_non_utf8_token_file_stops_the_server_with_its_name(
    tmp_path: Path,
) -> None:
    """Each token-file problem is a ConfigError naming the flag and file, never its content."""
    missing = tmp_path / "missing.tokens"
    big = token_file(tmp_path / "big.tokens", "#" * (MAX_TOKEN_FILE_BYTES + 1))
    binary = tmp_path / "binary.tokens"
    binary.write_bytes(b"alice \xff\xfe" + ALICE.encode() + b"\n")
    binary.chmod(0o600)
    messages = []
    for config in (
        AuthConfig(admin_token_file=missing),
        AuthConfig(audit_token_file=big),
        AuthConfig(caller_token_file=binary),
        AuthConfig(caller_allow=("",)),
        AuthConfig(audit_allow=("x" * 201,)),
    ):
        with pytest.raises(ConfigError) as exc:
            config.policies()
        messages.append(str(exc.value))
    identity_rule = (
        "an identity must be 1-200 printable characters without spaces, e.g. admin:alice"
    )
    assert messages == [
        f"--admin-token-file: cannot read {missing}: No such file or directory",
        f"--audit-token-file: {big} is over {MAX_TOKEN_FILE_BYTES} bytes; is it the file?",
        f"--caller-token-file: {binary} is not UTF-8 text",
        f"--caller-allow: {identity_rule}",
        f"--audit-allow: {identity_rule}",
    ]


def test_a_refusal_with_details_other_than_bad_request_shows_the_status_message() -> None:
    """A server (or proxy) answering with e.g. ErrorInfo details: the client shows its message."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason="QUOTA", domain="proxy.example"))
        context.abort_with_status(
            rpc_status.to_status(
                status_pb2.Status(
                    code=code_pb2.RESOURCE_EXHAUSTED,
                    message="quota exceeded; retry in a minute",
                    details=[detail],
                )
            )
        )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "caseroute.v1.RulesetAdmin",
                {"ListRulesets": grpc.unary_unary_rpc_method_handler(refuse)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(RemoteCallError) as exc:
            AdminClient(f"127.0.0.1:{port}", token=ALICE, timeout_s=30).list_rulesets()
    finally:
        server.stop(None)
    assert (exc.value.code, str(exc.value)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "server answered RESOURCE_EXHAUSTED: quota exceeded; retry in a minute",
    )
