"""The ``/metrics`` HTTP endpoint of ``caseroute serve --metrics-port``, one or many workers.

With several worker processes, prometheus_client's multiprocess mode is used as its
documentation prescribes: the serving parent creates a fresh, empty directory and sets
``PROMETHEUS_MULTIPROC_DIR`` *before* spawning the workers (each imports prometheus_client with
it set, so their metric values go to per-process files there), serves ``/metrics`` from a
registry holding only a ``MultiProcessCollector`` over that directory, calls
``mark_process_dead`` for each worker that exits, and removes the directory at exit. Counters
and histograms of an exited worker stay in the sums (Prometheus counters never go down).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from caseroute.domain.errors import ConfigError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(slots=True)
class MetricsEndpoint:
    """A running ``/metrics`` endpoint (a daemon thread of this process).

    Attributes:
        host: The address it listens on.
        port: The port it listens on (the one picked when 0 was asked for).
        directory: The multiprocess directory it reads and owns (None: in-process registry).
    """

    host: str
    port: int
    directory: Path | None
    _httpd: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Where to scrape it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def worker_exited(self, pid: int) -> None:
        """Drop the live-gauge files of a worker that exited (the documented bookkeeping)."""
        if self.directory is not None:
            mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Stop serving; remove the multiprocess directory and unset its variable."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        if self.directory is not None:
            if os.environ.get(MULTIPROC_ENV) == str(self.directory):
                del os.environ[MULTIPROC_ENV]
            shutil.rmtree(self.directory, ignore_errors=True)


def _listen(
    host: str, port: int, registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """Start prometheus_client's HTTP server; a port that cannot be bound is a ConfigError."""
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        why = "the address is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or "error"
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({why}); choose a free "
            "port ($CASEROUTE_METRICS_PORT), or leave metrics off"
        ) from None


def serve_in_process(host: str, port: int, registry: CollectorRegistry) -> MetricsEndpoint:
    """Serve ``registry`` (the metrics of this very process: ``--workers 1``).

    Raises:
        ConfigError: If the port cannot be bound.
    """
    httpd, thread = _listen(host, port, registry)
    return MetricsEndpoint(host, httpd.server_address[1], None, httpd, thread)


def serve_for_workers(host: str, port: int) -> MetricsEndpoint:
    """Create the multiprocess directory, point ``PROMETHEUS_MULTIPROC_DIR`` at it, serve it.

    Call before spawning the workers: they inherit the variable. Any value the environment
    had is replaced: the directory must be fresh for each run.

    Raises:
        ConfigError: If the port cannot be bound (nothing is left behind then).
    """
    directory = Path(tempfile.mkdtemp(prefix="caseroute-metrics-"))
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    try:
        httpd, thread = _listen(host, port, registry)
    except ConfigError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    os.environ[MULTIPROC_ENV] = str(directory)
    return MetricsEndpoint(host, httpd.server_address[1], directory, httpd, thread)


def in_multiprocess_mode() -> bool:
    """Whether this process's metric values go to ``PROMETHEUS_MULTIPROC_DIR`` files."""
    return values.ValueClass is not values.MutexValue
