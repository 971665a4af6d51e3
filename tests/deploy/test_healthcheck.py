"""deploy/docker/healthcheck.py, the image's HEALTHCHECK, against a real server on a free port."""

import socket
import subprocess
import sys
from pathlib import Path

from caseroute.grpc_api.server import ServerConfig, build_server
from caseroute.testing import REFERENCE_RULESET, REPO_ROOT, audit_config

SCRIPT = REPO_ROOT / "deploy" / "docker" / "healthcheck.py"


def probe(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the healthcheck script as the image does, with this interpreter."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=30,
    )


def test_healthcheck_follows_the_servers_health(tmp_path: Path) -> None:
    """Exit 1 naming NOT_SERVING before the rulesets load, exit 0 silently once SERVING."""
    config = ServerConfig(rulesets=REFERENCE_RULESET.parent, port=0, audit=audit_config(tmp_path))
    server = build_server(config, reuse_port=False)
    try:
        target = f"127.0.0.1:{server.port}"
        before = probe(target)
        server.load(config)
        after = probe(env={"CASEROUTE_PORT": str(server.port), "PATH": ""})
    finally:
        server.stop(1)
    assert (before.returncode, before.stdout, before.stderr) == (
        1,
        "",
        f"healthcheck: {target} is NOT_SERVING\n",
    )
    assert (after.returncode, after.stdout, after.stderr) == (0, "", "")


def test_healthcheck_fails_when_nothing_listens() -> None:
    """A port with no server gives exit 1 and the gRPC status, never a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        done = probe(f"127.0.0.1:{port}")
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"healthcheck: 127.0.0.1:{port} answered UNAVAILABLE\n",
    )
