"""The compiler's passes as one ordered table, and the loop that runs them.

Each pass is a named object that says what it checks, the results it needs, and the function
that runs it. Every pass collects every problem it finds (a load reports all of them at once);
a pass whose needs are unavailable is skipped without a word, because the problem that made
them unavailable is already reported. Adding a pass means adding one row here.

Needs are structured facts, never problem text: ``section:<section>`` is unavailable when the
schema pass could not build that section (``RawRuleset.unreadable_sections``), and a pass's own
name is unavailable when it reported an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from caseroute.domain.case import Intent
from caseroute.domain.errors import Problem, Severity
from caseroute.domain.reader import near_miss
from caseroute.rules.ir import Cond, Leaf, LeafKind, LeafRef, is_catch_all
from caseroute.rules.ladder_checks import check_ladders
from caseroute.rules.licence_checks import check_rule_licences
from caseroute.rules.lint import lint_ruleset
from caseroute.rules.lowering import lower_conditions
from caseroute.rules.model import (
    EscalateAction,
    ExceptionAction,
    QueueTarget,
    RouteAction,
    Rule,
)
from caseroute.rules.schema import SECTIONS as SCHEMA_SECTIONS
from caseroute.rules.schema import RawRule, RawRuleset, read_ruleset
from caseroute.rules.source import SourceFile

__all__ = ["PASSES", "SCHEMA_SECTIONS", "Compilation", "CompilerPass", "run_passes"]


@dataclass(slots=True)
class Compilation:
    """One compilation's state: each pass reads earlier results and adds its own.

    Attributes:
        source: The parsed YAML file.
        raw: The schema pass's typed sections.
        conditions: Rule position (``RawRule.index``) -> lowered condition (the condition
            pass). Never keyed by rule id: a duplicated id (``rules.duplicate_id``) must not
            lend one rule's condition to the other.
        leaves: Leaf id -> unique leaf (the condition pass).
        params_used: Params some condition reads (the condition pass).
        rules: Rules whose condition and action both compiled, in order (the condition pass).
        flawed_rules: Positions (``RawRule.index``) of written rules that did not read or
            compile, or carry an error (the condition pass). A check that judges the rules as
            written skips what only follows from them: one mistake, one finding (review R34b
            F1, F2).
        problems: Every problem so far, in pass order.
        unavailable: Results later passes cannot rely on (see the module docstring).
        skipped: Passes skipped because something they need is unavailable.
    """

    source: SourceFile
    raw: RawRuleset = field(default_factory=RawRuleset)
    conditions: dict[int, Cond] = field(default_factory=dict)
    leaves: dict[str, Leaf] = field(default_factory=dict)
    params_used: frozenset[str] = frozenset()
    rules: tuple[Rule, ...] = ()
    flawed_rules: frozenset[int] = frozenset()
    problems: list[Problem] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)

    @property
    def file(self) -> str:
        """The source path problems name."""
        return self.source.path

    @property
    def rules_dropped(self) -> bool:
        """Whether a written rule is missing from ``rules`` (what it reads or uses is unknown)."""
        return len(self.rules) < self.raw.rules_written


@dataclass(frozen=True, slots=True)
class CompilerPass:
    """One named compiler pass.

    Attributes:
        name: Stable name (used in ``needs`` and the docs).
        checks: What it checks, in a line.
        run: Reads and extends the compilation; returns the problems it found.
        needs: Earlier pass names or ``section:<section>`` facts it cannot run without.
    """

    name: str
    checks: str
    run: Callable[[Compilation], list[Problem]]
    needs: frozenset[str] = frozenset()


def run_passes(source: SourceFile, passes: tuple[CompilerPass, ...] | None = None) -> Compilation:
    """Run the passes in table order over one source file.

    Args:
        source: The parsed YAML file.
        passes: The table to run (default ``PASSES``).

    Returns:
        The compilation: results, every problem found, and which passes were skipped.
    """
    state = Compilation(source)
    for compiler_pass in PASSES if passes is None else passes:
        if compiler_pass.needs & state.unavailable:
            state.skipped.append(compiler_pass.name)
            continue
        found = compiler_pass.run(state)
        state.problems += found
        if any(p.severity is Severity.ERROR for p in found):
            state.unavailable.add(compiler_pass.name)
    return state


def _schema(state: Compilation) -> list[Problem]:
    state.raw, problems = read_ruleset(state.source.root, state.file)
    state.unavailable |= {f"section:{section}" for section in state.raw.unreadable_sections}
    return problems


def _conditions(state: Compilation) -> list[Problem]:
    lowered = lower_conditions(state.raw, state.file, state.source.text)
    state.conditions, state.leaves = lowered.conditions, lowered.leaves
    state.params_used = lowered.params_used
    state.rules = tuple(
        _rule(r, state.conditions[r.index], state.raw.queues)
        for r in state.raw.rules
        if r.index in state.conditions and r.action is not None
    )
    problems = list(lowered.problems)
    erring = {
        p.rule_id
        for p in (*state.problems, *problems)
        if p.severity is Severity.ERROR and p.rule_id is not None
    }
    state.flawed_rules = frozenset(
        state.raw.unread_rules
        | {
            r.index
            for r in state.raw.rules
            if r.index not in state.conditions or r.action is None or r.rule_id in erring
        }
    )
    return problems


def _rule(raw: RawRule, cond: Cond, queues: dict[Intent, str]) -> Rule:
    action = raw.action
    assert action is not None  # noqa: S101 - filtered by the caller
    if isinstance(action, RouteAction | EscalateAction) and action.queue.name is None:
        action = replace(action, queue=QueueTarget(None, dict(queues)))
    return Rule(raw.rule_id, raw.description, cond, raw.when_text, action, raw.priority, raw.line)


def _lint(state: Compilation) -> list[Problem]:
    return lint_ruleset(
        state.raw,
        state.rules,
        state.leaves,
        set(state.params_used),
        state.file,
        rules_dropped=state.rules_dropped,
    )


def _ladders(state: Compilation) -> list[Problem]:
    raw = state.raw
    return check_ladders(
        raw.ladders,
        state.rules,
        state.leaves,
        state.file,
        raw.ladder_gaps,
        rules_dropped=state.rules_dropped,
    )


def _ordering(state: Compilation) -> list[Problem]:
    last_flawed = state.raw.rules_written - 1 in state.flawed_rules
    return _check_ordering(state.raw, state.conditions, state.file, last_flawed=last_flawed)


def _safeguarding(state: Compilation) -> list[Problem]:
    if 0 in state.flawed_rules:
        # The first rule as written has an error already: judging the first rule that read
        # named the wrong rule ("rule `missing-patient-location` is first instead" for a
        # `whne:` typo in rule 1), and fixing the typo is all it needs (review R34b F1).
        return []
    return _check_safeguarding(state.raw, state.conditions, state.leaves, state.file)


def _queues(state: Compilation) -> list[Problem]:
    return _check_queues(state.raw, state.file)


def _licence(state: Compilation) -> list[Problem]:
    return check_rule_licences(state.raw, state.rules, state.leaves, state.file)


def _check_ordering(
    raw: RawRuleset, conditions: dict[int, Cond], file: str, *, last_flawed: bool = False
) -> list[Problem]:
    """Duplicate ids, and a catch-all last with nothing after it.

    ``last_flawed``: the last rule as written has an error already, so whether it is the
    catch-all is unknown and ``rules.missing_catch_all`` is not reported (review R34b F2).
    """
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for rule in raw.rules:
        if rule.rule_id in first_line:
            problems.append(
                Problem(
                    "rules.duplicate_id",
                    f"rule id `{rule.rule_id}` is already used at line "
                    f"{first_line[rule.rule_id]}; give each rule its own id",
                    file,
                    rule.line,
                    0,
                    rule.rule_id,
                )
            )
        else:
            first_line[rule.rule_id] = rule.line
    catch_all = next(
        (r for r in raw.rules if r.index in conditions and is_catch_all(conditions[r.index])),
        None,
    )
    if raw.rules and catch_all is None and not last_flawed:
        problems.append(
            Problem(
                "rules.missing_catch_all",
                "the last rule must be a catch-all (`when: true`) so "
                "every case gets a decision; add one at the end",
                file,
                raw.rules[-1].line,
                0,
                raw.rules[-1].rule_id,
            )
        )
    elif catch_all is not None and catch_all is not raw.rules[-1]:
        after = [r.rule_id for r in raw.rules[raw.rules.index(catch_all) + 1 :]]
        problems.append(
            Problem(
                "rules.unreachable",
                f"rules after the catch-all `{catch_all.rule_id}` can never "
                f"fire: {', '.join(after)}; move the catch-all to the end",
                file,
                catch_all.line,
                0,
                catch_all.rule_id,
            )
        )
    if raw.rules_listed and not raw.rules_written:  # `rules: []`; any other shape: schema's
        problems.append(
            Problem(
                "rules.empty", "`rules` is empty; add at least a catch-all", file, raw.rules_line, 0
            )
        )
    return problems


def _check_safeguarding(
    raw: RawRuleset, conditions: dict[int, Cond], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """Safeguarding is a hard constraint: rule 1 must escalate flagged cases to its queue."""
    c = raw.constraints
    if c is None or not raw.rules:
        return []
    first = raw.rules[0]

    def flag_tested(rule: RawRule) -> object:
        """The flag ``rule``'s `when` tests on its own (``'x' in case.flags``), else None."""
        cond = conditions.get(rule.index)
        leaf = leaves.get(cond.leaf_id) if isinstance(cond, LeafRef) else None
        if leaf is None or leaf.kind is not LeafKind.CONTAINS or leaf.path != "case.flags":
            return None
        return leaf.value

    action = first.action
    when = first.when_text if len(first.when_text) <= 100 else first.when_text[:99] + "…"
    wrong = []  # what rule 1 does otherwise, each with what to do about it
    tested = flag_tested(first)
    other = None  # a later rule testing the flag: the safeguarding rule, moved down
    if tested != c.safeguarding_flag:
        other = next((r for r in raw.rules[1:] if flag_tested(r) == c.safeguarding_flag), None)
        if other is not None:
            wrong.append(
                f"its `when` is `{when}`; rule `{other.rule_id}` (line "
                f"{other.line}) tests the flag: move it first"
            )
        elif isinstance(tested, str) and near_miss(tested, [c.safeguarding_flag]):
            wrong.append(
                f"it tests flag `{tested}`, while `constraints.safeguarding.flag` is "
                f"`{c.safeguarding_flag}`: make them the same (check the spelling of both)"
            )
        else:
            wrong.append(
                f"its `when` is `{when}`: write `when: \"'"
                f"{c.safeguarding_flag}' in case.flags\"` alone"
            )
    # When rule 1 is another rule (the safeguarding rule moved down), what it does is no
    # mistake, its place is: its action is not judged as the safeguarding rule's.
    if other is None and isinstance(action, RouteAction | ExceptionAction):
        does = "routes" if isinstance(action, RouteAction) else "raises an exception"
        wrong.append(f"it {does} instead of escalating: write `escalate:`")
    elif other is None and isinstance(action, EscalateAction):
        if action.queue.name != c.safeguarding_queue:
            written = action.queue.name or "by_intent"
            wrong.append(
                f"it escalates to queue `{written}`, not `{c.safeguarding_queue}` (the queue "
                "`constraints.safeguarding` names): make them the same"
            )
        if action.assign is not None:
            wrong.append("it has `assign:`, which would hand a flagged case to an agent: remove it")
    if not wrong:
        return []
    return [
        Problem(
            "constraints.safeguarding_first",
            f"safeguarding is a hard constraint: the first rule must be `when: \"'"
            f"{c.safeguarding_flag}' in case.flags\"` with `escalate: {{queue: "
            f"{c.safeguarding_queue}, ...}}` and no `assign`, so flagged cases escalate regardless "
            f"of capacity; rule `{first.rule_id}` is first, and " + "; and ".join(wrong),
            file,
            first.line,
            0,
            first.rule_id,
        )
    ]


def _check_queues(raw: RawRuleset, file: str) -> list[Problem]:
    users = [r for r in raw.rules if r.uses_by_intent]
    # An intent written but unreadable is already an error: not also "add it" (review R34b F3).
    missing = [i.value for i in Intent if i not in raw.queues and i.value not in raw.queue_gaps]
    if not users or not missing:
        return []
    return [
        Problem(
            "queues.incomplete",
            f"rule `{users[0].rule_id}` routes `by_intent`, but `queues:` has "
            f"no queue for intent(s) {', '.join(missing)}; add them",
            file,
            raw.queues_line or users[0].line,
            0,
            users[0].rule_id,
        )
    ]


# Invariant: the order is the order problems are reported in when nothing is sorted (lint
# warnings of a ruleset that loads), and each pass runs after every pass it needs.
PASSES: tuple[CompilerPass, ...] = (
    CompilerPass("schema", "YAML shape and types, unknown and missing keys (schema.py)", _schema),
    CompilerPass(
        "conditions",
        "each `when` parsed, fields and params resolved, types checked, lowered to IR leaves",
        _conditions,
    ),
    CompilerPass(
        "ordering", "unique rule ids, a catch-all last, no rule after it (unreachable)", _ordering
    ),
    CompilerPass(
        "safeguarding",
        "the first rule escalates safeguarding-flagged cases to the safeguarding queue",
        _safeguarding,
        frozenset({"section:constraints"}),
    ),
    CompilerPass("queues", "every `by_intent` target has a queue for every intent", _queues),
    CompilerPass(
        "licence",
        "no rule's `licence:` is one no constraint of the intents it routes allows "
        "(licence_checks.py)",
        _licence,
    ),
    CompilerPass(
        "ladders",
        "relaxation ladders in delay order, relaxing only soft requirements; unreachable steps "
        "(ladder_checks.py)",
        _ladders,
    ),
    CompilerPass("lint", "likely mistakes that do not block loading (lint.py)", _lint),
)
