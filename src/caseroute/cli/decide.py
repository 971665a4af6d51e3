"""``caseroute decide``: one case (or a request file) locally (a dry run) or on a server.

Input and ``--json`` output are the JSON dialect (docs/json.md): ``--request`` reads the same
DecideRequest / DecideBatchRequest file grpcurl sends, and ``--json`` prints a
``caseroute.v1.Decision`` (a ``DecideBatchResponse`` for a batch).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from caseroute.cli.options import (
    add_client_tls,
    bearer_token,
    client_tls,
    parse_instant,
    read_json,
    server_targets,
    timeout_seconds,
)
from caseroute.cli.output import EXIT_OK, UsageError
from caseroute.cli.settings import add_settings, setting_source
from caseroute.domain.codec import RequestData, parse_case, parse_request, parse_roster
from caseroute.domain.decision import Decision
from caseroute.domain.enums import ExplanationLevel
from caseroute.render import safe_json

if TYPE_CHECKING:
    from caseroute.domain.case import Case
    from caseroute.domain.roster import Roster
    from caseroute.engine.case_rules import LoadedRuleset


def _parse_now(text: str | None) -> datetime:
    # The CLI is the edge: decide() itself never reads the clock.
    return parse_instant(text, "--now") or datetime.now(UTC)


_REQUEST_HOLDS = (
    ("case", "--case"),
    ("roster", "--roster"),
    ("now", "--now"),
    ("request_id", "--request-id"),
    ("ruleset_name", "--ruleset-name"),
    ("ruleset_version", "--ruleset-version"),
)


def _ruleset_source(args: argparse.Namespace, version: str) -> Path:
    """The ruleset directory or file ``--ruleset`` gives for a request's version ("": any)."""
    from caseroute.rules.layout import active_source

    # A ruleset's home decides with the version its serving.yaml names, as a server would; a
    # request pinning a version takes that version's directory from the same home.
    home: Path = args.ruleset
    # A version names a directory in the home, never a path (`..` opened the home's parent):
    # any other text is a version the home does not hold, refused as such by the caller.
    plain = version not in ("", ".", "..") and Path(version).name == version
    if plain and home.is_dir() and (home / version).is_dir():
        return home / version
    return active_source(home)


def _refused_request_flags(args: argparse.Namespace, document: object) -> frozenset[str]:
    """The local ruleset's safeguarding flag for a request file the JSON reader refused.

    The request names its ruleset, so the flag is known only once the file is read; the
    ruleset is compiled (not prepared) for it. Best effort: a ruleset that will not load
    leaves ``safeguarding`` (always checked) as the one flag.
    """
    from caseroute.domain.errors import CaserouteError
    from caseroute.rules.compiler import load_ruleset

    if args.server:
        return frozenset()
    selector = document.get("ruleset") if isinstance(document, dict) else None
    version = selector.get("version") if isinstance(selector, dict) else None
    try:
        source = _ruleset_source(args, version if isinstance(version, str) else "")
        return frozenset({load_ruleset(source).constraints.safeguarding_flag})
    except (CaserouteError, OSError):
        return frozenset()


def _load_ruleset(
    args: argparse.Namespace,
    name: str = "",
    version: str = "",
    *,
    asker: str = "the request asks",
) -> LoadedRuleset:
    """The local ruleset (``--ruleset``), checked against a selector (a request's, or flags').

    ``asker`` names who selected ``name`` and ``version`` in the refusal.
    """
    from caseroute.engine.case_rules import EngineKind, prepare_ruleset
    from caseroute.rules.compiler import load_ruleset
    from caseroute.rules.layout import published_as

    source = _ruleset_source(args, version)
    if version and source.name == version and published_as(source) == "retired":
        # A server refuses a pin of a retired version (FAILED_PRECONDITION, nothing decided):
        # the dry run of the same call decided with it and exited 0.
        raise UsageError(
            f"{asker} for version {version}, which {source.parent / 'serving.yaml'} lists "
            "as retired: a server refuses it and decides nothing; pin the active version or "
            "none, or activate it again (caseroute rules activate)"
        )
    ruleset = prepare_ruleset(load_ruleset(source), EngineKind(args.engine))
    compiled = ruleset.compiled
    if (name and name != compiled.name) or (version and version != compiled.version):
        asked = f"{name or compiled.name}@{version or compiled.version}"
        raise UsageError(
            f"{asker} for ruleset {asked}; {args.ruleset} holds "
            f"{compiled.name}@{compiled.version}: pass --ruleset pointing at the one it names"
        )
    return ruleset


def _refuse_local_ruleset_with_server(args: argparse.Namespace) -> None:
    """``--ruleset PATH`` given with ``--server``: refused, since the server never reads it.

    A dry run's ruleset was silently dropped when ``--server`` was added, and the server
    decided with its active version whatever PATH named. Only the flag is refused:
    ``$CASEROUTE_RULESET`` is a standing setting for dry runs.
    """
    if args.server and setting_source(args, "ruleset").kind == "flag":
        raise UsageError(
            f"--ruleset {args.ruleset} is the ruleset of a dry run (without --server); "
            "with --server the server decides with its own rulesets: drop --ruleset, and "
            "pin one with --ruleset-name NAME --ruleset-version VERSION"
        )


def _cmd_decide_request(args: argparse.Namespace) -> int:
    from caseroute.domain.limits import DEFAULT_LIMITS
    from caseroute.engine.decide import decide
    from caseroute.engine.roster_index import roster_after_assignment
    from caseroute.render import render_text
    from caseroute.service.command_check import check_command
    from caseroute.service.routing import DecideCommand, request_decision_id
    from caseroute.wire.json_dialect import batch_to_json, decision_to_json

    given = [flag for attr, flag in _REQUEST_HOLDS if getattr(args, attr)]
    if given:
        raise UsageError(
            f"--request FILE holds the case, roster, now, request_id and ruleset: drop "
            f"{', '.join(given)} (or edit the file)"
        )
    data = read_json(
        args.request,
        "request",
        members_under_root=False,
        safeguarding_flags=lambda document: _refused_request_flags(args, document),
    )
    if args.server:
        return _send_request(args, parse_request(data))
    peek = data.get("ruleset") if isinstance(data, dict) else None
    selector = peek if isinstance(peek, dict) else {}
    ruleset = _load_ruleset(
        args, str(selector.get("name") or ""), str(selector.get("version") or "")
    )
    flags = frozenset({ruleset.compiled.constraints.safeguarding_flag})
    request = parse_request(data, safeguarding_flags=flags)
    # What a server would refuse is refused here too (a batch naming one case twice was
    # decided twice by the dry run: review R36a L2); only the request_id may be left out.
    check_command(
        DecideCommand(
            request.request_id,
            request.ruleset_name,
            request.ruleset_version,
            request.cases,
            request.roster,
            request.now,
            parsed=True,
        ),
        DEFAULT_LIMITS,
        dry_run=True,
    )
    now = request.now or _parse_now(None)
    detail = _agent_detail(args, request.explanation_level)
    roster = request.roster
    decisions: list[Decision] = []
    for index, case in enumerate(request.cases):
        # As a server decides a batch: ids from the request id, capacity used as assigned.
        decision_id = request_decision_id(request.request_id, index) if request.request_id else None
        decision = decide(case, roster, ruleset, now, agent_detail=detail, decision_id=decision_id)
        decisions.append(decision)
        if decision.agent_id is not None:
            roster = roster_after_assignment(roster, decision.agent_id, now)
    if args.json:
        data_out = batch_to_json(tuple(decisions), now) if request.batch else None
        texts = [safe_json(data_out or decision_to_json(decisions[0]), indent=2)]
    else:
        texts = [render_text(d) for d in decisions]
    sys.stdout.write("\n\n".join(texts) + "\n")
    return EXIT_OK


def _agent_detail(args: argparse.Namespace, level: ExplanationLevel | None) -> bool:
    # The file's level, unset meaning SUMMARY as over gRPC (docs/api.md): the CLI sends (and
    # dry-runs) the request grpcurl sends for the same file, so the two get one decision, not
    # ALREADY_EXISTS. --no-agent-detail may only ask for less.
    return level is ExplanationLevel.FULL and not args.no_agent_detail


def _decide_on_server(
    args: argparse.Namespace,
    cases: tuple[Case, ...],
    roster: Roster,
    *,
    now: datetime | None,
    request_id: str | None,
    ruleset_name: str,
    ruleset_version: str,
    full: bool,
    batch: bool,
) -> tuple[tuple[Decision, ...], datetime]:
    """Decide on ``--server`` through ``caseroute.client``: the decisions and the instant used.

    Without a request id the client derives one from the request's content (and without
    ``now`` it reads its clock first), so the same call gets the same decision, decision id
    included, and a retry never decides twice.
    """
    from caseroute.client import Client, ExplanationLevel

    level = ExplanationLevel.FULL if full else ExplanationLevel.SUMMARY
    with Client(
        args.server, tls=client_tls(args), token=bearer_token(args), timeout=args.timeout
    ) as client:
        if batch:
            many = client.decide_batch(
                cases,
                roster,
                now=now,
                ruleset=ruleset_name,
                version=ruleset_version,
                request_id=request_id,
                explanation_level=level,
            )
            return many.decisions, many.now
        one = client.decide(
            cases[0],
            roster,
            now=now,
            ruleset=ruleset_name,
            version=ruleset_version,
            request_id=request_id,
            explanation_level=level,
        )
        return (one.decision,), one.now


def _send_request(args: argparse.Namespace, request: RequestData) -> int:
    from caseroute.render import render_text
    from caseroute.wire.json_dialect import batch_to_json, decision_to_json

    decisions, now = _decide_on_server(
        args,
        request.cases,
        request.roster,
        now=request.now,
        request_id=request.request_id or None,
        ruleset_name=request.ruleset_name,
        ruleset_version=request.ruleset_version,
        full=_agent_detail(args, request.explanation_level),
        batch=request.batch,
    )
    if args.json:
        data = batch_to_json(decisions, now) if request.batch else decision_to_json(decisions[0])
        text = safe_json(data, indent=2)
    else:
        text = "\n\n".join(render_text(d) for d in decisions)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def _cmd_decide(args: argparse.Namespace) -> int:
    from caseroute.render import render_text
    from caseroute.wire.json_dialect import decision_to_json

    _refuse_local_ruleset_with_server(args)
    if args.request is not None:
        return _cmd_decide_request(args)
    if args.case is None or args.roster is None:
        raise UsageError(
            "give --case FILE and --roster FILE, or --request FILE (a DecideRequest, see "
            "examples/requests/)"
        )
    ruleset = None
    if not args.server:  # loaded first: an invalid case is told by its own safeguarding flag
        # Dropping --server is the dry run of the same call (README): the pinned name and
        # version select the local ruleset, as a request file's selector does, instead of
        # being ignored.
        ruleset = _load_ruleset(
            args,
            args.ruleset_name,
            args.ruleset_version,
            asker="--ruleset-name/--ruleset-version ask",
        )
    flags = frozenset({ruleset.compiled.constraints.safeguarding_flag} if ruleset else ())
    case = parse_case(
        read_json(args.case, "case", safeguarding_flags=flags), safeguarding_flags=flags
    )
    roster = parse_roster(read_json(args.roster, "roster"))
    if ruleset is None:
        decision = _decide_on_server(
            args,
            (case,),
            roster,
            now=parse_instant(args.now, "--now"),
            request_id=args.request_id,
            ruleset_name=args.ruleset_name,
            ruleset_version=args.ruleset_version,
            full=not args.no_agent_detail,
            batch=False,
        )[0][0]
    else:
        decision = _decide_locally(args, case, roster, ruleset)
    text = safe_json(decision_to_json(decision), indent=2) if args.json else render_text(decision)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def _decide_locally(
    args: argparse.Namespace, case: Case, roster: Roster, ruleset: LoadedRuleset
) -> Decision:
    """A dry run of ``--case``/``--roster``: with ``--request-id``, the id a server gives."""
    from caseroute.domain.limits import DEFAULT_LIMITS
    from caseroute.engine.decide import decide
    from caseroute.service.command_check import check_command
    from caseroute.service.routing import DecideCommand, request_decision_id

    now = _parse_now(args.now)
    decision_id = None
    if args.request_id is not None:
        # Checked as a server checks it, then the server's rule for the id (as --request).
        check_command(
            DecideCommand(
                args.request_id,
                args.ruleset_name,
                args.ruleset_version,
                (case,),
                roster,
                now,
                parsed=True,
            ),
            DEFAULT_LIMITS,
        )
        decision_id = request_decision_id(args.request_id, 0)
    return decide(
        case,
        roster,
        ruleset,
        now,
        agent_detail=not args.no_agent_detail,
        decision_id=decision_id,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``decide``."""
    decide = sub.add_parser(
        "decide",
        help="decide one case from JSON files (locally: a dry run, not recorded in the decision "
        "log; with --server: a real, audited decision)",
    )
    decide.add_argument("--case", type=Path, help="case JSON file (caseroute.v1.Case)")
    decide.add_argument("--roster", type=Path, help="roster JSON file (caseroute.v1.Roster)")
    decide.add_argument(
        "--request",
        type=Path,
        metavar="FILE",
        help="a DecideRequest or DecideBatchRequest JSON file, as grpcurl sends it (case or "
        "cases, roster, now, request_id, ruleset, explanation_level): instead of --case and "
        "--roster; see examples/requests/",
    )
    add_settings(decide, ["ruleset"])  # $CASEROUTE_RULESET, checked like every setting
    decide.add_argument(
        "--now", help="decision instant, RFC 3339, e.g. 2026-11-21T10:00:00Z (default: now)"
    )
    decide.add_argument(
        "--json",
        action="store_true",
        help="print the decision as caseroute.v1.Decision JSON (docs/json.md)",
    )
    add_settings(decide, ["engine"])  # $CASEROUTE_ENGINE, [server] engine
    remote = decide.add_argument_group("remote mode (call a running server)")
    remote.add_argument(
        "--server",
        type=server_targets,
        metavar="HOST:PORT",
        help="decide on this caseroute server; replicas sharing one decision log: their "
        "IP:PORT addresses separated by commas (round_robin, retries on another replica)",
    )
    remote.add_argument(
        "--request-id",
        help="idempotency key (default: derived from the request's content, so the same call "
        "gets the same decision; without --now each call is a new request); without --server, "
        "the dry run prints the decision id a server gives it",
    )
    remote.add_argument(
        "--ruleset-name",
        default="",
        help="ruleset (default: the server's); without --server, the one --ruleset must hold",
    )
    remote.add_argument(
        "--ruleset-version",
        default="",
        help="pin a ruleset version; without --server, the dry run decides with that version "
        "of the --ruleset home (rulesets/NAME/VERSION/), as a server would",
    )
    remote.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=30.0,
        help="deadline in seconds, retries on UNAVAILABLE included (default 30)",
    )
    add_settings(decide, ["token_file"], remote)  # your caller bearer token
    add_client_tls(remote)
    decide.add_argument(
        "--no-agent-detail",
        action="store_true",
        help="omit per-agent verdicts (counts and top ranking stay)",
    )
    decide.set_defaults(run=_cmd_decide)
