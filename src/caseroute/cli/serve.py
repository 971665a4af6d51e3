"""``caseroute serve`` and ``caseroute health``: run the gRPC server, and check one."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from caseroute.cli.options import (
    add_client_tls,
    client_tls,
    masked_fields,
    replaced_masked_fields,
    timeout_seconds,
)
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, UsageError, out
from caseroute.cli.settings import SERVE_SETTINGS, SETTINGS, add_settings, setting_origin

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
    from caseroute.grpc_api.processes import serve

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
        max_response_mb=args.max_response_mb,
        grace_s=args.grace,
        max_now_skew_s=args.max_now_skew,
        engine=EngineKind(args.engine),
        default_ruleset=args.default_ruleset,
        roster_cache_agents=args.roster_cache_agents,
        roster_cache_mb=args.roster_cache_mb,
        gc_threshold=args.gc_threshold,
        limits=_input_limits(args),
        audit=_audit_config(args),
        tls=tls,
        auth=_auth_config(args, mutual_tls=tls is not None and tls.client_ca is not None),
        reload_interval_s=args.reload_interval,
        metrics_port=_checked_metrics_port(args),
        log_format=args.log_format,
        log_level=args.log_level,
    )


def _checked_metrics_port(args: argparse.Namespace) -> int | None:
    """``--metrics-port``, refused when it is the gRPC port itself."""
    port: int | None = args.metrics_port
    if port is not None and port != 0 and port == args.port:
        metrics, grpc_port = setting_origin(args, "metrics_port"), setting_origin(args, "port")
        if (metrics, grpc_port) == ("--metrics-port", "--port"):
            metrics, grpc_port = f"--metrics-port {port}", "--port"
        raise UsageError(
            f"{metrics} is also {grpc_port} (gRPC); give metrics a port of their own"
            + ("" if metrics.startswith("--") else f" (both are {port})")
        )
    return port


def _auth_config(args: argparse.Namespace, *, mutual_tls: bool) -> AuthConfig:
    """Who may call which service (``--admin-token-file`` and friends).

    Raises:
        UsageError: If an allow-list is given without mutual TLS (no certificate to check).
    """
    from caseroute.grpc_api.auth import AuthConfig

    for dest in ("admin_allow", "audit_allow", "caller_allow"):
        if getattr(args, dest) and not mutual_tls:
            raise UsageError(
                f"{setting_origin(args, dest)} names client-certificate identities, which only "
                "mutual TLS "
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


def _input_limits(args: argparse.Namespace) -> InputLimits:
    from caseroute.domain.limits import InputLimits

    # Each limit was checked (a whole number >= 1) when the settings were resolved.
    return InputLimits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(InputLimits)})


def _server_tls(args: argparse.Namespace) -> ServerTls | None:
    from caseroute.grpc_api.tls import ServerTls

    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise UsageError(
                f"{setting_origin(args, 'tls_client_ca')} needs --tls-cert and --tls-key "
                "(TLS itself)"
            )
        return None
    if args.tls_cert is None or args.tls_key is None:
        given = setting_origin(args, "tls_cert" if args.tls_key is None else "tls_key")
        note = "" if given.startswith("--") else f" (only {given} is set)"
        raise UsageError(f"--tls-cert and --tls-key go together: give both or neither{note}")
    return ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca)


def _audit_config(args: argparse.Namespace) -> AuditConfig:
    from caseroute.audit.config import AuditConfig

    return AuditConfig.at(
        args.audit_db,  # a path, or PostgreSQL (a postgresql:// URL or keyword=value pairs)
        key_file=args.audit_key_file,
        key_hex=args.audit_key,
        masked_fields=masked_fields(args),
        masked_fields_origin=setting_origin(args, "audit_masked_fields"),
        replaced_masks=replaced_masked_fields(args),
        pg_liveness_s=args.audit_pg_liveness,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``health``."""
    serve_cmd = sub.add_parser(
        "serve",
        help="run the gRPC server",
        description="Run the gRPC server. Every setting is a flag, a CASEROUTE_* variable and "
        "a key of the --config TOML file; flags beat variables, which beat the file, which "
        'beats the defaults (docs/operations.md, "Configuration"; `caseroute config show` '
        "prints the effective settings and where each came from).",
    )
    add_serve_settings(serve_cmd)
    serve_cmd.set_defaults(run=_cmd_serve)

    health_cmd = sub.add_parser("health", help="check a server's gRPC health (exit 0: SERVING)")
    health_cmd.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT")
    health_cmd.add_argument("--service", default="", help="service name (default: overall)")
    health_cmd.add_argument(
        "--timeout", type=timeout_seconds, default=5.0, help="deadline in seconds (default 5)"
    )
    add_client_tls(health_cmd)
    health_cmd.set_defaults(run=_cmd_health)


def add_serve_settings(cmd: argparse.ArgumentParser) -> None:
    """Add every setting ``serve`` reads, grouped for ``--help`` (``config show`` too)."""
    tables = {s.dest: s.table for s in SETTINGS}
    groups = {
        "limits": cmd.add_argument_group(
            "request size limits (over a limit: INVALID_ARGUMENT naming the field and the limit)"
        ),
        "tls": cmd.add_argument_group("TLS (default: plaintext, for a trusted network only)"),
        "access": cmd.add_argument_group(
            "access (token files: one `<identity> <token>` per line, mode 0600; RulesetAdmin "
            "is refused to everyone until one of its two flags is given, DecisionLog and "
            "RoutingService are open unless theirs are)"
        ),
    }
    for dest in SERVE_SETTINGS:
        add_settings(cmd, [dest], groups.get(tables[dest]))
