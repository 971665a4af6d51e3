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
from typing import TYPE_CHECKING

from caseroute.domain.reader import IDENTIFIER, RULESET_MAX_CHARS, text_problem
from caseroute.domain.territory import (
    AREAS,
    ISO,
    MAX_AREA_STEPS,
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
            r.error(
                "areas.two_parents",
                f"area {key} is given {len(value.value)} areas to lie within; an area lies "
                "within one area (list the larger ones on their own lines: `Y56: GB-ENG`)",
                value,
            )
            continue
        parent = r.string(value, f"the area {key} lies within", pattern=IDENTIFIER)
        if parent is None or text_problem(parent, IDENTIFIER, RULESET_MAX_CHARS)[0] is not None:
            continue
        areas[key] = parent
        keys[key] = at
    return areas, keys


def check_areas(r: SchemaReader, areas: dict[str, str], keys: dict[str, Node]) -> None:
    """Every cycle, second parent and contradiction of ISO 3166 among ``areas``, at its line.

    Args:
        r: The schema reader (problems go to it).
        areas: Area -> the area it lies within, in file order.
        keys: Each area's key node (where a problem about it is reported).
    """
    in_cycles: set[str] = set()
    for area in areas:
        if area in in_cycles:
            continue
        path = _path_back(area, areas)
        if path is None:
            continue
        members = [step[0] for step in path if step[2] == AREAS]
        in_cycles.update(members)
        said = ", ".join(
            f"{code} within {parent} ({_source(source, code, keys)})"
            for code, parent, source in path
        )
        r.error(
            "areas.cycle",
            f"areas put {area} within itself: {said}; an area cannot lie within itself, so "
            "remove or correct one of these lines",
            keys[area],
        )
    for area, parent in areas.items():
        if area not in in_cycles:
            _check_placement(r, area, parent, areas, keys[area])


def _source(source: str, code: str, keys: dict[str, Node]) -> str:
    if source == AREAS:
        return f"line {keys[code].line}"
    return source or "its code"


def _path_back(area: str, areas: dict[str, str]) -> list[tuple[str, str, str]] | None:
    """The steps from ``area`` back to itself (its own line first), or ``None`` if none."""
    came: dict[str, tuple[str, str]] = {}  # code -> (the code it was reached from, source)
    start = areas[area]
    came[start] = (area, AREAS)
    frontier = [start]
    taken = 0
    while frontier and taken < MAX_AREA_STEPS:
        taken += 1
        following = []
        for code in frontier:
            for parent, source in parents_of(code, areas):
                if parent == area:
                    return _steps_to(code, area, source, came)
                if parent not in came:
                    came[parent] = (code, source)
                    following.append(parent)
        frontier = following
    return None


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
