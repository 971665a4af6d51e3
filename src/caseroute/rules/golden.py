"""Golden cases: operator-readable YAML that pins a ruleset's decisions and the reasons for them.

One runner serves ``pytest`` and ``caseroute rules test``. A golden file sits in
``rulesets/<name>/golden/*.yaml``::

    now: "2026-11-21T10:00:00Z"      # default decision instant
    roster: roster.yaml              # default roster (file beside this one, or inline mapping)
    cases:
      - name: critical-clinical-needs-rn
        case: {...}                  # the case, as JSON/YAML
        expect:
          outcome: ASSIGN            # ASSIGN | ESCALATE | QUEUE | EXCEPTION
          rule: critical-clinical    # the deciding rule (or built-in check)
          agent: nurse-fl-01         # null when no agent
          queue: clinical-urgent
          reasons: [critical_clinical]
          excluded: {nurse-ca-01: [licence]}   # agent -> every check it must fail
          eligible: [nurse-fl-01]    # exactly these agents eligible
          not_fired: [safeguarding]  # rules that must not fire

Adaptive routing (relaxation ladders, continuity of care) adds, each optional::

          ladder_step: any-language  # the ladder's active step (null: no step in force yet)
          relaxed: [language]        # exactly these soft requirements relaxed, in order
          next_relaxation_at: "2026-11-21T10:10:00Z"   # null: time alone changes nothing
          held_for_preferred_until: "2026-11-21T10:15:00Z"   # null: not held
          continuity: held_for_preferred   # the continuity outcome (null: none applied)
          preferred: {nurse-tx-05: held_for}   # agent -> status, or {status: .., detail: ..}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from caseroute.domain.case import Case
from caseroute.domain.codec import parse_case, parse_roster, parse_timestamp
from caseroute.domain.decision import (
    AGENT_CHECKS,
    ContinuityOutcome,
    Decision,
    Outcome,
    Priority,
    StepStatus,
)
from caseroute.domain.errors import (
    FieldViolation,
    GoldenFileError,
    Problem,
    RequestError,
    RulesetError,
)
from caseroute.domain.field_reader import instant_fault
from caseroute.domain.fingerprint import format_timestamp
from caseroute.domain.limits import key_path
from caseroute.domain.reader import MISSING, near_miss
from caseroute.domain.roster import Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.rules.ir import is_catch_all
from caseroute.rules.model import Rule
from caseroute.rules.schema import NAME_RE, SchemaReader
from caseroute.rules.source import Node, read_yaml, to_data

GOLDEN_DIR = "golden"
GOLDEN_SUFFIXES = (".yaml", ".yml")
"""A golden file's name ends in one of these; ``roster*`` files beside them are rosters."""

Decider = Callable[[Case, Roster, datetime], Decision]
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a golden case asserts; unset fields are not checked (outcome and rule always are)."""

    outcome: Outcome
    rule: str
    agent: str | None = _UNSET
    queue: str | None = None
    reasons: tuple[str, ...] | None = None
    priority: Priority | None = None
    excluded: dict[str, frozenset[str]] = field(default_factory=dict)
    eligible: frozenset[str] | None = None
    not_fired: tuple[str, ...] = ()
    ladder_step: str | None = _UNSET
    relaxed: tuple[str, ...] | None = None
    next_relaxation_at: datetime | None = _UNSET
    held_for_preferred_until: datetime | None = _UNSET
    continuity: ContinuityOutcome | None = _UNSET
    preferred: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Agent id -> (status, detail or ``None`` when only the status is pinned)."""


@dataclass(frozen=True, slots=True)
class GoldenCase:
    """One golden case, located in its file."""

    name: str
    description: str
    file: str
    line: int
    now: datetime
    case: Case
    roster: Roster
    expect: Expectation

    @property
    def location(self) -> str:
        """``file:line`` of the case."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class GoldenResult:
    """A golden case after running: the decision and every mismatch with the expectation."""

    case: GoldenCase
    decision: Decision
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.mismatches


Positions = dict[str, tuple[int, int]]
"""Field path, as the request readers write it (``case.sla_clocks[0].deadline``) -> line, column."""

_CAMEL_HUMP = re.compile("[A-Z]")


def _field_positions(node: Node, path: str) -> Positions:
    """Where each field under ``node`` is written, by the path a ``RequestError`` names it with.

    A mapping member is located at its key (an unknown or misspelt key is the mistake itself),
    a list item at the item. A ``camelCase`` key (the JSON spelling the readers accept) is also
    listed under its ``snake_case`` path, the one the readers report.
    """
    out: Positions = {path: (node.line, node.column)}
    stack = [(node, path)]
    while stack:  # iterative: YAML nesting is bounded (source.MAX_YAML_DEPTH), but no recursion
        parent, at = stack.pop()
        children: list[tuple[list[str], Node, tuple[int, int]]] = []
        if parent.is_mapping:
            children = [
                (
                    [key_path(at, k) for k in dict.fromkeys((key, _snake_case(key)))],
                    child,
                    parent.key_positions.get(key, (child.line, child.column)),
                )
                for key, child in parent.value.items()
            ]
        elif parent.is_sequence:
            children = [
                ([f"{at}[{i}]"], child, (child.line, child.column))
                for i, child in enumerate(parent.value)
            ]
        for child_paths, child, where in children:
            for child_path in child_paths:
                out.setdefault(child_path, where)
                stack.append((child, child_path))
    return out


def _snake_case(key: str) -> str:
    """``createdAt`` -> ``created_at``: the name a reader reports a JSON-spelt field by."""
    return _CAMEL_HUMP.sub(lambda m: "_" + m[0].lower(), key)


def _position(positions: Positions, field_path: str) -> tuple[int, int]:
    """Where ``field_path`` is written, else its nearest written parent (a missing field)."""
    at = field_path
    while at not in positions:
        parent = _parent(at)
        if parent is None:
            return next(iter(positions.values()))  # the root the positions were built from
        at = parent
    return positions[at]


_DID_YOU_MEAN = re.compile(r"unknown field \(did you mean `([^`]+)`\?\)")


def _parent(field_path: str) -> str | None:
    """``case.sla_clocks[0]`` of ``case.sla_clocks[0].deadline`` (``None``: a root)."""
    cut = max(field_path.rfind("."), field_path.rfind("["))
    return field_path[:cut] if cut > 0 else None


def _golden_violations(exc: RequestError) -> list[FieldViolation]:
    """The violations of a golden file's case or roster, one finding per mistake.

    The safeguarding notice a live request gets first ("fix the fields below and resend, or
    hand it to the safeguarding team") is for a case that was not routed; a golden case is a
    file to fix, and the notice was one more finding for the same mistake. A required field
    written under a near spelling (``chanel: phone``) is the unknown field's "did you mean"
    alone, not also "``channel``: is required" (as ``schema.missing_key`` is for rulesets).
    """
    meant = set()
    for v in exc.violations:
        hint = _DID_YOU_MEAN.fullmatch(v.message)
        parent = _parent(v.field)
        if hint is not None and parent is not None:
            meant.add(key_path(parent, hint[1]))
    return [
        v
        for v in exc.violations
        if v.message != SAFEGUARDING_NOTICE and not (v.message == MISSING and v.field in meant)
    ]


def _load_roster(
    r: SchemaReader, node: Node, base: Path, golden_case: str | None = None
) -> Roster | None:
    """The roster a golden file or case names: a file beside it, or written inline.

    A problem in an inline roster is reported at the field in the golden file; one in a roster
    file, at the field in that file (so a roster file several cases share gives one finding
    per mistake, not one per case).
    """
    if isinstance(node.value, str):
        path = base / node.value
        try:
            roster_file = read_yaml(path)
        except RulesetError as exc:
            for problem in exc.problems:
                if problem.line:  # YAML problems are located in the roster file itself
                    r.problems.append(problem)
                    continue
                r.error(
                    "golden.roster",
                    f"roster `{node.value}` ({path}): {problem.message}",
                    node,
                    golden_case,
                )
            return None
        root, file = roster_file.root, roster_file.path
    else:
        root, file = node, r.file
    try:
        return parse_roster(to_data(root))
    except RequestError as exc:
        positions = _field_positions(root, "roster")
        for v in _golden_violations(exc):
            line, column = _position(positions, v.field)
            label = golden_case if file == r.file else None
            r.problems.append(Problem("golden.roster", str(v), file, line, column, label))
        return None


_ADAPTIVE_KEYS = (
    "ladder_step",
    "relaxed",
    "next_relaxation_at",
    "held_for_preferred_until",
    "continuity",
    "preferred",
)


def _instant(r: SchemaReader, e: dict[str, Node], key: str, name: str | None) -> datetime | None:
    """An optional expected instant: ``_UNSET`` when absent, ``None`` for null."""
    if key not in e:
        return _UNSET  # type: ignore[no-any-return]
    node = e[key]
    if node.value is None:
        return None
    at = parse_timestamp(node.value)
    if at is None:
        r.error(
            "schema.format",
            f"expect.{key} " + instant_fault(node.value, '"2026-11-21T10:10:00Z", or null'),
            node,
            name,
        )
        return _UNSET  # type: ignore[no-any-return]
    return at


def _preferred(r: SchemaReader, node: Node, name: str | None) -> dict[str, tuple[str, str | None]]:
    """``{agent: status}`` or ``{agent: {status: .., detail: ..}}``."""
    out: dict[str, tuple[str, str | None]] = {}
    keys = tuple(node.value) if node.is_mapping else ()
    for agent_id, value in r.mapping(node, "expect.preferred", (), keys, name).items():
        if value.is_mapping:
            v = r.mapping(value, f"expect.preferred.{agent_id}", ("status",), ("detail",), name)
            status = r.string(v.get("status"), f"preferred.{agent_id}.status", name)
            detail = r.string(v.get("detail"), f"preferred.{agent_id}.detail", name)
        else:
            status, detail = r.string(value, f"preferred.{agent_id}", name), None
        if status is not None:
            out[agent_id] = (status, detail)
    return out


def _check_rule_ids(
    r: SchemaReader, e: dict[str, Node], name: str | None, rule_ids: Collection[str]
) -> None:
    """Refuse ``expect.rule`` and ``expect.not_fired`` entries naming no rule of the ruleset.

    Review R34b F6: ``not_fired: [safegaurding]`` could never fire, so the case always passed.
    A built-in check (``constraint:safeguarding``, ``data:...``) is not a rule id and is allowed.
    """
    named = [e["rule"]] if "rule" in e else []
    if "not_fired" in e and e["not_fired"].is_sequence:
        named += e["not_fired"].value
    known = sorted(rule_ids)
    for node in named:
        rule_id = node.value
        if not isinstance(rule_id, str) or ":" in rule_id or rule_id in rule_ids:
            continue  # not a string: the reader says so; with ":": a built-in check
        hint = near_miss(rule_id, known)
        tip = (
            f"did you mean `{hint}`?"
            if hint
            else "its rules: "
            + ", ".join(f"`{k}`" for k in known[:12])
            + (f" and {len(known) - 12} more" if len(known) > 12 else "")
        )
        key = "rule" if node is e.get("rule") else "not_fired"
        r.error(
            "golden.unknown_rule",
            f"expect.{key} names rule `{rule_id}`, which is not in this ruleset "
            f"({tip}); name a rule of the ruleset, or a built-in check such as "
            "`constraint:safeguarding`",
            node,
            name,
        )


def _check_agent_ids(r: SchemaReader, node: Node, name: str | None, roster: Roster) -> None:
    """Refuse ``expect.agent``, ``excluded`` and ``eligible`` entries naming no roster agent.

    ``excluded: {nurse-fl-1: [licence]}`` (for ``nurse-fl-01``) failed every run with
    "expected ['licence'], got 'not evaluated'", as if matching had been skipped, and the
    typo was never named. ``preferred`` may name an agent off the roster (``not_on_roster``
    is a status it pins), so it is not checked.
    """
    known = sorted(agent.agent_id for agent in roster.agents)
    e: dict[str, Node] = node.value if node.is_mapping else {}  # not one: the reader says so
    named: list[tuple[str, object, int, int]] = []
    if "agent" in e:
        named.append(("agent", e["agent"].value, e["agent"].line, e["agent"].column))
    if "excluded" in e and e["excluded"].is_mapping:
        excluded = e["excluded"]
        named += [
            ("excluded", key, *excluded.key_positions.get(key, (excluded.line, excluded.column)))
            for key in excluded.value
        ]
    if "eligible" in e and e["eligible"].is_sequence:
        named += [("eligible", n.value, n.line, n.column) for n in e["eligible"].value]
    for key, agent_id, line, column in named:
        if not isinstance(agent_id, str) or agent_id in known:
            continue  # null agent: no agent; not a string: the reader says so
        tip = _agent_tip(agent_id, known)
        r.error(
            "golden.unknown_agent",
            f"expect.{key} names agent `{agent_id}`, who is not on this case's roster ({tip}); "
            "name an agent of the roster (agent ids are compared exactly)",
            line,
            name,
            column=column,
        )


def _agent_tip(agent_id: str, known: list[str]) -> str:
    """What the roster offers instead of ``agent_id``: its id in other letters, a near one, or all.

    Only the suggestion ignores letter case (``NURSE-FL-01`` for ``nurse-fl-01`` got the whole
    list of agents): the id itself is still compared exactly, here and when deciding.
    """
    folded = agent_id.casefold()
    same = [k for k in known if k.casefold() == folded]
    if same:
        return f"did you mean `{same[0]}`? only the letter case differs"
    hint = near_miss(agent_id, known) or next(
        (k for k in known if k.casefold() == near_miss(folded, [c.casefold() for c in known])),
        None,
    )
    return (
        f"did you mean `{hint}`?"
        if hint
        else (
            "its agents: "
            + ", ".join(f"`{k}`" for k in known[:12])
            + (f" and {len(known) - 12} more" if len(known) > 12 else "")
            if known
            else "it has no agents"
        )
    )


def _check_check_names(r: SchemaReader, checks: Node, agent_id: str, name: str | None) -> None:
    """Refuse an ``excluded`` entry naming no eligibility check (``golden.unknown_check``).

    ``excluded: {nurse-ca-01: [licnce]}`` loaded, then failed every run as a plain mismatch
    (``expected ['licnce'], got ['licence']``) that never said the name was not a check.
    """
    for node in checks.value if checks.is_sequence else ():
        check = node.value
        if not isinstance(check, str) or check in AGENT_CHECKS:
            continue  # not a string: the reader says so
        hint = near_miss(check, AGENT_CHECKS) or near_miss(check.casefold(), AGENT_CHECKS)
        tip = f" (did you mean `{hint}`?)" if hint else ""
        r.error(
            "golden.unknown_check",
            f"expect.excluded.{agent_id} names `{check}`, which is not an eligibility check"
            f"{tip}; name the checks the agent must fail, among: " + ", ".join(AGENT_CHECKS),
            node,
            name,
        )


def _expectation(
    r: SchemaReader, node: Node, name: str | None, rule_ids: Collection[str] | None
) -> Expectation | None:
    """A case's ``expect``; ``name`` labels its problems (``None``: the case's name is bad)."""
    e = r.mapping(
        node,
        "`expect`",
        ("outcome", "rule"),
        (
            "agent",
            "queue",
            "reasons",
            "priority",
            "excluded",
            "eligible",
            "not_fired",
            *_ADAPTIVE_KEYS,
        ),
        name,
    )
    if rule_ids is not None:
        _check_rule_ids(r, e, name, rule_ids)
    outcome = r.choice(e.get("outcome"), "expect.outcome", Outcome, name)
    rule = r.string(e.get("rule"), "expect.rule", name)
    if outcome is None or rule is None:
        return None
    agent = _UNSET
    if "agent" in e:
        agent = None if e["agent"].value is None else r.string(e["agent"], "expect.agent", name)
    excluded = {}
    if "excluded" in e:
        for agent_id, checks in r.mapping(
            e["excluded"],
            "expect.excluded",
            (),
            tuple(e["excluded"].value) if e["excluded"].is_mapping else (),
            name,
        ).items():
            excluded[agent_id] = frozenset(r.strings(checks, f"excluded.{agent_id}", name))
            _check_check_names(r, checks, agent_id, name)
    ladder_step = _UNSET
    if "ladder_step" in e:
        node_step = e["ladder_step"]
        ladder_step = (
            None if node_step.value is None else r.string(node_step, "expect.ladder_step", name)
        )
    continuity = _UNSET
    if "continuity" in e:
        continuity = (
            None
            if e["continuity"].value is None
            else r.choice(e["continuity"], "expect.continuity", ContinuityOutcome, name)
        )
    return Expectation(
        outcome=outcome,
        rule=rule,
        agent=agent,
        queue=r.string(e.get("queue"), "expect.queue", name),
        reasons=r.strings(e["reasons"], "expect.reasons", name) if "reasons" in e else None,
        priority=r.choice(e.get("priority"), "expect.priority", Priority, name),
        excluded=excluded,
        eligible=frozenset(r.strings(e["eligible"], "expect.eligible", name))
        if "eligible" in e
        else None,
        not_fired=r.strings(e.get("not_fired"), "expect.not_fired", name),
        ladder_step=ladder_step,
        relaxed=r.strings(e["relaxed"], "expect.relaxed", name) if "relaxed" in e else None,
        next_relaxation_at=_instant(r, e, "next_relaxation_at", name),
        held_for_preferred_until=_instant(r, e, "held_for_preferred_until", name),
        continuity=continuity,
        preferred=_preferred(r, e["preferred"], name) if "preferred" in e else {},
    )


def load_golden_file(path: Path, rule_ids: Collection[str] | None = None) -> list[GoldenCase]:
    """Read one golden file.

    Args:
        path: The YAML file.
        rule_ids: The ruleset's rule ids: an expected or ``not_fired`` rule outside them is a
            ``golden.unknown_rule`` problem. ``None`` skips that check.

    Returns:
        Its cases.

    Raises:
        GoldenFileError: With every problem in the file (``file:line``), each case's labelled
            with its name (``Problem.golden_case``).
    """
    try:
        source = read_yaml(path)
    except RulesetError as exc:
        raise GoldenFileError(list(exc.problems)) from None
    # Problems of one case carry its name in the reader's rule_id slot, moved to
    # ``Problem.golden_case`` before they are raised: a golden case is not a rule.
    r = SchemaReader(source.path)
    top = r.mapping(source.root, "the golden file", ("cases",), ("now", "roster"))
    default_now = parse_timestamp(top["now"].value) if "now" in top else None
    if "now" in top and default_now is None:
        r.error(
            "golden.now",
            "`now` " + instant_fault(top["now"].value, '"2026-11-21T10:00:00Z"'),
            top["now"],
        )
    default_roster = _load_roster(r, top["roster"], path.parent) if "roster" in top else None
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for node in r.items(top.get("cases"), "`cases`"):
        c = r.mapping(
            node, "a golden case", ("name", "case", "expect"), ("description", "now", "roster")
        )
        label = r.string(c.get("name"), "case name", None, NAME_RE)
        name = label or "?"
        if label is not None and name in seen:
            r.error(
                "golden.duplicate_name",
                f"golden case name `{name}` is used twice in this file; give each case its own "
                "name",
                node,
                label,
            )
        seen.add(name)
        now = parse_timestamp(c["now"].value) if "now" in c else default_now
        if now is None and "now" in c:
            r.error(
                "golden.now",
                "`now` " + instant_fault(c["now"].value, '"2026-11-21T10:00:00Z"'),
                c["now"],
                label,
            )
        elif now is None and "now" not in top:  # a file-level one that is wrong is reported
            r.error(
                "golden.now",
                'the case has no `now`: add `now: "2026-11-21T10:00:00Z"` (the instant it is '
                "decided at) to it, or once at the top of the file",
                node,
                label,
            )
        roster = (
            _load_roster(r, c["roster"], path.parent, label) if "roster" in c else default_roster
        )
        if roster is None and "roster" not in c and "roster" not in top:
            r.error(
                "golden.roster",
                "the case has no `roster`: add `roster: roster.yaml` (a file beside this one) "
                "or an inline roster to it, or once at the top of the file",
                node,
                label,
            )
        case = None
        if "case" in c:
            try:
                case = parse_case(to_data(c["case"]))
            except RequestError as exc:
                positions = _field_positions(c["case"], "case")
                for v in _golden_violations(exc):
                    line, column = _position(positions, v.field)
                    r.error("golden.case", str(v), line, label, column=column)
        expect = _expectation(r, c["expect"], label, rule_ids) if "expect" in c else None
        if roster is not None and "expect" in c:
            _check_agent_ids(r, c["expect"], label, roster)
        if now and roster and case and expect:
            description = r.string(c.get("description"), "description", label) or ""
            cases.append(
                GoldenCase(name, description, source.path, node.line, now, case, roster, expect)
            )
    if r.problems:
        # In the order written (this file first, then roster files); a roster file several
        # cases name is read once per case: its problems once each.
        found = sorted(
            dict.fromkeys(r.problems), key=lambda p: (p.file != r.file, p.line, p.column)
        )
        raise GoldenFileError([replace(p, rule_id=None, golden_case=p.rule_id) for p in found])
    return cases


def golden_files(ruleset_dir: Path) -> list[Path]:
    """The golden files beside a ruleset: ``golden/*.yaml`` and ``*.yml``, sorted by name.

    Review R34b F6: ``*.yml`` files were skipped without a word.
    """
    folder = ruleset_dir / GOLDEN_DIR
    return sorted(
        path
        for path in (folder.iterdir() if folder.is_dir() else ())
        if path.suffix in GOLDEN_SUFFIXES and not path.name.startswith("roster") and path.is_file()
    )


def load_golden(ruleset_dir: Path, rule_ids: Collection[str] | None = None) -> list[GoldenCase]:
    """Every golden case beside a ruleset (``golden_files``), in file-name order.

    Args:
        ruleset_dir: The version's directory.
        rule_ids: The ruleset's rule ids, to refuse expectations naming another (see
            ``load_golden_file``).

    Raises:
        GoldenFileError: With the problems of every file that has any, or ``golden.none`` when
            there is no golden case at all (nothing pins what the version decides).
    """
    cases: list[GoldenCase] = []
    problems: list[Problem] = []
    for path in golden_files(ruleset_dir):
        try:
            cases += load_golden_file(path, rule_ids)
        except RulesetError as exc:
            problems += exc.problems
    if not cases and not problems:
        problems.append(
            Problem(
                "golden.none",
                f"no golden cases in {GOLDEN_DIR}/*.yaml or *.yml beside this version: add a "
                'file of cases that pin what it must decide (docs/rulesets.md, "Golden cases")',
                str(ruleset_dir / GOLDEN_DIR),
            )
        )
    if problems:
        raise GoldenFileError(list(dict.fromkeys(problems)))  # a shared roster file: once
    return cases


def check_expectation(expect: Expectation, decision: Decision) -> list[str]:
    """Every way a decision differs from the expectation (empty: it matches)."""
    out = []

    def differ(what: str, want: object, got: object) -> None:
        if want != got:
            out.append(f"{what}: expected {want!r}, got {got!r}")

    differ("outcome", expect.outcome.value, decision.outcome.value)
    differ("rule", expect.rule, decision.rule_id)
    if expect.agent is not _UNSET:
        differ("agent", expect.agent, decision.agent_id)
    if expect.queue is not None:
        differ("queue", expect.queue, decision.queue)
    if expect.reasons is not None:
        differ("reasons", list(expect.reasons), list(decision.reason_codes))
    if expect.priority is not None:
        differ("priority", expect.priority.value, decision.priority.value)
    matching = decision.explanation.matching
    verdicts = {v.agent_id: v for v in matching.agents} if matching else {}
    for agent_id, checks in sorted(expect.excluded.items()):
        verdict = verdicts.get(agent_id)
        got = sorted(f.check for f in verdict.failures) if verdict else "not evaluated"
        differ(f"excluded {agent_id}", sorted(checks), got)
    if expect.eligible is not None:
        differ(
            "eligible",
            sorted(expect.eligible),
            sorted(a for a, v in verdicts.items() if v.eligible),
        )
    fired = {t.rule_id for t in decision.explanation.rules if t.fired}
    out.extend(
        f"rule {rule_id}: expected not to fire, but it fired"
        for rule_id in expect.not_fired
        if rule_id in fired
    )
    out += _check_adaptive(expect, decision)
    return out


def _instant_text(at: datetime | None) -> str | None:
    return None if at is None else format_timestamp(at)


def _check_adaptive(expect: Expectation, decision: Decision) -> list[str]:
    """Mismatches in the ladder and continuity parts of a decision."""
    out = []

    def differ(what: str, want: object, got: object) -> None:
        if want != got:
            out.append(f"{what}: expected {want!r}, got {got!r}")

    relaxation = decision.explanation.relaxation
    if expect.ladder_step is not _UNSET:
        steps = relaxation.steps if relaxation is not None else ()
        active = next((s.name for s in steps if s.status is StepStatus.ACTIVE), None)
        differ("ladder_step", expect.ladder_step, active)
    if expect.relaxed is not None:
        got = list(relaxation.relaxed) if relaxation is not None else []
        differ("relaxed", list(expect.relaxed), got)
    if expect.next_relaxation_at is not _UNSET:
        differ(
            "next_relaxation_at",
            _instant_text(expect.next_relaxation_at),
            _instant_text(decision.next_relaxation_at),
        )
    if expect.held_for_preferred_until is not _UNSET:
        differ(
            "held_for_preferred_until",
            _instant_text(expect.held_for_preferred_until),
            _instant_text(decision.held_for_preferred_until),
        )
    continuity = decision.explanation.continuity
    if expect.continuity is not _UNSET:
        got_outcome = continuity.outcome.value if continuity is not None else None
        want = expect.continuity.value if expect.continuity is not None else None
        differ("continuity", want, got_outcome)
    traces = {p.agent_id: p for p in continuity.preferred} if continuity is not None else {}
    for agent_id, (status, detail) in sorted(expect.preferred.items()):
        trace = traces.get(agent_id)
        if trace is None:
            out.append(f"preferred {agent_id}: expected {status!r}, got not named")
            continue
        differ(f"preferred {agent_id}", status, trace.status)
        if detail is not None:
            differ(f"preferred {agent_id} detail", detail, trace.detail)
    return out


def run_golden(cases: list[GoldenCase], decider: Decider) -> list[GoldenResult]:
    """Decide every golden case and compare with its expectation."""
    results = []
    for case in cases:
        decision = decider(case.case, case.roster, case.now)
        results.append(
            GoldenResult(case, decision, tuple(check_expectation(case.expect, decision)))
        )
    return results


def rule_coverage(
    results: list[GoldenResult], rules: tuple[Rule, ...]
) -> dict[str, tuple[int, int]]:
    """Rule id -> (cases it decided, cases where it did not fire).

    The catch-all always fires, so for it the second count is cases it did not decide.
    """
    catch_all = {r.rule_id for r in rules if is_catch_all(r.when)}
    cover = {r.rule_id: [0, 0] for r in rules}
    for result in results:
        for trace in result.decision.explanation.rules:
            if trace.rule_id in cover:
                cover[trace.rule_id][0] += trace.decided
                missed = not trace.decided if trace.rule_id in catch_all else not trace.fired
                cover[trace.rule_id][1] += missed
    return {rule_id: (d, n) for rule_id, (d, n) in cover.items()}
