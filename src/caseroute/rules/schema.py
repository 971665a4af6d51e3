"""Schema pass: check a ruleset's YAML shape and read it into typed sections.

Unknown keys, missing keys and wrong types are all collected (never stop at the first), each
with ``file:line``, the rule id when inside a rule, and what to write instead. Conditions are
kept as text here; ``compiler.py`` parses and type-checks them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from caseroute.domain.case import Intent, RequiredSkill
from caseroute.domain.decision import Priority
from caseroute.domain.errors import Problem, Severity
from caseroute.domain.flag_spelling import resembles
from caseroute.domain.jurisdiction import SUBDIVISION_EXAMPLE, licensing_code, needs_subdivision
from caseroute.domain.limits import quote_value
from caseroute.domain.place_codes import place_problem
from caseroute.domain.reader import (
    ATTRIBUTE_NAME,
    FLAG,
    IDENTIFIER,
    JURISDICTION,
    MISSING,
    NAME,
    RULESET_MAX_CHARS,
    VERSION,
    TextPattern,
    describe_type,
    describe_value,
    near_miss,
    not_boolean,
    not_date,
    not_list,
    not_object,
    not_one_of,
    not_string,
    number_problem,
    read_day,
    short_flag,
    text_problem,
    unknown_key_tip,
)
from caseroute.domain.roster import AgentStatus, Role
from caseroute.domain.territory import iso_within
from caseroute.rules.adaptive import (
    MAX_DURATION_DAYS,
    LadderGaps,
    read_continuity,
    read_ladders,
    read_requirement_names,
)
from caseroute.rules.areas import check_areas, read_areas
from caseroute.rules.fields import (
    ATTRIBUTE_KINDS,
    ENGINE_MAX_FACT_PROPERTIES,
    MAX_ATTRIBUTES,
    FieldType,
)
from caseroute.rules.model import (
    Compact,
    CompactMember,
    Constraints,
    ContinuityPolicy,
    EscalateAction,
    ExceptionAction,
    Ladder,
    QueueTarget,
    RankingCriterion,
    Register,
    Requirements,
    RouteAction,
    Scalar,
    SignalSettings,
)
from caseroute.rules.source import Node

# The identifier shapes are ``caseroute.domain.reader``'s table, shared with request parsing;
# a ruleset bounds each at RULESET_MAX_CHARS. These bounded forms (fullmatch only: `$` also
# matches before a trailing newline) serve checks outside the schema pass.
NAME_RE = NAME.bounded(RULESET_MAX_CHARS)
FLAG_RE = FLAG.bounded(RULESET_MAX_CHARS)  # the form normalise_flag gives
VERSION_RE = VERSION.bounded(RULESET_MAX_CHARS)

PendingAction = RouteAction | EscalateAction | ExceptionAction


@dataclass(slots=True)
class RawRule:
    """A rule after the schema pass: condition still text."""

    rule_id: str
    description: str
    when_text: str
    when_node: Node
    action: PendingAction | None  # None: the action had problems (already reported)
    uses_by_intent: bool
    priority: Priority
    line: int
    index: int = 0
    """Its position among the rules as written (0 first), counting rules that did not read."""


DEFAULT_RANKING = (
    RankingCriterion.LOWEST_UTILISATION,
    RankingCriterion.HIGHEST_SKILL_LEVEL,
    RankingCriterion.LONGEST_IDLE,
)
"""Ranking criteria when `matching.ranking` is not given (then `agent_id`, always)."""


@dataclass(slots=True)
class RawRuleset:
    """A ruleset after the schema pass."""

    name: str = ""
    version: str = ""
    description: str = ""
    owner: str = ""
    params: dict[str, Scalar | tuple[Scalar, ...]] = field(default_factory=dict)
    param_lines: dict[str, int] = field(default_factory=dict)
    signals: SignalSettings = field(default_factory=SignalSettings)
    signal_params: set[str] = field(default_factory=set)
    attributes: dict[str, FieldType] = field(default_factory=dict)
    constraints: Constraints | None = None
    constraints_line: int = 0
    flag_places: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each hard flag read from ``constraints`` (by meaning: ``safeguarding``, ``consent``) ->
    the line and column of its ``flag:`` value (lint reports there)."""
    compacts: tuple[Compact, ...] = ()
    registers: tuple[Register, ...] = ()
    register_lines: dict[str, int] = field(default_factory=dict)  # name -> licence_types line
    areas: dict[str, str] = field(default_factory=dict)
    """``areas:``: each area -> the area it lies within (``rules/areas.py``)."""
    area_places: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each area of ``areas`` -> the line and column of its key (lint reports there)."""
    statuses: tuple[AgentStatus, ...] = (AgentStatus.AVAILABLE,)
    ranking: tuple[RankingCriterion, ...] = DEFAULT_RANKING
    ranking_line: int = 0
    """Line of `matching.ranking` when given and read without a problem (0 otherwise)."""
    queues: dict[Intent, str] = field(default_factory=dict)
    queues_line: int = 0
    queue_gaps: set[str] = field(default_factory=set)
    """Intents under `queues` written but not read (a misspelt key such as `clinicl`, or a
    queue name that is not valid; each already an error): not also "no queue for" them."""
    rules: list[RawRule] = field(default_factory=list)
    rules_line: int = 0
    rules_written: int = 0
    """How many entries `rules:` lists, read or not (``rules`` holds those that read)."""
    rules_listed: bool = False
    """Whether `rules:` was written as a list: when it was not, or is missing, that is the
    schema's error, and an empty list is not also reported (``rules.empty``)."""
    unread_rules: set[int] = field(default_factory=set)
    """Positions (``RawRule.index``) of rules written but not read (each already an error)."""
    ladders: dict[str, Ladder] = field(default_factory=dict)
    continuity: ContinuityPolicy | None = None
    ladder_gaps: LadderGaps = field(default_factory=LadderGaps)
    """What of the ladders and soft lists could not be read (already errors): the ladder
    checks do not report its consequences as further findings."""
    constraint_gaps: set[str] = field(default_factory=set)
    """Hard constraints written but not read (each already an error): ``consent``, or an
    intent under ``licence`` (``clinical``, ...); lint does not also warn they are absent."""
    unreadable_sections: set[str] = field(default_factory=set)
    """Top-level sections whose typed value could not be built (the problems are already
    reported), so a compiler pass that needs one is skipped instead of adding noise. Every
    section when the file is not a mapping; otherwise ``constraints``, the one a pass needs."""


def misspelt_keys(node: Node, allowed: tuple[str, ...]) -> frozenset[str]:
    """The allowed keys a mapping node's unknown keys most likely misspell (``near_miss``).

    ``SchemaReader.mapping`` reports each unknown key with its "did you mean"; what was meant
    is then not also reported missing, nor its absence warned about by lint.
    """
    if not node.is_mapping:
        return frozenset()
    meant = (near_miss(key, allowed) for key in node.value if key not in allowed)
    return frozenset(key for key in meant if key is not None)


class SchemaReader:
    """Reads typed values out of nodes, recording a Problem for each mismatch."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.ladder_gaps = LadderGaps()

    def error(
        self,
        code: str,
        message: str,
        node: Node | int,
        rule_id: str | None = None,
        severity: Severity = Severity.ERROR,
        column: int | None = None,
    ) -> None:
        """Record a problem at a node (or a bare line)."""
        line = node if isinstance(node, int) else node.line
        col = column if column is not None else (0 if isinstance(node, int) else node.column)
        self.problems.append(Problem(code, message, self.file, line, col, rule_id, severity))

    def mapping(
        self,
        node: Node,
        what: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
        rule_id: str | None = None,
        homes: dict[str, str] | None = None,
        elsewhere: frozenset[str] = frozenset(),
    ) -> dict[str, Node]:
        """The known entries of a mapping node; unknown and missing keys are problems.

        Unknown keys are reported and left out of the result, so callers only ever see the
        keys they allowed (an unknown intent never reaches ``Intent(...)``). ``homes`` maps a
        key that belongs elsewhere in the file to where (``under `then```): such a key
        written here is almost always mis-indented, and the message says so rather than
        listing the keys this place allows. A required key in ``elsewhere`` is written at
        another depth (its own ``schema.unknown_key`` says where it belongs), so it is not
        also reported missing here: one mistake, one finding.
        """
        if not node.is_mapping:
            self.error("schema.type", f"{what} {not_object(node.value)}", node, rule_id)
            return {}
        allowed = required + optional
        entries: dict[str, Node] = node.value
        for key in entries:
            if key not in allowed:
                kline, kcol = node.key_positions.get(key, (node.line, node.column))
                home = homes.get(key) if homes is not None and isinstance(key, str) else None
                tip = (
                    f": `{key}` belongs {home}; check its indentation (YAML reads a key's "
                    "place from how far it is indented)"
                    if home is not None
                    else unknown_key_tip(key, allowed)
                )
                self.error(
                    "schema.unknown_key",
                    f"unknown field `{key}` in {what}{tip}",
                    kline,
                    rule_id,
                    column=kcol,
                )
        meant = misspelt_keys(node, allowed)
        for key in required:
            # A misspelt key is one mistake: its unknown_key already says "did you mean".
            if key not in entries and key not in meant and key not in elsewhere:
                self.error("schema.missing_key", f"`{key}` {MISSING} in {what}", node, rule_id)
        return {key: value for key, value in entries.items() if key in allowed}

    def string(
        self,
        node: Node | None,
        what: str,
        rule_id: str | None = None,
        pattern: TextPattern | re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        """A non-empty string; with a ``TextPattern``, of that shape and at most 64 characters.

        A bare regex (with its ``hint``) is checked as given, for shapes outside the table.
        """
        if node is None:
            return None
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool) and pattern is None:
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            self.error("schema.type", f"{what} {not_string(value)}", node, rule_id)
            return None
        if isinstance(pattern, TextPattern):
            problem, text = text_problem(value, pattern, RULESET_MAX_CHARS)
            if problem is not None:
                self.error("schema.format", f"{what} {problem}", node, rule_id)
            return text
        if pattern is not None and not pattern.fullmatch(value):
            self.error(
                "schema.format", f"{what} {quote_value(value)} is not valid{hint}", node, rule_id
            )
            return None
        return value

    def number(self, node: Node | None, what: str, rule_id: str | None = None) -> float | None:
        """A finite number."""
        if node is None:
            return None
        problem = number_problem(node.value)
        if problem is not None:
            self.error(_number_code(node.value), f"{what} {problem}", node, rule_id)
            return None
        return float(node.value)

    def integer(
        self, node: Node | None, what: str, low: int, high: int, rule_id: str | None = None
    ) -> int | None:
        """An integer within [low, high]."""
        if node is None:
            return None
        problem = number_problem(node.value, integer=True, low=low, high=high)
        if problem is not None:
            code = _number_code(node.value, integer=True)
            self.error(code, f"{what} {problem}", node, rule_id)
            return None
        return int(node.value)

    def boolean(
        self, node: Node | None, what: str, *, default: bool, rule_id: str | None = None
    ) -> bool:
        """true/false (YAML 1.2: yes/no are strings, so they are rejected here)."""
        if node is None:
            return default
        if not isinstance(node.value, bool):
            self.error("schema.type", f"{what} {not_boolean(node.value)}", node, rule_id)
            return default
        return node.value

    def day(self, node: Node | None, what: str) -> date | None:
        """A date written YYYY-MM-DD."""
        if node is None:
            return None
        day = read_day(node.value)
        if day is None:
            self.error("schema.type", f"{what} {not_date(node.value)}", node)
        return day

    def items(self, node: Node | None, what: str, rule_id: str | None = None) -> list[Node]:
        """Elements of a sequence node."""
        if node is None:
            return []
        if not node.is_sequence:
            self.error("schema.type", f"{what} {not_list(node.value)}", node, rule_id)
            return []
        items: list[Node] = node.value
        return items

    def strings(
        self,
        node: Node | None,
        what: str,
        rule_id: str | None = None,
        pattern: TextPattern | re.Pattern[str] | None = None,
        hint: str = "",
    ) -> tuple[str, ...]:
        """A list of strings."""
        out = []
        for item in self.items(node, what, rule_id):
            value = self.string(item, f"each entry of {what}", rule_id, pattern, hint)
            if value is not None:
                out.append(value)
        return tuple(out)

    def choice(
        self, node: Node | None, what: str, kind: type[Any], rule_id: str | None = None
    ) -> Any:
        """One member of a StrEnum."""
        if node is None:
            return None
        members = [m.value for m in kind]
        if not isinstance(node.value, str) or node.value not in members:
            problem = not_one_of(node.value, members, near_miss(node.value, members))
            self.error("schema.value", f"{what} {problem}", node, rule_id)
            return None
        return kind(node.value)


def _number_code(value: object, *, integer: bool = False) -> str:
    """``schema.type`` for a value that is not a number at all, else ``schema.range``."""
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    return "schema.type" if isinstance(value, bool) or not ok_type else "schema.range"


def _kind(node: Node) -> str:
    """What kind of value a node holds, worded as the shared reader words it."""
    return describe_type(node.value)


_TOP = ("ruleset", "version", "description", "owner", "constraints", "rules")
_TOP_OPTIONAL = (
    "params",
    "signals",
    "attributes",
    "compacts",
    "registers",
    "areas",
    "matching",
    "queues",
    "ladders",
    "continuity",
)
_TOP_HOMES = {
    **dict.fromkeys(("safeguarding", "licence", "consent"), "under `constraints`"),
    **dict.fromkeys(("statuses", "ranking"), "under `matching`"),
    **dict.fromkeys(
        ("sla_at_risk_minutes", "negative_sentiment", "sentiment_window"), "under `signals`"
    ),
    **dict.fromkeys(("window", "hold"), "under `continuity`"),
    **dict.fromkeys(("id", "when", "then"), "in a rule under `rules:` (`- id: ...`)"),
}
"""Where a key of a section belongs, for one written at the top level (not indented)."""
_SECTION_HOMES = dict.fromkeys((*_TOP, *_TOP_OPTIONAL), "at the top level (not indented)")
"""For a top-level key written indented, so read inside the section above it."""
SECTIONS = _TOP + _TOP_OPTIONAL
"""Every top-level section a ruleset file may hold."""


def read_ruleset(root: Node, file: str) -> tuple[RawRuleset, list[Problem]]:
    """Run the schema pass over a ruleset document.

    Args:
        root: The parsed YAML document.
        file: Its path, for problems.

    Returns:
        The typed sections and every problem found.
    """
    r = SchemaReader(file)
    out = RawRuleset()
    top = r.mapping(root, "the ruleset file", _TOP, _TOP_OPTIONAL, homes=_TOP_HOMES)
    out.name = (
        r.string(
            top.get("ruleset"),
            "`ruleset` (the name)",
            pattern=NAME,
        )
        or ""
    )
    out.version = _read_version(r, top.get("version"))
    out.description = r.string(top.get("description"), "`description`") or ""
    out.owner = r.string(top.get("owner"), "`owner`") or ""
    _read_params(r, top.get("params"), out)
    _read_signals(r, top.get("signals"), out)
    _read_attributes(r, top.get("attributes"), out, root.key_positions.get("attributes"))
    if not root.is_mapping:  # already reported: no section of it can be read
        out.unreadable_sections.update(SECTIONS)
    if "constraints" in top:
        misplaced = frozenset(
            key
            for key in (root.value if root.is_mapping else {})
            if _TOP_HOMES.get(key) == "under `constraints`"
        )
        out.constraints = _read_constraints(
            r, top["constraints"], out.constraint_gaps, misplaced, out.flag_places
        )
        out.constraints_line = top["constraints"].line
        if out.constraints is None:  # each way to get None reported a problem first
            out.unreadable_sections.add("constraints")
    elif root.is_mapping:  # the mapping check reported it missing
        out.unreadable_sections.add("constraints")
    out.compacts = _read_compacts(r, top.get("compacts"))
    out.registers = _read_registers(r, top.get("registers"), out.register_lines)
    out.areas, area_keys = read_areas(r, top.get("areas"))
    out.area_places = {area: (at.line, at.column) for area, at in area_keys.items()}
    check_areas(r, out.areas, area_keys)
    _read_matching(r, top.get("matching"), out)
    if "queues" in top:
        out.queues_line = top["queues"].line
        intents = tuple(i.value for i in Intent)
        out.queue_gaps |= misspelt_keys(top["queues"], intents)
        for key, node in r.mapping(
            top["queues"], "`queues`", (), intents, homes=_SECTION_HOMES
        ).items():
            queue = r.string(node, f"queue for intent `{key}`", pattern=NAME)
            if queue is not None:
                out.queues[Intent(key)] = queue
            else:
                out.queue_gaps.add(key)
    out.ladders = read_ladders(r, top.get("ladders"))
    out.continuity = read_continuity(r, top.get("continuity"))
    if "rules" in top:
        out.rules_line = top["rules"].line
        out.rules_listed = top["rules"].is_sequence
        nodes = r.items(top["rules"], "`rules`")
        out.rules_written = len(nodes)
        for index, node in enumerate(nodes):
            rule = _read_rule(r, node, out.ladders)
            if rule is None:
                out.unread_rules.add(index)
            else:
                rule.index = index
                out.rules.append(rule)
    out.ladder_gaps = r.ladder_gaps
    return out, r.problems


def version_problem(value: object) -> str | None:
    """What is wrong with a version as YAML read it, worded to follow its key (None: nothing).

    One check and one wording for ``ruleset.yaml``'s ``version:`` and the versions a
    ``serving.yaml`` names. A number is refused, never taken as its text: YAML reads an
    unquoted ``2026.10`` as the float 2026.1, so the version recorded in every decision, audit
    record and engine name would silently not be the one written (docs walk, finding 4).
    Surrounding whitespace is named as such, since the advice then is to remove it (finding 10).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f"is the number {describe_value(value)} to YAML, not text (YAML reads an unquoted "
            'version such as 2026.10 as the number 2026.1): quote it as written, e.g. "2026.10"'
        )
    if isinstance(value, str) and value != value.strip() and VERSION_RE.fullmatch(value.strip()):
        return (
            f"must not start or end with whitespace; got {quote_value(value)}: write "
            f'"{value.strip()}"'
        )
    problem, _ = text_problem(value, VERSION, RULESET_MAX_CHARS)
    return problem


def _read_version(r: SchemaReader, node: Node | None) -> str:
    # The text must be a version: it is recorded in every decision, audit record and engine
    # name. A number is refused like serving.yaml refuses one (it was taken as its text).
    if node is None:
        return ""
    problem = version_problem(node.value)
    if problem is not None:
        value = node.value
        code = "schema.format" if isinstance(value, str) and value.strip() else "schema.type"
        r.error(code, f"`version` {problem}", node)
        return ""
    return str(node.value)


def _read_params(r: SchemaReader, node: Node | None, out: RawRuleset) -> None:
    if node is None:
        return
    if not node.is_mapping:
        r.error("schema.type", f"`params` {not_object(node.value)}", node)
        return
    for name, value in node.value.items():
        line, column = node.key_positions.get(name, (value.line, value.column))
        problem, _ = text_problem(name, ATTRIBUTE_NAME, RULESET_MAX_CHARS, noun="param name")
        if problem is not None:
            r.error("schema.format", problem, line, column=column)
            continue
        if value.is_sequence:
            items = []
            for item in value.value:
                if isinstance(item.value, str | int | float | bool) and item.value is not None:
                    items.append(item.value)
                else:
                    r.error(
                        "schema.type",
                        f"param `{name}` lists must hold strings, numbers or "
                        f"booleans, got {_kind(item)}",
                        item,
                    )
            out.params[name] = tuple(items)
        elif isinstance(value.value, str | int | float | bool):
            out.params[name] = value.value
        else:
            r.error(
                "schema.type",
                f"param `{name}` must be a string, number, boolean or a list "
                f"of them, got {_kind(value)}",
                value,
            )
            continue
        out.param_lines[name] = line


def _signal_number(r: SchemaReader, node: Node | None, what: str, out: RawRuleset) -> float | None:
    if node is not None and isinstance(node.value, str) and node.value.startswith("params."):
        name = node.value.removeprefix("params.")
        value = out.params.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            meant = None if name in out.params else near_miss(name, sorted(out.params))
            if meant is not None:
                # The param it meant is not also "never used; remove it" (review R34b F2).
                out.signal_params.add(meant)
            tip = (
                f"did you mean `params.{meant}`?"
                if meant is not None
                else "define it under `params`"
                if name not in out.params
                else f"make `{node.value}` a number"
            )
            r.error(
                "schema.unknown_param",
                f"{what} refers to `{node.value}`, which is not a numeric param; {tip}",
                node,
            )
            return None
        out.signal_params.add(name)
        return float(value)
    return r.number(node, what)


MAX_AT_RISK_MINUTES = MAX_DURATION_DAYS * 1440
"""The largest ``signals.sla_at_risk_minutes``: the longest duration a ruleset may write."""


def _signal_source(node: Node, out: RawRuleset) -> str:
    """A signal's value as written, and its param: ``-60 (from `params.t`, line 9)``."""
    if isinstance(node.value, str) and node.value.startswith("params."):
        name = node.value.removeprefix("params.")
        value = describe_value(out.params.get(name))
        return f"{value} (from `{node.value}`, line {out.param_lines.get(name, node.line)})"
    return describe_value(node.value)


def _read_signals(r: SchemaReader, node: Node | None, out: RawRuleset) -> None:
    if node is None:
        return
    entries = r.mapping(
        node,
        "`signals`",
        (),
        ("sla_at_risk_minutes", "negative_sentiment", "sentiment_window"),
        homes=_SECTION_HOMES,
    )
    defaults = SignalSettings()
    at_risk = _signal_number(
        r, entries.get("sla_at_risk_minutes"), "signals.sla_at_risk_minutes", out
    )
    # Invariant: a clock below 0 minutes is breached before it can be at risk, so a threshold
    # of 0 or less would make `at_risk` never hold without a word; refuse it here instead.
    if at_risk is not None and not 0.0 < at_risk <= MAX_AT_RISK_MINUTES:
        r.error(
            "schema.range",
            f"signals.sla_at_risk_minutes must be more than 0 and at most "
            f"{MAX_AT_RISK_MINUTES} ({MAX_DURATION_DAYS} days), got "
            f"{_signal_source(entries['sla_at_risk_minutes'], out)}: a clock is "
            "at_risk when at most this many minutes are left, and breached below 0",
            entries["sla_at_risk_minutes"],
        )
        at_risk = None
    negative = _signal_number(
        r, entries.get("negative_sentiment"), "signals.negative_sentiment", out
    )
    if negative is not None and not -1.0 <= negative <= 1.0:
        r.error(
            "schema.range",
            "signals.negative_sentiment must be within [-1, 1], got "
            + _signal_source(entries["negative_sentiment"], out),
            entries["negative_sentiment"],
        )
        negative = None
    window = r.integer(entries.get("sentiment_window"), "signals.sentiment_window", 1, 100)
    out.signals = SignalSettings(
        at_risk if at_risk is not None else defaults.sla_at_risk_minutes,
        negative if negative is not None else defaults.negative_sentiment,
        window if window is not None else defaults.sentiment_window,
    )


def _read_attributes(
    r: SchemaReader, node: Node | None, out: RawRuleset, key: tuple[int, int] | None
) -> None:
    if node is None:
        return
    if not node.is_mapping:
        r.error(
            "schema.type",
            "`attributes` must map attribute names to string, number or boolean",
            node,
        )
        return
    if len(node.value) > MAX_ATTRIBUTES:
        r.error(
            "limit.attributes",
            f"{len(node.value)} attributes are declared; the rule engine can carry at most "
            f"{MAX_ATTRIBUTES} on a case (its facts hold {ENGINE_MAX_FACT_PROPERTIES} values, "
            "and the built-in fields use the rest). Declare only the attributes rules read",
            key[0] if key else node.line,
            column=key[1] if key else node.column,
        )
    for name, kind_node in node.value.items():
        problem, _ = text_problem(name, ATTRIBUTE_NAME, RULESET_MAX_CHARS)
        if problem is not None:
            r.error("schema.format", problem, kind_node)
            continue
        kind = ATTRIBUTE_KINDS.get(str(kind_node.value))
        if kind is None:
            r.error(
                "schema.value",
                f"attribute `{name}` must be declared as string, number or "
                f"boolean, got {_kind(kind_node)}",
                kind_node,
            )
            continue
        out.attributes[name] = FieldType(kind, optional=True, doc="declared case attribute")


def _read_constraints(
    r: SchemaReader,
    node: Node,
    gaps: set[str],
    misplaced: frozenset[str] = frozenset(),
    flag_places: dict[str, tuple[int, int]] | None = None,
) -> Constraints | None:
    """The ``constraints`` section; ``gaps`` gets what was written but could not be read.

    ``misplaced``: its keys written at the top level instead (reported there, with where they
    belong), so not also missing here, nor absent for lint. ``flag_places`` gets where each
    hard flag that read is written, by meaning.
    """
    places = {} if flag_places is None else flag_places
    allowed = ("safeguarding", "licence", "consent")
    entries = r.mapping(
        node,
        "`constraints`",
        allowed[:2],
        allowed[2:],
        homes=_SECTION_HOMES,
        elsewhere=misplaced,
    )
    gaps.update(misplaced)
    gaps.update(misspelt_keys(node, allowed))  # `consnt:` meant consent: it is not missing
    flag = queue = None
    sg: dict[str, Node] = {}
    cs: dict[str, Node] = {}
    if "safeguarding" in entries:
        sg = r.mapping(entries["safeguarding"], "`constraints.safeguarding`", ("flag", "queue"))
        flag = _read_flag(r, sg.get("flag"), "constraints.safeguarding.flag")
        if flag is not None:
            places["safeguarding"] = (sg["flag"].line, sg["flag"].column)
        queue = r.string(sg.get("queue"), "constraints.safeguarding.queue", pattern=NAME)
    consent = None
    if "consent" in entries:
        cs = r.mapping(entries["consent"], "`constraints.consent`", ("flag",))
        consent = _read_flag(r, cs.get("flag"), "constraints.consent.flag")
        if consent is None:
            gaps.add("consent")
        else:
            places["consent"] = (cs["flag"].line, cs["flag"].column)
    licence: dict[Intent, tuple[str, ...]] = {}
    if "licence" not in entries and "licence" not in gaps:
        gaps.add("licence")  # required: `schema.missing_key` said so; not also lint.no_licence
    if "licence" in entries:
        intents = tuple(i.value for i in Intent)
        lic = r.mapping(entries["licence"], "`constraints.licence`", (), intents)
        if not entries["licence"].is_mapping:
            gaps.update(intents)  # which intents it meant to license is unknown
        gaps.update(misspelt_keys(entries["licence"], intents))
        for intent, types in lic.items():
            values = r.strings(types, f"constraints.licence.{intent}", pattern=IDENTIFIER)
            if types.is_sequence and not types.value:  # other ways to get none were reported
                r.error(
                    "schema.value",
                    f"constraints.licence.{intent} must list at least one "
                    "licence type (remove the key if none is required)",
                    types,
                )
            if not types.is_sequence or len(values) != len(types.value) or not values:
                # An entry that did not read is an error already: which types the intent
                # meant is unknown, so no rule is also told it "allows only" what was left.
                gaps.add(intent)
            licence[Intent(intent)] = values
    _check_flag_meanings(
        r, flag, consent, {"safeguarding": sg.get("flag"), "consent": cs.get("flag")}
    )
    if flag is None or queue is None:
        return None
    return Constraints(flag, queue, consent, licence)


def _read_flag(r: SchemaReader, node: Node | None, what: str) -> str | None:
    """A hard-constraint flag: ``FLAG``'s shape and no shorter than a request may carry."""
    flag = r.string(node, what, pattern=FLAG)
    short = None if flag is None or node is None else short_flag(flag)
    if short is not None and node is not None:
        r.error(
            "schema.format",
            f"{what}: {short}, and a request carrying one is refused (INVALID_ARGUMENT at "
            "`case.flags[i]`), so no case has it and the constraint never applies; write the "
            "flag in full",
            node,
        )
        return None
    return flag


def _check_flag_meanings(
    r: SchemaReader, flag: str | None, consent: str | None, nodes: dict[str, Node | None]
) -> None:
    """One flag, one meaning: refuse a hard flag that is (or looks like) one of another meaning.

    A consent flag named ``safeguarding`` passed every check, and a case flagged
    ``safeguarding`` was then queued as consent missing and never escalated (review R32a F5).
    """
    if flag is not None and consent is not None and _same_meaning(consent, flag):
        r.error(
            "constraints.flag_clash",
            f"constraints.consent.flag {consent!r} is or looks like the safeguarding flag "
            f"{flag!r}: one flag cannot mean both; give consent its own flag (e.g. "
            "consent_missing)",
            nodes["consent"] or 0,
        )
        return
    for name, meaning, other, kind in (
        (consent, "consent", "safeguarding", "safeguarding"),
        (flag, "safeguarding", "consent_missing", "consent"),
    ):
        if name is not None and _same_meaning(name, other):
            r.error(
                "constraints.flag_clash",
                f"constraints.{meaning}.flag {name!r} is or looks like caseroute's conventional "
                f"{kind} flag {other!r}: a case flagged {other!r} would be taken for "
                f"{meaning}; name {meaning} with a flag of its own",
                nodes[meaning] or 0,
            )


def _same_meaning(flag: str, other: str) -> bool:
    """Whether two hard flags would be taken for one another (equal or a near spelling)."""
    return flag == other or resembles(flag, other) or resembles(other, flag)


def _overlapping(member: CompactMember, other: CompactMember) -> bool:
    """Whether two membership periods of one jurisdiction share a day (open ends run forever)."""
    return (other.until is None or member.since <= other.until) and (
        member.until is None or other.since <= member.until
    )


def _period(member: CompactMember) -> str:
    return f"{member.since.isoformat()} to {member.until.isoformat() if member.until else 'open'}"


@dataclass(frozen=True, slots=True)
class _Listed:
    """A compact membership as read: where it is written, and its compact's name and types."""

    member: CompactMember
    line: int
    compact: int
    name: str
    types: tuple[str, ...]


def _check_compact_name(
    r: SchemaReader, name: str, node: Node, names: dict[str, tuple[str, int]]
) -> None:
    """Refuse a compact name used before (in any letter case), naming the first one's line.

    A second ``- name: NLC`` block was read as another compact, so its stale members escaped
    the overlap check that runs within a compact (review M4).
    """
    first = names.get(name.casefold())
    if first is None:
        names[name.casefold()] = (name, node.line)
        return
    spelt = "" if first[0] == name else f", as `{first[0]}`"
    r.error(
        "schema.duplicate_name",
        f"compact name `{name}` is used twice (first at line {first[1]}{spelt}): a compact is "
        "one block; move these members into the first, or name a different compact differently",
        node,
    )


def _check_overlap(r: SchemaReader, listed: list[_Listed], new: _Listed, node: Node) -> None:
    """Refuse a membership overlapping an earlier one of its jurisdiction (``listed``).

    Overlapping means a shared day, in the same compact or in one sharing a licence type.
    Membership is the union of a jurisdiction's periods, so a stale entry overlapping a later
    one (an ``until`` added above, the old line left below) kept a state that left the compact
    a member (review R31a F4). The engine grants a licence through any compact covering its
    type, so compacts sharing a type act as one for it: the check spans them (review M4).
    Types are compared ignoring letter case, which can only refuse more.
    """
    folded = {t.casefold() for t in new.types}
    for earlier in listed:
        if not _overlapping(new.member, earlier.member):
            continue
        where = new.member.jurisdiction
        if earlier.compact == new.compact:
            clash = f"its membership at line {earlier.line} ({_period(earlier.member)})"
        else:
            shared = [t for t in earlier.types if t.casefold() in folded]
            if not shared:
                continue
            clash = (
                f"its membership in compact {earlier.name} at line {earlier.line} "
                f"({_period(earlier.member)}), which also covers {' and '.join(shared)}"
            )
        r.error(
            "schema.range",
            f"membership of {where} in compact {new.name} ({_period(new.member)}) overlaps "
            f"{clash}: list a jurisdiction again only for a later, separate period; remove the "
            "stale entry",
            node,
        )
        return


def _read_member_jurisdiction(r: SchemaReader, node: Node | None, name: str) -> str | None:
    """A member's jurisdiction: never a whole country whose states or provinces license."""
    where = r.string(node, "member jurisdiction", pattern=JURISDICTION)
    if where is None or node is None:
        return where
    if not needs_subdivision(where):
        unknown = place_problem(where, {})  # a licence's place is a fact: areas never count
        if unknown is not None:
            r.error(
                "lint.unknown_place",
                f"compact {name} member `{where}` {unknown}: no licence is issued there, so "
                "this membership lets no nurse practise anywhere; fix the code",
                node,
                severity=Severity.WARNING,
            )
        return where
    # A member ``US`` made a patient located only in ``US`` licensable through the compact
    # (review M5). Other countries register nationally (``GB``), so they may be members.
    r.error(
        "schema.value",
        f"compact {name} member {where} is a whole country, and {where} licenses by state or "
        "province, so only its states or provinces can be members; list each member one by "
        f"one (e.g. {SUBDIVISION_EXAMPLE[where]})",
        node,
    )
    return None


def _read_compacts(r: SchemaReader, node: Node | None) -> tuple[Compact, ...]:
    compacts = []
    names: dict[str, tuple[str, int]] = {}
    # Memberships read so far, by jurisdiction: the overlap check compares only these.
    listed: dict[str, list[_Listed]] = {}
    for index, item in enumerate(r.items(node, "`compacts`")):
        c = r.mapping(item, "a compact", ("name", "licence_types", "members"))
        name = r.string(c.get("name"), "compact name", pattern=IDENTIFIER)
        if name is not None:
            _check_compact_name(r, name, c["name"], names)
        name = name or "?"
        types = r.strings(
            c.get("licence_types"),
            f"compact {name} licence_types",
            pattern=IDENTIFIER,
        )
        members: list[CompactMember] = []
        for m_node in r.items(c.get("members"), f"compact {name} members"):
            m = r.mapping(
                m_node, f"a member of compact {name}", ("jurisdiction", "since"), ("until",)
            )
            where = _read_member_jurisdiction(r, m.get("jurisdiction"), name)
            since = r.day(m.get("since"), "member since")
            until = r.day(m.get("until"), "member until") if "until" in m else None
            if since is not None and until is not None and until < since:
                r.error("schema.range", f"membership of {where} ends before it starts", m["until"])
            if where is not None and since is not None:
                listing = _Listed(
                    CompactMember(where, since, until), m_node.line, index, name, types
                )
                earlier = listed.setdefault(where, [])
                _check_overlap(r, earlier, listing, m_node)
                earlier.append(listing)
                members.append(listing.member)
        compacts.append(Compact(name, frozenset(types), tuple(members)))
    return tuple(compacts)


def _read_registers(
    r: SchemaReader, node: Node | None, lines: dict[str, int]
) -> tuple[Register, ...]:
    """National registers whose licences cover only part of their country (``GPhC``: ``GB``).

    ``lines`` gets each register's ``licence_types`` line, where lint names a type no
    licence constraint uses (``lint.register_type_unused``).

    Each part a register covers must lie within its jurisdiction, and a licence type (in any
    letter case: the engine compares them so) is on one register per jurisdiction: two would
    leave which parts its licences cover to file order.
    """
    registers = []
    # Keyed by the register's position, never its line: flow style (``[{...}, {...}]``) puts
    # every register on one line, and a line-keyed check let a second one through.
    names: dict[str, tuple[str, int, int]] = {}  # folded name -> (name, line, position)
    held: dict[tuple[str, str], tuple[str, int, int]] = {}  # (type, jurisdiction) -> register
    for position, item in enumerate(r.items(node, "`registers`")):
        g = r.mapping(item, "a register", ("name", "licence_types", "jurisdiction", "covers"))
        name = r.string(g.get("name"), "register name", pattern=IDENTIFIER)
        if name is not None:
            first = names.setdefault(name.casefold(), (name, g["name"].line, position))
            if first[2] != position:
                r.error(
                    "schema.duplicate_name",
                    f"register name `{name}` is used twice (first at line {first[1]}): a "
                    "register is one block; merge them, or name a different register "
                    "differently",
                    g["name"],
                )
        name = name or "?"
        types = r.strings(
            g.get("licence_types"), f"register {name} licence_types", pattern=IDENTIFIER
        )
        where = r.string(
            g.get("jurisdiction"), f"register {name} jurisdiction", pattern=JURISDICTION
        )
        if where is not None and needs_subdivision(where):
            # A licence recorded against ``US`` is valid nowhere, so a register of US-wide
            # licences limits nothing: it compiled, and read as if it did something.
            r.error(
                "schema.value",
                f"register {name} jurisdiction {where} is a whole country, and {where} licenses "
                f"by state or province: a licence recorded against {where} is valid nowhere, "
                "so the register could never apply; licences there are issued per state or "
                f"province (e.g. {SUBDIVISION_EXAMPLE[where]}) and cover only it already, so "
                "remove the register",
                g["jurisdiction"],
            )
            where = None
        elif where is not None and (recorded := licensing_code(where)) is not None:
            # No licence names ``UK`` (UK-wide registration is ``GB``) nor ``PR`` (Puerto
            # Rico's boards license as ``US-PR``): a register recorded so never applied.
            r.error(
                "schema.value",
                f"register {name} jurisdiction {where} is a code no licence is recorded under: "
                f"licences for that place name {recorded}, so the register could never apply; "
                f"write {recorded}",
                g["jurisdiction"],
            )
            where = None
        parts: list[str] = []
        for part_node in r.items(g.get("covers"), f"register {name} covers"):
            part = r.string(
                part_node, f"each entry of register {name} covers", pattern=JURISDICTION
            )
            if part is None or where is None:
                continue
            if part == where or not iso_within(where, part):
                # Within by code or ISO 3166-2, as the engine applies it (``GB-KEN`` is a part
                # of ``GB-ENG``); a part that is the jurisdiction itself limits nothing.
                r.error(
                    "schema.value",
                    f"register {name} covers {part}, which is not a part of its jurisdiction "
                    f"{where}: list the parts of {where} its licences are valid in (such as "
                    "GB-ENG for GB)",
                    part_node,
                )
                continue
            parts.append(part)
        for key, what in (("licence_types", "licence types"), ("covers", "parts")):
            if key in g and g[key].value == []:
                r.error(
                    "schema.value",
                    f"register {name} {key} is empty: list its {what} (a register without "
                    "them changes nothing)",
                    g[key],
                )
        if where is None or not parts:
            continue
        for licence_type in types:
            # In any letter case, as the engine reads a register's types.
            folded = (licence_type.casefold(), where)
            first = held.setdefault(folded, (name, item.line, position))
            if first[2] != position:
                r.error(
                    "schema.value",
                    f"licence type {licence_type} in {where} is on register {first[0]} (line "
                    f"{first[1]}) and on register {name}: a licence type is on one register "
                    "per jurisdiction; remove it from one",
                    g["licence_types"],
                )
        lines.setdefault(name, g["licence_types"].line if "licence_types" in g else item.line)
        registers.append(Register(name, frozenset(types), where, tuple(sorted(set(parts)))))
    return tuple(registers)


def _read_matching(r: SchemaReader, node: Node | None, out: RawRuleset) -> None:
    if node is None:
        return
    entries = r.mapping(node, "`matching`", (), ("statuses", "ranking"), homes=_SECTION_HOMES)
    if "statuses" in entries:
        statuses = [
            r.choice(s, "each of matching.statuses", AgentStatus)
            for s in r.items(entries["statuses"], "matching.statuses")
        ]
        out.statuses = tuple(s for s in statuses if s is not None)
    if "ranking" in entries:
        reported = len(r.problems)
        criteria = [
            r.choice(c, "each of matching.ranking", RankingCriterion)
            for c in r.items(entries["ranking"], "matching.ranking")
        ]
        out.ranking = tuple(c for c in criteria if c is not None)
        if len(set(out.ranking)) != len(out.ranking):
            r.error("schema.value", "matching.ranking lists a criterion twice", entries["ranking"])
        if len(r.problems) == reported:
            # Only a ranking read as written may be linted: one emptied by errors is reported.
            out.ranking_line = entries["ranking"].line


_REQUIREMENT_KEYS = (
    "licence",
    "skills",
    "case_skills",
    "territory",
    "language",
    "roles",
    "soft",
    "prefer",
    "ladder",
    "continuity",
)
_RULE_HOMES = {
    "priority": "under `then` (beside `route`, `escalate` or `exception`)",
    **dict.fromkeys(("route", "escalate", "exception"), "under `then`"),
    **dict.fromkeys(("queue", "reason"), "under `route`, `escalate` or `exception`"),
    **dict.fromkeys(_REQUIREMENT_KEYS, "under `route` (or an escalation's `assign`)"),
    **dict.fromkeys(("level", "assign"), "under `escalate`"),
}
"""Where a key of a rule's parts belongs, for one written in the rule itself."""
_THEN_HOMES = {
    **{
        k: v
        for k, v in _RULE_HOMES.items()
        if k not in ("priority", "route", "escalate", "exception")
    },
    **dict.fromkeys(("id", "when", "description"), "in the rule (beside `then`)"),
}
"""For a key written in `then` that belongs inside its action, or beside `then`."""
_ACTION_HOMES = {
    "priority": "under `then` (beside the action, not inside it)",
    **dict.fromkeys(("route", "escalate", "exception"), "under `then`"),
    **dict.fromkeys(("id", "when", "description"), "in the rule (beside `then`)"),
}
"""For a key written inside an action that belongs beside it, or beside `then`."""


def _read_ladder_ref(
    r: SchemaReader, node: Node | None, where: str, rule_id: str, ladders: dict[str, Ladder]
) -> Ladder | None:
    name = r.string(node, f"{where}.ladder", rule_id)
    if name is None or node is None:
        return None
    if name in r.ladder_gaps.invalid_ladder_names:
        # The ladder's own name is already an error; "not declared" would repeat it.
        r.ladder_gaps.unknown_ladder_rules.add(rule_id)
        return None
    if name not in ladders:
        hint = difflib.get_close_matches(name, list(ladders), n=1)
        tip = (
            f"did you mean `{hint[0]}`?"
            if hint
            else "declare it under `ladders:`"
            + (f" (declared: {', '.join(ladders)})" if ladders else "")
        )
        r.ladder_gaps.unknown_ladder_rules.add(rule_id)
        r.error(
            "rules.unknown_ladder",
            f"{where} names ladder `{name}`, which is not declared ({tip})",
            node,
            rule_id,
        )
        return None
    return ladders[name]


def _read_requirements(
    r: SchemaReader,
    entries: dict[str, Node],
    where: str,
    rule_id: str,
    ladders: dict[str, Ladder],
) -> Requirements:
    licence = None
    if "licence" in entries:
        licence = r.strings(entries["licence"], f"{where}.licence", rule_id, IDENTIFIER)
        if entries["licence"].is_sequence and not entries["licence"].value:
            # No type acceptable: no agent could ever take the case, silently (R34b F9).
            r.error(
                "schema.value",
                f"{where}.licence must list at least one licence type: `licence: []` accepts "
                "none, so no agent could ever take a case this rule routes; list the types "
                "that may, or remove `licence:` (constraints.licence still applies)",
                entries["licence"],
                rule_id,
            )
    skills = []
    for s_node in r.items(entries.get("skills"), f"{where}.skills", rule_id):
        s = r.mapping(s_node, f"a skill in {where}.skills", ("name", "min_level"), (), rule_id)
        name = r.string(s.get("name"), "skill name", rule_id, IDENTIFIER)
        level = r.integer(s.get("min_level"), "skill min_level", 0, 10, rule_id)
        if name is not None and level is not None:
            skills.append(RequiredSkill(name, level))
    roles = None
    if "roles" in entries:
        chosen = [
            r.choice(n, f"each of {where}.roles", Role, rule_id)
            for n in r.items(entries["roles"], f"{where}.roles", rule_id)
        ]
        roles = tuple(x for x in chosen if x is not None)
    reported = len(r.problems)
    soft = read_requirement_names(r, entries.get("soft"), f"{where}.soft", rule_id)
    prefer = read_requirement_names(r, entries.get("prefer"), f"{where}.prefer", rule_id)
    if len(r.problems) > reported:
        r.ladder_gaps.rules_unread_soft.add(rule_id)
    return Requirements(
        licence_types=licence,
        skills=tuple(skills),
        case_skills=r.boolean(
            entries.get("case_skills"), f"{where}.case_skills", default=True, rule_id=rule_id
        ),
        territory=r.boolean(
            entries.get("territory"), f"{where}.territory", default=True, rule_id=rule_id
        ),
        language=r.boolean(
            entries.get("language"), f"{where}.language", default=True, rule_id=rule_id
        ),
        roles=roles,
        soft=soft,
        prefer=prefer,
        ladder=_read_ladder_ref(r, entries.get("ladder"), where, rule_id, ladders),
        continuity=r.boolean(
            entries.get("continuity"), f"{where}.continuity", default=True, rule_id=rule_id
        ),
    )


def _queue_target(
    r: SchemaReader, node: Node | None, what: str, rule_id: str
) -> tuple[QueueTarget, bool]:
    if node is not None and node.value == "by_intent":
        return QueueTarget(None), True
    name = r.string(node, what, rule_id, NAME)
    return QueueTarget(name or "?"), False


def _read_rule(r: SchemaReader, node: Node, ladders: dict[str, Ladder]) -> RawRule | None:
    rule_id = None
    if node.is_mapping and "id" in node.value:
        rule_id = r.string(node.value["id"], "rule `id`", None, NAME)
    entries = r.mapping(
        node,
        f"rule `{rule_id or '?'}`",
        ("id", "when", "then"),
        ("description",),
        rule_id,
        _RULE_HOMES,
    )
    if not entries:
        return None
    description = r.string(entries.get("description"), "description", rule_id) or ""
    when_node = entries.get("when")
    when_text: str | None = None
    if when_node is not None:
        if when_node.value is True:
            when_text = "true"
        elif isinstance(when_node.value, str) and when_node.value.strip():
            when_text = when_node.value
        else:
            r.error(
                "schema.type",
                "`when` must be a condition in quotes, or `true` for the "
                f"catch-all; got {_kind(when_node)}",
                when_node,
                rule_id,
            )
    then = (
        r.mapping(
            entries["then"],
            "`then`",
            (),
            ("route", "escalate", "exception", "priority"),
            rule_id,
            _THEN_HOMES,
        )
        if "then" in entries
        else {}
    )
    kinds = [k for k in ("route", "escalate", "exception") if k in then]
    if "then" in entries and len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        r.error(
            "rules.action_count",
            f"`then` needs exactly one of route, escalate, exception (found: {found})",
            entries["then"],
            rule_id,
        )
    priority = r.choice(then.get("priority"), "priority", Priority, rule_id) or Priority.NORMAL
    rid = rule_id or "?"
    action: PendingAction | None = None
    by_intent = False
    if kinds == ["route"]:
        where = f"rule {rid} route"
        e = r.mapping(
            then["route"],
            "`route`",
            ("queue",),
            (*_REQUIREMENT_KEYS, "reason"),
            rule_id,
            _ACTION_HOMES,
        )
        queue, by_intent = _queue_target(r, e.get("queue"), "route queue", rid)
        reason = r.string(e.get("reason"), "route reason", rule_id, NAME) or "routed"
        action = RouteAction(queue, _read_requirements(r, e, where, rid, ladders), reason)
    elif kinds == ["escalate"]:
        e = r.mapping(
            then["escalate"],
            "`escalate`",
            ("queue", "reason"),
            ("level", "assign"),
            rule_id,
            {**_ACTION_HOMES, **dict.fromkeys(_REQUIREMENT_KEYS, "under `assign`")},
        )
        queue, by_intent = _queue_target(r, e.get("queue"), "escalate queue", rid)
        level = r.integer(e.get("level"), "escalation level", 1, 9, rule_id) or 1
        reason = r.string(e.get("reason"), "escalate reason", rule_id, NAME) or "?"
        assign = None
        if "assign" in e:
            a = r.mapping(e["assign"], "`assign`", (), _REQUIREMENT_KEYS, rule_id)
            assign = _read_requirements(r, a, f"rule {rid} escalate.assign", rid, ladders)
        action = EscalateAction(queue, level, reason, assign)
    elif kinds == ["exception"]:
        e = r.mapping(
            then["exception"], "`exception`", ("queue", "reason"), (), rule_id, _ACTION_HOMES
        )
        queue_name = r.string(e.get("queue"), "exception queue", rule_id, NAME)
        reason = r.string(e.get("reason"), "exception reason", rule_id, NAME) or "?"
        action = ExceptionAction(queue_name or "?", reason)
    if rule_id is None or when_text is None or when_node is None:
        return None
    return RawRule(
        rule_id, description, when_text, when_node, action, by_intent, priority, node.line
    )
