"""examples/node: the Node.js example run against a real server, its output read line by line.

Runs when `node` (20 or later) and `npm` are on PATH, installing the example's locked
dependencies with `npm ci` once when they are missing or older than package-lock.json;
skipped with a message naming the tool otherwise.
"""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.tls import ServerTls
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import serving_reference
from tests.grpc_api.test_tls import Pki, pki  # noqa: F401 - the fixture, used by name

from .conftest import CLINICAL_REQUEST, REPO_ROOT

NODE_EXAMPLE = REPO_ROOT / "examples" / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")
INSTALL_HINT = "install Node.js 20 or later with npm (https://nodejs.org, or your distribution)"
CALLER = "caller-token-0123456789abcdef"
"""The caller token the `protected` server accepts."""
INVALID_LINES = [
    "Decide with roster.agents[1].capacity.max = -1",
    "  status: INVALID_ARGUMENT",
    "  field violation: roster.agents[1].capacity.max: must be between 0 and 10000, got -1",
]


@pytest.fixture(scope="session")
def node_example() -> Path:
    """examples/node, its dependencies installed by `npm ci` when missing or stale."""
    if NODE is None or NPM is None:
        missing = " and ".join(tool for tool, path in (("node", NODE), ("npm", NPM)) if not path)
        pytest.skip(f"the Node example needs {missing} on PATH: {INSTALL_HINT}")
    version = subprocess.run(
        [NODE, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the Node example needs Node.js 20 or later, found {version}: {INSTALL_HINT}")
    installed = NODE_EXAMPLE / "node_modules" / ".package-lock.json"
    lock = NODE_EXAMPLE / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_EXAMPLE,
            capture_output=True,
            check=True,
            timeout=600,
        )
    return NODE_EXAMPLE


def run_example(example: Path, target: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """`node decide.js --target TARGET FLAGS...` in examples/node, output captured."""
    assert NODE is not None
    return subprocess.run(
        [NODE, "decide.js", "--target", target, *flags],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def decide_in_python(port: int, request_file: Path) -> pb.DecideResponse:
    """The same file parsed with google.protobuf.json_format (as grpcurl does) and sent."""
    request = json_format.Parse(request_file.read_text(), pb.DecideRequest())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply: pb.DecideResponse = routing_pb2_grpc.RoutingServiceStub(channel).Decide(
            request, timeout=30
        )
    return reply


def test_the_example_decides_the_ready_request_and_prints_the_bad_request_field(
    node_example: Path, server: RunningServer
) -> None:
    """The ready request is ASSIGNed, and the invalid one's BadRequest names its field path."""
    ran = run_example(node_example, f"127.0.0.1:{server.port}")
    # The same request again, as json_format reads it: a replay (same input, same request_id)
    # of the decision Node made, so Node sent exactly what grpcurl would have.
    again = decide_in_python(server.port, CLINICAL_REQUEST)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.splitlines() == [
        "Decide CASE-1001",
        "  outcome: OUTCOME_ASSIGN",
        "  agent: nurse-tx-02",
        "  reason codes: clinical",
        f"  decision id: {again.decision.decision_id}",
        f"  ruleset: patient-enquiries {again.decision.ruleset.version}",
        *INVALID_LINES,
    ]
    assert again.replayed is True


def test_a_misspelt_field_in_the_request_file_is_refused_with_its_path(
    node_example: Path, tmp_path: Path
) -> None:
    """`flgs` for `flags` stops the example (exit 2) instead of sending a case without flags."""
    request = json.loads(CLINICAL_REQUEST.read_text())
    request["case"]["flgs"] = request["case"].pop("flags", ["safeguarding"])
    misspelt = tmp_path / "misspelt.json"
    misspelt.write_text(json.dumps(request))
    ran = run_example(node_example, "127.0.0.1:1", "--request", str(misspelt))
    assert (ran.returncode, ran.stdout) == (2, "")
    assert ran.stderr.splitlines() == [
        (
            f"decide.js: {misspelt}: case.flgs: no such field in caseroute.v1.Case; "
            "check the spelling against the .proto"
        )
    ]


def test_a_short_enum_spelling_is_refused_naming_the_proto_names(
    node_example: Path, tmp_path: Path
) -> None:
    """`"phone"` is not the JSON mapping's `CHANNEL_PHONE`: refused, never sent as unset."""
    request = json.loads(CLINICAL_REQUEST.read_text())
    request["case"]["channel"] = "phone"
    short = tmp_path / "short.json"
    short.write_text(json.dumps(request))
    ran = run_example(node_example, "127.0.0.1:1", "--request", str(short))
    assert (ran.returncode, ran.stdout) == (2, "")
    assert ran.stderr.splitlines() == [
        (
            f'decide.js: {short}: case.channel: "phone" is not a Channel; use one of '
            "CHANNEL_UNSPECIFIED, CHANNEL_EMAIL, CHANNEL_PHONE, CHANNEL_PORTAL, CHANNEL_CHAT"
        )
    ]


def test_a_key_given_twice_is_refused_instead_of_the_last_one_winning(
    node_example: Path, tmp_path: Path
) -> None:
    """`"flags": ["safeguarding"], "flags": []` stops the example: JSON.parse would keep `[]`."""
    text = CLINICAL_REQUEST.read_text()
    assert text.count('"flags": [') == 1
    twice = tmp_path / "twice.json"
    twice.write_text(text.replace('"flags": [', '"flags": ["safeguarding"], "flags": ['))
    ran = run_example(node_example, "127.0.0.1:1", "--request", str(twice))
    assert (ran.returncode, ran.stdout) == (2, "")
    assert ran.stderr.splitlines() == [
        f"decide.js: {twice}: case.flags: the key appears twice in one object; write it once"
    ]


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose RoutingService needs the caller token CALLER."""
    directory = tmp_path_factory.mktemp("protected")
    tokens = directory / "caller.tokens"
    tokens.write_text(f"flow-engine {CALLER}\n")
    tokens.chmod(0o600)
    with serving_reference(directory, auth=AuthConfig(caller_token_file=tokens)) as running:
        yield running


def test_the_token_file_is_sent_as_a_bearer_token(
    node_example: Path, protected: RunningServer, tmp_path: Path
) -> None:
    """--token-file sends `authorization: Bearer <token>`, which the server accepts."""
    token_file = tmp_path / "token"
    token_file.write_text(f"{CALLER}\n")
    ran = run_example(node_example, f"127.0.0.1:{protected.port}", "--token-file", str(token_file))
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.splitlines()[:4] == [
        "Decide CASE-1001",
        "  outcome: OUTCOME_ASSIGN",
        "  agent: nurse-tx-02",
        "  reason codes: clinical",
    ]


def test_without_a_token_the_refusal_says_to_pass_one(
    node_example: Path, protected: RunningServer
) -> None:
    """No token: exit 1, the server's UNAUTHENTICATED message, and the flag to pass."""
    ran = run_example(node_example, f"127.0.0.1:{protected.port}")
    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr.splitlines() == [
        (
            f"caseroute at 127.0.0.1:{protected.port} answered UNAUTHENTICATED: this call "
            "needs credentials: send `authorization: Bearer <token>` or a client certificate "
            "on the allow-list"
        ),
        (
            "Pass --token-file with a caller token the server accepts "
            '(docs/security.md, "Credentials").'
        ),
    ]


def test_mutual_tls_with_the_tls_flags(node_example: Path, pki: Pki, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    """--tls-ca/--tls-cert/--tls-key: the example decides over mutual TLS."""
    tls = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serving_reference(tmp_path, tls=tls) as mtls:
        ran = run_example(
            node_example,
            f"localhost:{mtls.port}",
            *("--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)),
            *("--tls-key", str(pki.client_key)),
        )
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.splitlines()[:2] == ["Decide CASE-1001", "  outcome: OUTCOME_ASSIGN"]
    assert ran.stdout.splitlines()[-3:] == INVALID_LINES
