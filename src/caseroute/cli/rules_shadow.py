"""``caseroute rules shadow-report``: how shadow versions compared with live decisions."""

from __future__ import annotations

import argparse

from caseroute.cli.audit import open_log, refuse_unknown_ruleset
from caseroute.cli.log_lines import add_log_settings, with_log_lines
from caseroute.cli.options import add_audit_db
from caseroute.cli.output import EXIT_OK, UsageError, out, print_json, unreadable_exits_3
from caseroute.cli.rules import RulesCommands


def _cmd_shadow_report(args: argparse.Namespace) -> int:
    from caseroute.audit.shadow_report import (
        MAX_LIMIT,
        build_shadow_report,
        render_shadow_report,
        shadow_report_data,
    )

    if not 0 <= args.limit <= MAX_LIMIT:
        raise UsageError(
            f"--limit {args.limit} is out of range: give 0 to {MAX_LIMIT} (disagreements "
            "listed per shadow version)"
        )
    # A log that cannot be read (not a decision log, a table missing, refused) raises
    # AuditUnavailableError naming the log, the cause and what to do: exit 3
    # (``unreadable_exits_3``), not 2, which says the command line was wrong.
    store = open_log(args)
    try:
        report = build_shadow_report(store, args.name, args.version, args.limit)
        if not report.versions:  # a misspelt name is no ruleset without a shadow (R36 F11)
            refuse_unknown_ruleset(store, args.name, args, "pass one of them as NAME")
    finally:
        store.close()
    if args.format == "json":
        print_json(shadow_report_data(report))
    else:
        for line in render_shadow_report(report):
            out(line)
    return EXIT_OK


def register(rules_sub: RulesCommands) -> None:
    """Add ``rules shadow-report`` to the ``rules`` group."""
    from caseroute.audit.shadow_report import DEFAULT_LIMIT, MAX_LIMIT

    report = rules_sub.add_parser(
        "shadow-report",
        help="how a ruleset's shadow versions compared with the live decisions (read from "
        "the decision log; exit 0 when it could read it, 2 for a usage error or when no "
        "record in it names the ruleset, 3 when the log could not be read)",
        description="Per shadow version of ruleset NAME: decisions evaluated in shadow, how "
        "many agreed with the live decision, the disagreement rate, counts per kind "
        "(outcome, agent, queue, priority, deciding_rule, escalation, relaxation, "
        "continuity, error), live decisions "
        "dropped uncompared, and the first disagreements. Reads the log read-only.",
    )
    report.add_argument("name", help="ruleset name")
    report.add_argument("--version", help="only this shadow version")
    report.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people (default), or one JSON document on stdout",
    )
    report.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"disagreements listed per shadow version (default {DEFAULT_LIMIT}, 0 to {MAX_LIMIT})",
    )
    add_audit_db(report)
    add_log_settings(report)
    report.set_defaults(run=with_log_lines(unreadable_exits_3(_cmd_shadow_report)))
