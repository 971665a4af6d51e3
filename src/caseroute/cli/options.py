"""Options and inputs several commands share: env defaults, JSON files, instants, TLS, audit."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caseroute.cli.output import UsageError
from caseroute.domain.codec import parse_timestamp
from caseroute.domain.json_source import parse_json_bytes

if TYPE_CHECKING:
    from caseroute.grpc_api.tls import ClientTls


ENGINES = ["durable", "python"]


def default_engine() -> str:
    """The engine of record: ``$CASEROUTE_ENGINE`` or durable; any other value stops the command."""
    engine = os.environ.get("CASEROUTE_ENGINE", "durable")
    if engine not in ("durable", "python"):
        raise SystemExit(f"caseroute: CASEROUTE_ENGINE={engine!r}; use durable or python")
    return engine


def read_json(path: Path, what: str) -> Any:
    """The JSON document in ``path`` (``what`` names it in errors: case, roster)."""
    # Strict: a duplicate key (which would silently drop e.g. a safeguarding flag), NaN or
    # Infinity, bad UTF-8 or bad syntax is a RequestError naming the path and the file.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    return parse_json_bytes(data, root=what, source=str(path))


def parse_instant(text: str | None, flag: str) -> datetime | None:
    """``text`` as an instant with offset (None when not given); a bad one names ``flag``."""
    if text is None:
        return None
    value = parse_timestamp(text)
    if value is None:
        raise UsageError(
            f"{flag} {text!r} is not an ISO-8601 instant with offset; e.g. 2026-11-21T10:00:00Z"
        )
    return value


def masked_fields(args: argparse.Namespace) -> tuple[str, ...]:
    """``--audit-masked-fields`` as paths (comma-separated; blanks ignored)."""
    return tuple(p.strip() for p in args.audit_masked_fields.split(",") if p.strip())


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
    """Add ``--audit-db``, the decision log file."""
    from caseroute.audit.config import DEFAULT_AUDIT_DB

    cmd.add_argument(
        "--audit-db",
        type=Path,
        default=Path(os.environ.get("CASEROUTE_AUDIT_DB", str(DEFAULT_AUDIT_DB))),
        help=f"decision log SQLite file ($CASEROUTE_AUDIT_DB, default {DEFAULT_AUDIT_DB})",
    )


def add_masked_fields(cmd: argparse.ArgumentParser) -> None:
    """Add ``--audit-masked-fields``, the case fields stored only as keyed digests."""
    from caseroute.audit.masking import DEFAULT_MASKED_PATHS

    cmd.add_argument(
        "--audit-masked-fields",
        default=os.environ.get("CASEROUTE_AUDIT_MASKED_FIELDS", ",".join(DEFAULT_MASKED_PATHS)),
        metavar="PATH,...",
        help="case fields the decision log stores only as keyed digests "
        "($CASEROUTE_AUDIT_MASKED_FIELDS; default: patient names, identifiers, contact "
        "details and free text, see docs/audit.md)",
    )
