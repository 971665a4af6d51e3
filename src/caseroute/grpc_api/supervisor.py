"""Supervision of the worker processes: port ownership, CPU quota, restarts, parent watch.

Kept apart from ``processes.py`` so each piece is a small function a test can drive without
starting gRPC: ``claim_port`` refuses a port another server holds, ``quota_cpus`` reads the
container's CPU quota from the cgroup files under a root a test can fake, ``RestartBackoff``
spaces the restarts of a worker that keeps dying, ``watch_parent`` ends a worker whose
parent is gone, and ``signal_wakeups`` wakes a waiting main thread for a signal whichever
thread the kernel handed it to.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from caseroute.domain.errors import ConfigError

log = logging.getLogger("caseroute.server")

RESTART_FIRST_S = 0.5
"""Back-off before the first restart of a worker that died."""
RESTART_MAX_S = 30.0
"""The back-off doubles up to this."""
RESTART_STABLE_S = 60.0
"""A worker that ran this long before dying is restarted after ``RESTART_FIRST_S`` again."""


def claim_port(host: str, port: int) -> None:
    """Refuse a port some socket already holds (a first ``caseroute serve``, its workers).

    The workers bind with SO_REUSEPORT, which lets any process of the same user bind beside
    them: a second server would silently share the port (and answer from another decision
    log). A probe socket *without* SO_REUSEPORT cannot bind a port a reuse-port socket holds,
    so it tells. SO_REUSEADDR on the probe only lets it past connections in TIME_WAIT (a
    server restarted at once); it still fails on a bound or listening socket that lacks it,
    and on any listening socket.

    Args:
        host: Address to bind.
        port: TCP port (0: nothing to check, the kernel picks a free one).

    Raises:
        ConfigError: If the port is in use or cannot be bound.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is already in use (another caseroute serve?); stop it or"
            else:
                why = f"cannot be bound ({exc.strerror or 'error'}):"
            raise ConfigError(
                f"--port {port}: {host}:{port} {why} choose another port ($CASEROUTE_PORT; "
                "0 picks a free one)"
            ) from None


def quota_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPUs the cgroup quota allows this process, rounded up (None: no quota).

    cgroup v2 writes ``<quota> <period>`` (or ``max <period>``) to ``cpu.max``; cgroup v1
    writes the quota (-1: none) and period to ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``,
    under ``cpu/`` or ``cpu,cpuacct/``. Only the files under ``root`` are read (in a
    container that is the container's own cgroup); unreadable or malformed files mean no
    quota, never an error.

    Args:
        root: The cgroup filesystem mount.

    Returns:
        ``ceil(quota / period)``, at least 1, or None when no quota is set.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return _cpus(int(quota), int(period))
    except (OSError, ValueError):
        pass
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        directory = root / controller
        try:
            quota_us = int((directory / "cpu.cfs_quota_us").read_text())
            period_us = int((directory / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return _cpus(quota_us, period_us)
    return None


def _cpus(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask on Linux), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity off Linux
        return os.cpu_count() or 1


def default_workers(
    root: Path = Path("/sys/fs/cgroup"), cores: Callable[[], int] = usable_cores
) -> int:
    """One worker per CPU the process may use: the cgroup quota or the cores, the smaller.

    Args:
        root: The cgroup filesystem mount (a test points it at fake files).
        cores: The cores this process may run on (``usable_cores``).

    Returns:
        The worker count for ``--workers 0``, at least 1.
    """
    quota = quota_cpus(root)
    return max(1, min(cores(), quota) if quota is not None else cores())


@dataclass(slots=True)
class RestartBackoff:
    """How long to wait before restarting a worker that died (one per worker slot).

    The first restart waits ``RESTART_FIRST_S``; each death soon after a restart doubles the
    wait, up to ``RESTART_MAX_S``; a worker that ran ``RESTART_STABLE_S`` or longer before it
    died starts over at ``RESTART_FIRST_S``.
    """

    first_s: float = RESTART_FIRST_S
    max_s: float = RESTART_MAX_S
    stable_s: float = RESTART_STABLE_S
    _next_s: float = 0.0

    def after_death(self, ran_s: float) -> float:
        """The delay before restarting a worker that ran ``ran_s`` seconds, then died."""
        if ran_s >= self.stable_s or self._next_s == 0.0:
            self._next_s = self.first_s
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay


def watch_parent(on_gone: Callable[[], None]) -> bool:
    """In a spawned worker: call ``on_gone`` (from a thread) once the parent process is gone.

    multiprocessing's spawn keeps the write end of a pipe open in the parent for as long as the
    worker's ``Process`` object lives; the worker holds the read end as
    ``parent_process().sentinel``, which becomes readable (EOF) when the parent exits however it
    exits, SIGKILL included. Unlike ``prctl(PR_SET_PDEATHSIG)``, it needs no ctypes, works off
    Linux, and does not fire when the *thread* that spawned the worker ends (the parent
    restarts workers from its main thread, but nothing has to rely on that).

    Args:
        on_gone: What to do then (it must only hand off, e.g. set an event).

    Returns:
        False when this process has no multiprocessing parent (nothing is watched).
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        log.error("parent process %s is gone; this worker drains and exits", parent.pid)
        on_gone()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return True


@contextlib.contextmanager
def signal_wakeups() -> Iterator[int]:
    """A pipe's read end that becomes readable whenever a signal with a Python handler arrives.

    kill(2) hands a signal to any thread of the process that does not block it. CPython's C
    handler then only flags it, and the Python handler runs when the main thread next runs
    bytecode: a main thread blocked in a wait is woken only by a signal handed to it, so a
    SIGTERM taken by a gRPC, metrics or watch thread would never be acted on. Python's wakeup
    fd is written by that C handler on whatever thread takes the signal: a main thread that
    waits on the read end (``multiprocessing.connection.wait``) wakes, and its handler runs
    as soon as the wait returns. Read what arrived with ``drain_wakeups``.

    The main thread must never hold a lock a handler takes: wait on this, and read a stop
    ``threading.Event`` with ``is_set`` (no lock), never ``Event.wait``, whose lock a handler's
    ``set`` would then wait for forever. Main thread only (``signal.set_wakeup_fd``).
    """
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    try:
        yield read
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)


def drain_wakeups(read: int) -> None:
    """Read every byte ``signal_wakeups``' pipe holds (so a wait on it blocks again)."""
    with contextlib.suppress(BlockingIOError):
        while os.read(read, 512):
            pass
