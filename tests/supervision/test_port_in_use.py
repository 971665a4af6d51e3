"""A second `caseroute serve` on a port a first one serves is refused, not bound beside it."""

import subprocess
from pathlib import Path

import pytest

from tests.serve_process import serve_env
from tests.supervision.process import serve_command, start


@pytest.mark.parametrize("workers", [1, 2])
def test_second_serve_on_a_used_port_exits_2_with_a_clear_message(
    tmp_path: Path, workers: int
) -> None:
    """The second server (1 or 2 workers) exits 2 naming the port; the first keeps serving."""
    first = start(tmp_path / "first", workers=2)
    try:
        port = int(first.address.rsplit(":", 1)[1])
        second = subprocess.run(
            serve_command(tmp_path / "second", workers=workers, port=port),
            capture_output=True,
            text=True,
            env=serve_env(),
            timeout=120,
            check=False,
        )
        assert (second.returncode, second.stdout, second.stderr) == (
            2,
            "",
            (
                f"caseroute: --port {port}: 127.0.0.1:{port} is already in use (another "
                "caseroute serve?); stop it or choose another port ($CASEROUTE_PORT; 0 picks "
                "a free one)\n"
            ),
        )
        assert first.proc.poll() is None
    finally:
        first.reap()
