"""Mutual TLS: an authenticated caller's identity is recorded with its decisions."""

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from caseroute.cli import main
from caseroute.domain.errors import ConfigError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.client import check_health
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.tls import ClientTls, ServerTls
from caseroute.v1 import routing_pb2_grpc

from .conftest import decide_request, serving_reference


@dataclass(frozen=True)
class Pki:
    """A throwaway CA with a server and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


OPENSSL = shutil.which("openssl")


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, san: str) -> None:
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.pem",
        "-extfile",
        f"{name}.ext",
        cwd=directory,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made with the openssl command (no Python crypto dependency)."""
    if OPENSSL is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    _issue(d, "server", "DNS:localhost,IP:127.0.0.1")
    _issue(d, "client", "DNS:flow-engine.example.org")
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


@pytest.fixture
def mtls_server(pki: Pki, tmp_path: Path) -> Iterator[RunningServer]:
    """A server requiring client certificates signed by the test CA."""
    tls = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serving_reference(tmp_path, engine=EngineKind.PYTHON, tls=tls) as server:
        yield server


def test_the_client_certificate_identity_is_the_audited_caller(
    pki: Pki, mtls_server: RunningServer
) -> None:
    """A decision made over mutual TLS records the client's certificate name as caller."""
    tls = ClientTls(pki.ca, pki.client_cert, pki.client_key)
    target = f"localhost:{mtls_server.port}"
    with grpc.secure_channel(target, tls.credentials()) as channel:
        reply = routing_pb2_grpc.RoutingServiceStub(channel).Decide(
            decide_request("mtls-1"), timeout=10
        )
    record = mtls_server.core.audit.get(reply.decision.decision_id)
    assert record is not None
    assert (record.request_id, record.caller) == ("mtls-1", "flow-engine.example.org")
    assert check_health(target, tls=tls) == "SERVING"


def test_a_client_without_a_certificate_is_refused(pki: Pki, mtls_server: RunningServer) -> None:
    """Mutual TLS: no client certificate, no call (and nothing recorded)."""
    head_before = mtls_server.core.audit.head()[0]  # the startup load is in the chain
    with (
        grpc.secure_channel(
            f"localhost:{mtls_server.port}", ClientTls(pki.ca).credentials()
        ) as channel,
        pytest.raises(grpc.RpcError) as exc,
    ):
        routing_pb2_grpc.RoutingServiceStub(channel).Decide(decide_request("x"), timeout=10)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE
    assert mtls_server.core.audit.head()[0] == head_before


def test_tls_flags_that_do_not_go_together_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A certificate without its key (or client TLS without a CA) is refused before starting."""
    assert main(["serve", "--tls-cert", "c.pem", "--audit-db", str(tmp_path / "a.db")]) == 2
    assert capsys.readouterr().err == (
        "caseroute: --tls-cert and --tls-key go together: give both or neither\n"
    )
    assert main(["health", "--tls-cert", "c.pem"]) == 2
    assert capsys.readouterr().err == (
        "caseroute: --tls-cert/--tls-key need --tls-ca (the server's CA)\n"
    )
    missing = ServerTls(tmp_path / "no.pem", tmp_path / "no.key")
    with pytest.raises(ConfigError, match=r"--tls-key: cannot read .*no\.key"):
        missing.credentials()
