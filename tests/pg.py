"""A throwaway PostgreSQL for the tests: the one `.ci/run` started, or one started here.

Import the fixtures into a test module (``from tests.pg import pg_server, pg_url``):

- ``pg_server`` (session): the server's URL (its ``postgres`` database). Taken from
  ``$TEST_POSTGRES_URL`` when set (``.ci/run`` exports it); otherwise a cluster is created
  with ``initdb`` in a temporary directory, started with ``pg_ctl`` on a free loopback port
  (as the ``postgres`` user when running as root: PostgreSQL refuses to run as root), and
  stopped and deleted after the session. Skips, saying what to install, only when no
  PostgreSQL server binaries are found.
- ``pg_url``: a new empty database on that server for one test (dropped after it), so tests
  never see each other's decision logs.

``fresh_database`` is the same outside pytest (benchmarks, a multi-replica harness).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL_ENV = "TEST_POSTGRES_URL"
"""A PostgreSQL server URL (a superuser's, database ``postgres``) for the tests to use.

Not ``CASEROUTE_*``: caseroute warns about every such variable that is no setting."""
PG_BIN_ENV = "TEST_POSTGRES_BIN"
"""The directory holding ``initdb`` and ``pg_ctl``, when not in a usual place."""
NO_POSTGRES = (
    "no PostgreSQL server binaries (initdb, pg_ctl) found: install them (Debian: `apt-get "
    f"install postgresql`), set ${PG_BIN_ENV} to their directory, or set ${PG_URL_ENV} to a "
    "throwaway server's URL"
)
_USER = "caseroute"


def find_pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``$TEST_POSTGRES_BIN``, Debian's, or PATH."""
    candidates: list[Path] = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A PostgreSQL cluster in a temporary directory (``start_cluster``; ``stop`` deletes it)."""

    bindir: Path
    base: Path
    port: int
    password: str
    as_user: list[str]

    @property
    def url(self) -> str:
        """A superuser's URL for the ``postgres`` database."""
        return f"postgresql://{_USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl`` on this cluster (as its owner)."""
        return subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        """Stop the server (fast: no waiting for clients) and delete the directory."""
        self.pg_ctl("stop", "-m", "fast", "-w")
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(bindir: Path) -> Cluster:
    """Initdb + pg_ctl start a cluster on a free loopback port (fsync and durability as shipped).

    Raises:
        RuntimeError: If initdb or the start fails (with PostgreSQL's own output).
    """
    base = Path(tempfile.mkdtemp(prefix="caseroute-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(16)
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres")
    pwfile.chmod(0o600)
    done = subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            _USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
    for _ in range(3):  # the free port may be taken between choosing and binding it
        cluster = Cluster(bindir, base, _free_port(), password, as_user)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {base} -c max_connections=200"
        )
        done = cluster.pg_ctl("start", "-w", "-t", "60", "-l", str(base / "log"), "-o", options)
        if done.returncode == 0:
            return cluster
    log = (base / "log").read_text() if (base / "log").exists() else ""
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{log}")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database(server_url: str, options: str = "") -> Iterator[str]:
    """A new database on ``server_url``'s server, dropped on exit; yields its URL.

    Args:
        server_url: Any database's URL on the server.
        options: Appended to ``CREATE DATABASE "name"``: ``TEMPLATE "other"`` copies a
            database, ``ENCODING 'SQL_ASCII' ... TEMPLATE template0`` makes an odd one; empty
            by default (a new empty database).
    """
    import psycopg

    name = f"caseroute_test_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}')
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server's URL: ``$TEST_POSTGRES_URL``, else a cluster for the session."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    given = os.environ.get(PG_URL_ENV)
    if given:
        yield given
        return
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(NO_POSTGRES)
    cluster = start_cluster(bindir)
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new empty database for one test (its URL; dropped after the test)."""
    with fresh_database(pg_server) as url:
        yield url
