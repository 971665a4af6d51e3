"""Build and run the gRPC server: servicers, health, reflection, graceful shutdown, workers.

Parallelism: one Python process is bound by the GIL (and durable_rules holds it for every
call), so ``serve`` runs several worker processes that each bind the same port with
``SO_REUSEPORT``; the kernel spreads connections across them (the pattern of grpc's
``examples/python/multiprocessing``). Workers are spawned, not forked, before any gRPC object
or durable_rules ruleset exists, and each loads the rulesets itself.

Hot reload: each worker polls its rulesets directory (``--reload-interval``) and reloads on
SIGHUP (the parent forwards SIGHUP to every worker); the reload runs on a thread of its own,
never in the signal handler. Every worker applies the same access policies (``auth.py``).

Metrics (``--metrics-port``): each process that decides counts into ``caseroute.metrics``; with
several workers the parent serves ``/metrics`` over prometheus_client's multiprocess files
(``caseroute.metrics.exposition``), with one it serves its own registry.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from prometheus_client import CollectorRegistry

from caseroute.audit.config import AuditConfig
from caseroute.audit.store import AuditSink
from caseroute.domain.errors import withheld_cause
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import admin_pb2 as apb
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.grpc_api.admin_servicer import RulesetAdminServicer
from caseroute.grpc_api.auth import AuthConfig, AuthInterceptor
from caseroute.grpc_api.rpc_calls import CallerNoteInterceptor, CallListener, RpcCallInterceptor
from caseroute.grpc_api.rpc_log import RpcLogListener
from caseroute.grpc_api.rpc_metrics import RpcMetricsListener
from caseroute.grpc_api.servicer import (
    DecisionLogServicer,
    RoutingServicer,
    UndecodableRequest,
    lenient_deserializer,
)
from caseroute.grpc_api.tls import ServerTls
from caseroute.lifecycle import RulesetAdminCore, RulesetLifecycle
from caseroute.logs import configure_logging
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.metrics.exposition import (
    MetricsEndpoint,
    in_multiprocess_mode,
    serve_for_workers,
    serve_in_process,
)
from caseroute.service import DecisionLog, RoutingCore, RulesetRegistry
from caseroute.shadow import ShadowRunner

log = logging.getLogger("caseroute.server")

ROUTING_SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"].full_name
DECISION_LOG_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionLog"].full_name
ADMIN_SERVICE = apb.DESCRIPTOR.services_by_name["RulesetAdmin"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to serve.

    Attributes:
        rulesets: Directory of rulesets (``<dir>/*/ruleset.yaml``) or one ruleset.
        host: Address to bind (``0.0.0.0`` for every interface).
        port: TCP port; 0 picks a free one.
        workers: Worker processes; 0 means one per CPU core.
        threads: Request threads per worker.
        max_message_mb: Largest request or response accepted, in MiB.
        grace_s: Seconds in-flight calls get to finish after SIGTERM.
        engine: Engine of record.
        default_ruleset: Ruleset used when a request names none.
        roster_cache_agents: Agents kept in the per-worker parsed-roster cache (0: off).
        roster_cache_mb: Estimated MiB the per-worker parsed-roster cache may hold (0: off).
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
    grace_s: float = 10.0
    engine: EngineKind = EngineKind.DURABLE
    default_ruleset: str | None = None
    roster_cache_agents: int = 100_000
    roster_cache_mb: int = 256
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
            self.set_serving(self.loaded and self.core.audit_writable)

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
        """(Re)load the rulesets in the core's registry; SERVING while any ruleset is loaded.

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
        self.loaded = bool(names)
        self._refresh_health()
        if names:
            log.info("rulesets loaded: %s", ", ".join(names))
        else:
            log.error(
                "no ruleset loaded from %s; serving NOT_SERVING / UNAVAILABLE", config.rulesets
            )

    def follow_rulesets(self) -> None:
        """Health follows what the registry now holds (a reload may load the first ruleset)."""
        loaded = bool(self.core.registry.names())
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

    def stop(self, grace_s: float) -> None:
        """Go NOT_SERVING, refuse new calls, let in-flight calls finish within the grace."""
        self._stopping.set()
        self._hangup.set()
        if isinstance(self.admin, RulesetLifecycle):
            self.admin.stop_polling()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if self.core.shadow is not None:
            self.core.shadow.close()  # stores what is queued while the log is still open
        self.core.registry.close()
        self.core.audit.close()


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
            request_deserializer=lenient_deserializer(getattr(module, method.input_type.name)),
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
    store = config.audit.open_store()
    try:
        masker = config.audit.masker()
    except Exception:
        store.close()
        raise
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
    )
    reflector = reflection.ReflectionServicer(names)

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
    convert.ROSTER_CACHE.configure(
        max_agents=config.roster_cache_agents, max_bytes=config.roster_cache_mb * MIB
    )
    size = config.max_message_mb * MIB
    listeners: list[CallListener] = [RpcLogListener()]
    if metrics is not None:
        listeners.append(RpcMetricsListener(metrics))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="rpc"),
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
    add_service(
        server,
        ROUTING_SERVICE,
        RoutingServicer(core, limits=config.limits, max_reply_bytes=size),
    )
    audit: AuditSink = core.audit
    add_service(
        server,
        DECISION_LOG_SERVICE,
        DecisionLogServicer(DecisionLog(audit), max_reply_bytes=size),
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    _add_health_and_reflection(server, health_servicer)
    address = f"{config.host}:{config.port}"
    port = (
        server.add_secure_port(address, config.tls.credentials())
        if config.tls is not None
        else server.add_insecure_port(address)
    )
    running = RunningServer(server, health_servicer, core, port, admin)
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
    """
    configure_logging(config.log_format, config.log_level, sys.stderr)


def _wait_for_stop(on_hangup: Callable[[], None] | None = None) -> None:
    """Block until SIGTERM/SIGINT; on SIGHUP call ``on_hangup`` (which must only hand off)."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: draining", signal.Signals(signum).name)
        stop.set()

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP: reloading rulesets")
        if on_hangup is not None:
            on_hangup()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, hangup)
    stop.wait()


def run_worker(config: ServerConfig, reuse_port: bool) -> None:
    """Serve in this process until SIGTERM/SIGINT, then drain and return."""
    _configure_logging(config)
    # SIGHUP's default ends the process: ignored until the reload thread can take it (the
    # first load reads the directory as it is then, and the poller catches what follows).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    metrics = None
    if config.metrics_port is not None:
        if not in_multiprocess_mode():
            log.error(
                "metrics: PROMETHEUS_MULTIPROC_DIR was not set when this worker started; its "
                "counts are not served"
            )
        metrics = MetricsRecorder(define_metrics(None))  # values go to the shared directory
    running = build_server(config, reuse_port=reuse_port, metrics=metrics)
    log.info("worker listening on %s:%d", config.host, running.port)
    running.load(config)
    running.start_reload_triggers(config.reload_interval_s)
    _wait_for_stop(running.request_reload)
    running.stop(config.grace_s)
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


def _forward_hangup(procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Pass SIGHUP on to every live worker (each reloads on its own reload thread)."""
    for proc in procs:
        if proc.pid is not None and proc.is_alive():
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
    workers = config.workers or os.cpu_count() or 1
    # Token files readable, private and well-formed, checked once before anything is created.
    config.auth.policies()
    # Create the decision log and key once, here, so workers never race to create them, and a
    # bad setting stops the start with its message instead of failing in every worker.
    config.audit.open_store().close()
    config.audit.masker()
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
        _wait_for_stop(running.request_reload)
        running.stop(config.grace_s)
    finally:
        if endpoint is not None:
            endpoint.close()
    return 0


def _serve_workers(config: ServerConfig, workers: int, endpoint: MetricsEndpoint | None) -> int:
    """``serve`` with ``workers`` spawned processes sharing the port."""
    context = multiprocessing.get_context("spawn")
    with _reserved_port(config.host, config.port) as port:
        shared = replace(config, port=port)
        procs = [
            context.Process(target=run_worker, args=(shared, True), name=f"worker-{i}")
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        sys.stdout.write(f"caseroute listening on {config.host}:{port} ({workers} workers)\n")
        _announce_metrics(endpoint)
        sys.stdout.flush()
        _wait_for_stop(lambda: _forward_hangup(procs))
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(config.grace_s + 5)
            if proc.is_alive():
                log.error("worker %s did not drain in time; killing it", proc.name)
                proc.kill()
                proc.join()
            if endpoint is not None and proc.pid is not None:
                endpoint.worker_exited(proc.pid)
    return 0 if all(proc.exitcode == 0 for proc in procs) else 1
