"""Start a real `caseroute serve` for the supervision tests and read its stderr as it arrives."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY
from tests.grpc_api.test_serve_process import Served, _within

LOADED = "rulesets loaded: patient-enquiries"
"""Each worker logs this once it is SERVING."""


def serve_command(
    tmp_path: Path, *, workers: int, port: int = 0, launcher: list[str] | None = None
) -> list[str]:
    """The argv of `caseroute serve` on ``port`` with ``workers`` workers."""
    return [
        sys.executable,
        *(launcher or ["-m", "caseroute.cli"]),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--rulesets",
        str(REFERENCE_RULESET.parent),
        "--audit-db",
        str(tmp_path / "audit.db"),
        "--reload-interval",
        "0",
    ]


def start(
    tmp_path: Path,
    *,
    workers: int,
    extra: list[str] | None = None,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Served:
    """`caseroute serve` in its own process group, returned once every worker is SERVING."""
    proc = subprocess.Popen(
        [*serve_command(tmp_path, workers=workers, launcher=launcher), *(extra or [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CASEROUTE_AUDIT_KEY": TEST_AUDIT_KEY, **(env or {})},
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = _within(120, "`caseroute serve` printing its address", proc.stdout.readline)
    assert line.startswith("caseroute listening on 127.0.0.1:"), line
    served = Served(proc, line.split()[3])
    served.wait_for(LOADED, workers)
    return served


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill what is left of the process group and close the pipes."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def health(address: str) -> str:
    """The overall health status name of the server at ``address`` (UNAVAILABLE if none)."""
    with grpc.insecure_channel(address) as chan:
        try:
            reply = health_pb2_grpc.HealthStub(chan).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def poll(seconds: float, what: str, check: Callable[[], bool]) -> None:
    """Call ``check`` until it holds, failing the test if it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.05)  # a polling interval, not a wait for an event


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (and is not a zombie of ours)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
