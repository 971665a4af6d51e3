"""A second `caseroute serve` on a port a first one serves is refused, not bound beside it."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve_process import Served, serve_env
from tests.supervision.process import serve_command, start


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The first server (2 workers), shared: a refused second server leaves it as it was."""
    served = start(tmp_path_factory.mktemp("first"), workers=2)
    try:
        yield served
    finally:
        served.reap()


@pytest.mark.parametrize("workers", [1, 2])
def test_second_serve_on_a_used_port_exits_2_with_a_clear_message(
    tmp_path: Path, workers: int, first: Served
) -> None:
    """The second server (1 or 2 workers) exits 2 naming the port; the first keeps serving."""
    assert first.proc.poll() is None  # each test starts from a first server still serving
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
