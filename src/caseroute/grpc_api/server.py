"""Build the gRPC server: servicers, health, reflection, interceptors, reload, graceful stop.

``build_server`` gives a ``RunningServer``: one process's gRPC server over one
``RoutingCore``, with its ruleset lifecycle (hot reload on SIGHUP or a poll of the rulesets
directory, on a thread of its own, never in a signal handler), its health (NOT_SERVING while a
sibling worker does not serve, or the decision log cannot be written) and its stop. Every
server applies the same access policies (``auth.py``). Running it as processes (one, or
supervised workers sharing the port) is ``processes.py``'s job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from caseroute.audit.config import AuditConfig
from caseroute.audit.store import AuditSink
from caseroute.domain.errors import withheld_cause
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.admin_servicer import RulesetAdminServicer
from caseroute.grpc_api.auth import AuthConfig, AuthInterceptor
from caseroute.grpc_api.reflection_v1 import V1_SERVICE_NAME, reflection_pool
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import RosterLog, StoredRosters
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
from caseroute.grpc_api.tls import ServerTls
from caseroute.lifecycle import RulesetAdminCore, RulesetLifecycle
from caseroute.metrics import MetricsRecorder
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
        max_now_skew_s: Largest difference in seconds between a request's ``now`` and this
            server's clock when deciding (0: any ``now``); further off is INVALID_ARGUMENT at
            ``now``.
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
    max_now_skew_s: float = 0.0
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
    core = RoutingCore(
        registry,
        store,
        masker,
        limits=config.limits,
        max_now_skew=timedelta(seconds=config.max_now_skew_s) if config.max_now_skew_s else None,
    )
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
    audit: AuditSink = core.audit
    # A roster sent by hash alone that this worker lacks is looked up in a decision log that
    # this worker shares (with its server's other workers, replicas on PostgreSQL) before
    # ROSTER_NOT_CACHED.
    roster_log = (
        RosterLog(
            audit,
            rosters,
            max_bytes=size,
            observer=metrics.roster_looked_up if metrics is not None else None,
        )
        if isinstance(audit, StoredRosters)
        else None
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
            roster_log=roster_log,
        ),
    )
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
