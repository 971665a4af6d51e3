"""Replicas for the scale-out tests: real `caseroute serve` processes sharing one decision log.

``audit_db`` is the decision log the replicas share, once as one SQLite file (the store
serialises writers of several processes with a file lock) and once as a PostgreSQL database
(tests/pg.py's throwaway server; skipped, saying why, when there is none).
"""

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.testing import REPO_ROOT
from tests.serve_process import Served, start_serve

try:
    from tests.pg import pg_server, pg_url  # noqa: F401 (fixtures used by name)
except ImportError:  # pragma: no cover (a checkout without the PostgreSQL fixtures)

    @pytest.fixture
    def pg_url() -> str:
        """No PostgreSQL fixture in this checkout."""
        pytest.skip("tests/pg.py (the throwaway PostgreSQL fixture) is not in this checkout")


HOOKED_SERVE = '''\
"""`caseroute serve` with a test hook, also imported by each spawned worker (as __mp_main__).

With CASEROUTE_TEST_HOLD naming a FIFO, a Decide whose request_id starts with "hold-" is
decided and recorded as usual, then its reply is held: the worker logs that it holds it and
blocks until the FIFO is opened for writing (the tests SIGKILL the replica instead).
"""
import os
import sys

from caseroute.cli import main
from caseroute.grpc_api.servicer import RoutingServicer

_decide = RoutingServicer.Decide


def _held_decide(self, request, context):
    reply = _decide(self, request, context)
    hold = os.environ.get("CASEROUTE_TEST_HOLD")
    if hold and request.request_id.startswith("hold-"):
        sys.stderr.write(f"test-hook: holding {request.request_id} in {os.getpid()}\\n")
        sys.stderr.flush()
        with open(hold) as release:
            release.read()
    return reply


RoutingServicer.Decide = _held_decide

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The `--audit-db` every replica of a test shares: a SQLite file, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    if importlib.util.find_spec("caseroute.audit.postgres") is None:  # pragma: no cover
        pytest.skip("the PostgreSQL sink (caseroute.audit.postgres) is not in this checkout")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def rulesets(tmp_path: Path) -> Path:
    """A copy of the repository's rulesets directory, shared by the replicas of one test."""
    copy = tmp_path / "rulesets"
    shutil.copytree(REPO_ROOT / "rulesets", copy)
    return copy


def start_replica(
    tmp_path: Path,
    audit_db: str,
    rulesets: Path,
    *,
    hold: Path | None = None,
    extra: tuple[str, ...] = (),
) -> Served:
    """One `caseroute serve` replica (one worker, hooked) on a free loopback port, SERVING.

    Args:
        tmp_path: Where the hooked launcher is written.
        audit_db: The shared decision log.
        rulesets: The shared rulesets directory (polling off: reloads are asked for).
        hold: A FIFO: this replica holds the reply of each ``hold-*`` Decide (see HOOKED_SERVE).
        extra: More `caseroute serve` arguments.
    """
    launcher = tmp_path / "hooked_serve.py"
    launcher.write_text(HOOKED_SERVE)
    return start_serve(
        audit_db,
        *("--reload-interval", "0", *extra),
        rulesets=rulesets,
        launcher=[str(launcher)],
        env={"CASEROUTE_TEST_HOLD": None if hold is None else str(hold)},
    )


@pytest.fixture
def replicas() -> Iterator[list[Served]]:
    """Replicas a test starts (append them); each is stopped (or reaped) after the test."""
    started: list[Served] = []
    yield started
    for served in started:
        served.stop(60)  # SIGTERM (drain); SIGKILL what is left after 60 s
