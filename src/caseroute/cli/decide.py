"""``caseroute decide``: one case from JSON files, locally (a dry run) or on a server."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from caseroute.cli.options import (
    ENGINES,
    add_client_tls,
    client_tls,
    default_engine,
    parse_instant,
    read_json,
)
from caseroute.cli.output import EXIT_OK
from caseroute.domain.codec import parse_case, parse_roster

DEFAULT_RULESET = Path("rulesets/patient-enquiries")


def _default_ruleset() -> Path:
    return Path(os.environ.get("CASEROUTE_RULESET", str(DEFAULT_RULESET)))


def _parse_now(text: str | None) -> datetime:
    # The CLI is the edge: decide() itself never reads the clock.
    return parse_instant(text, "--now") or datetime.now(UTC)


def _cmd_decide(args: argparse.Namespace) -> int:
    from caseroute.engine.case_rules import EngineKind, prepare_ruleset
    from caseroute.engine.decide import decide
    from caseroute.render import render_json, render_text
    from caseroute.rules.compiler import load_ruleset
    from caseroute.rules.layout import active_source

    ruleset = None
    if not args.server:  # loaded first: an invalid case is told by its own safeguarding flag
        # A ruleset's home decides with the version its serving.yaml names, as a server would.
        source = active_source(args.ruleset)
        ruleset = prepare_ruleset(load_ruleset(source), EngineKind(args.engine))
    flags = frozenset({ruleset.compiled.constraints.safeguarding_flag} if ruleset else ())
    case = parse_case(read_json(args.case, "case"), safeguarding_flags=flags)
    roster = parse_roster(read_json(args.roster, "roster"))
    if ruleset is None:
        from caseroute.grpc_api.client import decide_remote

        decision = decide_remote(
            args.server,
            case,
            roster,
            now=parse_instant(args.now, "--now"),
            request_id=args.request_id,
            ruleset_name=args.ruleset_name,
            ruleset_version=args.ruleset_version,
            agent_detail=not args.no_agent_detail,
            timeout_s=args.timeout,
            tls=client_tls(args),
        )
    else:
        decision = decide(
            case, roster, ruleset, _parse_now(args.now), agent_detail=not args.no_agent_detail
        )
    sys.stdout.write((render_json(decision) if args.json else render_text(decision)) + "\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``decide``."""
    decide = sub.add_parser(
        "decide",
        help="decide one case from JSON files (locally: a dry run, not recorded in the decision "
        "log; with --server: a real, audited decision)",
    )
    decide.add_argument("--case", type=Path, required=True, help="case JSON file")
    decide.add_argument("--roster", type=Path, required=True, help="roster JSON file")
    decide.add_argument(
        "--ruleset",
        type=Path,
        default=_default_ruleset(),
        help=f"ruleset directory or YAML file (default: $CASEROUTE_RULESET or {DEFAULT_RULESET})",
    )
    decide.add_argument("--now", help="decision instant, ISO-8601 with offset (default: now)")
    decide.add_argument("--json", action="store_true", help="print the decision as JSON")
    decide.add_argument(
        "--engine",
        choices=ENGINES,
        default=default_engine(),
        help="engine of record (default: $CASEROUTE_ENGINE or durable)",
    )
    remote = decide.add_argument_group("remote mode (call a running server)")
    remote.add_argument("--server", metavar="HOST:PORT", help="decide on this caseroute server")
    remote.add_argument("--request-id", help="idempotency key (default: a new UUID)")
    remote.add_argument("--ruleset-name", default="", help="ruleset (default: the server's)")
    remote.add_argument("--ruleset-version", default="", help="pin a ruleset version")
    remote.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    add_client_tls(remote)
    decide.add_argument(
        "--no-agent-detail",
        action="store_true",
        help="omit per-agent verdicts (counts and top ranking stay)",
    )
    decide.set_defaults(run=_cmd_decide)
