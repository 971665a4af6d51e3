"""The ruleset's ``areas:``: which territory code lies within which, checked as a whole.

Written one area a line, each naming the one area it lies within::

    areas:
      E54000027: Y56     # North Central London ICB, in NHS England London
      Y56: GB-ENG        # NHS England London, in England

so an agent whose territories list ``GB-ENG`` (or ``Y56``) covers a case whose region is
``E54000027``. One line per area (not a list of children per parent) because an area lies
within exactly one area: the loader's duplicate-key check then refuses an area given twice,
a review shows one line changing when an area moves, and each line can carry its name.

Checks, all reported at once, at the area's line: ``areas.cycle`` (an area within itself,
through any steps, ISO 3166-2 and sub-codes included), ``areas.two_parents`` (a list of areas,
or a sub-code such as ``NHS-Y56`` placed in an area outside the one its code puts it in), and
``areas.contradicts_iso`` (``GB-KEN: GB-SCT``: Kent is in England, by ISO 3166-2). A
contradiction is an error, not a warning: it would make agents of one territory cover cases of
another, so cases reach a team that does not serve the place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from caseroute.domain.place_codes import is_iso_code
from caseroute.domain.reader import IDENTIFIER, RULESET_MAX_CHARS, text_problem
from caseroute.domain.territory import (
    AREAS,
    ISO,
    MAX_AREA_DEPTH,
    fact_areas,
    fact_parent,
    parents_of,
    region_areas,
)
from caseroute.rules.source import Node

if TYPE_CHECKING:
    from caseroute.rules.schema import SchemaReader

COUNTRY = re.compile(r"[A-Z]{2}")
"""An ISO 3166-1 country code (``GB``): a country lies within no area."""
ISO_CODE = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
"""A code shaped as ISO 3166 writes a country or subdivision (``GB``, ``GB-KEN``): where such a
code lies is a fact, which a ruleset may refine but never move."""


def iso_in_other_letters(code: str) -> str | None:
    """The ISO 3166 code ``code`` spells in other letters (``gb-ken``: ``GB-KEN``), else None.

    Territory codes are compared exactly and cases send ISO codes in capitals, so such a code
    matches no case that means the place: a line or a test written so silently does nothing.
    Only real ISO 3166 codes (``gb``, ``gb-sct``, ``Us-tx``, by the generated table) are judged:
    a code merely shaped like one (``nw``, ``ab-cd``, ``gb-knt``) is somebody's own.
    """
    upper = code.upper()
    # A real ISO 3166-1 country or ISO 3166-2 subdivision, not a shape alone: a team's own code
    # in small letters (`nw`, `gb-nw`) is compared exactly and may be what its cases send, and
    # "write GB-NW" would send its author to a code no case carries.
    return upper if upper != code and is_iso_code(upper) else None


def read_areas(r: SchemaReader, node: Node | None) -> tuple[dict[str, str], dict[str, Node]]:
    """The ``areas:`` mapping (area -> the area it lies within) and each area's key node.

    Args:
        r: The schema reader (problems go to it).
        node: The ``areas`` section, if written.

    Returns:
        The areas that read (in file order), and for each a node at its key's position.
    """
    areas: dict[str, str] = {}
    keys: dict[str, Node] = {}
    if node is None:
        return areas, keys
    if not node.is_mapping:
        r.error(
            "schema.type",
            "`areas` must be a mapping of each area to the area it lies within (`E54000027: Y56`)",
            node,
        )
        return areas, keys
    for key, value in node.value.items():
        line, column = node.key_positions.get(key, (node.line, node.column))
        at = Node(key, line, column)  # keys are text: the loader reads every key as written
        problem, _ = text_problem(key, IDENTIFIER, RULESET_MAX_CHARS)
        if problem is not None:
            r.error("schema.format", f"area {problem}", at)
            continue
        if value.is_sequence:
            _list_problem(r, key, value)
            continue
        parent = r.string(value, f"the area {key} lies within", pattern=IDENTIFIER)
        if parent is None or text_problem(parent, IDENTIFIER, RULESET_MAX_CHARS)[0] is not None:
            continue
        areas[key] = parent
        keys[key] = at
    return areas, keys


def _list_problem(r: SchemaReader, area: str, value: Node) -> None:
    """An area given a list: two areas or more is a second parent; one or none is no list.

    ``E1: [Y56]`` was reported as lying within "1 areas" under areas.two_parents, whose
    advice (list the larger ones on their own lines) did not fit.
    """
    items = value.value
    if len(items) >= 2:
        r.error(
            "areas.two_parents",
            f"area {area} is given {len(items)} areas to lie within; an area lies within one "
            "area (list the larger ones on their own lines: `Y56: GB-ENG`)",
            value,
        )
    elif items and isinstance(items[0].value, str):
        r.error(
            "schema.type",
            f"area {area} is given a list of one area; write it without the brackets: "
            f"`{area}: {items[0].value}`",
            value,
        )
    else:
        r.error(
            "schema.type",
            f"area {area} is given {'an empty list' if not items else 'a list'}; write the one "
            f"area it lies within (`{area}: Y56`), or remove the line",
            value,
        )


def check_areas(r: SchemaReader, areas: dict[str, str], keys: dict[str, Node]) -> None:
    """Every cycle, second parent and contradiction of ISO 3166 among ``areas``, at its line.

    The codes and the steps between them are walked once (``_walk``): a cycle is found whatever
    its length, and how deep each area lies is known, in time linear in the number of areas
    (a 256 KiB file holds some 20,000). Before, a walk of at most ``MAX_AREA_STEPS`` steps per
    area missed a longer cycle, which then compiled, and cost up to 64 steps per area.

    Args:
        r: The schema reader (problems go to it).
        areas: Area -> the area it lies within, in file order.
        keys: Each area's key node (where a problem about it is reported).
    """
    knots, height = _walk(areas)
    knot_of = {code: n for n, knot in enumerate(knots) for code in knot}
    reported: set[int] = set()
    in_cycles: set[str] = set()
    for area, parent in areas.items():
        # An area whose own line is a step of a cycle: the cycle is reported once, at the
        # first such area in file order, with the shortest way back to it.
        knot = knot_of.get(area)
        if knot is None or knot_of.get(parent) != knot:
            continue
        in_cycles.add(area)
        if knot in reported:
            continue
        reported.add(knot)
        path = _path_back(area, areas, knots[knot])
        steps = [f"{code} within {up} ({_source(source, code, keys)})" for code, up, source in path]
        if len(steps) > 8:  # a cycle through 20,000 lines is not one 600 KB message
            steps = [*steps[:4], f"… {len(steps) - 6} steps more …", *steps[-2:]]
        said = ", ".join(steps)
        r.error(
            "areas.cycle",
            f"areas put {area} within itself: {said}; an area cannot lie within itself, so "
            "remove or correct one of these lines",
            keys[area],
        )
    too_deep = {
        area for area in areas if (h := height.get(area)) is not None and h > MAX_AREA_DEPTH
    }
    below = {up for area in too_deep for up, _ in parents_of(area, areas)}
    for area in too_deep - below:  # the deepest of each chain: one error, where it starts
        chain = _longest_chain(area, areas, height)
        shown = chain if len(chain) <= 8 else [*chain[:3], "…", *chain[-3:]]
        r.error(
            "areas.too_deep",
            f"area {area} lies {len(chain) - 1} areas deep ({' within '.join(shown)}); the "
            f"limit is {MAX_AREA_DEPTH}, and coverage would stop short of the outer areas "
            "(their agents would not cover it); nest areas less deeply: place an area within "
            "a larger one directly (`E54000027: GB-ENG`), not through every level",
            keys[area],
        )
    for area, parent in areas.items():
        if area not in in_cycles and area not in too_deep:
            _check_placement(r, area, parent, areas, keys[area])


def _walk(areas: dict[str, str]) -> tuple[list[set[str]], dict[str, int | None]]:
    """The knots of codes that lie within each other, and how deep each code lies.

    One depth-first walk over every code the areas reach (Tarjan's strongly connected
    components, iterative: a chain of 20,000 areas must not exhaust the stack). A knot is a
    set of codes each within every other through some steps: a cycle. A code's height is the
    most steps up from it (0: within nothing), ``None`` when a way up enters a knot.

    Args:
        areas: Area -> the area it lies within.

    Returns:
        (knots, code -> height).
    """
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    knots: list[set[str]] = []
    height: dict[str, int | None] = {}

    def enter(code: str) -> tuple[str, Iterator[str]]:
        order[code] = low[code] = len(order)
        stack.append(code)
        on_stack.add(code)
        return code, iter([up for up, _ in parents_of(code, areas)])

    for root in areas:
        if root in order:
            continue
        work = [enter(root)]
        while work:
            code, ups = work[-1]
            up = next(ups, None)
            if up is not None:
                if up not in order:
                    work.append(enter(up))
                elif up in on_stack:
                    low[code] = min(low[code], order[up])
                continue
            work.pop()
            if work:
                below = work[-1][0]
                low[below] = min(low[below], low[code])
            if low[code] != order[code]:
                continue
            members = set()
            while True:  # every code above this one on the stack is in its component
                member = stack.pop()
                on_stack.discard(member)
                members.add(member)
                if member == code:
                    break
            ups_of = [up for up, _ in parents_of(code, areas)]
            if len(members) > 1 or code in ups_of:
                knots.append(members)
                height.update(dict.fromkeys(members))
                continue
            # Invariant: components come out after every component above them, so each
            # code above this one has its height already.
            heights = [height[up] for up in ups_of]
            known = [h for h in heights if h is not None]
            height[code] = None if len(known) < len(heights) else 1 + max(known, default=-1)
    return knots, height


def _longest_chain(area: str, areas: dict[str, str], height: dict[str, int | None]) -> list[str]:
    """``area`` and the codes on its longest way up, nearest first (every height known)."""
    chain = [area]
    code = area
    while True:
        ups = [up for up, _ in parents_of(code, areas)]
        if not ups:
            return chain
        code = max(ups, key=lambda up: height[up] or 0)
        chain.append(code)


def _source(source: str, code: str, keys: dict[str, Node]) -> str:
    if source == AREAS:
        return f"line {keys[code].line}"
    return source or "its code"


def _path_back(area: str, areas: dict[str, str], knot: set[str]) -> list[tuple[str, str, str]]:
    """The fewest steps from ``area`` back to itself, its own line first, within its knot.

    ``area`` and the area its line names are in ``knot``, so a way back exists and the
    search ends; it reads only the knot's codes, so all reports cost one pass over them.
    """
    came: dict[str, tuple[str, str]] = {}  # code -> (the code it was reached from, source)
    start = areas[area]
    came[start] = (area, AREAS)
    frontier = [start]
    while frontier:
        following = []
        for code in frontier:
            for parent, source in parents_of(code, areas):
                if parent == area:
                    return _steps_to(code, area, source, came)
                if parent in knot and parent not in came:
                    came[parent] = (code, source)
                    following.append(parent)
        frontier = following
    raise AssertionError(f"{area} is in a knot with no way back")  # pragma: no cover


def _steps_to(
    last: str, area: str, source: str, came: dict[str, tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """The steps from ``area`` to ``last`` (as ``came`` recorded them), then back to ``area``."""
    steps = [(last, area, source)]
    code = last
    while code != area:
        before, how = came[code]
        steps.append((before, code, how))
        code = before
    return steps[::-1]


def _check_placement(
    r: SchemaReader, area: str, parent: str, areas: dict[str, str], at: Node
) -> None:
    """An area placed where the facts say it is not (ISO 3166 or its own sub-code)."""
    if COUNTRY.fullmatch(area):
        r.error(
            "areas.contradicts_iso",
            f"area {area} is a country (ISO 3166-1), which lies within no area; list the areas "
            f"within it instead (`Y56: {area}`)",
            at,
        )
        return
    found = fact_parent(area)
    if found is None:
        return  # a code of the ruleset's own (E54000027, Y56): it lies where the ruleset says
    nearest, source = found
    facts = list(fact_areas(area))[1:]
    if parent in facts:
        return  # the ruleset repeats a fact
    by_iso = source == ISO or bool(ISO_CODE.fullmatch(area))
    if by_iso and ISO_CODE.fullmatch(parent):
        r.error(
            "areas.contradicts_iso",
            f"area {area} lies within {' within '.join(facts)} by ISO 3166, not within {parent}; "
            f"remove this line, or name a code of the ruleset's own (not an ISO 3166 code) for "
            "the area you mean",
            at,
        )
        return
    if nearest in region_areas(parent, areas).codes:
        return  # a finer placement within the same area (GB-KEN: Y59, Y59: GB-ENG)
    if by_iso:
        r.error(
            "areas.contradicts_iso",
            f"area {area} lies within {nearest} by ISO 3166, and {parent} is not listed as lying "
            f"within {nearest}; add `{parent}: {nearest}` if it does, else correct this line",
            at,
        )
        return
    fix = (
        f"place it within an area inside {nearest}"
        if ISO_CODE.fullmatch(parent)
        else f"add `{parent}: {nearest}` if {parent} lies within {nearest}"
    )
    r.error(
        "areas.two_parents",
        f"area {area} already lies within {nearest} by its code (a code covers the codes that "
        f"extend it with -), and {parent} is not within {nearest}; {fix}, or give the area a "
        f"code that does not extend {nearest}",
        at,
    )
