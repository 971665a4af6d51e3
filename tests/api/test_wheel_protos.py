"""The wheel ships the published protos; a client generated from them works with or without us."""

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import grpc
import pytest

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import REPO_ROOT
from tests.grpc_api.conftest import serving_reference

PROTOS = ("caseroute/v1/routing.proto", "caseroute/v1/admin.proto")
SITE_PACKAGES = Path(grpc.__file__).resolve().parent.parent
# What a generated Python client needs at run time: grpcio (and its typing-extensions) and
# protobuf (google/). Linked one by one, so nothing else of this venv (caseroute above all, whose
# editable install is a .pth file here) is importable in the "clean" environment.
CLIENT_RUNTIME = ("grpc", "google", "typing_extensions.py")

CLIENT = """
import importlib.util
import sys
import grpc
from google.protobuf import json_format
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc

print("caseroute.v1 from", pb.__file__.removeprefix(sys.argv[2]))
print("caseroute.service importable:", importlib.util.find_spec("caseroute.service") is not None)
request = json_format.ParseDict(
    {
        "requestId": "wheel-client-1",
        "case": {"caseId": "W-1", "createdAt": "2026-11-21T09:55:00Z", "channel": "CHANNEL_PHONE",
                 "intent": "INTENT_CLINICAL", "urgency": "URGENCY_ROUTINE",
                 "patientLocation": "US-TX", "region": "US-TX"},
        "roster": {"snapshotId": "s", "takenAt": "2026-11-21T09:59:00Z", "agents": [
            {"agentId": "rn-1", "status": "AGENT_STATUS_AVAILABLE", "territories": ["US-TX"],
             "licences": [{"type": "RN", "jurisdiction": "US-TX", "expiresOn": "2030-01-01"}],
             "capacity": {"max": 3, "active": 0}}]},
        "now": "2026-11-21T10:00:00Z",
    },
    pb.DecideRequest(),
)
with grpc.insecure_channel(sys.argv[1]) as channel:
    reply = routing_pb2_grpc.RoutingServiceStub(channel).Decide(request, timeout=60)
print(pb.Outcome.Name(reply.decision.outcome), reply.decision.agent_id)
"""

BESIDE = """
import importlib.util
import sys
import caseroute
import caseroute.v1.routing_pb2 as ours

# The caller's own generated module, loaded from where protoc wrote it (on sys.path it would
# resolve to the installed caseroute.v1: a regular package wins over protoc's namespace dirs).
spec = importlib.util.spec_from_file_location("callers_routing_pb2", sys.argv[1])
theirs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(theirs)
print("caseroute from", caseroute.__file__.removeprefix(sys.argv[2]))
print("one file:", theirs.DESCRIPTOR.name, theirs.DESCRIPTOR.name == ours.DESCRIPTOR.name)
request = theirs.DecideRequest(request_id="beside-1", case=theirs.Case(case_id="B-1"))
back = ours.DecideRequest.FromString(request.SerializeToString())
print("round trip:", back.request_id, back.case.case_id, back == ours.DecideRequest(
    request_id="beside-1", case=ours.Case(case_id="B-1")))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built as .ci/run builds it."""
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-w",
            str(dist),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (path,) = dist.glob("caseroute-*.whl")
    return path


@pytest.fixture(scope="module")
def generated(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel unpacked as site-packages, a Python client protoc generated from it)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    out = tmp_path_factory.mktemp("generated")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{site}",  # the wheel's protos only, as `protoc -I <site-packages>`
            f"-I{resources.files('grpc_tools') / '_proto'}",  # google/protobuf/timestamp.proto
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *PROTOS,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return site, out


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with only a generated client's run-time dependencies (no caseroute)."""
    deps = tmp_path_factory.mktemp("deps")
    for name in CLIENT_RUNTIME:
        (deps / name).symlink_to(SITE_PACKAGES / name)
    return deps


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset loaded."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


def _python(code: str, path: list[Path], *args: str) -> list[str]:
    """Run ``code`` in a Python without site-packages (``-S``) whose path is exactly ``path``."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PYTHONPATH": ":".join(str(p) for p in path)},
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.splitlines()


def test_the_wheel_ships_the_protos_beside_the_generated_code(wheel: Path) -> None:
    """caseroute/v1/{routing,admin}.proto are in the wheel, byte for byte as in protos/."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in PROTOS}
        assert "caseroute/v1/routing_pb2.py" in archive.namelist()
    assert shipped == {name: (REPO_ROOT / "protos" / name).read_bytes() for name in PROTOS}


def test_a_client_generated_from_the_wheel_decides_without_caseroute(
    generated: tuple[Path, Path], runtime: Path, running: RunningServer
) -> None:
    """Code protoc made of the wheel's protos, with grpcio and protobuf only, decides a case."""
    _, out = generated
    lines = _python(CLIENT, [out, runtime], f"127.0.0.1:{running.port}", str(out))
    assert lines == [
        "caseroute.v1 from /caseroute/v1/routing_pb2.py",
        "caseroute.service importable: False",
        "OUTCOME_ASSIGN rn-1",
    ]


def test_a_generated_client_and_the_installed_caseroute_share_one_registration(
    generated: tuple[Path, Path], runtime: Path
) -> None:
    """Beside an installed caseroute, the caller's routing_pb2 loads too: one file, one message."""
    site, out = generated
    mine = out / "caseroute" / "v1" / "routing_pb2.py"
    lines = _python(BESIDE, [site, runtime], str(mine), str(site))
    assert lines == [
        "caseroute from /caseroute/__init__.py",
        "one file: caseroute/v1/routing.proto True",
        "round trip: beside-1 B-1 True",
    ]
