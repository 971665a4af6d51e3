"""Run the server as processes: in this one, or as supervised workers sharing the port.

Parallelism: one Python process is bound by the GIL (and durable_rules holds it for every
call), so ``serve`` runs several worker processes that each bind the same port with
``SO_REUSEPORT``; the kernel spreads connections across them (the pattern of grpc's
``examples/python/multiprocessing``). Workers are spawned, not forked, before any gRPC object
or durable_rules ruleset exists, and each loads the rulesets itself (``server.build_server``).

Supervision (``supervisor.py``): the parent refuses a port another server holds, restarts a
worker that dies (with back-off), and shares one flag per worker slot (a multiprocessing
``Array``) that a worker sets once it serves and the parent clears when it dies; every worker's
health is NOT_SERVING while any flag is clear. A worker drains and exits when its parent is gone.
SIGHUP reloads: the parent forwards it to every worker that serves.

Metrics (``--metrics-port``): each process that decides counts into ``caseroute.metrics``; with
several workers the parent serves ``/metrics`` over prometheus_client's multiprocess files
(``caseroute.metrics.exposition``), with one it serves its own registry.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any, NoReturn

from prometheus_client import CollectorRegistry

from caseroute.grpc_api.auth import open_service_warnings
from caseroute.grpc_api.server import STOP_BOUND_S, ServerConfig, build_server
from caseroute.grpc_api.supervisor import (
    RestartBackoff,
    claim_port,
    default_workers,
    drain_wakeups,
    signal_wakeups,
    watch_parent,
)
from caseroute.logs import configure_logging, host_configured
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.metrics.exposition import (
    MetricsEndpoint,
    in_multiprocess_mode,
    serve_for_workers,
    serve_in_process,
)

log = logging.getLogger("caseroute.server")

STOP_POLL_S = 0.25
"""How soon a worker's main thread sees a stop set by another thread (its parent watch);
a signal wakes it at once (``signal_wakeups``)."""


def _configure_logging(config: ServerConfig) -> None:
    """Every log line of this process (stdlib and structlog) through one renderer on stderr.

    Called in the parent and again in each spawned worker, which inherits no logging state.
    A process whose logging someone else set up (``serve`` called from a test runner or a
    host program) keeps it, as ``logging.basicConfig`` did. Lines are written by a thread of
    their own (``deferred``), so a call's line costs its request thread only a hand-off.
    """
    if not host_configured():
        configure_logging(config.log_format, config.log_level, sys.stderr, deferred=True)


def _wait_for_stop(
    on_hangup: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    on_installed: Callable[[], None] | None = None,
) -> None:
    """Block until SIGTERM/SIGINT (or ``stop`` is set); on SIGHUP call ``on_hangup``.

    Args:
        on_hangup: SIGHUP's action; it must only hand off (it runs in the signal handler).
        stop: Set by someone else to stop too (a worker's parent watch).
        on_installed: Called once the handlers are in place (SIGHUP no longer ends us).
    """
    stop = stop or threading.Event()

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP: reloading rulesets")
        if on_hangup is not None:
            on_hangup()

    with signal_wakeups() as wake:
        _stop_on_signals(stop)
        signal.signal(signal.SIGHUP, hangup)
        if on_installed is not None:
            on_installed()
        # Never stop.wait(): a handler's stop.set() would wait for the lock that wait holds.
        while not stop.is_set():
            multiprocessing.connection.wait([wake], STOP_POLL_S)
            drain_wakeups(wake)  # the handlers of what arrived have run: back to is_set


def _stop_on_signals(stop: threading.Event) -> None:
    """On SIGTERM/SIGINT: log and set ``stop`` (a main thread waiting on ``signal_wakeups``)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: draining", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _exit_now(code: int) -> NoReturn:
    """End the process at once (threads of abandoned calls would hold it alive), logs flushed."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def apply_gc_policy(config: ServerConfig) -> None:
    """Set this serving process's cyclic garbage collector thresholds, and log them.

    Process-wide, so set where a serving process starts (a spawned worker, or ``serve``'s
    own process with one worker), never in library code a caller imports.
    """
    gc.set_threshold(*config.gc_threshold)
    log.info("gc thresholds set to %s", ",".join(str(n) for n in gc.get_threshold()))


def run_worker(
    config: ServerConfig,
    reuse_port: bool,
    slot: int | None = None,
    serving: Any = None,
) -> None:
    """Serve in this process until SIGTERM/SIGINT or its parent is gone, then drain and return.

    Args:
        config: Settings.
        reuse_port: Bind with SO_REUSEPORT (sibling workers share the port).
        slot: This worker's index in ``serving``.
        serving: The parent's shared flags, one per worker slot (a multiprocessing ``Array``
            of bytes): this worker sets its own once it serves and clears it when it stops;
            health is NOT_SERVING while any flag is clear. None: no siblings to follow.
    """
    _configure_logging(config)
    apply_gc_policy(config)
    # SIGHUP's default ends the process: ignored until the reload thread can take it (the
    # first load reads the directory as it is then, and the poller catches what follows).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stop = threading.Event()
    # From the start: a SIGTERM while starting (the parent stopping at once) must drain this
    # worker after its start, never end it by the default action mid-load.
    _stop_on_signals(stop)
    watch_parent(stop.set)
    metrics = None
    if config.metrics_port is not None:
        if not in_multiprocess_mode():
            log.error(
                "metrics: PROMETHEUS_MULTIPROC_DIR was not set when this worker started; its "
                "counts are not served"
            )
        metrics = MetricsRecorder(define_metrics(None))  # values go to the shared directory
    running = build_server(config, reuse_port=reuse_port, metrics=metrics)
    if serving is not None:
        flags = serving
        running.peers_serving = lambda: all(flags[:])
    log.info("worker listening on %s:%d", config.host, running.port)
    running.load(config)
    running.start_reload_triggers(config.reload_interval_s)
    running.follow_peers()

    def serving_now() -> None:
        # Invariant: set only once SIGHUP reloads (the parent forwards it to set slots only).
        if serving is not None and slot is not None:
            serving[slot] = 1
            running.peers_changed()  # no wait for the poll: the last worker up is current

    _wait_for_stop(running.request_reload, stop, serving_now)
    if serving is not None and slot is not None:
        serving[slot] = 0
    if not running.stop(config.grace_s):
        _exit_now(1)
    log.info("worker stopped")


@contextlib.contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """Pick (port 0) and hold a port with SO_REUSEPORT while workers bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _forward_hangup(procs: Sequence[multiprocessing.process.BaseProcess | None]) -> None:
    """Pass SIGHUP on to every live worker (each reloads on its own reload thread)."""
    for proc in procs:
        if proc is not None and proc.pid is not None and proc.is_alive():
            os.kill(proc.pid, signal.SIGHUP)


def _announce_metrics(endpoint: MetricsEndpoint | None) -> None:
    if endpoint is not None:
        sys.stdout.write(f"caseroute metrics on {endpoint.url}\n")
        sys.stdout.flush()
        log.info("metrics served on %s", endpoint.url)
        if endpoint.directory is not None:
            log.info("metrics: workers write to %s (removed at exit)", endpoint.directory)


def serve(config: ServerConfig) -> int:
    """Run the server with ``config.workers`` processes until SIGTERM/SIGINT.

    Returns:
        Exit code: 0 when every worker drained and exited cleanly.

    Raises:
        ConfigError: If a setting is invalid or the metrics port cannot be bound.
    """
    _configure_logging(config)
    workers = config.workers or default_workers()
    # Before anything is created: a port another server holds stops the start here.
    claim_port(config.host, config.port)
    # Token files readable, private and well-formed, checked once before anything is created.
    _, audit_policy, caller_policy = config.auth.policies()
    for warning in open_service_warnings(config.host, audit_policy, caller_policy):
        log.warning("%s", warning)  # once, here: not once per worker
    # Create the decision log and key once, here, so workers never race to create them, and a
    # bad setting stops the start with its message instead of failing in every worker.
    config.audit.open_recording()[0].close()
    for warning in config.audit.masking_warnings():
        log.warning("%s", warning)  # once, here: not once per worker
    if config.tls is not None:
        config.tls.credentials()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until a handler can act on it
    if workers == 1:
        return _serve_in_process(config)
    # Before spawning: the workers must inherit PROMETHEUS_MULTIPROC_DIR.
    endpoint = (
        serve_for_workers(config.host, config.metrics_port)
        if config.metrics_port is not None
        else None
    )
    try:
        return _serve_workers(config, workers, endpoint)
    finally:
        if endpoint is not None:
            endpoint.close()


def _serve_in_process(config: ServerConfig) -> int:
    """``serve`` with one worker: this process serves gRPC (and its own metrics)."""
    apply_gc_policy(config)
    stop = threading.Event()
    _stop_on_signals(stop)  # a SIGTERM while starting drains after the start
    metrics, endpoint = None, None
    if config.metrics_port is not None:
        registry = CollectorRegistry()
        metrics = MetricsRecorder(define_metrics(registry))
        endpoint = serve_in_process(config.host, config.metrics_port, registry)
    try:
        running = build_server(config, reuse_port=False, metrics=metrics)
        sys.stdout.write(f"caseroute listening on {config.host}:{running.port} (1 worker)\n")
        _announce_metrics(endpoint)
        sys.stdout.flush()
        running.load(config)
        running.start_reload_triggers(config.reload_interval_s)
        _wait_for_stop(running.request_reload, stop)
        if not running.stop(config.grace_s):
            if endpoint is not None:
                endpoint.close()
            _exit_now(1)
    finally:
        if endpoint is not None:
            endpoint.close()
    return 0


@dataclass(slots=True)
class _Slot:
    """One configured worker: its current process, when it started, its restart back-off."""

    index: int
    proc: multiprocessing.process.BaseProcess | None = None
    started: float = 0.0
    restart_at: float = 0.0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)


def _serve_workers(config: ServerConfig, workers: int, endpoint: MetricsEndpoint | None) -> int:
    """``serve`` with ``workers`` spawned processes sharing the port, restarted when they die."""
    context = multiprocessing.get_context("spawn")
    # No lock: each byte has one writer at a time, and a worker killed while holding a lock
    # (a POSIX semaphore, never released by a dead process) would freeze every reader.
    serving = context.Array("b", workers, lock=False)
    with _reserved_port(config.host, config.port) as port:
        shared = replace(config, port=port)
        slots = [_Slot(i) for i in range(workers)]

        def spawn(slot: _Slot) -> None:
            proc = context.Process(
                target=run_worker,
                args=(shared, True, slot.index, serving),
                name=f"worker-{slot.index}",
            )
            proc.start()
            slot.proc, slot.started = proc, time.monotonic()

        # Before the first spawn: a SIGTERM while starting stops the workers it started.
        stop = threading.Event()
        with signal_wakeups() as wake:
            _stop_on_signals(stop)
            for slot in slots:
                spawn(slot)
            sys.stdout.write(f"caseroute listening on {config.host}:{port} ({workers} workers)\n")
            _announce_metrics(endpoint)
            sys.stdout.flush()
            try:
                _supervise(slots, serving, spawn, endpoint, stop, wake)
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the workers are being stopped
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        for slot in slots:
            if slot.proc is not None and slot.proc.pid is not None and slot.proc.is_alive():
                os.kill(slot.proc.pid, signal.SIGTERM)
        for slot in slots:
            if slot.proc is None:
                continue
            slot.proc.join(config.grace_s + STOP_BOUND_S + 5)
            if slot.proc.is_alive():
                log.error("worker %s did not drain in time; killing it", slot.proc.name)
                slot.proc.kill()
                slot.proc.join()
            if endpoint is not None and slot.proc.pid is not None:
                endpoint.worker_exited(slot.proc.pid)
    return 0 if all(s.proc is not None and s.proc.exitcode == 0 for s in slots) else 1


def _supervise(
    slots: list[_Slot],
    serving: Any,
    spawn: Callable[[_Slot], None],
    endpoint: MetricsEndpoint | None,
    stop: threading.Event,
    wake_r: int,
) -> None:
    """Until SIGTERM/SIGINT: restart each worker that dies, after its back-off.

    The main thread waits on the workers' sentinels and ``signal_wakeups``' pipe, so a death
    or a signal (whichever thread the kernel handed it to) wakes it at once. SIGHUP goes to
    the workers whose flag in ``serving`` is set: a worker still starting could be ended by it
    (and loads the directory as it is anyway).
    """

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP: reloading rulesets")
        _forward_hangup([s.proc for s in slots if serving[s.index]])

    signal.signal(signal.SIGHUP, hangup)
    while not stop.is_set():
        due = [s.restart_at for s in slots if s.proc is None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        sentinels = [s.proc.sentinel for s in slots if s.proc is not None]
        multiprocessing.connection.wait([wake_r, *sentinels], timeout)
        drain_wakeups(wake_r)  # the handlers of what arrived have run (SIGHUP: forwarded)
        if stop.is_set():
            return
        now = time.monotonic()
        for slot in slots:
            if slot.proc is not None and not slot.proc.is_alive():
                _note_death(slot, serving, now, endpoint)
            elif slot.proc is None and slot.restart_at <= now:
                spawn(slot)
                pid = slot.proc.pid if slot.proc is not None else None
                log.warning("worker-%d restarted as pid %s", slot.index, pid)


def _note_death(slot: _Slot, serving: Any, now: float, endpoint: MetricsEndpoint | None) -> None:
    """Log a worker's death, clear its serving flag and schedule its restart."""
    proc = slot.proc
    if proc is None:
        return
    serving[slot.index] = 0
    ran_s = now - slot.started
    delay = slot.backoff.after_death(ran_s)
    code = proc.exitcode
    how = (
        f"was killed by {signal.Signals(-code).name}"
        if code is not None and code < 0
        else f"exited with code {code}"
    )
    log.error(
        "worker-%d (pid %s) %s after %.1f s; restarting it in %.1f s (health NOT_SERVING "
        "until it serves)",
        slot.index,
        proc.pid,
        how,
        ran_s,
        delay,
    )
    if endpoint is not None and proc.pid is not None:
        endpoint.worker_exited(proc.pid)
    proc.close()
    slot.proc, slot.restart_at = None, now + delay
