"""Which areas a territory code lies within: ISO 3166-2 parents, sub-codes, and a ruleset's areas.

A code lies within the area it extends with ``-`` (``GB-ENG-NW`` within ``GB-ENG`` within
``GB``), within its ISO 3166-2 parent (``GB-KEN`` Kent within ``GB-ENG`` England: no prefix
says so; ``domain/iso_parents.py``, generated from pycountry and checked in), and within what a
ruleset's ``areas:`` says it lies within (``E54000027`` within ``Y56``, an NHS England region).
An agent's territory covers a case's region when the region is it or lies within it, through
any number of such steps.

Registers use the facts alone (``iso_within``: ISO parents and sub-codes, never a ruleset's
areas): a licence is a hard constraint, and only what is true of the places may widen one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from caseroute.domain.iso_parents import ISO_PARENTS

MAX_AREA_DEPTH = 64
"""Steps up from an area of a ruleset's ``areas:`` to the top, at most (its codes, ISO 3166-2
parents and the ruleset's areas all count): deeper is ``areas.too_deep``. NHS areas need 3
(ICB, NHS England region, England, then GB)."""

MAX_AREA_STEPS = 256
"""Steps any walk up from a code takes at most. A compiled ruleset's areas have no cycle and
lie at most ``MAX_AREA_DEPTH`` deep; a region of at most 200 characters (requests' default
--max-id-chars) extends at most 99 others (and ISO 3166-2 nests 2 deep) before it reaches one
of them, so this never cuts a real chain of a region that size. A walk cut short (a longer
region under a raised limit, areas built in code, unchecked) finds fewer areas, so covers
less: it fails safe."""

ISO = "ISO 3166-2"
"""The source of a step read from ``ISO_PARENTS``, as the explanation names it."""
AREAS = "the ruleset's areas"
"""The source of a step read from a ruleset's ``areas:``."""


def fact_parent(code: str) -> tuple[str, str] | None:
    """The area ``code`` lies within whatever a ruleset says, and where that comes from.

    Its ISO 3166-2 parent when it has one (``GB-KEN``: ``GB-ENG``), else the code it extends
    with ``-`` (``GB-ENG``: ``GB``; ``US-TX``: ``US``), else none.

    Args:
        code: A territory code.

    Returns:
        (parent, ``ISO`` or ``""`` for a sub-code), or ``None`` for a code within nothing.
    """
    found = ISO_PARENTS.get(code)
    if found is not None:
        return found, ISO
    cut = code.rfind("-")
    return (code[:cut], "") if cut > 0 else None


def fact_areas(code: str) -> Iterator[str]:
    """``code``, then each area it lies within by the facts alone, nearest first."""
    current: str | None = code
    taken = 0
    while current is not None and taken < MAX_AREA_STEPS:
        yield current
        taken += 1
        found = fact_parent(current)
        current = found[0] if found is not None else None


def parents_of(code: str, areas: Mapping[str, str]) -> list[tuple[str, str]]:
    """The areas ``code`` lies within in one step, each with its source: the fact, then ``areas``.

    Args:
        code: A territory code.
        areas: A ruleset's ``areas:``: code -> the area it lies within.

    Returns:
        (parent, source) pairs: its ISO 3166-2 parent or the code it extends (``fact_parent``),
        then what ``areas`` names for it (source ``AREAS``).
    """
    found = fact_parent(code)
    parents = [found] if found is not None else []
    named = areas.get(code)
    if named is not None:
        parents.append((named, AREAS))
    return parents


def iso_within(area: str, code: str) -> bool:
    """Whether ``code`` is ``area`` or lies within it by ISO 3166-2 parents and sub-codes.

    ``iso_within("GB-ENG", "GB-KEN")`` holds (Kent is in England), ``iso_within("GB-ENG",
    "GB-BFS")`` does not (Belfast is in Northern Ireland); a ruleset's areas never count.
    """
    return area == code or any(a == area for a in fact_areas(code))


@dataclass(frozen=True, slots=True)
class RegionAreas:
    """A region and every area it lies within, worked out once per ruleset and region.

    Compared by value, hashed once: it is part of a ``Need``, which caches are keyed by.

    Attributes:
        region: The case's region.
        codes: The region and each area it lies within: an agent covers the region when one
            of its territories is one of these.
        steps: The steps that are not a sub-code's (``GB-KEN`` within ``GB-ENG``, ISO 3166-2;
            ``E54000027`` within ``Y56``, the ruleset's areas), as (code, area, source), for
            the explanation.
        ordered: ``codes`` sorted (derived, so not compared): ``case.region_areas`` as rules
            read it, sorted once per ruleset and region instead of once per decision.
    """

    region: str
    codes: frozenset[str]
    steps: tuple[tuple[str, str, str], ...]
    ordered: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ordered", tuple(sorted(self.codes)))
        object.__setattr__(self, "_hash", hash((self.region, self.codes, self.steps)))

    def __hash__(self) -> int:
        return self._hash

    def describe(self) -> str:
        """``GB-KEN`` or ``GB-KEN (GB-KEN lies within GB-ENG by ISO 3166-2)``, for the trace."""
        if not self.steps:
            return self.region
        said = ", ".join(
            f"{code} {'lies ' if n == 0 else ''}within {area} by {source}"
            for n, (code, area, source) in enumerate(self.steps)
        )
        return f"{self.region} ({said})"


def region_areas(region: str, areas: Mapping[str, str]) -> RegionAreas:
    """Every area ``region`` lies within: by sub-code, ISO 3166-2 parent and ``areas``.

    Args:
        region: A case's region.
        areas: A ruleset's ``areas:``: code -> the area it lies within.

    Returns:
        The region and its areas; steps in breadth-first order (the nearest first).
    """
    seen = {region}
    steps: list[tuple[str, str, str]] = []
    frontier = [region]
    taken = 0
    while frontier and taken < MAX_AREA_STEPS:
        taken += 1
        following = []
        for code in frontier:
            for parent, source in parents_of(code, areas):
                if parent in seen:
                    continue
                seen.add(parent)
                following.append(parent)
                if source:
                    steps.append((code, parent, source))
        frontier = following
    return RegionAreas(region, frozenset(seen), tuple(steps))


_REGION_AREAS: dict[tuple[int, str], tuple[Mapping[str, str], RegionAreas]] = {}


def areas_of(region: str, areas: Mapping[str, str]) -> RegionAreas:
    """``region_areas``, worked out once per ruleset and region (not once per agent or rule).

    Keyed by the identity of the ruleset's ``areas``: the entry keeps the mapping it was
    built from (so its id is never reused while the entry lives) and is checked against it;
    bounded (a region is a short code, an entry a few small sets).
    """
    key = (id(areas), region)
    found = _REGION_AREAS.get(key)
    if found is not None and found[0] is areas:
        return found[1]
    within = region_areas(region, areas)
    if len(_REGION_AREAS) >= 4096:
        _REGION_AREAS.clear()
    _REGION_AREAS[key] = (areas, within)
    return within
