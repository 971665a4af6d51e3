"""Build and run the gRPC server: servicers, health, reflection, graceful shutdown, workers.

Parallelism: one Python process is bound by the GIL (and durable_rules holds it for every
call), so ``serve`` runs several worker processes that each bind the same port with
``SO_REUSEPORT``; the kernel spreads connections across them (the pattern of grpc's
``examples/python/multiprocessing``). Workers are spawned, not forked, before any gRPC object
or durable_rules ruleset exists, and each loads the rulesets itself.

Supervision (``supervisor.py``): the parent refuses a port another server holds, restarts a
worker that dies (with back-off), and shares one flag per worker slot (a multiprocessing
``Array``) that a worker sets once it serves and the parent clears when it dies; every worker's
health is NOT_SERVING while any flag is clear. A worker drains and exits when its parent is gone.

Hot reload: each worker polls its rulesets directory (``--reload-interval``) and reloads on
SIGHUP (the parent forwards SIGHUP to every worker); the reload runs on a thread of its own,
never in the signal handler. Every worker applies the same access policies (``auth.py``).

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
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, ParamSpec, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from prometheus_client import CollectorRegistry

from caseroute.audit.config import AuditConfig
from caseroute.audit.store import AuditSink
from caseroute.domain.errors import withheld_cause
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.admin_servicer import RulesetAdminServicer
from caseroute.grpc_api.auth import AuthConfig, AuthInterceptor
from caseroute.grpc_api.reflection_v1 import V1_SERVICE_NAME, reflection_pool
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.rpc_calls import CallerNoteInterceptor, CallListener, RpcCallInterceptor
from caseroute.grpc_api.rpc_log import RpcLogListener
from caseroute.grpc_api.rpc_metrics import RpcMetricsListener
from caseroute.grpc_api.servicer import (
    DecisionLogServicer,
    RoutingServicer,
    UndecodableRequest,
    lenient_deserializer,
    request_deserializer,
)
from caseroute.grpc_api.supervisor import (
    RestartBackoff,
    claim_port,
    default_workers,
    drain_wakeups,
    signal_wakeups,
    watch_parent,
)
from caseroute.grpc_api.tls import ServerTls
from caseroute.lifecycle import RulesetAdminCore, RulesetLifecycle
from caseroute.logs import configure_logging, host_configured
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.metrics.exposition import (
    MetricsEndpoint,
    in_multiprocess_mode,
    serve_for_workers,
    serve_in_process,
)
from caseroute.service import DecisionLog, RoutingCore, RulesetRegistry
from caseroute.shadow import ShadowRunner
from caseroute.v1 import admin_pb2 as apb
from caseroute.v1 import routing_pb2 as pb

log = logging.getLogger("caseroute.server")

ROUTING_SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"].full_name
DECISION_LOG_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionLog"].full_name
ADMIN_SERVICE = apb.DESCRIPTOR.services_by_name["RulesetAdmin"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
MIB = 1024 * 1024
DEFAULT_GC_THRESHOLD = (700, 10, 1000)
"""Each serving process's ``gc.set_threshold``: Python's young generations (700, 10), its
oldest walked after 1,000 middle-aged collections instead of 10. A full collection walks every
cached roster's objects (~300-400 ms at 2 x 100,000 cached agents); with Python's 10, 19 of
them landed in 256 first-sight 1,000-agent rosters, here none (``benchmarks/gc_policy.py``).
A Decide leaves no cyclic garbage (an evicted roster goes by reference counting), and young
cyclic garbage is collected as promptly as before."""
STOP_BOUND_S = 5.0
"""After the grace period, how long a stop waits for cancelled calls' threads to return."""
PEERS_POLL_S = 0.25
"""How often a worker's health re-reads how many of its sibling workers serve."""
STOP_POLL_S = 0.25
"""How soon a worker's main thread sees a stop set by another thread (its parent watch);
a signal wakes it at once (``signal_wakeups``)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")


class CallPool(futures.ThreadPoolExecutor):
    """The request threads, counting the calls running, so a stop can wait for them to end.

    grpcio cancels calls still running when the grace period ends, but their handler threads
    run on: the rulesets and the decision log must not be closed under them.
    """

    def __init__(self, max_workers: int) -> None:
        """A pool of ``max_workers`` threads named ``rpc_*``."""
        super().__init__(max_workers=max_workers, thread_name_prefix="rpc")
        self._running = 0
        self._changed = threading.Condition()

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> futures.Future[_T]:
        """Run ``fn`` on a request thread, counted as running until it returns."""

        def counted() -> _T:
            try:
                return fn(*args, **kwargs)
            finally:
                self._ended()

        with self._changed:
            self._running += 1
        try:
            return super().submit(counted)
        except BaseException:
            self._ended()
            raise

    def _ended(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    @property
    def running(self) -> int:
        """Calls whose handler has not returned yet."""
        with self._changed:
            return self._running

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every running call to return; True if they did."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout_s)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to serve.

    Attributes:
        rulesets: Directory of rulesets (``<dir>/*/ruleset.yaml``) or one ruleset.
        host: Address to bind (``0.0.0.0`` for every interface).
        port: TCP port; 0 picks a free one.
        workers: Worker processes; 0 means one per CPU the cgroup quota allows
            (``supervisor.default_workers``).
        threads: Request threads per worker.
        max_message_mb: Largest request or response accepted, in MiB.
        max_response_mb: Largest reply sent, in MiB (default 4: what gRPC clients receive by
            default). A Decide or DecideBatch reply over it is refused with RESOURCE_EXHAUSTED
            before anything is recorded; DecisionLog pages are cut short to it. Capped by
            ``max_message_mb``.
        grace_s: Seconds in-flight calls get to finish after SIGTERM.
        engine: Engine of record.
        default_ruleset: Ruleset used when a request names none.
        roster_cache_agents: Agents kept in the per-worker parsed-roster cache (0: off).
        roster_cache_mb: Estimated MiB the per-worker parsed-roster cache may hold (0: off).
        gc_threshold: The cyclic garbage collector's thresholds each serving process sets
            (``gc.set_threshold``, ``apply_gc_policy``).
        limits: Request size limits (agents, cases per batch, string lengths...).
        audit: The decision log and masking settings.
        audit_probe_s: While the decision log refuses writes, try an empty write this often
            (seconds), so health returns to SERVING without traffic (0: only real writes).
        tls: TLS settings (None: plaintext, no caller authentication).
        auth: Who may call RulesetAdmin, DecisionLog and RoutingService (tokens, allow-lists).
        reload_interval_s: Seconds between polls of the rulesets directory for changes
            (0: no polling; SIGHUP and the admin Reload call still reload).
        metrics_port: Port of the Prometheus ``/metrics`` endpoint on ``host`` (None: no
            metrics; 0 picks a free port).
        log_format: ``auto`` (console on a terminal, else JSON), ``json`` or ``console``.
        log_level: Lowest level logged: ``debug``, ``info``, ``warning`` or ``error``.
    """

    rulesets: Path = Path("rulesets")
    host: str = "127.0.0.1"
    port: int = 50051
    workers: int = 0
    threads: int = 16
    max_message_mb: int = 64
    max_response_mb: int = 4
    grace_s: float = 10.0
    engine: EngineKind = EngineKind.DURABLE
    default_ruleset: str | None = None
    roster_cache_agents: int = 100_000
    roster_cache_mb: int = 256
    gc_threshold: tuple[int, int, int] = DEFAULT_GC_THRESHOLD
    limits: InputLimits = DEFAULT_LIMITS
    audit: AuditConfig = field(default_factory=AuditConfig)
    audit_probe_s: float = 5.0
    tls: ServerTls | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    reload_interval_s: float = 2.0
    metrics_port: int | None = None
    log_format: str = "auto"
    log_level: str = "info"


@dataclass(slots=True)
class RunningServer:
    """A started server in this process.

    Health is SERVING only while a ruleset is loaded *and* the decision log takes writes:
    the core tells ``audit_changed`` when writes start failing or succeed again.
    """

    server: grpc.Server
    health: health.HealthServicer
    core: RoutingCore
    port: int
    admin: RulesetAdminCore | None = None
    loaded: bool = False
    pool: CallPool | None = None
    peers_serving: Callable[[], bool] | None = None
    roster_cache: RosterCache | None = None
    """The RoutingService's parsed-roster cache (this worker's)."""
    _hangup: threading.Event = field(default_factory=threading.Event)
    _health_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def set_serving(self, serving: bool) -> None:
        """Flip the health status of every service."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", ROUTING_SERVICE, DECISION_LOG_SERVICE):
            self.health.set(name, status)

    def _refresh_health(self) -> None:
        with self._health_lock:
            peers = self.peers_serving is None or self.peers_serving()
            self.set_serving(self.loaded and self.core.audit_writable and peers)

    def peers_changed(self) -> None:
        """Health follows ``peers_serving`` now (a worker just set its own flag)."""
        self._refresh_health()

    def follow_peers(self, interval_s: float = PEERS_POLL_S) -> None:
        """Until ``stop``: health follows ``peers_serving`` (re-read every ``interval_s``)."""
        if self.peers_serving is None:
            return
        peers_serving = self.peers_serving

        def follow() -> None:
            # Invariant: health was last refreshed with ``last`` (None: unknown, so the first
            # reading refreshes; this worker's own flag may have been set since its load).
            last: bool | None = None
            while not self._stopping.wait(interval_s):
                now = peers_serving()
                if now == last:
                    continue
                if last is not None and now:
                    log.info("every configured worker serves; health follows this one")
                elif last is not None:
                    log.warning("a worker is not serving; health NOT_SERVING meanwhile")
                last = now
                self._refresh_health()

        threading.Thread(target=follow, name="peers-follow", daemon=True).start()

    def audit_changed(self, writable: bool) -> None:
        """The decision log stopped or started taking writes: follow it in health."""
        if writable:
            log.warning("decision log writable again; health follows the rulesets")
        else:
            log.error(
                "decision log not writable; health NOT_SERVING until a write succeeds "
                "(every decision is refused meanwhile)"
            )
        self._refresh_health()

    def probe_audit_while_down(self, interval_s: float) -> None:
        """Until ``stop``: every ``interval_s``, try an empty write if the log refused writes.

        Without it, a load balancer that moved traffic away on NOT_SERVING would leave the
        server unhealthy forever: nothing else would write.
        """
        while not self._stopping.wait(interval_s):
            if not self.core.audit_writable:
                self.core.probe_audit()

    def load(self, config: ServerConfig) -> None:
        """(Re)load the rulesets in the core's registry; SERVING while the default one serves.

        A ruleset that fails keeps its last good version serving (``RulesetRegistry.reload``),
        so a reload never takes a serving server to NOT_SERVING.
        """
        if isinstance(self.admin, RulesetLifecycle):
            # Invariant: the lifecycle reads the directory this load was given (a test may
            # load another one into the same server).
            self.admin.root = config.rulesets
            self.admin.load(actor="startup")
        else:  # an admin core of a test: the registry loads on its own
            self.core.registry.reload(config.rulesets, config.engine)
        names = self.core.registry.names()
        self.loaded = self.core.registry.serves_default()
        self._refresh_health()
        if self.loaded:
            log.info("rulesets loaded: %s", ", ".join(names))
            if config.default_ruleset is None and len(names) > 1:
                log.warning(
                    "several rulesets and no --default-ruleset: a request naming none gets %s "
                    "(the first name with an active version); set --default-ruleset",
                    self.core.registry.resolve("", "").compiled.name,
                )
        elif names:
            log.error(
                "rulesets loaded: %s, but the default one has no active version (the admin "
                "API's ListRulesets says why); serving NOT_SERVING, pinned requests answered",
                ", ".join(names),
            )
        else:
            log.error(
                "no ruleset loaded from %s; serving NOT_SERVING / UNAVAILABLE", config.rulesets
            )

    def follow_rulesets(self) -> None:
        """Health follows what the registry now serves (a reload may load the first ruleset).

        SERVING needs the default ruleset's active version: loaded versions with none active
        answer every unpinned request NOT_FOUND, which a load balancer must not route to.
        """
        loaded = self.core.registry.serves_default()
        if loaded != self.loaded:
            self.loaded = loaded
            self._refresh_health()

    def _follow_while_polling(self, interval_s: float) -> None:
        """Until ``stop``: every ``interval_s``, let health follow what the poller loaded."""
        while not self._stopping.wait(interval_s):
            self.follow_rulesets()

    def request_reload(self) -> None:
        """Ask the reload thread for a reload (SIGHUP's handler: it does no work itself)."""
        self._hangup.set()

    def _reload_on_request(self) -> None:
        """Until ``stop``: run ``admin.reload(actor="signal:SIGHUP")`` after each request."""
        while True:
            self._hangup.wait()
            if self._stopping.is_set():
                return
            self._hangup.clear()
            if self.admin is None:
                log.warning("SIGHUP: no ruleset lifecycle on this server; nothing reloaded")
                continue
            try:
                outcome = self.admin.reload(actor="signal:SIGHUP")
                self.follow_rulesets()
                log.info(
                    "reload on SIGHUP: %d change(s), %d source(s) not loaded",
                    len(outcome.changes),
                    len(outcome.errors),
                )
            except Exception as exc:  # noqa: BLE001 - a failed reload must not end the thread
                # Type and frames only (TRY400 would log the text): it may quote server paths.
                log.error(  # noqa: TRY400
                    "reload on SIGHUP failed: %s", withheld_cause(exc, "server paths")
                )

    def start_reload_triggers(self, interval_s: float) -> None:
        """Start the SIGHUP reload thread and, when ``interval_s`` > 0, the directory poller."""
        threading.Thread(target=self._reload_on_request, name="reload-signal", daemon=True).start()
        if interval_s > 0 and isinstance(self.admin, RulesetLifecycle):
            self.admin.start_polling(interval_s)
            threading.Thread(
                target=self._follow_while_polling,
                args=(interval_s,),
                name="health-follow",
                daemon=True,
            ).start()

    def stop(self, grace_s: float, bound_s: float = STOP_BOUND_S) -> bool:
        """Go NOT_SERVING, refuse new calls, let in-flight calls finish within the grace.

        Calls still running when the grace ends are cancelled (the caller sees UNAVAILABLE);
        their threads then get ``bound_s`` to return before the rulesets and decision log
        close. A thread still running after that keeps them open: nothing is closed under it.

        Returns:
            True when everything closed; False when a call still ran, nothing was closed, and
            the caller must end the process (``os._exit``: its threads would hold it alive).
        """
        self._stopping.set()
        self._hangup.set()
        if isinstance(self.admin, RulesetLifecycle):
            self.admin.stop_polling()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if self.pool is not None and not self.pool.wait_idle(bound_s):
            log.error(
                "%d call(s) still running %.1f s after the %.1f s grace period (cancelled: "
                "their callers got UNAVAILABLE); the rulesets and decision log stay open under "
                "them and the process exits without closing them (a decision not yet "
                "committed is not recorded; committed ones are whole)",
                self.pool.running,
                bound_s,
                grace_s,
            )
            return False
        if self.core.shadow is not None:
            self.core.shadow.close()  # stores what is queued while the log is still open
        self.core.registry.close()
        self.core.audit.close()
        return True


def add_service(server: grpc.Server, service_name: str, servicer: object, module: Any = pb) -> None:
    """Register every method of a caseroute service with a deserializer that never raises.

    This replaces the generated ``add_*_to_server``: those use ``FromString``, and grpcio
    answers bytes it cannot decode with INTERNAL and a traceback in the log per call. Here the
    servicer receives an ``UndecodableRequest`` and answers INVALID_ARGUMENT.

    Args:
        server: The server.
        service_name: Full service name, e.g. ``caseroute.v1.RoutingService``.
        servicer: Object with one method per RPC, named as in the .proto.
        module: The generated ``*_pb2`` module defining the service (default: routing).
    """
    service = module.DESCRIPTOR.services_by_name[service_name.rsplit(".", 1)[-1]]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=request_deserializer(getattr(module, method.input_type.name)),
            response_serializer=getattr(module, method.output_type.name).SerializeToString,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)


def open_core(config: ServerConfig) -> RoutingCore:
    """A core with an empty registry (``RunningServer.load`` fills it) and the audit store.

    Raises:
        ConfigError: If the audit key or masked fields are invalid.
        AuditUnavailableError: If the decision log cannot be opened.
    """
    # SQLite, or PostgreSQL (--audit-db postgresql://...); the masker of the key it bound.
    store, masker = config.audit.open_recording()
    registry = RulesetRegistry(config.default_ruleset)
    core = RoutingCore(registry, store, masker, limits=config.limits)
    # Idle until some serving.yaml names a shadow version (a reload can add one any time).
    core.shadow = ShadowRunner(registry, store)
    return core


def _add_health_and_reflection(server: grpc.Server, health_servicer: health.HealthServicer) -> None:
    """Register health and reflection with request decoding that cannot raise.

    grpcio's own registration decodes with ``FromString``: bytes that are not the message end
    INTERNAL with a traceback per call, and on the reflection stream such a call could leave
    the server's graceful stop waiting forever. Health ``Check`` and reflection decode
    leniently here and refuse undecodable bytes as INVALID_ARGUMENT; health ``Watch`` keeps
    grpcio's handler (its non-blocking mode is bound to it) and logs one line via the filter
    below.
    """
    names = (
        ROUTING_SERVICE,
        DECISION_LOG_SERVICE,
        ADMIN_SERVICE,
        HEALTH_SERVICE,
        reflection.SERVICE_NAME,
        V1_SERVICE_NAME,  # the same servicer: v1 is v1alpha renamed (reflection_v1.py)
    )
    reflector = reflection.ReflectionServicer(names, pool=reflection_pool())

    def refuse(context: grpc.ServicerContext, method: str, bad: UndecodableRequest) -> NoReturn:
        log.warning("%s refused: request bytes are not a valid %s", method, bad.message)
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request: is not a valid {bad.message} protobuf message",
        )

    def check(
        request: health_pb2.HealthCheckRequest | UndecodableRequest,
        context: grpc.ServicerContext,
    ) -> health_pb2.HealthCheckResponse:
        if isinstance(request, UndecodableRequest):
            refuse(context, "Health.Check", request)
        return health_servicer.Check(request, context)

    def info(
        requests: Iterator[reflection_pb2.ServerReflectionRequest | UndecodableRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[reflection_pb2.ServerReflectionResponse]:
        def decoded() -> Iterator[reflection_pb2.ServerReflectionRequest]:
            for request in requests:
                if isinstance(request, UndecodableRequest):
                    refuse(context, "ServerReflectionInfo", request)
                yield request

        return reflector.ServerReflectionInfo(decoded(), context)  # type: ignore[no-any-return]

    health_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Check": grpc.unary_unary_rpc_method_handler(
            check,
            request_deserializer=lenient_deserializer(health_pb2.HealthCheckRequest),
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            health_servicer.Watch,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
    }
    reflection_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            info,
            request_deserializer=lenient_deserializer(reflection_pb2.ServerReflectionRequest),
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for service, handlers in (
        (HEALTH_SERVICE, health_handlers),
        (reflection.SERVICE_NAME, reflection_handlers),
        (V1_SERVICE_NAME, reflection_handlers),
    ):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))


class _UndecodableRequestLine(logging.Filter):
    """One line, no traceback, for bytes grpcio's own services (health, reflection) cannot decode.

    caseroute's services decode leniently and answer INVALID_ARGUMENT; grpcio's health and
    reflection handlers deserialize themselves and log a full traceback per bad request, which
    lets any client flood the log. The call still ends INTERNAL (grpcio decides that).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Exception deserializing message!":
            record.msg = (
                "a request could not be decoded as the protobuf message its method expects; "
                "grpcio answered INTERNAL"
            )
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_GRPC_DECODE_FILTER = _UndecodableRequestLine()


def build_server(
    config: ServerConfig,
    *,
    reuse_port: bool,
    core: RoutingCore | None = None,
    admin: RulesetAdminCore | None = None,
    metrics: MetricsRecorder | None = None,
) -> RunningServer:
    """Create and start a server (NOT_SERVING until rulesets load).

    Args:
        config: Settings.
        reuse_port: Bind with SO_REUSEPORT so sibling workers can share the port.
        core: Core to serve (default: ``open_core(config)``).
        admin: What RulesetAdmin drives (default: a ``RulesetLifecycle`` over the core's
            registry, ``config.rulesets`` and decision log).
        metrics: Where to count decisions and calls (None: not counted).

    Returns:
        The started server and the port it bound.

    Raises:
        ConfigError: If the audit settings or a token file are invalid.
        AuditUnavailableError: If the decision log cannot be opened.
    """
    admin_policy, audit_policy, caller_policy = config.auth.policies()
    logging.getLogger("grpc._common").addFilter(_GRPC_DECODE_FILTER)  # a set: added once
    size = config.max_message_mb * MIB
    listeners: list[CallListener] = [RpcLogListener()]
    if metrics is not None:
        listeners.append(RpcMetricsListener(metrics))
    pool = CallPool(config.threads)
    server = grpc.server(
        pool,
        options=[
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        interceptors=[
            # Outermost: calls the access checks refuse are logged and counted too.
            RpcCallInterceptor(listeners),
            AuthInterceptor(
                {
                    ADMIN_SERVICE: admin_policy,
                    DECISION_LOG_SERVICE: audit_policy,
                    ROUTING_SERVICE: caller_policy,
                },
                required=frozenset({ADMIN_SERVICE}),
            ),
            CallerNoteInterceptor(),  # innermost: sees who passed the access check
        ],
    )
    if config.tls is None and (admin_policy.tokens or audit_policy.tokens or caller_policy.tokens):
        log.warning(
            "bearer tokens configured on a plaintext server: anyone on the network path can "
            "read them; serve with --tls-cert/--tls-key"
        )
    core = core or open_core(config)
    if admin is None:
        admin = RulesetLifecycle(core.registry, config.rulesets, config.engine, audit=core.audit)
    if metrics is not None:
        metrics.observe(core, admin)
    # Health follows an admin change (it may load the first ruleset). The lambda is called
    # only while serving, so `running`, bound below before the server starts, exists then.
    running: RunningServer

    def follow() -> None:
        running.follow_rulesets()

    add_service(server, ADMIN_SERVICE, RulesetAdminServicer(admin, after_change=follow), apb)
    # The smaller of the two limits binds, and the refusal names the setting that set it.
    reply_limit = (
        (config.max_response_mb * MIB, "--max-response-mb")
        if config.max_response_mb <= config.max_message_mb
        else (size, "--max-message-mb")
    )
    # This worker's own: a roster is parsed once per worker, then found by its bytes or by
    # the roster_sha256 a caller sends instead of it.
    rosters = RosterCache(
        max_agents=config.roster_cache_agents, max_bytes=config.roster_cache_mb * MIB
    )
    add_service(
        server,
        ROUTING_SERVICE,
        RoutingServicer(
            core,
            limits=config.limits,
            max_reply_bytes=reply_limit[0],
            reply_limit_setting=reply_limit[1],
            roster_cache=rosters,
        ),
    )
    audit: AuditSink = core.audit
    add_service(
        server,
        DECISION_LOG_SERVICE,
        DecisionLogServicer(
            DecisionLog(audit), max_reply_bytes=reply_limit[0], reply_limit_setting=reply_limit[1]
        ),
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    _add_health_and_reflection(server, health_servicer)
    address = f"{config.host}:{config.port}"
    port = (
        server.add_secure_port(address, config.tls.credentials())
        if config.tls is not None
        else server.add_insecure_port(address)
    )
    running = RunningServer(
        server, health_servicer, core, port, admin, pool=pool, roster_cache=rosters
    )
    running.set_serving(serving=False)
    core.watch_audit(running.audit_changed)
    if config.audit_probe_s > 0:
        threading.Thread(
            target=running.probe_audit_while_down,
            args=(config.audit_probe_s,),
            name="audit-probe",
            daemon=True,
        ).start()
    server.start()
    return running


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
    config.auth.policies()
    # Create the decision log and key once, here, so workers never race to create them, and a
    # bad setting stops the start with its message instead of failing in every worker.
    config.audit.open_recording()[0].close()
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
