"""The supervision tests' `caseroute serve` (tests/serve_process.py, polling off) and its probes."""

import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.testing import REFERENCE_RULESET
from tests.serve_process import CLI, Served, serve_argv, start_serve


def serve_command(
    tmp_path: Path, *, workers: int, port: int = 0, launcher: list[str] | None = None
) -> list[str]:
    """The argv of `caseroute serve` on ``port`` with ``workers`` workers."""
    return serve_argv(
        *("--port", str(port), "--workers", str(workers)),
        *("--rulesets", str(REFERENCE_RULESET.parent), "--audit-db", str(tmp_path / "audit.db")),
        *("--reload-interval", "0"),
        launcher=launcher or CLI,
    )


def start(
    tmp_path: Path,
    *,
    workers: int,
    extra: list[str] | None = None,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Served:
    """`caseroute serve` in its own process group, returned once every worker is SERVING."""
    return start_serve(
        tmp_path / "audit.db",
        *("--reload-interval", "0", *(extra or [])),
        workers=workers,
        launcher=launcher or CLI,
        env=env,
    )


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
