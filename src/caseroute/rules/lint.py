"""Lint: ruleset findings that are legal but probably mistakes (warnings, never blocking)."""

from __future__ import annotations

from caseroute.domain.case import Intent
from caseroute.domain.errors import Problem, Severity
from caseroute.domain.flag_spelling import CONVENTIONAL, misspells, resembles
from caseroute.domain.place_codes import is_iso_code, place_problem
from caseroute.rules.areas import iso_in_other_letters
from caseroute.rules.fields import CASE_FIELDS
from caseroute.rules.ir import Const, Leaf, LeafKind, leaf_ids
from caseroute.rules.ladder_checks import rule_requirements
from caseroute.rules.licence_checks import case_hint, licence_fits
from caseroute.rules.lowering import REGION_PATHS
from caseroute.rules.model import Rule
from caseroute.rules.schema import DEFAULT_RANKING, RawRuleset

LICENSED_INTENTS = (Intent.CLINICAL, Intent.PRESCRIPTION)
"""Intents whose cases need a licensed professional: a ruleset without a licence constraint
for one is warned about (``lint.no_licence``)."""


def lint_ruleset(
    raw: RawRuleset,
    rules: tuple[Rule, ...],
    leaves: dict[str, Leaf],
    params_used: set[str],
    file: str,
    *,
    rules_dropped: bool = False,
) -> list[Problem]:
    """Find likely mistakes.

    Args:
        raw: The schema-pass output (for params and their lines).
        rules: Compiled rules.
        leaves: Leaf table.
        params_used: Params some condition read.
        file: Source path.
        rules_dropped: A written rule did not compile (already an error): the params it reads
            are unknown, so none is reported unused (review R34b F2: "remove it" for a param
            only the broken rule read).

    Returns:
        Warnings.
    """
    out: list[Problem] = []
    gaps = raw.constraint_gaps  # written but unreadable: already an error, not also "absent"
    if (
        raw.constraints is not None
        and raw.constraints.consent_flag is None
        and "consent" not in gaps
    ):
        # Cases flagged consent_missing are still never assigned (engine/flag_spelling.py),
        # but as EXCEPTIONs: the author most likely dropped the line (review R31a F2).
        out.append(
            Problem(
                "lint.no_consent",
                "no consent constraint: a case flagged consent_missing goes to the exceptions "
                "queue instead of queueing for consent; add `consent: {flag: consent_missing}` "
                "under `constraints`",
                file,
                raw.constraints_line,
                0,
                None,
                Severity.WARNING,
            )
        )
    out += _flag_near_miss(raw, rules, leaves, file)
    if raw.constraints is not None and "licence" not in gaps:
        licensed = raw.constraints.licence_by_intent
        unlicensed = [
            i.value for i in LICENSED_INTENTS if i not in licensed and i.value not in gaps
        ]
        if unlicensed:
            # Deleting `clinical: [RN]` passed check --strict and golden tests, and unlicensed
            # agents then got clinical cases (review R32a F4).
            out.append(
                Problem(
                    "lint.no_licence",
                    f"no licence constraint for {' or '.join(unlicensed)}: any agent may be "
                    "assigned such a case, licensed or not; add "
                    f"`{unlicensed[0]}: [<licence types that may take it>]` under "
                    "`constraints.licence`",
                    file,
                    raw.constraints_line,
                    0,
                    None,
                    Severity.WARNING,
                )
            )
    no_ranking = _no_ranking(raw, rules, file)
    if no_ranking is not None:
        out.append(no_ranking)
    for name, line in () if rules_dropped else raw.param_lines.items():
        if name not in params_used and name not in raw.signal_params:
            out.append(
                Problem(
                    "lint.unused_param",
                    f"param `{name}` is never used; remove it or reference it as params." + name,
                    file,
                    line,
                    0,
                    None,
                    Severity.WARNING,
                )
            )
    out += _licence_outside_constraint(raw, rules, leaves, file)
    out += _register_type_unused(raw, file)
    out += _territory_case(raw, rules, leaves, file)
    seen: dict[object, str] = {}
    for rule in rules:
        if isinstance(rule.when, Const) and not rule.when.value:
            out.append(
                Problem(
                    "lint.never_fires",
                    "condition is constant false; the rule can never fire",
                    file,
                    rule.line,
                    0,
                    rule.rule_id,
                    Severity.WARNING,
                )
            )
        key = repr(rule.when) if not isinstance(rule.when, Const) else None
        if key is not None and key in seen:
            out.append(
                Problem(
                    "lint.shadowed",
                    f"same condition as earlier rule `{seen[key]}`, "
                    "which always decides first; this rule never "
                    "decides",
                    file,
                    rule.line,
                    0,
                    rule.rule_id,
                    Severity.WARNING,
                )
            )
        elif key is not None:
            seen[key] = rule.rule_id
        for leaf_id in leaf_ids(rule.when):
            leaf = leaves[leaf_id]
            look_alike = _look_alike(leaf, raw)
            if look_alike is not None:
                out.append(
                    Problem(
                        "lint.flag_look_alike",
                        look_alike,
                        file,
                        rule.line,
                        0,
                        rule.rule_id,
                        Severity.WARNING,
                    )
                )
            out += [
                Problem(
                    "lint.unknown_place",
                    message,
                    file,
                    rule.line,
                    0,
                    rule.rule_id,
                    Severity.WARNING,
                )
                for message in _unknown_places(leaf, raw.areas)
            ]
            field = CASE_FIELDS.get(leaf.path)
            if leaf.kind is LeafKind.EXISTS and field is not None and not field.optional:
                out.append(
                    Problem(
                        "lint.always_present",
                        f"`{leaf.path}` is always present; exists() on it is always true",
                        file,
                        rule.line,
                        0,
                        rule.rule_id,
                        Severity.WARNING,
                    )
                )
    return out


def _flag_near_miss(
    raw: RawRuleset, rules: tuple[Rule, ...], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """``lint.flag_near_miss``: a hard flag that misspells a flag callers are known to send.

    ``consent: {flag: consent_mising}`` passed `rules check` in silence. Safe (a case sent
    with ``consent_missing`` is an EXCEPTION, ``ambiguous_flag``, never assigned), but no such
    case ever queues for consent, and a misspelt safeguarding flag sends every case the
    callers flag ``safeguarding`` to exceptions, not to the safeguarding team. Known
    spellings: caseroute's conventional flag of the same meaning, then the flags rules test.
    A ruleset using the conventional spelling itself is not judged against its rules (a rule
    testing a near spelling of it is the one misspelt: ``lint.flag_look_alike`` says so).
    """
    if raw.constraints is None:
        return []
    conventional = {meaning: name for name, meaning in CONVENTIONAL}
    tested: dict[str, Rule] = {}
    for rule in rules:
        for leaf_id in leaf_ids(rule.when):
            leaf = leaves[leaf_id]
            flagged = leaf.kind is LeafKind.CONTAINS and leaf.path == "case.flags"
            if flagged and isinstance(leaf.value, str):
                tested.setdefault(leaf.value, rule)
    out = []
    for name, meaning in raw.constraints.hard_flags():
        if name == conventional[meaning] or meaning not in raw.flag_places:
            continue
        known = [(conventional[meaning], f"caseroute's conventional {meaning} flag")]
        known += [
            (flag, f"the flag rule `{rule.rule_id}` (line {rule.line}) tests")
            for flag, rule in tested.items()
        ]
        near = next(((flag, what) for flag, what in known if misspells(name, flag)), None)
        if near is None:
            continue
        flag, what = near
        line, column = raw.flag_places[meaning]
        out.append(
            Problem(
                "lint.flag_near_miss",
                f"constraints.{meaning}.flag `{name}` looks like a misspelling of `{flag}`, "
                f"{what}: a case sent with `{flag}` is an EXCEPTION (ambiguous_flag), never "
                + (
                    "queued for consent"
                    if meaning == "consent"
                    else "escalated to the safeguarding queue"
                )
                + f"; write `{flag}` here if that is what callers send, else keep `{name}` and "
                "make sure callers send it",
                file,
                line,
                column,
                None,
                Severity.WARNING,
            )
        )
    return out


def _licence_outside_constraint(
    raw: RawRuleset, rules: tuple[Rule, ...], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """``lint.licence_outside_constraint``: a rule's licence types share none with the floor.

    A rule narrows `constraints.licence` for an intent, never widens it (engine/matching.py),
    so `licence: [pharmacist]` (or `[Rn]`) on a rule for clinical and prescription cases whose
    clinical constraint is `[RN]` accepts no type for a clinical case: each one it takes
    queues, and `rules check` said nothing (review R34b F9). One warning per rule, naming each
    intent its condition allows whose constraint it misses. A rule that misses every intent it
    routes can never assign: that is an error (``rules.licence_never_assigns``), not this.
    """
    out = []
    for fit, floors in licence_fits(raw, rules, leaves):
        if fit.never:
            continue  # an error of its own: rules.licence_never_assigns (licence_checks.py)
        rule, missed = fit.rule, fit.missed
        if not missed:
            out += _licence_partly_outside(rule, fit.types, floors, fit.pinned, file)
            continue
        intent, floor = missed[0]
        names = " or ".join(f"`{i.value}`" for i, _ in missed)
        hint = case_hint(fit.types, floor)
        out.append(
            Problem(
                "lint.licence_outside_constraint",
                f"the rule requires licence {', '.join(fit.types)}, but "
                f"constraints.licence.{intent.value} allows only {', '.join(floor)}: a rule "
                f"narrows that list and never widens it, so no agent can take a {names} case "
                f"this rule routes{hint}; list types the constraint allows",
                file,
                rule.line,
                0,
                rule.rule_id,
                Severity.WARNING,
            )
        )
    return out


def _licence_partly_outside(
    rule: Rule,
    types: tuple[str, ...],
    floors: dict[Intent, tuple[str, ...]],
    pinned: frozenset[str] | None,
    file: str,
) -> list[Problem]:
    """``lint.licence_outside_constraint`` for types every constraint drops without a word.

    ``licence: [pharmacist, RN]`` on a prescription rule whose constraint is
    ``[pharmacist]`` reads as "an RN may take it", but the engine keeps only the types the
    constraint allows (a rule narrows, never widens), so no RN is ever assigned and nothing
    said why. A type kept for some intent the rule routes (``[RN, pharmacist]`` on a rule
    for clinical and prescription cases, or any rule that may route an intent with no
    constraint) is doing its job, and is not reported. One warning per rule.
    """
    routed = [i for i in Intent if pinned is None or i.value in pinned]
    if not routed or any(i not in floors for i in routed):
        return []  # an intent with no constraint takes every type the rule lists
    dropped = [t for t in types if all(t not in floors[i] for i in routed)]
    if not dropped:
        return []
    allowed = sorted({t for i in routed for t in floors[i]})
    names = " or ".join(f"`{i.value}`" for i in routed)
    one = len(dropped) == 1
    return [
        Problem(
            "lint.licence_outside_constraint",
            f"the rule requires licence {', '.join(types)}, but constraints.licence allows "
            f"only {', '.join(allowed)} for the {names} cases it routes: a rule narrows that "
            f"list and never widens it, so {', '.join(dropped)} {'is' if one else 'are'} "
            f"ignored and no agent holding only {' or '.join(dropped)} is ever chosen; remove "
            f"{'it' if one else 'them'} from the rule, or add {'it' if one else 'them'} to "
            "the constraint if such an agent may take these cases",
            file,
            rule.line,
            0,
            rule.rule_id,
            Severity.WARNING,
        )
    ]


def _register_type_unused(raw: RawRuleset, file: str) -> list[Problem]:
    """``lint.register_type_unused``: a register lists a licence type no constraint names.

    A register only limits licences of its types (in any letter case), and a licence counts
    only if ``constraints.licence`` names its type, so a type no constraint names limits
    nothing: ``licence_types: [pharmacst]`` compiled cleanly, and a GB pharmacist was then
    assigned a GB-NIR prescription. One warning per register, at its ``licence_types``.
    """
    if raw.constraints is None or "licence" in raw.constraint_gaps:
        return []
    floors = {
        t.casefold(): t for types in raw.constraints.licence_by_intent.values() for t in types
    }
    out = []
    for register in raw.registers:
        unused = sorted(t for t in register.licence_types if t.casefold() not in floors)
        if not unused:
            continue
        named = ", ".join(sorted(floors.values())) or "none"
        out.append(
            Problem(
                "lint.register_type_unused",
                f"register {register.name} lists licence type {', '.join(unused)}, which no "
                f"`constraints.licence` entry names (they name {named}), so the register "
                "limits no licence; write the type as the constraint does",
                file,
                raw.register_lines.get(register.name, 0),
                0,
                None,
                Severity.WARNING,
            )
        )
    return out


PLACE_PATHS = (*REGION_PATHS, "case.patient_location")
"""Fields whose values are place codes: a literal one of them that names no place is a typo."""


def _texts(leaf: Leaf, paths: tuple[str, ...]) -> list[str]:
    """The string constants a leaf on one of ``paths`` compares with (none for field to field)."""
    if leaf.path not in paths or leaf.ref is not None:
        return []
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    return [value for value in values if isinstance(value, str)]


def _unknown_places(leaf: Leaf, areas: dict[str, str]) -> list[str]:
    """What is wrong with each place code the leaf compares a place field with (usually none).

    ``case.region == 'US-TXX'`` or ``'GB-ENGG' in case.region_areas`` holds for no case in a
    real region, so its rule never fires for the cases it was written for. Codes are judged as
    ``rules check --roster`` judges a roster's (``domain.place_codes``), the ruleset's
    ``areas:`` counting as places.
    """
    out: list[str] = []
    for value in _texts(leaf, PLACE_PATHS):
        problem = place_problem(value, areas)
        which = "which"
        upper = value.upper()
        if problem is None and upper != value and _misspelt_iso(upper, value, areas):
            # `gb-knt`: no ISO code in other letters (lint.territory_case is silent), nor
            # judged as written (small letters are somebody's own): judged in capitals.
            problem = place_problem(upper, areas)
            which = f"which in capitals (`{upper}`)"
        if problem is not None:
            out.append(
                f"`{leaf.path}` is compared with `{value}`, {which} {problem}: no case in a "
                f"real place has it, so the condition never holds for one; fix the code, or, "
                f"if `{value}` is an area of your own, declare it in `areas:`"
            )
    return out


def _misspelt_iso(upper: str, value: str, areas: dict[str, str]) -> bool:
    """Whether ``value`` (``gb-knt``) is a real country's code in other letters, but no place.

    Its country part must be a real ISO 3166-1 country and the whole no ISO code (those are
    ``lint.territory_case``'s), and it must not be an area of the ruleset's own.
    """
    country = upper.partition("-")[0]
    own = value in areas or value in areas.values()
    return not own and is_iso_code(country) and not is_iso_code(upper)


def _look_alike(leaf: Leaf, raw: RawRuleset) -> str | None:
    """Why a rule's flag test never holds for a routed case: its flag looks like a hard one.

    A case carrying such a flag is an EXCEPTION before any rule runs (``ambiguous_flag``), so
    a rule reading ``'safeguarding_review' in case.flags`` never decides (review R31d 5).
    """
    if leaf.kind is not LeafKind.CONTAINS or leaf.path != "case.flags":
        return None
    flag = leaf.value
    if not isinstance(flag, str) or raw.constraints is None:
        return None
    conventional = raw.constraints.conventional_flags()
    for name, meaning in (*raw.constraints.hard_flags(), *conventional):
        if (flag == name and (name, meaning) in conventional) or resembles(flag, name):
            return (
                f"the rule reads flag `{flag}`, which looks like the {meaning} flag `{name}`: a "
                "case carrying it is an EXCEPTION (ambiguous_flag) before any rule runs, so this "
                "test never holds for a routed case; rename the flag"
            )
    return None


def _no_ranking(raw: RawRuleset, rules: tuple[Rule, ...], file: str) -> Problem | None:
    """``lint.no_ranking``: `ranking: []` while some rule picks an agent.

    Ranking is ruleset-wide (`matching.ranking`; without the key the default applies), so an
    empty list leaves every assigning rule to the tie-breaker: the eligible agent with the
    lowest `agent_id` takes every case until full, however busy (engine/ranking.py).
    """
    if raw.ranking or not raw.ranking_line:
        return None
    assigning = [rule.rule_id for rule in rules if rule_requirements(rule) is not None]
    if not assigning:
        return None
    named = [f"`{rule_id}`" for rule_id in assigning[:3]]
    more = len(assigning) - len(named)
    if more:
        who = f"rules {', '.join(named)} and {more} more"
    elif len(named) > 1:
        who = f"rules {', '.join(named[:-1])} and {named[-1]}"
    else:
        who = f"rule {named[0]}"
    verb = "chooses" if len(assigning) == 1 else "choose"
    return Problem(
        "lint.no_ranking",
        f"`matching.ranking` is empty, so {who} {verb} among eligible agents by `agent_id` "
        "alone (the tie-breaker; only preferred agents and `prefer:` rank before it): the "
        "same agent takes every case until it is full. Add ranking criteria, e.g. "
        "`ranking: [lowest_utilisation, longest_idle]`, or remove `ranking:` for the default "
        f"({', '.join(c.value for c in DEFAULT_RANKING)})",
        file,
        raw.ranking_line,
        0,
        None,
        Severity.WARNING,
    )


def _territory_case(
    raw: RawRuleset, rules: tuple[Rule, ...], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """``lint.territory_case``: an ISO 3166 code written in other letters (``gb-ken``).

    Codes are compared exactly, as cases send them, and ISO codes come in capitals: an area
    ``gb-ken: Y59`` placed no case in Kent, ``Y56: gb-eng`` left Y56 outside England's
    agents, and ``'gb-sct' in case.region_areas`` never held; each compiled silently. A
    warning, not an error: a ruleset may name its own codes in small letters.
    """
    out = []
    for area, parent in raw.areas.items():
        line, column = raw.area_places.get(area, (0, 0))
        messages = []
        if (iso := iso_in_other_letters(area)) is not None:
            messages.append(
                f"area {area} is ISO 3166 code {iso} in other letters: territory codes are "
                f"compared exactly and cases send ISO codes in capitals, so a case in {iso} is "
                f"not placed by this line; write {iso}"
            )
        if (iso := iso_in_other_letters(parent)) is not None:
            messages.append(
                f"area {area} is placed within {parent}, ISO 3166 code {iso} in other letters: "
                f"territory codes are compared exactly, so agents covering {iso} do not cover "
                f"{area}; write {iso}"
            )
        out += [
            Problem("lint.territory_case", message, file, line, column, None, Severity.WARNING)
            for message in messages
        ]
    for rule in rules:
        seen: set[str] = set()
        for leaf_id in leaf_ids(rule.when):
            for value in _texts(leaves[leaf_id], REGION_PATHS):
                if value in seen:
                    continue
                iso = iso_in_other_letters(value)
                if iso is None:
                    continue
                seen.add(value)
                out.append(
                    Problem(
                        "lint.territory_case",
                        f"rule `{rule.rule_id}` tests {value}, ISO 3166 code {iso} in other "
                        "letters: regions are compared exactly and cases send ISO codes in "
                        f"capitals, so a case in {iso} never meets it; write '{iso}'",
                        file,
                        rule.line,
                        0,
                        rule.rule_id,
                        Severity.WARNING,
                    )
                )
    return out
