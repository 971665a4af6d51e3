"""``caseroute replay``: what a candidate ruleset would change in past decisions, as a CI gate.

Exit codes: 0 every ``--fail-on`` gate passed; 1 a gate was exceeded (or the candidate has
errors); 2 bad usage or input; 3 no report: the log (or, with ``--server``, the server) could not
be read.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from caseroute.cli.entry import TerminatedError
from caseroute.cli.log_lines import add_log_settings, with_log_lines
from caseroute.cli.options import add_client_tls, parse_window, timeout_seconds
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, EXIT_UNREADABLE, UsageError
from caseroute.cli.settings import add_settings, setting_source
from caseroute.render import escape_lines

if TYPE_CHECKING:
    from caseroute.audit.store import SqliteAuditStore
    from caseroute.replay import Gate, RecordSource, ReplayReport

FORMATS = ("table", "json", "markdown")
_OUTAGES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""``--server`` answers that mean no report could be made (exit 3): the server or its log could
not be reached or read, or not within ``--timeout``."""
_RATE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<pct>%?)")


def parse_gate(text: str) -> Gate:
    """``CLASS=RATE`` (``0.5%`` or ``0.005``) as a gate; a bad one is a usage error."""
    from caseroute.replay import CLASSES, Gate
    from caseroute.replay.report import CHANGED

    valid = (*CLASSES, CHANGED)
    name, sep, rate_text = text.partition("=")
    name = name.strip()
    if not sep or name not in valid:
        raise UsageError(
            f"--fail-on {text!r}: the class must be one of {', '.join(valid)}, written "
            "CLASS=RATE, e.g. --fail-on outcome_changed=0.5%"
        )
    match = _RATE.fullmatch(rate_text.strip())
    rate = float(match["number"]) / (100 if match["pct"] else 1) if match else -1.0
    if not 0 <= rate <= 1:
        raise UsageError(
            f"--fail-on {text!r}: the rate must be a share from 0 to 1 (0.005) or a percentage "
            "from 0% to 100% (0.5%)"
        )
    return Gate(name, rate)


def _positive(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number of at least 1")
        return value

    return parse


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until``; a window that holds no instant is a usage error.

    A reversed window replayed nothing and passed every gate (review R32b F8); report and
    ``RulesetAdmin.Replay`` refuse it too.
    """
    return parse_window(args.since, args.until, "replay reads decisions with since <= now < until")


def _source(
    args: argparse.Namespace,
) -> tuple[RecordSource, Callable[[], None], SqliteAuditStore | None]:
    """Where the records come from, how to close it, and the log when one is open."""
    from caseroute.replay import ExportedRecords, RecordFilter, SinkRecords

    since, until = _window(args)
    where = RecordFilter(since=since, until=until, case_id=args.case_id, limit=args.limit)
    store = None
    # With --input, a decision log is read (for roster snapshots) only when one was set.
    if args.input is None or setting_source(args, "audit_db").kind != "default":
        from caseroute.cli.audit import open_log

        # An export alone carries no roster snapshots (every record would be roster_missing):
        # a PostgreSQL log is replayed by a server that writes it.
        store = open_log(
            args,
            "replay a PostgreSQL log on a server that writes it: `caseroute replay --server "
            "HOST:PORT --candidate ...` (docs/replay.md); `--input` export lines replay here "
            "only beside a SQLite --audit-db that holds their roster snapshots",
        )
    close = store.close if store is not None else (lambda: None)
    if args.input is None:
        assert store is not None  # noqa: S101 - opened above when there is no --input
        return SinkRecords(store, where), close, store
    if not args.input.is_file():
        close()
        raise UsageError(
            f"no file at --input {args.input}; pass the output of `caseroute audit export`"
        )
    from caseroute.wire.json_dialect import input_from_export_line, record_from_export_line

    # Export lines are AuditedDecision JSON (today) or the internal record (earlier versions).
    records = ExportedRecords(
        args.input,
        where,
        store.get_blob if store else None,
        record_from_export_line,
        input_from_export_line,
    )
    return records, close, store


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar with an ETA on stderr, when stderr is a terminal."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "replaying",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While replaying: SIGTERM raises ``TerminatedError``, so the pool stops as for Ctrl-C.

    Left to its default, SIGTERM (`kill PID`, a CI job's timeout) ended this process alone:
    the forkserver, its resource tracker and the workers waited for work forever, holding
    this process's stdout and stderr open. Raised here, the pool drops the chunks not started
    and its workers exit once theirs are done. A second SIGTERM finds the handler before.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def terminated(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise TerminatedError(signum)

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remote_report(args: argparse.Namespace) -> ReplayReport:
    """The report of the server's ``RulesetAdmin.Replay`` (``--server``), rebuilt from its JSON."""
    import json

    from caseroute.cli.rules_admin import _client
    from caseroute.replay.document import report_from_data
    from caseroute.v1 import admin_pb2 as apb
    from caseroute.wire.convert import datetime_to_timestamp

    audit_db_given = setting_source(args, "audit_db").kind == "flag"  # not a variable's default
    if args.input is not None or audit_db_given or args.workers is not None:
        raise UsageError(
            "--server replays the server's own decision log: drop --input, --audit-db and --workers"
        )
    request = apb.ReplayRequest(
        case_id=args.case_id, limit=args.limit or 0, sample_size=args.sample
    )
    if Path(args.candidate).exists() or "@" not in args.candidate:
        from caseroute.domain.errors import RulesetNotFoundError
        from caseroute.replay import resolve_candidate

        try:  # a path: read here and sent as text (the server never reads the caller's paths)
            source = resolve_candidate(args.candidate, args.rulesets)
        except RulesetNotFoundError as exc:
            raise UsageError(f"--candidate: {exc}") from None
        request.candidate.source = source.text
        request.candidate.file_name = Path(source.path).name
    else:
        request.candidate.ruleset = args.candidate
    for field, instant in zip(("since", "until"), _window(args), strict=True):
        if instant is not None:
            getattr(request, field).CopyFrom(datetime_to_timestamp(instant))
    reply = _client(args).replay(request)
    if reply.limit_reached and args.limit is None:
        sys.stderr.write(
            f"caseroute: replay stopped at the limit ({reply.total + reply.other_ruleset} "
            "records); the log may hold more: narrow --since/--until\n"
        )
    try:
        return report_from_data(json.loads(reply.report_json))
    except ValueError as exc:  # not JSON, or a ReportDocumentError
        raise UsageError(f"the server's replay report cannot be read here: {exc}") from None


def _local_report(args: argparse.Namespace) -> ReplayReport:
    """The report of replaying a local decision log or export in this process (and workers)."""
    from caseroute.domain.errors import RulesetNotFoundError
    from caseroute.engine.case_rules import EngineKind
    from caseroute.replay import ReplayOptions, default_workers, replay, resolve_candidate
    from caseroute.replay.source import ExportFormatError

    source, close, store = _source(args)
    try:
        try:
            candidate = resolve_candidate(args.candidate, args.rulesets, store)
        except RulesetNotFoundError as exc:
            raise UsageError(f"--candidate: {exc}") from None
        with _sigterm_unwinds(), _progress(sys.stderr.isatty()) as progress:
            options = ReplayOptions(
                EngineKind(args.engine), args.workers or default_workers(), args.sample, progress
            )
            return replay(source, candidate, options)
    except ExportFormatError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read --input {args.input}: {exc.strerror or exc}") from None
    finally:
        close()


def _outage(exc: Exception) -> bool:
    """Whether ``exc`` means no report could be made: the log, or the server, not readable."""
    from caseroute.domain.errors import AuditUnavailableError
    from caseroute.grpc_api.client import RemoteCallError

    if isinstance(exc, RemoteCallError):
        return exc.code.name in _OUTAGES
    return isinstance(exc, AuditUnavailableError)


def _cmd_replay(args: argparse.Namespace) -> int:
    from caseroute.domain.errors import CaserouteError
    from caseroute.replay import exceeded
    from caseroute.replay.render import render_json, render_markdown, render_plain, render_table

    gates = [parse_gate(text) for text in args.fail_on]
    # Local and remote reports print through the same renderers: the same log gives the
    # same output byte for byte.
    try:
        report = _remote_report(args) if args.server is not None else _local_report(args)
    except CaserouteError as exc:
        # No report: an outage exits 3, never 1 (a gate exceeded), so a CI gate can tell them
        # apart (both exited 1 before).
        if not _outage(exc):
            raise
        sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
        return EXIT_UNREADABLE
    if args.format == "json":
        text = render_json(report)
    elif args.format == "markdown":
        text = render_markdown(report)
    else:
        width = shutil.get_terminal_size().columns
        text = render_table(report, width) if sys.stdout.isatty() else render_plain(report)
    sys.stdout.write(text + "\n")
    failed = exceeded(report, gates)
    for line in failed:
        sys.stderr.write(f"caseroute: replay gate failed: {escape_lines(line)}\n")
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``replay``."""
    cmd = sub.add_parser(
        "replay",
        help="re-decide recorded decisions under a candidate ruleset and report what would "
        "change (exit 1 when a --fail-on gate is exceeded, 3 when the log or server could not "
        "be read)",
        description="Re-decide each recorded decision's exact input (stored case, roster "
        "snapshot with the batch's earlier assignments, recorded now) under a candidate "
        "ruleset, classify every difference and report rates, breakdowns and samples. "
        "Records of other ruleset names are skipped (counted as other_ruleset). "
        "Exit 0 every gate passed, 1 a gate exceeded or candidate errors, 2 usage, 3 the log "
        "(or the --server) could not be read: no report. See docs/replay.md.",
    )
    cmd.add_argument(
        "--candidate",
        required=True,
        metavar="PATH_OR_NAME@VERSION",
        help="a ruleset file or directory, or NAME@VERSION under --rulesets",
    )
    # --rulesets: for NAME@VERSION; --audit-db: the log to replay, read-only (with --input,
    # where roster snapshots are read, and only when set).
    add_settings(cmd, ["rulesets", "audit_db"])
    cmd.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="replay `caseroute audit export` JSON lines instead (roster snapshots come from "
        "--audit-db when given; without it every record is not replayable)",
    )
    cmd.add_argument(
        "--since", help="decisions with now >= this instant (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    cmd.add_argument(
        "--until", help="decisions with now < this instant (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    cmd.add_argument("--case-id", default="", help="only this case")
    cmd.add_argument(
        "--limit", type=_positive("--limit"), help="at most N records, the first in chain order"
    )
    cmd.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default; plain text when stdout is not a terminal), json "
        "(docs/replay-report.schema.json) or markdown",
    )
    cmd.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="CLASS=RATE",
        help="exit 1 when CLASS's share of the records exceeds RATE (0.5%% or 0.005); "
        "repeatable; CLASS may also be `changed`",
    )
    cmd.add_argument(
        "--workers",
        type=_positive("--workers"),
        help="worker processes (default: the CPU count, at most 2; 1 replays in this process)",
    )
    cmd.add_argument(
        "--sample",
        type=_positive("--sample"),
        default=5,
        help="decision ids shown per class (default 5)",
    )
    add_settings(cmd, ["engine"])  # the candidate's engine of record
    remote = cmd.add_argument_group(
        "on a server",
        "replay the server's own decision log there (RulesetAdmin.Replay; docs/replay.md): "
        "--candidate PATH sends the file's text, NAME@VERSION is looked up by the server",
    )
    remote.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="the caseroute server to replay on (instead of --audit-db or --input)",
    )
    add_settings(cmd, ["token_file"], remote)  # your admin bearer token
    remote.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=600.0,
        help="deadline in seconds (default 600; the server replays about 1-5 ms per record)",
    )
    add_client_tls(remote)
    add_log_settings(cmd)
    cmd.set_defaults(run=with_log_lines(_cmd_replay))
