"""Options and inputs several commands share: JSON files, instants, TLS, audit settings."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caseroute.cli.output import UsageError
from caseroute.cli.settings import add_settings, replaced_values, setting_origin
from caseroute.domain.codec import parse_timestamp
from caseroute.domain.errors import FieldViolation
from caseroute.domain.field_reader import beyond_utc
from caseroute.domain.json_source import parse_json_bytes
from caseroute.domain.reader import INSTANT_OUT_OF_RANGE, INSTANT_SHAPE
from caseroute.domain.safeguarding_notice import json_refusal_notices, unreadable_json_notices

if TYPE_CHECKING:
    from caseroute.grpc_api.tls import ClientTls


def read_json(
    path: Path,
    what: str,
    *,
    members_under_root: bool = True,
    safeguarding_flags: frozenset[str] | Callable[[Any], frozenset[str]] = frozenset(),
) -> Any:
    """The JSON document in ``path`` (``what`` names it in errors: case, roster, request).

    ``members_under_root=False`` for a whole request: its members are named as gRPC names
    them (``case.flags``), as every other problem of the file is.

    ``safeguarding_flags`` (or a function of the refused document giving them, when which
    ruleset applies is read from the document) are the flags besides ``safeguarding`` that
    give a refused case or request file's cases the safeguarding notice.
    """
    # Strict: a duplicate key (which would silently drop e.g. a safeguarding flag), NaN or
    # Infinity, bad UTF-8 or bad syntax is a RequestError naming the path and the file. A
    # case refused for it still gets its safeguarding notice first, read from every copy.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None

    def notices(document: Any) -> list[FieldViolation]:
        flags = safeguarding_flags(document) if callable(safeguarding_flags) else safeguarding_flags
        return json_refusal_notices(
            document, request=not members_under_root, safeguarding_flags=flags
        )

    def unreadable(text: str) -> list[FieldViolation]:
        flags = safeguarding_flags(None) if callable(safeguarding_flags) else safeguarding_flags
        return unreadable_json_notices(text, root=what, safeguarding_flags=flags)

    return parse_json_bytes(
        data,
        root=what,
        source=str(path),
        members_under_root=members_under_root,
        refusal_notices=None if what == "roster" else notices,
        unreadable_notices=None if what == "roster" else unreadable,
    )


MAX_TIMEOUT_S = 3600.0
"""Longest ``--timeout`` of any command calling a server, in seconds."""


def timeout_seconds(text: str) -> float:
    """An argparse type for ``--timeout``: seconds above 0, at most ``MAX_TIMEOUT_S``.

    Checked here for every command: gRPC and the client refuse a deadline that is not positive
    (the client with a ValueError), and nan or inf would never time out.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:  # also false for nan
        raise argparse.ArgumentTypeError(
            f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, "
            f"got {text!r}"
        )
    return value


def server_targets(text: str) -> str:
    """An argparse type for ``--server``: HOST:PORT, or replicas' IP:PORT separated by commas.

    A list is checked here so that a bad one is a usage error naming the address, not a
    traceback from the client; one address is passed on unchanged (any gRPC target).
    """
    if "," in text:
        from caseroute.client.channel import replica_target

        try:
            replica_target(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"--server: {exc}") from None
    return text


def bearer_token(args: argparse.Namespace, whose: str = "caller") -> str | None:
    """The bearer token from ``--token-file`` / ``$CASEROUTE_TOKEN_FILE`` (None: none).

    Args:
        args: Parsed arguments with ``token_file``.
        whose: Which token it is (``caller`` for RoutingService, ``admin`` for RulesetAdmin),
            for messages.
    """
    from caseroute.cli.rules_admin import read_token
    from caseroute.cli.settings import setting_origin

    if args.token_file is None:
        return None
    return read_token(args.token_file, setting_origin(args, "token_file"), whose)


def parse_instant(text: str | None, flag: str) -> datetime | None:
    """``text`` as an instant with offset (None when not given); a bad one names ``flag``."""
    if text is None:
        return None
    value = parse_timestamp(text)
    if value is None:
        if beyond_utc(text):  # well-formed: say its range, not its shape
            raise UsageError(f"{flag} {text!r} {INSTANT_OUT_OF_RANGE}")
        raise UsageError(f"{flag} {text!r} is not {INSTANT_SHAPE}; e.g. 2026-11-21T10:00:00Z")
    return value


def masked_fields(args: argparse.Namespace) -> tuple[str, ...]:
    """``--audit-masked-fields`` as checked paths.

    A command that serves (it has ``--max-id-chars``) also refuses an attribute name longer
    than the server lets a caller send: such a path would mask nothing.

    Raises:
        UsageError: Naming the flag, variable or ``file:line`` that gave a bad path.
    """
    from caseroute.audit.config import check_masked_fields
    from caseroute.domain.errors import ConfigError

    limit: int | None = getattr(args, "max_id_chars", None)
    try:
        if limit is None:
            return check_masked_fields(tuple(args.audit_masked_fields))
        return check_masked_fields(
            tuple(args.audit_masked_fields),
            max_name_chars=limit,
            limit_origin=setting_origin(args, "max_id_chars"),
        )
    except ConfigError as exc:
        raise UsageError(f"{setting_origin(args, 'audit_masked_fields')}: {exc}") from None


def replaced_masked_fields(args: argparse.Namespace) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The masked field lists a variable or the file gave that a flag or variable replaced.

    Each as ``(origin, checked paths)``; a list that would be refused is left out (it masks
    nothing in force either way, and is not the list the operator is told about).
    """
    from caseroute.audit.config import check_masked_fields
    from caseroute.domain.errors import ConfigError

    found = []
    for origin, value in replaced_values(args, "audit_masked_fields"):
        try:
            found.append((origin, check_masked_fields(tuple(value))))
        except ConfigError:
            continue
    return tuple(found)


def client_tls(args: argparse.Namespace) -> ClientTls | None:
    """The client TLS settings given by ``add_client_tls``'s flags (None: plaintext)."""
    from caseroute.grpc_api.tls import ClientTls

    if args.tls_ca is None:
        if args.tls_cert is not None or args.tls_key is not None:
            raise UsageError("--tls-cert/--tls-key need --tls-ca (the server's CA)")
        return None
    return ClientTls(args.tls_ca, args.tls_cert, args.tls_key)


def add_client_tls(group: argparse._ActionsContainer) -> None:
    """Add the client TLS flags (``--tls-ca``, ``--tls-cert``, ``--tls-key``)."""
    group.add_argument("--tls-ca", type=Path, help="PEM CA of the server's certificate (TLS)")
    group.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    group.add_argument("--tls-key", type=Path, help="PEM client private key (mutual TLS)")


def add_audit_db(cmd: argparse.ArgumentParser) -> None:
    """Add ``--audit-db``, the decision log file (``[audit] db``, ``$CASEROUTE_AUDIT_DB``)."""
    add_settings(cmd, ["audit_db"])


def add_masked_fields(cmd: argparse.ArgumentParser) -> None:
    """Add ``--audit-masked-fields``, the case fields stored only as keyed digests."""
    add_settings(cmd, ["audit_masked_fields"])


def parse_window(
    since_text: str | None, until_text: str | None, reads: str
) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as instants; a window that holds no instant is a usage error.

    Args:
        since_text: ``--since`` as given (None: unbounded).
        until_text: ``--until`` as given (None: unbounded).
        reads: What the window selects, for the message (``decisions with since <= now <
            until``).

    Raises:
        UsageError: If either is no instant, or ``--since`` is not before ``--until``.
    """
    since = parse_instant(since_text, "--since")
    until = parse_instant(until_text, "--until")
    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since {since_text} is not before --until {until_text}; {reads}")
    return since, until
