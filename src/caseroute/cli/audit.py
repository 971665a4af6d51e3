"""``caseroute audit``: show, export, verify and list the events of the log; rotate its key."""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from caseroute.cli.log_lines import add_log_settings, with_log_lines
from caseroute.cli.options import (
    add_audit_db,
    parse_instant,
)
from caseroute.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREADABLE,
    UsageError,
    out,
    print_json,
    unreadable_exits_3,
)
from caseroute.cli.settings import add_settings
from caseroute.domain.errors import (
    AuditUnavailableError,
    ConfigError,
    RecordDamagedError,
)
from caseroute.domain.limits import quote_clipped
from caseroute.render import escape_lines, escape_text, safe_json

if TYPE_CHECKING:
    from caseroute.audit.postgres import PostgresAuditSink
    from caseroute.audit.store import SqliteAuditStore


def open_any_log(args: argparse.Namespace) -> SqliteAuditStore | PostgresAuditSink:
    """``open_log``, or a PostgreSQL log read-only when ``--audit-db`` is a postgresql:// URL."""
    from caseroute.audit.config import open_postgres
    from caseroute.audit.location import PostgresLocation

    if isinstance(args.audit_db, PostgresLocation):
        return open_postgres(args.audit_db, readonly=True, liveness_s=args.audit_pg_liveness)
    return open_log(args)


@contextmanager
def _ctrl_c_cuts_postgres() -> Iterator[None]:
    """While a command runs: Ctrl-C cuts the PostgreSQL statement it waits on, at once.

    Left to psycopg, a Ctrl-C during a statement sent a cancel through the postmaster and
    waited for the statement to end, 5 s each: on a frozen server the command exited 10 s
    later, printing psycopg's warnings. The handler shuts the statement's connection down
    instead (``pg_watchdog.interrupt_uses``), and the statement raises KeyboardInterrupt; when
    the command waits on no statement, it raises KeyboardInterrupt itself, as Python's would.
    Installed only where Ctrl-C raises (the main thread, SIGINT not ignored).
    """
    from caseroute.audit.pg_watchdog import interrupt_uses

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def cut(_signum: int, _frame: object) -> None:
        if not interrupt_uses():
            raise KeyboardInterrupt
        # The command is ending: the pool's warning that it discards the connection just cut
        # says nothing the Ctrl-C line does not (and would be the only other line).
        logging.getLogger("psycopg.pool").disabled = True

    signal.signal(signal.SIGINT, cut)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _interruptible(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run``, Ctrl-C cutting a PostgreSQL statement it waits on (``_ctrl_c_cuts_postgres``)."""

    def interruptible(args: argparse.Namespace) -> int:
        with _ctrl_c_cuts_postgres():
            return run(args)

    return interruptible


POSTGRES_READERS = "against PostgreSQL use `caseroute audit verify|show|export|events`"
"""What to do instead when a SQLite-only command is given a PostgreSQL log."""


def open_log(args: argparse.Namespace, instead: str = POSTGRES_READERS) -> SqliteAuditStore:
    """The decision log named by ``--audit-db``, opened read-only (a usage error if missing).

    Args:
        args: The command's arguments.
        instead: What to do instead with a PostgreSQL log (the refusal's last words).
    """
    from caseroute.audit.config import exposed_files, exposure_message
    from caseroute.audit.location import PostgresLocation
    from caseroute.audit.store import SqliteAuditStore

    if isinstance(args.audit_db, PostgresLocation):
        raise UsageError(
            f"this command reads a SQLite decision log, not {args.audit_db}; {instead}"
        )
    if not args.audit_db.is_file():
        raise UsageError(
            f"no decision log at {args.audit_db}; pass --audit-db (or $CASEROUTE_AUDIT_DB) "
            "pointing at the server's log"
        )
    exposed = exposed_files(args.audit_db)
    if exposed:  # read-only auditors may share a group; say it loudly, the server refuses
        sys.stderr.write(f"caseroute: WARNING: {escape_text(exposure_message(exposed))}\n")
    return SqliteAuditStore(args.audit_db, readonly=True)


LISTED_NAMES = 20
"""Ruleset names a message about an unknown one lists at most."""


def refuse_unknown_ruleset(
    store: SqliteAuditStore | PostgresAuditSink, name: str, args: argparse.Namespace, fix: str
) -> None:
    """A usage error when no record of a log that holds some names ruleset ``name``.

    A misspelt name read as an empty period or shadow was told to widen the period or set a
    shadow version (review R36 F11). A log holding no ruleset at all passes: the command's
    own message for an empty log says to check ``--audit-db``.

    Args:
        store: The decision log.
        name: The ruleset name given.
        args: The command's arguments (``--audit-db`` is named).
        fix: What to do, e.g. ``pass one of them to --ruleset``.

    Raises:
        UsageError: Naming the ruleset, the names the log holds (the closest as "did you
            mean"), and ``fix``.
    """
    if store.holds_ruleset(name):
        return
    names = store.ruleset_names()
    if not names:
        return
    close = difflib.get_close_matches(name, names, n=1)
    guess = f" (did you mean {quote_clipped(close[0])}?)" if close else ""
    listed = ", ".join(quote_clipped(n) for n in names[:LISTED_NAMES])
    more = f" and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else ""
    raise UsageError(
        f"no decision, ruleset event or shadow result in the decision log {args.audit_db} "
        f"names ruleset {quote_clipped(name)}{guess}; it holds ruleset(s) {listed}{more}: "
        f"{fix}"
    )


def _cmd_audit_show(args: argparse.Namespace) -> int:
    from caseroute.audit.show import render_record
    from caseroute.audit.store import era_of
    from caseroute.service import DecisionLog
    from caseroute.wire.json_dialect import record_to_json

    store = open_any_log(args)
    try:
        # Every value from the text the chain hash covers, in both forms: a column beside it
        # is a copy an edit can change alone (review R36 F2: an edited case_id was printed).
        audited, problem = DecisionLog(store).get_as_hashed(args.decision_id)
        if args.json:
            # The caseroute.v1.AuditedDecision JSON, as export writes it and GetDecision returns.
            text = safe_json(record_to_json(audited.record, store.get_blob), indent=2)
        else:
            era = era_of(audited.record.seq, store.key_history())
            text = render_record(audited.record, audited.decision, store.get_blob, era)
    finally:
        store.close()
    sys.stdout.write(text + "\n")
    if problem is None:
        return EXIT_OK
    sys.stderr.write(
        "caseroute: WARNING: "
        + escape_text(
            f"{problem} (decision {str(audited.record.decision_id)[:80]}); the values shown "
            "are read from its hashed text, never from the columns beside it, but the log was "
            "edited, so do not rely on this record: run `caseroute audit verify` on the log "
            "and restore it from a copy you trust"
        )
        + "\n"
    )
    return EXIT_FAILED


def _cmd_audit_export(args: argparse.Namespace) -> int:
    # One caseroute.v1.AuditedDecision per line, in the JSON dialect (docs/json.md): what
    # GetDecision returns, so a line parses with json_format as the published message.
    from caseroute.audit.stream_check import record_as_hashed
    from caseroute.wire.json_dialect import record_to_json

    store = open_any_log(args)
    since = parse_instant(args.since, "--since")
    until = parse_instant(args.until, "--until")
    count = 0
    undecided, edited = 0, 0
    first, first_edited = "", ""
    try:
        for stored in store.records(case_id=args.case_id, since=since, until=until):
            # Every value from the text the chain hash covers, as `audit show` reads it: a
            # column beside it is a copy an edit can change alone.
            record, problem = record_as_hashed(stored)
            line = record_to_json(record, store.get_blob)
            sys.stdout.write(safe_json(line, sort_keys=True) + "\n")
            count += 1
            where = f"record {record.seq}, decision {str(record.decision_id)[:80]!r}"
            if problem is not None:
                edited += 1
                first_edited = first_edited or (
                    f"{problem} (decision {str(record.decision_id)[:80]!r})"
                )
            # record_to_json leaves out a decision it cannot rebuild; the line still goes out
            # (its chain fields and input), but an export that lost decisions is no clean one
            # (review R34c F3: "exported N decision(s)", exit 0, and replay then crashed).
            if "decision" not in line:
                undecided += 1
                first = first or where
    finally:
        store.close()
    sys.stderr.write(f"exported {count} decision(s)\n")
    warnings = []
    if edited:
        warnings.append(
            f"{edited} record(s) exported from a row edited after it was recorded (first: "
            f"{first_edited}); their values are read from the hashed text, never from the "
            "columns beside it, but do not rely on them (nor on which records --case-id, "
            "--since or --until selected): run `caseroute audit verify` on the log and "
            "restore it from a copy you trust"
        )
    if undecided:
        warnings.append(
            f"{undecided} record(s) exported without their decision (first: {first}): the "
            "decision log cannot rebuild them (their stored decision or the ruleset source "
            "they were decided with was edited or lost); run `caseroute audit verify` on the log"
        )
    for warning in warnings:
        sys.stderr.write("caseroute: WARNING: " + escape_text(warning) + "\n")
    return EXIT_FAILED if warnings else EXIT_OK


_KEPT_HEAD = re.compile(r"(?P<seq>0|[1-9][0-9]{0,18}):(?P<hash>[0-9a-f]{64})")


def _kept_head(text: str) -> tuple[int, str]:
    """``--expect-head SEQ:HASH`` as verify printed it; anything else is a usage error."""
    match = _KEPT_HEAD.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a head as `caseroute audit verify` prints it: SEQ:HASH, the "
            "entry's number, a colon and its 64 lower-case hex digits (e.g. 1234:9f86d0...); "
            "pass the whole head you kept"
        )
    return int(match["seq"]), match["hash"]


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    try:
        return _verify(args)
    except AuditUnavailableError as exc:
        sys.stderr.write(
            f"caseroute: {escape_lines(str(exc))}\n"
            "caseroute: audit verify checked nothing (the log could not be read: this is not "
            "a finding of tampering); exit 3\n"
        )
        # Never 1, which says TAMPERED: a monitor raises no tampering alarm for an outage.
        return EXIT_UNREADABLE


def _verify(args: argparse.Namespace) -> int:
    from caseroute.audit.verify import time_index_problem, verify_chain

    try:
        # A PostgreSQL schema table altered (its versions unreadable) is refused as it opens.
        store = open_any_log(args)
    except RecordDamagedError as exc:
        out(f"TAMPERED: {exc}")
        return EXIT_FAILED
    try:
        # One snapshot for every read: replicas (or workers) keep committing while verify
        # reads, and a record committed between the head's read and the chain's is no edit.
        with store.snapshot():
            try:
                head = store.head()
                eras = store.key_history()
                # As stored: a roster kept in parts is checked chunk by chunk, each chunk once.
                kept = args.expect_head
                report = verify_chain(
                    store.records(),
                    head,
                    store.stored_blob,
                    store.iter_events(),
                    eras,
                    kept_seq=kept[0] if kept else None,
                )
            except RecordDamagedError as exc:
                out(f"TAMPERED: {exc}")
                return EXIT_FAILED
            # Not hashed, so checked beside the chain: the index --since/--until reads select on.
            misindexed = time_index_problem(store.time_index()) if report.ok else None
    finally:
        store.close()
    if not report.ok:
        where = f" (decision {report.decision_id})" if report.decision_id else ""
        if report.event_id:
            where = f" (ruleset event {report.event_id})"
        out(f"TAMPERED: {report.problem}{where}; checked {report.records} record(s)")
        return EXIT_FAILED
    if misindexed is not None:
        out(f"TAMPERED: {misindexed[1]}; the chain itself verified ({report.records} record(s))")
        return EXIT_FAILED
    # A head kept earlier passes while the entry at its seq still has its hash: a live log
    # grows past it (review R32b F1). Cut short before it, or that entry rewritten: tampered.
    since_kept = ""
    if args.expect_head is not None:
        kept_seq, kept_hash = args.expect_head
        kept_text = f"{kept_seq}:{kept_hash}"
        if head[0] < kept_seq:
            out(
                f"TAMPERED: the chain verifies internally but ends at {head[0]}:{head[1]}, "
                f"before the {kept_text} recorded earlier (records truncated)"
            )
            return EXIT_FAILED
        if report.hash_at_kept != kept_hash:
            out(
                f"TAMPERED: the chain verifies internally but its entry {kept_seq} is "
                f"{kept_seq}:{report.hash_at_kept}, not the {kept_text} recorded earlier "
                "(records rewritten)"
            )
            return EXIT_FAILED
        since_kept = (
            f"the head kept earlier, {kept_text}, is in the chain: "
            f"{head[0] - kept_seq} entry(ies) appended since\n"
        )
    kinds = [
        f"{n} of them {what}"
        for n, what in ((report.events, "ruleset event(s)"), (report.rotations, "key rotation(s)"))
        if n
    ]
    events = f" ({', '.join(kinds)})" if kinds else ""
    sys.stdout.write(
        f"ok: {report.records} record(s){events}, every link and blob verified; head "
        f"{head[0]}:{head[1]} (keep it elsewhere and pass it as --expect-head next time)\n"
        f"{since_kept}"
    )
    if not eras:
        sys.stdout.write("masking key eras: none recorded (written before key fingerprints)\n")
        return EXIT_OK
    unkeyed = report.records - report.events - report.rotations - report.keyed
    checked = f"checked against the {report.keyed} record(s) that name their key"
    if unkeyed:
        checked += (
            f"; {unkeyed} record(s) written by builds before records named their key "
            "are placed by these eras unchecked"
        )
    sys.stdout.write(f"masking key eras ({checked}):\n")
    for era in eras:
        rotated = f"; rotated from {era.old_fingerprint}" if era.old_fingerprint else ""
        if era.seq is not None:
            rotated += f"; sealed as chain entry {era.seq}"
        sys.stdout.write(
            f"  era {era.era} from record {era.first_seq}: key {era.new_fingerprint} "
            f"(since {era.at}{rotated})\n"
        )
    return EXIT_OK


def _version_text(version: str, sha256: str) -> str:
    """``2025.06.0 (9f86d081884c)``, or ``(none)`` when the role had no version."""
    if not version:
        return "(none)"
    return f"{version} ({sha256[:12]})" if sha256 else version


def _cmd_audit_events(args: argparse.Namespace) -> int:
    store = open_any_log(args)
    try:
        events = list(store.iter_events(args.ruleset))
    finally:
        store.close()
    if args.format == "json":
        print_json({"events": [event.as_dict() for event in events]})
        return EXIT_OK
    if not events:
        which = f" for ruleset {args.ruleset}" if args.ruleset is not None else ""
        out(
            f"no ruleset events recorded{which}: a server records one per load, reload, "
            "activation and rollback"
        )
        return EXIT_OK
    for event in events:
        out(
            f"seq {event.seq} {event.recorded_at} {event.action} by {event.actor}: "
            f"{event.ruleset_name} {event.role} "
            f"{_version_text(event.from_version, event.from_sha256)} -> "
            f"{_version_text(event.to_version, event.to_sha256)}"
        )
    return EXIT_OK


def _cmd_audit_rotate_key(args: argparse.Namespace) -> int:
    from caseroute.audit.config import exposed_files, exposure_message, load_key, open_postgres
    from caseroute.audit.location import PostgresLocation
    from caseroute.audit.masking import key_fingerprint
    from caseroute.audit.store import SqliteAuditStore
    from caseroute.domain.fingerprint import format_timestamp

    db, key_file = args.audit_db, args.new_key_file
    store: SqliteAuditStore | PostgresAuditSink
    if isinstance(db, PostgresLocation):
        existed = key_file.exists()
        store = open_postgres(db, liveness_s=args.audit_pg_liveness)
    else:
        if not db.is_file():
            raise UsageError(
                f"no decision log at {db}; pass --audit-db pointing at the server's log"
            )
        exposed = exposed_files(db)
        if exposed:
            raise ConfigError(exposure_message(exposed))
        existed = key_file.exists()
        store = SqliteAuditStore(db)
    try:
        try:
            head, eras = store.head()[0], store.key_history()
        except AuditUnavailableError:
            # The store's words are a caller's ("retry ... with another replica").
            raise AuditUnavailableError(
                f"the masking key of {db} was not rotated: the log could not be read (the "
                "cause is in the log lines above); nothing was changed; run the same command "
                "again once the log is readable"
            ) from None
        if existed:
            fingerprint = key_fingerprint(load_key(key_file, None, create=False))
            if eras and eras[-1].new_fingerprint == fingerprint:
                raise UsageError(
                    f"{key_file} holds the key already in use (fingerprint {fingerprint}); "
                    "nothing to rotate"
                )
        if not args.confirm:
            # The head counts ruleset events and earlier rotations too, not decisions alone.
            before = f"chain entries 1-{head}" if head else "none yet"
            raise UsageError(
                f"rotating the masking key of {db} starts a new key era at record {head + 2} "
                f"(the rotation itself is sealed into the chain at {head + 1}): from then on "
                "the same patient gets a different digest than in the decisions recorded "
                f"before it ({before}); keep the old key if those digests must still be "
                "matched. Rerun with --confirm to rotate"
            )
        fingerprint = key_fingerprint(load_key(key_file, None))  # creates it when missing
        try:
            era = store.rotate_key(fingerprint, format_timestamp(datetime.now(UTC)))
        except AuditUnavailableError:
            # The store's words are a caller's ("no decision was made"); a rotation whose
            # commit failed may still have been recorded if only the answer was lost.
            raise AuditUnavailableError(
                f"the masking key of {db} was not rotated, or the log could not confirm it "
                f"(the cause is in the log lines above); run the same command again once the "
                f"log is reachable: it rotates to {key_file}, or says 'nothing to rotate' if "
                "the rotation was recorded"
            ) from None
    finally:
        store.close()
    where = (
        f"the new key is {key_file}"
        if existed
        else f"a new key was written to {key_file} (mode 0600, back it up separately)"
    )
    sys.stdout.write(
        f"masking key rotated: key era {era.era} starts at record {era.first_seq} (fingerprint "
        f"{era.old_fingerprint} -> {era.new_fingerprint}; the rotation is chain entry "
        f"{era.seq}); {where}; restart the servers with --audit-key-file {key_file}\n"
    )
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` and its subcommands."""
    audit = sub.add_parser("audit", help="read and verify the decision log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    show = audit_sub.add_parser(
        "show",
        help="one decision with its explanation, read from the text its chain hash covers; "
        "exit 1 with a warning when its record was edited, 3 when the log could not be read",
    )
    show.add_argument("decision_id", help="decision id (dec_...)")
    show.add_argument("--json", action="store_true", help="print the stored record as JSON")
    show.set_defaults(run=with_log_lines(unreadable_exits_3(_interruptible(_cmd_audit_show))))
    export = audit_sub.add_parser(
        "export",
        help="decisions as JSON lines on stdout, one caseroute.v1.AuditedDecision per line; "
        "exit 1 with a warning when records were edited, 3 when the log could not be read",
    )
    export.add_argument(
        "--since", help="decisions with now >= this instant (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    export.add_argument(
        "--until", help="decisions with now < this instant (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    export.add_argument("--case-id", default="", help="only this case")
    export.set_defaults(run=with_log_lines(unreadable_exits_3(_interruptible(_cmd_audit_export))))
    verify = audit_sub.add_parser(
        "verify",
        help="walk the hash chain; exit 1 if tampered, 3 if the log could not be read",
    )
    verify.add_argument(
        "--expect-head",
        type=_kept_head,
        metavar="SEQ:HASH",
        help="head printed by an earlier verify: detects a rewritten or truncated tail (the "
        "log may have grown since)",
    )
    verify.set_defaults(run=with_log_lines(_interruptible(_cmd_audit_verify)))
    events = audit_sub.add_parser(
        "events",
        help="ruleset loads, reloads, activations and rollbacks recorded in the chain; exit 3 "
        "when the log could not be read",
        description="List the ruleset lifecycle events in chain order: seq, when, action, who, "
        "ruleset, role (active or shadow), and the version (sha256 first 12) before -> after. "
        "They are hash-chained with the decisions: run `caseroute audit verify` to check them.",
    )
    events.add_argument("--ruleset", metavar="NAME", help="only this ruleset's events")
    events.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text, one line per event (default), or one JSON document with the full events",
    )
    events.set_defaults(run=with_log_lines(unreadable_exits_3(_interruptible(_cmd_audit_events))))
    rotate = audit_sub.add_parser(
        "rotate-key",
        help="change the masking key on purpose: starts a new, recorded key era (stop the "
        "servers first; a server still on the old key stops writing)",
    )
    rotate.add_argument(
        "--new-key-file",
        type=Path,
        required=True,
        help="the new key (hex); created with a random key, mode 0600, if missing",
    )
    rotate.add_argument(
        "--confirm", action="store_true", help="really rotate (without it: say what would happen)"
    )
    rotate.set_defaults(
        run=with_log_lines(unreadable_exits_3(_interruptible(_cmd_audit_rotate_key)))
    )
    for cmd in (show, export, verify, events, rotate):
        add_audit_db(cmd)
        add_settings(cmd, ["audit_pg_liveness"])
        add_log_settings(cmd)
