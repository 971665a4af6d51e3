"""``caseroute rules list|get|validate|activate|rollback|reload --server``: the admin API's CLI.

Each command calls a running server's ``RulesetAdmin`` service with a bearer token
(``--token-file``, ``$CASEROUTE_TOKEN_FILE``) and/or a client certificate (``--tls-cert``,
mutual TLS). Exit codes: 0 done; 1 the server refused or failed the call, the source has errors
(validate), or a reload left a source unloaded; 2 bad usage.
"""

from __future__ import annotations

import argparse
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caseroute.cli.options import add_client_tls, bearer_token, client_tls, timeout_seconds
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, UsageError, out, print_json
from caseroute.cli.rules import RulesCommands
from caseroute.cli.settings import add_settings

if TYPE_CHECKING:
    from caseroute.grpc_api.client import AdminClient
    from caseroute.v1 import admin_pb2 as apb

MAX_TOKEN_FILE_BYTES = 4096
"""Largest ``--token-file`` read (it holds one token)."""


def read_token(path: Path, origin: str = "--token-file", whose: str = "admin") -> str:
    """The token in ``path`` (surrounding whitespace dropped).

    Args:
        path: The token file.
        origin: Where the path came from, for messages (``--token-file``,
            ``$CASEROUTE_TOKEN_FILE``, ``[client] token_file (file:line)``).
        whose: Which of the server's token lists it belongs to (``admin``, ``caller``).

    Raises:
        UsageError: If the file cannot be read, is empty, holds more than one word, or is
            accessible to other users.
    """
    from caseroute.audit.config import refuse_shared_secret
    from caseroute.domain.errors import ConfigError

    try:
        mode = path.stat().st_mode
        with path.open("rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        other = "set $CASEROUTE_TOKEN_FILE" if origin == "--token-file" else "pass --token-file"
        raise UsageError(
            f"{origin}: cannot read {path}: {exc.strerror or exc}; point it at the file holding "
            f"your {whose} token (or {other})"
        ) from None
    try:
        refuse_shared_secret(path, mode, f"{origin}: the token file")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    words = raw.decode(errors="replace").split()
    if len(raw) > MAX_TOKEN_FILE_BYTES or len(words) != 1:
        # Never quote the content: it is a secret.
        raise UsageError(
            f"{origin}: {path} must hold just the token (one word, no identity); "
            f"write only your {whose} token into it"
        )
    return words[0]


def _client(args: argparse.Namespace) -> AdminClient:
    from caseroute.grpc_api.client import AdminClient

    token = bearer_token(args, "admin")
    return AdminClient(args.server, tls=client_tls(args), token=token, timeout_s=args.timeout)


def _instant(ts: Any, present: bool) -> str:
    if not present:
        return ""
    return str(ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z"))


def _status_data(status: apb.RulesetStatus) -> dict[str, object]:
    return {
        "name": status.name,
        "active_version": status.active_version or None,
        "shadow_version": status.shadow_version or None,
        "previous_versions": list(status.previous_versions),
        "retired_versions": list(status.retired_versions),
        "versions": [
            {"version": v.version, "sha256": v.sha256, "path": v.path} for v in status.versions
        ],
        "last_reload": _instant(status.last_reload, status.HasField("last_reload")) or None,
        "last_error": status.last_error or None,
    }


def _outcome_data(outcome: apb.LifecycleOutcome) -> dict[str, object]:
    return {
        "action": outcome.action,
        "actor": outcome.actor,
        "at": _instant(outcome.at, outcome.HasField("at")) or None,
        "changes": [
            {
                "ruleset_name": c.ruleset_name,
                "role": c.role,
                "from_version": c.from_version or None,
                "from_sha256": c.from_sha256 or None,
                "to_version": c.to_version or None,
                "to_sha256": c.to_sha256 or None,
            }
            for c in outcome.changes
        ],
        "errors": list(outcome.errors),
    }


def _version_text(version: str, sha256: str) -> str:
    return f"{version} (sha256 {sha256[:12]})" if version else "(none)"


def _show_outcome(args: argparse.Namespace, outcome: apb.LifecycleOutcome) -> int:
    """Print what an activation, rollback or reload did; 1 when a source did not load."""
    if args.format == "json":
        print_json(_outcome_data(outcome))
    else:
        at = _instant(outcome.at, outcome.HasField("at"))
        out(f"{outcome.action} by {outcome.actor} at {at}")
        for c in outcome.changes:
            out(
                f"  {c.ruleset_name} {c.role}: {_version_text(c.from_version, c.from_sha256)} "
                f"-> {_version_text(c.to_version, c.to_sha256)}"
            )
        if not outcome.changes:
            out("  no active or shadow version changed")
        for error in outcome.errors:
            out(f"  not loaded: {error}")
        if outcome.errors:
            out(
                "  (the last good version of each keeps serving; `caseroute rules list` shows "
                "the errors with file:line)"
            )
    return EXIT_FAILED if outcome.errors else EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    reply = _client(args).list_rulesets()
    if args.format == "json":
        print_json({"rulesets": [_status_data(s) for s in reply.rulesets]})
        return EXIT_OK
    if not reply.rulesets:
        out(f"{args.server}: no rulesets")
    for s in reply.rulesets:
        shadow = f", shadow {s.shadow_version}" if s.shadow_version else ""
        out(f"{s.name}: active {s.active_version or '(none)'}{shadow}")
        for v in s.versions:
            marks = [
                m
                for m, on in (
                    ("active", v.version == s.active_version),
                    ("shadow", v.version == s.shadow_version),
                )
                if on
            ]
            mark = f"  [{', '.join(marks)}]" if marks else ""
            out(f"  {v.version}  sha256 {v.sha256[:12]}  {v.path}{mark}")
        if s.previous_versions:
            out(f"  previously active: {', '.join(s.previous_versions)}")
        if s.retired_versions:
            out(f"  retired (a rollback never returns to them): {', '.join(s.retired_versions)}")
        if s.HasField("last_reload"):
            out(f"  last reload: {_instant(s.last_reload, present=True)}")
        # One problem per line, as `rules check` prints them (R34b F4: a literal \n between).
        for n, line in enumerate(s.last_error.splitlines()):
            out(f"  {'last error:' if n == 0 else '           '} {line}")
    return EXIT_OK


def _cmd_get(args: argparse.Namespace) -> int:
    reply = _client(args).get_ruleset(args.name, args.version or "")
    if args.format == "json":
        print_json(
            {
                "name": reply.name,
                "version": reply.version,
                "sha256": reply.sha256,
                "text": reply.text,
            }
        )
    else:
        for line in reply.text.splitlines():
            out(line)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from caseroute.rules.compiler import MAX_RULESET_BYTES

    path: Path = args.path
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_RULESET_BYTES else None
    except OSError as exc:
        raise UsageError(f"cannot read ruleset file {path}: {exc.strerror or exc}") from None
    if raw is None:
        raise UsageError(
            f"{path} is over {MAX_RULESET_BYTES} bytes, the largest ruleset file the server "
            "reads; split the ruleset or shorten it"
        )
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    reply = _client(args).validate(text, path.name)
    severities = {1: "error", 2: "warning"}

    def shown(file: str) -> str:
        # The server saw only the file's name: its file:line points at the caller's path.
        return str(path) if file == path.name else file

    if args.format == "json":
        print_json(
            {
                "file": str(path),
                "valid": reply.valid,
                "problems": [
                    {
                        "code": d.code,
                        "severity": severities.get(d.severity, "error"),
                        "file": shown(d.file),
                        "line": d.line,
                        "column": d.column,
                        "rule_id": d.rule_id or None,
                        "message": d.message,
                    }
                    for d in reply.diagnostics
                ],
            }
        )
    else:
        for d in reply.diagnostics:
            where = (
                shown(d.file)
                + (f":{d.line}" if d.line else "")
                + (f":{d.column}" if d.column else "")
            )
            rule = f" [rule {d.rule_id}]" if d.rule_id else ""
            out(f"{where}: {severities.get(d.severity, 'error')} {d.code}{rule}: {d.message}")
        out(f"{path}: {'ok' if reply.valid else 'has errors'} (checked by {args.server})")
    return EXIT_OK if reply.valid else EXIT_FAILED


def _cmd_activate(args: argparse.Namespace) -> int:
    return _show_outcome(args, _client(args).activate(args.name, args.version))


def _cmd_rollback(args: argparse.Namespace) -> int:
    return _show_outcome(args, _client(args).rollback(args.name))


def _cmd_reload(args: argparse.Namespace) -> int:
    return _show_outcome(args, _client(args).reload())


def _add_remote(cmd: argparse.ArgumentParser) -> None:
    """The server, credentials, deadline and output format every admin command takes."""
    cmd.add_argument(
        "--server",
        required=True,
        metavar="HOST:PORT",
        help="the caseroute server whose RulesetAdmin service to call",
    )
    add_settings(cmd, ["token_file"])  # your admin bearer token ($CASEROUTE_TOKEN_FILE)
    cmd.add_argument("--timeout", type=timeout_seconds, default=60.0, help="deadline in seconds")
    cmd.add_argument("--format", choices=["text", "json"], default="text")
    add_client_tls(cmd)


def register(rules_sub: RulesCommands) -> None:
    """Add ``list``, ``get``, ``validate``, ``activate``, ``rollback`` and ``reload``."""
    list_cmd = rules_sub.add_parser(
        "list", help="list a server's rulesets: versions, sha256s, active/shadow, last reload"
    )
    _add_remote(list_cmd)
    list_cmd.set_defaults(run=_cmd_list)

    get = rules_sub.add_parser("get", help="print the source of a version a server holds")
    get.add_argument("name", metavar="NAME")
    get.add_argument("version", metavar="VERSION", nargs="?", help="default: the active one")
    _add_remote(get)
    get.set_defaults(run=_cmd_get)

    validate = rules_sub.add_parser(
        "validate", help="check a ruleset file on a server (its engine); nothing is activated"
    )
    validate.add_argument("path", type=Path, metavar="PATH")
    _add_remote(validate)
    validate.set_defaults(run=_cmd_validate)

    activate = rules_sub.add_parser(
        "activate", help="make a loaded version the active one on a server (recorded)"
    )
    activate.add_argument("name", metavar="NAME")
    activate.add_argument("version", metavar="VERSION")
    _add_remote(activate)
    activate.set_defaults(run=_cmd_activate)

    rollback = rules_sub.add_parser(
        "rollback", help="make the previously active version active again on a server"
    )
    rollback.add_argument("name", metavar="NAME")
    _add_remote(rollback)
    rollback.set_defaults(run=_cmd_rollback)

    reload = rules_sub.add_parser("reload", help="make a server re-read its rulesets directory now")
    _add_remote(reload)
    reload.set_defaults(run=_cmd_reload)
