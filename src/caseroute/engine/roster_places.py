"""Lint a real roster's place codes against a ruleset: territories and licences that name no place.

An agent whose territory is mistyped (``US-TXX``, ``GB-ENGG``) is never eligible for a case in a
real region, and a licence recorded under ``UK-ENG`` is valid nowhere: nothing fails, the agent
just never gets a case, and the time to triage grows. ``rules check --roster`` reports each as
``roster.unknown_place`` (a warning; an error with ``--strict``), naming the agent, the field
and what to write instead. What counts as a place is ``domain.place_codes``: ISO 3166, the
ruleset's ``areas:`` (for territories only: a licence is widened by facts alone, never by a
ruleset's areas), or a sub-area of either; codes shaped like no ISO code are not judged.
"""

from __future__ import annotations

from caseroute.domain.errors import Problem, Severity
from caseroute.domain.place_codes import place_problem
from caseroute.domain.roster import Roster
from caseroute.rules.model import CompiledRuleset

UNKNOWN_PLACE = "roster.unknown_place"


def unknown_places(ruleset: CompiledRuleset, roster: Roster, roster_name: str) -> list[Problem]:
    """A warning per distinct agent territory or licence jurisdiction that names no place.

    Args:
        ruleset: The compiled ruleset whose ``areas:`` count as places.
        roster: The roster snapshot to check.
        roster_name: How messages name the roster (its file name), also the problem's file.

    Returns:
        Warnings coded ``roster.unknown_place``, in roster order, one per agent and code.
    """
    found: list[Problem] = []
    judged: dict[tuple[str, str], str | None] = {}
    for agent in roster.agents:
        places = [("territories", code) for code in sorted(agent.territories)]
        places += [("licences", licence.jurisdiction) for licence in agent.licences]
        seen: set[tuple[str, str]] = set()
        for field, code in places:
            if (field, code) in seen:
                continue
            seen.add((field, code))
            if (field, code) not in judged:
                # A licence is a fact of law: only ISO 3166 places, never the ruleset's areas.
                areas = ruleset.areas if field == "territories" else {}
                judged[field, code] = place_problem(code, areas)
            problem = judged[field, code]
            if problem is None:
                continue
            if field == "territories":
                advice = (
                    "it covers no case's region but that very code; fix the roster, or, if "
                    f"`{code}` is an area of your own, declare it in the ruleset's `areas:` "
                    "with the area it lies within"
                )
            else:
                advice = (
                    "a licence recorded under it is valid in no patient location but that very "
                    "code; fix the roster: a licence's jurisdiction is the ISO 3166 code of the "
                    "place that issued it (`US-TX`; `GB` for a UK-wide registration)"
                )
            found.append(
                Problem(
                    UNKNOWN_PLACE,
                    f"agent `{agent.agent_id}` {field}: `{code}` {problem}, so {advice}",
                    roster_name,
                    severity=Severity.WARNING,
                )
            )
    return found
