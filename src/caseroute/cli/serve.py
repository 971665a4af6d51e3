"""``caseroute serve`` and ``caseroute health``: run the gRPC server, and check one."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from caseroute.cli.options import (
    ENGINES,
    add_audit_db,
    add_client_tls,
    add_masked_fields,
    client_tls,
    default_engine,
    masked_fields,
)
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, UsageError, out

if TYPE_CHECKING:
    from caseroute.audit.config import AuditConfig
    from caseroute.domain.limits import InputLimits
    from caseroute.grpc_api.auth import AuthConfig
    from caseroute.grpc_api.server import ServerConfig
    from caseroute.grpc_api.tls import ServerTls


def _cmd_health(args: argparse.Namespace) -> int:
    from caseroute.grpc_api.client import check_health

    status = check_health(args.server, args.service, args.timeout, client_tls(args))
    out(f"{args.server}: {status}")
    return EXIT_OK if status == "SERVING" else EXIT_FAILED


def _cmd_serve(args: argparse.Namespace) -> int:
    from caseroute.grpc_api.server import serve

    return serve(server_config(args))


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The server settings ``caseroute serve`` was given.

    Raises:
        UsageError: If a TLS or limit setting is inconsistent.
    """
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api.server import ServerConfig

    tls = _server_tls(args)
    return ServerConfig(
        rulesets=args.rulesets,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        max_message_mb=args.max_message_mb,
        grace_s=args.grace,
        engine=EngineKind(args.engine),
        default_ruleset=args.default_ruleset,
        roster_cache_agents=args.roster_cache_agents,
        roster_cache_mb=args.roster_cache_mb,
        limits=_input_limits(args),
        audit=_audit_config(args),
        tls=tls,
        auth=_auth_config(args, mutual_tls=tls is not None and tls.client_ca is not None),
        reload_interval_s=args.reload_interval,
        metrics_port=_checked_metrics_port(args),
        log_format=args.log_format,
        log_level=args.log_level,
    )


def _metrics_port(text: str) -> int | None:
    """An argparse type: a TCP port 0-65535 (0 picks a free one); empty means off."""
    if not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a TCP port 0-65535 (0 picks a free one), got {text!r} "
            "(set by the flag or $CASEROUTE_METRICS_PORT; unset it to serve no metrics)"
        )
    return value


def _choice(values: tuple[str, ...], env_name: str, default: str) -> Callable[[str], str]:
    """An argparse type: one of ``values`` (any case; empty: ``default``); errors name the env."""

    def parse(text: str) -> str:
        value = text.strip().lower() or default  # an empty variable counts as unset
        if value not in values:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(values)}, got {text!r} (set by the flag or ${env_name})"
            )
        return value

    return parse


def _add_logs(cmd: argparse.ArgumentParser) -> None:
    """Add ``--log-format`` and ``--log-level``."""
    from caseroute.logs import LOG_FORMATS, LOG_LEVELS

    cmd.add_argument(
        "--log-format",
        type=_choice(LOG_FORMATS, "CASEROUTE_LOG_FORMAT", "auto"),
        default=os.environ.get("CASEROUTE_LOG_FORMAT", "auto"),
        metavar="|".join(LOG_FORMATS),
        help="log lines on stderr: json (one object per line), console (for people), or auto: "
        "console when stderr is a terminal, else json ($CASEROUTE_LOG_FORMAT, default auto)",
    )
    cmd.add_argument(
        "--log-level",
        type=_choice(LOG_LEVELS, "CASEROUTE_LOG_LEVEL", "info"),
        default=os.environ.get("CASEROUTE_LOG_LEVEL", "info"),
        metavar="|".join(LOG_LEVELS),
        help="lowest level logged; info writes one line per call and per ruleset change "
        "($CASEROUTE_LOG_LEVEL, default info)",
    )


def _checked_metrics_port(args: argparse.Namespace) -> int | None:
    """``--metrics-port``, refused when it is the gRPC port itself."""
    port: int | None = args.metrics_port
    if port is not None and port != 0 and port == args.port:
        raise UsageError(
            f"--metrics-port {port} is also --port (gRPC); give metrics a port of their own"
        )
    return port


def _allow_list(value: str | None) -> list[str]:
    """An ``--*-allow`` environment default: identities separated by commas."""
    return [i.strip() for i in (value or "").split(",") if i.strip()]


def _auth_config(args: argparse.Namespace, *, mutual_tls: bool) -> AuthConfig:
    """Who may call which service (``--admin-token-file`` and friends).

    Raises:
        UsageError: If an allow-list is given without mutual TLS (no certificate to check).
    """
    from caseroute.grpc_api.auth import AuthConfig

    for flag, allow in (
        ("--admin-allow", args.admin_allow),
        ("--audit-allow", args.audit_allow),
        ("--caller-allow", args.caller_allow),
    ):
        if allow and not mutual_tls:
            raise UsageError(
                f"{flag} names client-certificate identities, which only mutual TLS "
                "provides: add --tls-cert, --tls-key and --tls-client-ca, or use a token file"
            )
    return AuthConfig(
        admin_token_file=args.admin_token_file,
        admin_allow=tuple(args.admin_allow),
        audit_token_file=args.audit_token_file,
        audit_allow=tuple(args.audit_allow),
        caller_token_file=args.caller_token_file,
        caller_allow=tuple(args.caller_allow),
    )


def _non_negative_seconds(text: str) -> float:
    """An argparse type: seconds >= 0 (``--reload-interval``)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds of at least 0, got {text!r} "
            "(set by the flag or $CASEROUTE_RELOAD_INTERVAL)"
        )
    return value


def _add_access(cmd: argparse.ArgumentParser) -> None:
    """Add the per-service credentials flags and ``--reload-interval``."""
    cmd.add_argument(
        "--reload-interval",
        type=_non_negative_seconds,
        default=os.environ.get("CASEROUTE_RELOAD_INTERVAL", "2.0"),
        metavar="SECONDS",
        help="poll the rulesets directory for changes this often; 0 turns polling off (SIGHUP "
        "and `caseroute rules reload` still reload) ($CASEROUTE_RELOAD_INTERVAL, default 2.0)",
    )
    group = cmd.add_argument_group(
        "access (token files: one `<identity> <token>` per line, mode 0600; RulesetAdmin is "
        "refused to everyone until one of its two flags is given, DecisionLog and "
        "RoutingService are open unless theirs are)"
    )
    for service, prefix, who in (
        ("RulesetAdmin", "admin", "operators"),
        ("DecisionLog", "audit", "auditors"),
        ("RoutingService", "caller", "calling systems"),
    ):
        env = f"CASEROUTE_{prefix.upper()}"
        group.add_argument(
            f"--{prefix}-token-file",
            type=Path,
            default=_env_path(f"{env}_TOKEN_FILE"),
            metavar="FILE",
            help=f"bearer tokens of the {who} allowed to call {service} (${env}_TOKEN_FILE)",
        )
        group.add_argument(
            f"--{prefix}-allow",
            action="append",
            default=_allow_list(os.environ.get(f"{env}_ALLOW")),
            metavar="IDENTITY",
            help=f"a client-certificate identity (mutual TLS) allowed to call {service}; "
            f"repeatable (${env}_ALLOW, comma-separated)",
        )


_LIMIT_HELP = {
    "max_agents": "agents in one roster",
    "max_batch_cases": "cases in one DecideBatch",
    "max_batch_pairs": "cases x agents in one DecideBatch (the matching work)",
    "max_id_chars": "characters of an id or code (request_id, case_id, agent_id, flags, names)",
    "max_text_chars": "characters of a free-text value (attribute values)",
    "max_list_items": "items in one list (flags, skills, licences, territories, languages...)",
    "max_attributes": "entries in one attributes map",
    "max_sentiment_readings": "readings in case.sentiment",
    "max_sla_clocks": "clocks in case.sla_clocks",
}


def _limit_env(name: str) -> str:
    return "CASEROUTE_" + name.upper()


def _whole_number(minimum: int, env_name: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``; the error names the env variable too."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of at least {minimum}, got {text!r} "
                f"(set by the flag or ${env_name})"
            )
        return value

    return parse


def _add_limits(cmd: argparse.ArgumentParser) -> None:
    from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits, limit_flag

    group = cmd.add_argument_group(
        "request size limits (over a limit: INVALID_ARGUMENT naming the field and the limit)"
    )
    for spec in dataclasses.fields(InputLimits):
        env_name = _limit_env(spec.name)
        default = getattr(DEFAULT_LIMITS, spec.name)
        group.add_argument(
            limit_flag(spec.name),
            dest=spec.name,
            type=_whole_number(1, env_name),
            default=os.environ.get(env_name, str(default)),
            metavar="N",
            help=f"{_LIMIT_HELP.get(spec.name, spec.name.replace('_', ' '))} "
            f"(${env_name}, default {default})",
        )


def _input_limits(args: argparse.Namespace) -> InputLimits:
    from caseroute.domain.limits import InputLimits

    try:
        return InputLimits(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(InputLimits)}
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _server_tls(args: argparse.Namespace) -> ServerTls | None:
    from caseroute.grpc_api.tls import ServerTls

    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise UsageError("--tls-client-ca needs --tls-cert and --tls-key (TLS itself)")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    return ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca)


def _audit_config(args: argparse.Namespace) -> AuditConfig:
    from caseroute.audit.config import AuditConfig

    return AuditConfig(
        db=args.audit_db,
        key_file=args.audit_key_file,
        key_hex=os.environ.get("CASEROUTE_AUDIT_KEY"),
        masked_fields=masked_fields(args),
    )


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``health``."""
    serve_cmd = sub.add_parser("serve", help="run the gRPC server")
    env = os.environ.get
    serve_cmd.add_argument(
        "--rulesets",
        type=Path,
        default=Path(env("CASEROUTE_RULESETS", "rulesets")),
        help="rulesets directory ($CASEROUTE_RULESETS, default rulesets)",
    )
    serve_cmd.add_argument(
        "--host",
        default=env("CASEROUTE_HOST", "127.0.0.1"),
        help="bind address ($CASEROUTE_HOST, default 127.0.0.1)",
    )
    serve_cmd.add_argument(
        "--port",
        type=_whole_number(0, "CASEROUTE_PORT"),
        default=env("CASEROUTE_PORT", "50051"),  # a string: argparse converts it, cleanly
        help="port; 0 picks one ($CASEROUTE_PORT, default 50051)",
    )
    serve_cmd.add_argument(
        "--workers",
        type=_whole_number(0, "CASEROUTE_WORKERS"),
        default=env("CASEROUTE_WORKERS", "0"),
        help="worker processes; 0 = one per CPU the container's cgroup quota allows, at most "
        "one per usable core ($CASEROUTE_WORKERS)",
    )
    serve_cmd.add_argument("--threads", type=int, default=16, help="request threads per worker")
    serve_cmd.add_argument(
        "--max-message-mb",
        type=int,
        default=64,
        help="largest request/response in MiB (default 64)",
    )
    serve_cmd.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds in-flight calls get after SIGTERM (default 10)",
    )
    serve_cmd.add_argument("--engine", choices=ENGINES, default=default_engine())
    serve_cmd.add_argument("--default-ruleset", help="ruleset for requests that name none")
    serve_cmd.add_argument(
        "--roster-cache-agents",
        type=_whole_number(0, "CASEROUTE_ROSTER_CACHE_AGENTS"),
        default=env("CASEROUTE_ROSTER_CACHE_AGENTS", "100000"),
        help="agents kept in each worker's parsed-roster cache; 0 turns it off "
        "($CASEROUTE_ROSTER_CACHE_AGENTS, default 100000)",
    )
    serve_cmd.add_argument(
        "--roster-cache-mb",
        type=_whole_number(0, "CASEROUTE_ROSTER_CACHE_MB"),
        default=env("CASEROUTE_ROSTER_CACHE_MB", "256"),
        help="estimated MiB of parsed rosters each worker keeps (least recently used go "
        "first); 0 turns the cache off ($CASEROUTE_ROSTER_CACHE_MB, default 256)",
    )
    _add_limits(serve_cmd)
    add_audit_db(serve_cmd)
    serve_cmd.add_argument(
        "--audit-key-file",
        type=Path,
        default=_env_path("CASEROUTE_AUDIT_KEY_FILE"),
        help="HMAC masking key file, hex; created (mode 0600) if missing "
        "($CASEROUTE_AUDIT_KEY_FILE, default <audit-db>.key; $CASEROUTE_AUDIT_KEY overrides)",
    )
    add_masked_fields(serve_cmd)
    tls = serve_cmd.add_argument_group("TLS (default: plaintext, for a trusted network only)")
    tls.add_argument(
        "--tls-cert", type=Path, default=_env_path("CASEROUTE_TLS_CERT"), help="PEM certificate"
    )
    tls.add_argument(
        "--tls-key", type=Path, default=_env_path("CASEROUTE_TLS_KEY"), help="PEM private key"
    )
    tls.add_argument(
        "--tls-client-ca",
        type=Path,
        default=_env_path("CASEROUTE_TLS_CLIENT_CA"),
        help="require client certificates signed by this CA (mutual TLS); the client's "
        "identity is recorded as the caller of each decision",
    )
    serve_cmd.add_argument(
        "--metrics-port",
        type=_metrics_port,
        default=env("CASEROUTE_METRICS_PORT"),
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics, HOST being --host; 0 picks "
        "a free port (printed at start); off when not given ($CASEROUTE_METRICS_PORT)",
    )
    _add_access(serve_cmd)
    _add_logs(serve_cmd)
    serve_cmd.set_defaults(run=_cmd_serve)

    health_cmd = sub.add_parser("health", help="check a server's gRPC health (exit 0: SERVING)")
    health_cmd.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT")
    health_cmd.add_argument("--service", default="", help="service name (default: overall)")
    health_cmd.add_argument("--timeout", type=float, default=5.0)
    add_client_tls(health_cmd)
    health_cmd.set_defaults(run=_cmd_health)
