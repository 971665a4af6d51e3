"""``caseroute report``: the weekly operations review computed from the decision log."""

from __future__ import annotations

import argparse
import shutil
import sys

from caseroute.cli.audit import open_log, refuse_unknown_ruleset
from caseroute.cli.log_lines import add_log_settings, with_log_lines
from caseroute.cli.options import add_audit_db, parse_window
from caseroute.cli.output import EXIT_OK, UsageError, unreadable_exits_3

FORMATS = ["table", "json", "markdown"]


def _cmd_report(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from caseroute.audit.stream_check import StreamChecker, chain_warning
    from caseroute.report import build_report
    from caseroute.report.render import (
        empty_message,
        render_json,
        render_markdown,
        render_plain,
        render_table,
    )
    from caseroute.report.source import period_records

    since, until = parse_window(
        args.since, args.until, "the period is since <= decision instant < until"
    )
    if args.ruleset is not None and not args.ruleset.strip():
        raise UsageError("--ruleset is empty; give a ruleset name, or leave it out for all")
    store = open_log(args)
    try:
        if args.ruleset is not None:  # a misspelt name is no empty period (review R36 F11)
            refuse_unknown_ruleset(
                store, args.ruleset, args, "pass one of them to --ruleset, or leave it out for all"
            )
        # Every row read is checked against the chain, for one sha256 each (review R32b F3).
        checker = StreamChecker(store, whole=since is None and until is None)
        # Streamed: the store reads the period in pages; only per-group durations are kept.
        report = build_report(
            period_records(store, since=since, until=until, ruleset=args.ruleset, checker=checker),
            since=since,
            until=until,
            ruleset=args.ruleset,
        )
        report = replace(report, chain=checker.finish(complete=True))
    finally:
        store.close()
    warning = chain_warning(report.chain)
    if args.format == "json":
        text = render_json(report)
        if not report.decisions:  # stdout stays one JSON document for tools
            sys.stderr.write(f"caseroute: {empty_message(report)}\n")
    elif not report.decisions:
        text = empty_message(report) if warning is None else f"{warning}\n{empty_message(report)}"
    elif args.format == "markdown":
        text = render_markdown(report)
    else:
        width = shutil.get_terminal_size().columns
        text = render_table(report, width) if sys.stdout.isatty() else render_plain(report)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``."""
    cmd = sub.add_parser(
        "report",
        help="operations KPIs of a period from the decision log: time to triage, outcome "
        "mix, escalation and exception reasons, SLA stage, relaxation and continuity",
        description="Read the decisions made in a period (by decision instant) from the "
        "decision log, read-only, and print aggregate KPIs: time-to-triage percentiles "
        "(nearest rank) by intent and urgency and for ASSIGN only, the outcome mix overall "
        "and per ruleset version, escalation and exception rates by reason code, the SLA "
        "clock stage at decision, and adaptive routing (active ladder step, requirements "
        "relaxed, continuity outcomes). Counts, rates and durations only: never a case, "
        "patient or agent id. Exit 0 with the report, 2 for a usage error, 3 when the "
        "decision log could not be read. See docs/operations.md.",
    )
    cmd.add_argument(
        "--since", metavar="T", help="decisions with now >= T (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    cmd.add_argument(
        "--until", metavar="T", help="decisions with now < T (RFC 3339, e.g. 2026-11-21T10:00:00Z)"
    )
    cmd.add_argument(
        "--ruleset",
        metavar="NAME",
        help="only this ruleset's decisions (one the log holds: another is a usage error)",
    )
    cmd.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default; plain text when stdout is not a terminal), json (keys in "
        "docs/operations.md) or markdown",
    )
    add_audit_db(cmd)
    add_log_settings(cmd)
    cmd.set_defaults(run=with_log_lines(unreadable_exits_3(_cmd_report)))
