"""A ``DecideCommand`` built in Python code, read as a transport's command would have been.

The transports build commands from messages: every field has its type, every case and the
roster come from the strict parsers (``parsed=True``). A command built in code may hold
anything, so before ``RoutingCore`` hashes, decides or records it, its envelope is checked:
``request_id``, the ruleset selector and ``caller`` are strings, ``agent_detail`` and
``batch`` booleans, ``now`` an aware instant or None (a ``caller`` of 7 was recorded and then
failed ``audit verify``, a ``caller`` of None failed the log's write and turned health
NOT_SERVING). Then its sizes, then its cases and roster go through
``caseroute.domain.code_built``. Every problem is one ``RequestError`` naming the fields.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, cast

from caseroute.domain.case import Case
from caseroute.domain.code_built import checked_case, checked_roster
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import InputLimits, limit_flag, quote_value
from caseroute.domain.reader import request_id_problem
from caseroute.domain.roster import Roster

if TYPE_CHECKING:
    from caseroute.service.routing import DecideCommand

_TEXTS = ("request_id", "ruleset_name", "ruleset_version", "caller")
_FLAGS = ("agent_detail", "batch")


def batch_size_violations(cases: int, agents: int, limits: InputLimits) -> list[FieldViolation]:
    """What is wrong with the size of a batch: too many cases, or too much matching work.

    Transports call this before converting the cases (so a huge batch is refused cheaply)
    and ``decide`` calls it again on the command.

    Args:
        cases: Cases in the request.
        agents: Agents in its roster.
        limits: The server's limits.

    Returns:
        The violations (empty when the batch is within the limits).
    """
    if cases == 0:
        return [FieldViolation("cases", "must hold at least 1 case")]
    if cases > limits.max_batch_cases:
        return [
            FieldViolation(
                "cases",
                f"has {cases} cases; the limit is {limits.max_batch_cases} per batch (server "
                f"setting {limit_flag('max_batch_cases')}); split the batch",
            )
        ]
    if cases * agents > limits.max_batch_pairs:
        return [
            FieldViolation(
                "cases",
                f"{cases} cases x {agents} agents = {cases * agents} case-agent pairs; the "
                f"limit is {limits.max_batch_pairs} per batch (server setting "
                f"{limit_flag('max_batch_pairs')}); split the batch",
            )
        ]
    return []


def request_id_violations(request_id: str, limits: InputLimits) -> list[FieldViolation]:
    """What is wrong with a request_id (blank, too long, control or invisible characters).

    Transports call this while converting, beside the other fields (so an empty request_id is
    reported with them, and never loses to ROSTER_NOT_CACHED), and ``check_command`` again on
    every command, code-built ones included.
    """
    problem = request_id_problem(request_id, limits.max_id_chars)
    return [] if problem is None else [FieldViolation("request_id", problem)]


def duplicate_case_violations(case_ids: Iterable[tuple[int, str]]) -> list[FieldViolation]:
    """One violation per case of a batch whose case_id an earlier case of it already has.

    ``case_ids`` are (position in ``cases``, case_id), in order; cases that could not be read
    are left out, and the others keep their positions.

    A batch decides its cases in order against one roster, each taking capacity from the
    next: a case sent twice was assigned twice, to two agents, and used up capacity meant for
    other cases (review R34a F1). Ids are compared as people and most systems read them
    (``case_key``): ``CASE-1`` and ``case-1``, or one written with a fullwidth letter or a
    Unicode hyphen, are one case here (review R36a L1: each passed as a new case).
    """
    first: dict[str, tuple[int, str]] = {}
    out = []
    for i, case_id in case_ids:
        seen, as_sent = first.setdefault(case_key(case_id), (i, case_id))
        if seen != i:
            same = (
                ""
                if as_sent == case_id
                else f" as {quote_value(as_sent)}: the same id ignoring letter case, width and "
                "look-alike dashes and spaces; two cases whose ids differ only so go in "
                "separate calls"
            )
            out.append(
                FieldViolation(
                    f"cases[{i}].case_id",
                    f"duplicate case_id {quote_value(case_id)} (first at cases[{seen}]{same}); "
                    "a batch decides each case once: send each case once (decide it again in a "
                    "later call if it changed)",
                )
            )
    return out


def case_key(case_id: str) -> str:
    """``case_id`` folded for the batch's duplicate check (one key per case as people read it).

    NFKC (fullwidth letters, the non-breaking space), case-folded, and every Unicode dash
    and space separator as its ASCII look-alike (U+2010 HYPHEN and U+2212 MINUS are ``-``).
    """
    if case_id.isascii():
        return case_id.casefold()
    folded = unicodedata.normalize("NFKC", case_id).casefold()
    return "".join(
        "-" if ch == "\u2212" else _ASCII_LOOKALIKE.get(unicodedata.category(ch), ch)
        for ch in folded
    )


_ASCII_LOOKALIKE = {"Pd": "-", "Zs": " "}
"""Unicode categories folded to one ASCII character: every dash, every space separator (and
U+2212 MINUS SIGN, a math symbol to Unicode, is ``-`` too)."""


def check_command(cmd: DecideCommand, limits: InputLimits, *, dry_run: bool = False) -> None:
    """Refuse a command whose request_id, sizes, case ids or ``now`` break the rules.

    Parsed or not. ``dry_run`` (``caseroute decide --request`` without a server, which
    records nothing) lets an empty request_id pass; a given one is checked like any other.

    Raises:
        RequestError: Naming each.
    """
    checked_id = not dry_run or cmd.request_id != ""
    violations = request_id_violations(cmd.request_id, limits) if checked_id else []
    violations += batch_size_violations(len(cmd.cases), len(cmd.roster.agents), limits)
    if len(cmd.cases) > 1:
        violations += duplicate_case_violations(enumerate(c.case_id for c in cmd.cases))
    if cmd.now is not None and cmd.now.tzinfo is None:
        violations.append(FieldViolation("now", "must carry a UTC offset"))
    if violations:
        raise RequestError(violations)


def _text_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a str, got {type(value).__name__}"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds an unpaired surrogate)"
    return None


def envelope_violations(cmd: DecideCommand) -> list[FieldViolation]:
    """What is wrong with a code-built command's own fields (not its cases or roster)."""
    out: list[FieldViolation] = []
    for name in _TEXTS:
        problem = _text_problem(getattr(cmd, name))
        if problem is not None:
            out.append(FieldViolation(name, problem))
    out.extend(
        FieldViolation(name, f"must be a bool, got {type(getattr(cmd, name)).__name__}")
        for name in _FLAGS
        if type(getattr(cmd, name)) is not bool
    )
    # Read as ``object``: the declared types are what a transport guarantees, not code.
    now: object = cmd.now
    cases: object = cmd.cases
    roster: object = cmd.roster
    if now is not None and not isinstance(now, datetime):
        out.append(FieldViolation("now", f"must be a datetime or None, got {type(now).__name__}"))
    if not isinstance(cases, tuple | list):
        out.append(FieldViolation("cases", f"must be a tuple of Case, got {type(cases).__name__}"))
    if not isinstance(roster, Roster):
        out.append(FieldViolation("roster", f"must be a Roster, got {type(roster).__name__}"))
    elif not isinstance(agents := cast("object", roster.agents), tuple | list):
        out.append(
            FieldViolation(
                "roster.agents", f"must be a tuple of Agent, got {type(agents).__name__}"
            )
        )
    return out


def parsed_command(
    cmd: DecideCommand, limits: InputLimits, safeguarding: frozenset[str]
) -> DecideCommand:
    """``cmd`` with its code-built cases and roster read as the parsers read them.

    Args:
        cmd: A command not marked ``parsed``.
        limits: The core's input limits.
        safeguarding: The loaded rulesets' safeguarding flags (for the plain notice).

    Returns:
        The command over the parsed values, marked ``parsed``.

    Raises:
        RequestError: Naming every field refused: the envelope's first, else the cases' and
            the roster's together.
    """
    envelope = envelope_violations(cmd)
    if envelope:
        raise RequestError(envelope)
    check_command(cmd, limits)  # before any case or agent is walked
    violations: list[FieldViolation] = []
    cases: list[Case] = []
    for index, case in enumerate(cmd.cases):
        try:
            cases.append(
                checked_case(
                    case,
                    f"cases[{index}]" if cmd.batch else "case",
                    limits=limits,
                    safeguarding_flags=safeguarding,
                )
            )
        except RequestError as exc:
            violations += exc.violations
    try:
        roster = checked_roster(cmd.roster, limits=limits)
    except RequestError as exc:
        violations += exc.violations
    if violations:
        raise RequestError(violations)
    return replace(
        cmd,
        # A str subclass (allowed) as its plain text: nothing below calls the caller's methods.
        request_id=str.__str__(cmd.request_id),
        ruleset_name=str.__str__(cmd.ruleset_name),
        ruleset_version=str.__str__(cmd.ruleset_version),
        caller=str.__str__(cmd.caller),
        cases=tuple(cases),
        roster=roster,
        roster_fingerprint=None,
        parsed=True,
    )
