"""The client's credentials: a bearer token on every call, TLS and mutual TLS."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caseroute.client import AuthenticationError, Client, ClientTls
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.tls import ServerTls
from caseroute.testing import NOW
from tests.grpc_api.conftest import serving_reference
from tests.grpc_api.test_auth import AUDITOR, CALLER, token_file
from tests.grpc_api.test_tls import Pki, pki  # noqa: F401 - the fixture, used by name

from .conftest import case_dict, roster_dict


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose RoutingService and DecisionLog need bearer tokens."""
    tokens = AuthConfig(
        audit_token_file=token_file(tmp_path / "audit.tokens", f"auditor:ann {AUDITOR}\n"),
        caller_token_file=token_file(tmp_path / "caller.tokens", f"flow-engine {CALLER}\n"),
    )
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, auth=tokens) as server:
        yield server


def test_the_token_is_sent_on_every_call_and_its_identity_audited(
    protected: RunningServer,
) -> None:
    """Without a token: AuthenticationError; with it: decided, caller recorded, log readable."""
    target = f"127.0.0.1:{protected.port}"
    with Client(target) as anonymous, pytest.raises(AuthenticationError) as refused:
        anonymous.decide(case_dict("T-1"), roster_dict(), now=NOW)
    with Client(target, token=CALLER) as caller:
        reply = caller.decide(case_dict("T-1"), roster_dict(), now=NOW)
    with Client(target, token=AUDITOR) as auditor:
        logged = auditor.get_decision(reply.decision.decision_id)
    assert (refused.value.code, logged.caller, logged.request_id) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "flow-engine",
        reply.request_id,
    )


def test_mutual_tls_identifies_the_client_by_its_certificate(pki: Pki, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    """Over mutual TLS the client certificate's name is the audited caller."""
    tls = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, tls=tls) as server:
        client_tls = ClientTls(pki.ca, pki.client_cert, pki.client_key)
        with Client(f"localhost:{server.port}", tls=client_tls) as client:
            reply = client.decide(case_dict("T-2"), roster_dict(), now=NOW)
        record = server.core.audit.get(reply.decision.decision_id)
    assert record is not None
    assert record.caller == "flow-engine.example.org"
