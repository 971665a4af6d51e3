"""``caseroute rules shadow-report``: how shadow versions compared with live decisions."""

from __future__ import annotations

import argparse

from caseroute.cli.audit import open_log, refuse_unknown_ruleset
from caseroute.cli.options import add_audit_db
from caseroute.cli.output import EXIT_OK, UsageError, out, print_json
from caseroute.cli.rules import RulesCommands
from caseroute.domain.errors import AuditUnavailableError


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
    try:
        store = open_log(args)
    except AuditUnavailableError as exc:  # not a decision log, or unreadable: say which
        raise UsageError(str(exc)) from None
    try:
        report = build_shadow_report(store, args.name, args.version, args.limit)
        if not report.versions:  # a misspelt name is no ruleset without a shadow (R36 F11)
            refuse_unknown_ruleset(store, args.name, args, "pass one of them as NAME")
    except AuditUnavailableError:
        # The cause (SQLite's message) was logged by the store; say where and what to do.
        raise UsageError(
            f"cannot read shadow results from the decision log {args.audit_db}; check that "
            "--audit-db names a caseroute decision log this user can read"
        ) from None
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
        "the decision log; exit 0 when it could read it, 2 otherwise or when no record in "
        "it names the ruleset)",
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
    report.set_defaults(run=_cmd_shadow_report)
