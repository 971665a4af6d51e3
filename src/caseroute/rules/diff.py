"""Structural diff of two versions of a ruleset: what changed in meaning, as data.

``diff_rulesets(old, new)`` compares two compiled rulesets section by section and returns a
``RulesetDiff``: one ``Change`` per difference, each located at ``file:line`` (in the NEW file,
or in the OLD one for something removed). Rendering it (text, markdown, JSON) is separate code
in ``diff_render.py``, as with the explanation.

What counts as a *semantic* change (one that can change a decision): params, signals,
attributes, constraints, compacts, registers, areas, matching, queues, and per rule its position
relative to the other rules (the first rule that applies decides, so order is meaning), its
condition (compared as compiled, so ``a=='x'`` and ``a == 'x'`` are the same), its action (with
its ``soft``, ``prefer``, ``ladder`` and ``continuity``) and its priority; relaxation ladders
(steps matched by name: added, removed, reordered, each step's delay per urgency and its
``relax`` / ``prefer`` sets) and the continuity policy (window, hold per urgency). Not
semantic, but still reported: the ruleset's name, version, description, owner and sha256, a
rule's description, a ladder step's ``why``, and a condition rewritten with the same compiled
meaning. Rules are matched by ``rule_id``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum

from caseroute.domain.case import RequiredSkill, Urgency
from caseroute.domain.errors import RulesetError
from caseroute.rules.ir import AllOf, AnyOf, Cond, Const, Leaf, LeafRef, NotOf
from caseroute.rules.model import (
    Action,
    Compact,
    CompiledRuleset,
    ContinuityPolicy,
    EscalateAction,
    ExceptionAction,
    Ladder,
    LadderStep,
    Register,
    Requirements,
    RouteAction,
    Rule,
)
from caseroute.rules.source import Node, parse_yaml

COMPARED_FIELDS = frozenset(
    {
        "name",
        "version",
        "description",
        "owner",
        "sha256",
        "params",
        "signals",
        "attributes",
        "constraints",
        "compacts",
        "registers",
        "areas",
        "statuses",
        "ranking",
        "queues",
        "rules",
        "ladders",
        "continuity",
    }
)
"""``CompiledRuleset`` fields the diff compares."""
IGNORED_FIELDS = frozenset({"path", "leaves", "warnings", "source_text"})
"""Fields it does not: where the file is, what is derived from the rules (leaves), lint
warnings, and the text itself (its sha256 is compared)."""

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class Section(StrEnum):
    """Parts of a ruleset, in the order a diff lists them."""

    METADATA = "metadata"
    PARAMS = "params"
    SIGNALS = "signals"
    ATTRIBUTES = "attributes"
    CONSTRAINTS = "constraints"
    COMPACTS = "compacts"
    REGISTERS = "registers"
    AREAS = "areas"
    MATCHING = "matching"
    QUEUES = "queues"
    LADDERS = "ladders"
    CONTINUITY = "continuity"
    RULES = "rules"


class ChangeKind(StrEnum):
    """How one thing differs between the two versions."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    MOVED = "moved"  # a rule's (or ladder step's) position relative to the others (1-based)
    REWORDED = "reworded"  # a condition's text changed, its compiled meaning did not


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two versions of a ruleset.

    Attributes:
        section: Where in the ruleset.
        kind: Added, removed, changed, moved or reworded.
        subject: What changed within the section: a param, signal, attribute or intent name,
            a constraint path (``safeguarding.flag``), a compact name, a ladder name,
            ``continuity`` or a rule id.
        field: The part of the subject that changed (``when``, ``route.licence``,
            ``members.US-PA.since``, ``position``, ``steps.any-language.after.routine``,
            ``hold.routine``); empty when the subject itself was added, removed or changed as
            a whole.
        old: The old value as data (``None`` when added).
        new: The new value as data (``None`` when removed).
        location: ``file:line`` in the new file (the old file for a removal), or ``""`` when
            it cannot be located (a default, or the sha256).
        semantic: Whether the change can change a decision.
    """

    section: Section
    kind: ChangeKind
    subject: str
    field: str
    old: JsonValue
    new: JsonValue
    location: str
    semantic: bool = True


@dataclass(frozen=True, slots=True)
class RulesetIdentity:
    """Which ruleset version one side of a diff is."""

    name: str
    version: str
    sha256: str
    path: str


@dataclass(frozen=True, slots=True)
class RulesetDiff:
    """Every difference between two versions, semantic ones and the rest.

    Attributes:
        old: The old version.
        new: The new version.
        changes: Grouped by ``Section`` in its order; within a section in the new file's
            order, then what was removed in the old file's order.
    """

    old: RulesetIdentity
    new: RulesetIdentity
    changes: tuple[Change, ...]

    @property
    def semantic_changes(self) -> tuple[Change, ...]:
        """Changes that can change a decision."""
        return tuple(c for c in self.changes if c.semantic)

    @property
    def differs(self) -> bool:
        """Whether the two versions differ in meaning (the exit status of ``rules diff``)."""
        return any(c.semantic for c in self.changes)

    @property
    def sha256_differs(self) -> bool:
        """Whether the source files differ at all (even only in whitespace or comments)."""
        return self.old.sha256 != self.new.sha256


def to_json_value(value: object) -> JsonValue:
    """A ruleset value as JSON-ready data: tuples as lists, dates as ISO text, enums as text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, RequiredSkill):
        return {"name": value.name, "min_level": value.min_level}
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [to_json_value(v) for v in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    raise TypeError(f"no JSON form for {type(value).__name__}")  # a new model type: add it here


def _same(a: JsonValue, b: JsonValue) -> bool:
    # True == 1 == 1.0 in Python: a boolean never equals a number here; 1 and 1.0 do.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


class _Locator:
    """Finds the line where something is written in one ruleset's source text."""

    def __init__(self, compiled: CompiledRuleset) -> None:
        self._file = compiled.path
        self._root: Node | None = None
        if compiled.source_text:
            try:
                self._root = parse_yaml(compiled.source_text, compiled.path).root
            except RulesetError:  # it compiled from this text; kept only as a fallback
                self._root = None

    def at(self, *steps: str | tuple[str, str]) -> str:
        """``file:line`` of the deepest node found along ``steps``.

        A ``str`` step is a mapping key; a ``(key, value)`` step picks the list item whose
        ``key`` is ``value`` (a rule by ``id``, a compact by ``name``).
        """
        node, line = self._root, 0
        for step in steps:
            if node is None:
                break
            if isinstance(step, tuple):
                key, wanted = step
                found = None
                if node.is_sequence:
                    for item in node.value:
                        if (
                            item.is_mapping
                            and item.value.get(key, Node(None, 0, 0)).value == wanted
                        ):
                            found = item
                            break
                if found is None:
                    break
                node, line = found, found.line
            else:
                if not node.is_mapping or step not in node.value:
                    break
                line = node.key_positions.get(step, (node.value[step].line, 0))[0]
                node = node.value[step]
        return f"{self._file}:{line}" if line else (self._file if self._root else "")


@dataclass(slots=True)
class _Collector:
    """Builds the change list of one section."""

    old_at: _Locator
    new_at: _Locator
    changes: list[Change]

    def compare_named(
        self,
        section: Section,
        old: dict[str, JsonValue],
        new: dict[str, JsonValue],
        where: Callable[[str], tuple[str | tuple[str, str], ...]],
        *,
        semantic: bool = True,
    ) -> None:
        """Added, removed and changed entries of two name -> value maps (new order, then old)."""
        for name, value in new.items():
            if name not in old:
                self.add(section, ChangeKind.ADDED, name, "", None, value, where(name), semantic)
            elif not _same(old[name], value):
                self.add(
                    section, ChangeKind.CHANGED, name, "", old[name], value, where(name), semantic
                )
        for name, value in old.items():
            if name not in new:
                self.add(section, ChangeKind.REMOVED, name, "", value, None, where(name), semantic)

    def add(
        self,
        section: Section,
        kind: ChangeKind,
        subject: str,
        field: str,
        old: JsonValue,
        new: JsonValue,
        steps: tuple[str | tuple[str, str], ...],
        semantic: bool = True,
    ) -> None:
        """Record one change, located in the new file (the old one for a removal)."""
        locator = self.old_at if kind is ChangeKind.REMOVED else self.new_at
        self.changes.append(
            Change(section, kind, subject, field, old, new, locator.at(*steps), semantic)
        )


def diff_rulesets(old: CompiledRuleset, new: CompiledRuleset) -> RulesetDiff:
    """Compare two compiled versions of a ruleset.

    Args:
        old: The version before.
        new: The version after.

    Returns:
        Every difference, grouped by section; ``differs`` says whether any can change a
        decision.
    """
    out = _Collector(_Locator(old), _Locator(new), [])
    _diff_metadata(out, old, new)
    out.compare_named(
        Section.PARAMS,
        {k: to_json_value(v) for k, v in old.params.items()},
        {k: to_json_value(v) for k, v in new.params.items()},
        lambda name: ("params", name),
    )
    out.compare_named(
        Section.SIGNALS,
        _signals(old),
        _signals(new),
        lambda name: ("signals", name),
    )
    out.compare_named(
        Section.ATTRIBUTES,
        {k: t.describe() for k, t in old.attributes.items()},
        {k: t.describe() for k, t in new.attributes.items()},
        lambda name: ("attributes", name),
    )
    out.compare_named(
        Section.CONSTRAINTS,
        _constraints(old),
        _constraints(new),
        lambda path: ("constraints", *path.split(".")),
    )
    _diff_compacts(out, old.compacts, new.compacts)
    out.compare_named(
        Section.REGISTERS,
        _registers(old.registers),
        _registers(new.registers),
        lambda name: ("registers", ("name", name)),
    )
    out.compare_named(
        Section.AREAS,
        dict(old.areas),
        dict(new.areas),
        lambda name: ("areas", name),
    )
    out.compare_named(
        Section.MATCHING,
        {"statuses": to_json_value(old.statuses), "ranking": to_json_value(old.ranking)},
        {"statuses": to_json_value(new.statuses), "ranking": to_json_value(new.ranking)},
        lambda name: ("matching", name),
    )
    out.compare_named(
        Section.QUEUES,
        {str(k): v for k, v in old.queues.items()},
        {str(k): v for k, v in new.queues.items()},
        lambda intent: ("queues", intent),
    )
    _diff_ladders(out, old.ladders, new.ladders)
    _diff_continuity(out, old.continuity, new.continuity)
    _diff_rules(out, old, new)
    return RulesetDiff(_identity(old), _identity(new), tuple(out.changes))


def _identity(compiled: CompiledRuleset) -> RulesetIdentity:
    return RulesetIdentity(compiled.name, compiled.version, compiled.sha256, compiled.path)


def _diff_metadata(out: _Collector, old: CompiledRuleset, new: CompiledRuleset) -> None:
    keys = {"name": "ruleset", "version": "version", "description": "description", "owner": "owner"}
    out.compare_named(
        Section.METADATA,
        {attr: getattr(old, attr) for attr in keys},
        {attr: getattr(new, attr) for attr in keys},
        lambda attr: (keys[attr],),
        semantic=False,
    )
    if old.sha256 != new.sha256:
        out.changes.append(
            Change(
                Section.METADATA,
                ChangeKind.CHANGED,
                "sha256",
                "",
                old.sha256,
                new.sha256,
                "",
                semantic=False,
            )
        )


def _signals(compiled: CompiledRuleset) -> dict[str, JsonValue]:
    s = compiled.signals
    return {
        "sla_at_risk_minutes": s.sla_at_risk_minutes,
        "negative_sentiment": s.negative_sentiment,
        "sentiment_window": s.sentiment_window,
    }


def _constraints(compiled: CompiledRuleset) -> dict[str, JsonValue]:
    c = compiled.constraints
    out: dict[str, JsonValue] = {
        "safeguarding.flag": c.safeguarding_flag,
        "safeguarding.queue": c.safeguarding_queue,
        "consent.flag": c.consent_flag,
    }
    for intent, types in c.licence_by_intent.items():
        out[f"licence.{intent}"] = to_json_value(types)
    return out


def _member(since: date, until: date | None) -> JsonValue:
    return {"since": since.isoformat(), "until": until.isoformat() if until else None}


def _by_occurrence(compacts: Sequence[Compact]) -> dict[str, Compact]:
    """Compacts by name; a name used again is keyed ``name#2``, ``name#3``.

    The schema refuses a name used twice (``schema.duplicate_name``), but a ruleset built in
    code may repeat one, and the second must not hide a change to the first.
    """
    out: dict[str, Compact] = {}
    for compact in compacts:
        key, n = compact.name, 1
        while key in out:
            n += 1
            key = f"{compact.name}#{n}"
        out[key] = compact
    return out


def _diff_compacts(out: _Collector, old: Sequence[Compact], new: Sequence[Compact]) -> None:
    old_by_key = _by_occurrence(old)
    new_by_key = _by_occurrence(new)
    for key, compact in new_by_key.items():
        where: tuple[str | tuple[str, str], ...] = ("compacts", ("name", compact.name))
        before = old_by_key.get(key)
        if before is None:
            out.add(Section.COMPACTS, ChangeKind.ADDED, key, "", None, _compact(compact), where)
            continue
        types_old = to_json_value(before.licence_types)
        types_new = to_json_value(compact.licence_types)
        if not _same(types_old, types_new):
            out.add(
                Section.COMPACTS,
                ChangeKind.CHANGED,
                key,
                "licence_types",
                types_old,
                types_new,
                (*where, "licence_types"),
            )
        _diff_members(out, key, before, compact)
    for key, compact in old_by_key.items():
        if key not in new_by_key:
            out.add(
                Section.COMPACTS,
                ChangeKind.REMOVED,
                key,
                "",
                _compact(compact),
                None,
                ("compacts", ("name", compact.name)),
            )


def _registers(registers: Sequence[Register]) -> dict[str, JsonValue]:
    """Each register by name, as data (the schema refuses a name used twice)."""
    return {
        r.name: {
            "licence_types": to_json_value(r.licence_types),
            "jurisdiction": r.jurisdiction,
            "covers": list(r.covers),
        }
        for r in registers
    }


def _compact(compact: Compact) -> JsonValue:
    return {
        "licence_types": to_json_value(compact.licence_types),
        "members": {m.jurisdiction: _member(m.since, m.until) for m in compact.members},
    }


def _periods(compact: Compact) -> dict[str, list[JsonValue]]:
    """Membership periods per jurisdiction, in file order (one may be listed twice)."""
    out: dict[str, list[JsonValue]] = {}
    for m in compact.members:
        out.setdefault(m.jurisdiction, []).append(_member(m.since, m.until))
    return out


def _diff_members(out: _Collector, key: str, old: Compact, new: Compact) -> None:
    before, after = _periods(old), _periods(new)
    base: tuple[str | tuple[str, str], ...] = ("compacts", ("name", new.name), "members")
    for where, periods in after.items():
        at = (*base, ("jurisdiction", where))
        prior = before.get(where)
        if prior is None:
            value = periods[0] if len(periods) == 1 else periods
            out.add(Section.COMPACTS, ChangeKind.ADDED, key, f"members.{where}", None, value, at)
        elif len(prior) == 1 and len(periods) == 1:
            a, b = prior[0], periods[0]
            assert isinstance(a, dict)  # noqa: S101 - built by _member
            assert isinstance(b, dict)  # noqa: S101 - built by _member
            for name in ("since", "until"):
                if a[name] != b[name]:
                    out.add(
                        Section.COMPACTS,
                        ChangeKind.CHANGED,
                        key,
                        f"members.{where}.{name}",
                        a[name],
                        b[name],
                        (*at, name),
                    )
        elif not _same(prior, periods):  # listed more than once: all its periods, old and new
            out.add(
                Section.COMPACTS, ChangeKind.CHANGED, key, f"members.{where}", prior, periods, at
            )
    old_base: tuple[str | tuple[str, str], ...] = ("compacts", ("name", old.name), "members")
    for where, periods in before.items():
        if where not in after:
            value = periods[0] if len(periods) == 1 else periods
            out.add(
                Section.COMPACTS,
                ChangeKind.REMOVED,
                key,
                f"members.{where}",
                value,
                None,
                (*old_base, ("jurisdiction", where)),
            )


def _meaning(cond: Cond, leaves: dict[str, Leaf]) -> object:
    """A condition's compiled form with leaf ids and texts dropped (ids differ per file)."""
    if isinstance(cond, LeafRef):
        return leaves[cond.leaf_id].key
    if isinstance(cond, AllOf):
        return ("all", tuple(_meaning(c, leaves) for c in cond.children))
    if isinstance(cond, AnyOf):
        return ("any", tuple(_meaning(c, leaves) for c in cond.children))
    if isinstance(cond, NotOf):
        return ("not", _meaning(cond.child, leaves))
    assert isinstance(cond, Const)  # noqa: S101 - Cond is a closed union
    return ("const", cond.value)


def _requirements(req: Requirements) -> dict[str, JsonValue]:
    return {
        "licence": to_json_value(req.licence_types),
        "skills": to_json_value(req.skills),
        "case_skills": req.case_skills,
        "territory": req.territory,
        "language": req.language,
        "roles": to_json_value(req.roles),
        **_adaptive(req),
    }


ADAPTIVE_DEFAULTS: dict[str, JsonValue] = {
    "soft": [],
    "prefer": [],
    "ladder": None,
    "continuity": True,
}
"""Adaptive requirement fields as they are when a rule does not write them."""


def _adaptive(req: Requirements) -> dict[str, JsonValue]:
    """``soft``, ``prefer``, ``ladder`` and ``continuity``, only those not at their default.

    Left out at the default so that an action shown whole (its kind changed) reads as written.
    The ladder is named only: what its steps say is compared once, in the ladders section.
    """
    values: dict[str, JsonValue] = {
        "soft": to_json_value(req.soft),
        "prefer": to_json_value(req.prefer),
        "ladder": None if req.ladder is None else req.ladder.name,
        "continuity": req.continuity,
    }
    return {k: v for k, v in values.items() if not _same(v, ADAPTIVE_DEFAULTS[k])}


def _field_pairs(
    old: dict[str, JsonValue], new: dict[str, JsonValue]
) -> list[tuple[str, JsonValue, JsonValue]]:
    """(name, old, new) for every field either side has; an absent one is at its default."""
    names = [*new, *(k for k in old if k not in new)]
    return [
        (k, old.get(k, ADAPTIVE_DEFAULTS.get(k)), new.get(k, ADAPTIVE_DEFAULTS.get(k)))
        for k in names
    ]


def _action(action: Action) -> tuple[str, dict[str, JsonValue]]:
    """The action's kind and its fields as written (``by_intent`` stays ``by_intent``)."""
    if isinstance(action, RouteAction):
        return "route", {
            "queue": action.queue.describe(),
            "reason": action.reason,
            **_requirements(action.requirements),
        }
    if isinstance(action, EscalateAction):
        return "escalate", {
            "queue": action.queue.describe(),
            "level": action.level,
            "reason": action.reason,
            "assign": None if action.assign is None else dict(_requirements(action.assign)),
        }
    assert isinstance(action, ExceptionAction)  # noqa: S101 - Action is a closed union
    return "exception", {"queue": action.queue, "reason": action.reason}


def _after(step: LadderStep) -> dict[str, JsonValue]:
    """Minutes per urgency, every urgency listed: one the step omits never reaches it."""
    return {u.value: step.after.get(u) for u in Urgency}


def _step(step: LadderStep) -> JsonValue:
    return {
        "step": step.name,
        "after": {u.value: m for u, m in step.after.items()},
        "relax": to_json_value(step.relax),
        "prefer": to_json_value(step.prefer),
        "why": step.why,
    }


def _ladder(ladder: Ladder) -> JsonValue:
    return [_step(s) for s in ladder.steps]


def _diff_ladders(out: _Collector, old: dict[str, Ladder], new: dict[str, Ladder]) -> None:
    """Ladders by name; within one, steps by name (added, removed, reordered, their fields)."""
    for name, ladder in new.items():
        at: tuple[str | tuple[str, str], ...] = ("ladders", name)
        before = old.get(name)
        if before is None:
            out.add(Section.LADDERS, ChangeKind.ADDED, name, "", None, _ladder(ladder), at)
            continue
        old_steps = {s.name: s for s in before.steps}
        new_ids = [s.name for s in ladder.steps]
        old_ids = [s.name for s in before.steps]
        moved = _moved(old_ids, new_ids)
        for position, step in enumerate(ladder.steps, start=1):
            field = f"steps.{step.name}"
            where = (*at, ("step", step.name))
            prior = old_steps.get(step.name)
            if prior is None:
                out.add(Section.LADDERS, ChangeKind.ADDED, name, field, None, _step(step), where)
                continue
            if step.name in moved:
                out.add(
                    Section.LADDERS,
                    ChangeKind.MOVED,
                    name,
                    f"{field}.position",
                    old_ids.index(step.name) + 1,
                    position,
                    where,
                )
            _diff_step(out, name, field, prior, step, where)
        for step in before.steps:
            if step.name not in new_ids:
                out.add(
                    Section.LADDERS,
                    ChangeKind.REMOVED,
                    name,
                    f"steps.{step.name}",
                    _step(step),
                    None,
                    (*at, ("step", step.name)),
                )
    for name, ladder in old.items():
        if name not in new:
            out.add(
                Section.LADDERS,
                ChangeKind.REMOVED,
                name,
                "",
                _ladder(ladder),
                None,
                ("ladders", name),
            )


def _diff_step(
    out: _Collector,
    ladder: str,
    field: str,
    before: LadderStep,
    after: LadderStep,
    where: tuple[str | tuple[str, str], ...],
) -> None:
    old_after, new_after = _after(before), _after(after)
    for urgency, minutes in new_after.items():
        if not _same(old_after[urgency], minutes):
            out.add(
                Section.LADDERS,
                ChangeKind.CHANGED,
                ladder,
                f"{field}.after.{urgency}",
                old_after[urgency],
                minutes,
                (*where, "after", urgency),
            )
    for part in ("relax", "prefer"):
        a = to_json_value(getattr(before, part))
        b = to_json_value(getattr(after, part))
        if not _same(a, b):
            out.add(
                Section.LADDERS,
                ChangeKind.CHANGED,
                ladder,
                f"{field}.{part}",
                a,
                b,
                (*where, part),
            )
    if before.why != after.why:
        out.add(
            Section.LADDERS,
            ChangeKind.CHANGED,
            ladder,
            f"{field}.why",
            before.why,
            after.why,
            (*where, "why"),
            semantic=False,
        )


def _continuity(policy: ContinuityPolicy) -> dict[str, JsonValue]:
    """Window and hold per urgency; an urgency the policy omits is held 0 minutes."""
    data: dict[str, JsonValue] = {"window_days": policy.window_days}
    for u in Urgency:
        data[f"hold.{u.value}"] = policy.hold_minutes.get(u, 0.0)
    return data


def _diff_continuity(
    out: _Collector, old: ContinuityPolicy | None, new: ContinuityPolicy | None
) -> None:
    if old is None and new is None:
        return
    if old is None or new is None:
        kind = ChangeKind.ADDED if old is None else ChangeKind.REMOVED
        out.add(
            Section.CONTINUITY,
            kind,
            "continuity",
            "",
            None if old is None else _continuity(old),
            None if new is None else _continuity(new),
            ("continuity",),
        )
        return
    before, after = _continuity(old), _continuity(new)
    for key, value in after.items():
        if not _same(before[key], value):
            path = ("window",) if key == "window_days" else tuple(key.split("."))
            out.add(
                Section.CONTINUITY,
                ChangeKind.CHANGED,
                "continuity",
                key,
                before[key],
                value,
                ("continuity", *path),
            )


def _moved(old_ids: Sequence[str], new_ids: Sequence[str]) -> set[str]:
    """Rules whose order relative to the other common rules changed.

    The longest run of common rules that keeps its order stays put; every other common rule
    moved, so an insertion or removal shifts positions without moving anything. Rule ids are
    unique, so this is the longest increasing subsequence of the old positions taken in the
    new order: O(n log n), for a ruleset of thousands of rules too.
    """
    old_index = {rule_id: i for i, rule_id in enumerate(old_ids)}
    common = [r for r in new_ids if r in old_index]
    tails: list[int] = []  # tails[k]: index in ``common`` ending the best run of length k + 1
    tail_positions: list[int] = []  # the old position of each of ``tails`` (sorted)
    before: list[int] = []  # before[i]: the previous element of the best run ending at i
    for i, rule_id in enumerate(common):
        position = old_index[rule_id]
        k = bisect_left(tail_positions, position)
        before.append(tails[k - 1] if k else -1)
        if k == len(tails):
            tails.append(i)
            tail_positions.append(position)
        else:
            tails[k] = i
            tail_positions[k] = position
    kept: set[str] = set()
    i = tails[-1] if tails else -1
    while i >= 0:
        kept.add(common[i])
        i = before[i]
    return set(common) - kept


def _diff_rules(out: _Collector, old: CompiledRuleset, new: CompiledRuleset) -> None:
    old_ids = [r.rule_id for r in old.rules]
    new_ids = [r.rule_id for r in new.rules]
    old_rules = {r.rule_id: r for r in old.rules}
    moved = _moved(old_ids, new_ids)
    for position, rule in enumerate(new.rules, start=1):
        at: tuple[str | tuple[str, str], ...] = ("rules", ("id", rule.rule_id))
        before = old_rules.get(rule.rule_id)
        if before is None:
            out.add(Section.RULES, ChangeKind.ADDED, rule.rule_id, "position", None, position, at)
            continue
        if rule.rule_id in moved:
            out.add(
                Section.RULES,
                ChangeKind.MOVED,
                rule.rule_id,
                "position",
                old_ids.index(rule.rule_id) + 1,
                position,
                at,
            )
        _diff_rule(out, before, rule, old, new, at)
    kept = set(new_ids)
    for position, rule in enumerate(old.rules, start=1):
        if rule.rule_id not in kept:
            out.add(
                Section.RULES,
                ChangeKind.REMOVED,
                rule.rule_id,
                "position",
                position,
                None,
                ("rules", ("id", rule.rule_id)),
            )


def _diff_rule(
    out: _Collector,
    before: Rule,
    after: Rule,
    old: CompiledRuleset,
    new: CompiledRuleset,
    at: tuple[str | tuple[str, str], ...],
) -> None:
    rid = after.rule_id
    same_meaning = _meaning(before.when, old.leaves) == _meaning(after.when, new.leaves)
    if not same_meaning or before.when_text != after.when_text:
        kind = ChangeKind.CHANGED if not same_meaning else ChangeKind.REWORDED
        out.add(
            Section.RULES,
            kind,
            rid,
            "when",
            before.when_text,
            after.when_text,
            (*at, "when"),
            semantic=not same_meaning,
        )
    old_kind, old_fields = _action(before.action)
    new_kind, new_fields = _action(after.action)
    then = (*at, "then")
    if old_kind != new_kind:
        out.add(
            Section.RULES,
            ChangeKind.CHANGED,
            rid,
            "then",
            {old_kind: old_fields},
            {new_kind: new_fields},
            (*then, new_kind),
        )
    else:
        for name, prior, value in _field_pairs(old_fields, new_fields):
            if _same(prior, value):
                continue
            steps = (*then, new_kind, name)
            if isinstance(prior, dict) and isinstance(value, dict):  # escalate.assign
                for sub, sub_prior, sub_value in _field_pairs(prior, value):
                    if not _same(sub_prior, sub_value):
                        out.add(
                            Section.RULES,
                            ChangeKind.CHANGED,
                            rid,
                            f"{new_kind}.{name}.{sub}",
                            sub_prior,
                            sub_value,
                            (*steps, sub),
                        )
                continue
            out.add(
                Section.RULES,
                ChangeKind.CHANGED,
                rid,
                f"{new_kind}.{name}",
                prior,
                value,
                steps,
            )
    if before.priority != after.priority:
        out.add(
            Section.RULES,
            ChangeKind.CHANGED,
            rid,
            "priority",
            str(before.priority),
            str(after.priority),
            (*then, "priority"),
        )
    if before.description != after.description:
        out.add(
            Section.RULES,
            ChangeKind.CHANGED,
            rid,
            "description",
            before.description,
            after.description,
            (*at, "description"),
            semantic=False,
        )


def changes_in(diff: RulesetDiff, section: Section) -> Iterable[Change]:
    """The changes of one section, in the diff's order."""
    return (c for c in diff.changes if c.section is section)
