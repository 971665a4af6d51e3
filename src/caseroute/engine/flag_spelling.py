"""Case flags that look like a hard-constraint flag without being it: business-invalid data.

Any valid token other than the flag itself was taken as some other flag, so
``safeguarding_``, ``safeguarding:child``, ``safegaurding`` or ``missing_consent`` were
routed as if unflagged, and assigned (review R31a F1). Such a flag (the rule is
``domain/flag_spelling.py``) is now a data problem: the case goes to the exceptions queue
with the reason, and is never assigned. A ruleset naming its own safeguarding flag, or
enforcing no consent constraint, also treats caseroute's conventional flags
(``safeguarding``, ``consent_missing``) and their near spellings so.
"""

from __future__ import annotations

from collections.abc import Iterable

from caseroute.domain.flag_spelling import resembles
from caseroute.rules.model import Constraints


def _conventional_problem(flag: str, name: str, meaning: str, constraints: Constraints) -> str:
    said = "is" if flag == name else "looks like"
    own = constraints.safeguarding_flag if meaning == "safeguarding" else constraints.consent_flag
    if own is None:
        return (
            f"case.flags: {flag!r} {said} caseroute's conventional {meaning} flag {name!r}, but "
            f"this ruleset enforces no {meaning} constraint, so the case is not assigned; add "
            f"`{meaning}: {{flag: {name}}}` to the ruleset's constraints, or do not send the flag"
        )
    return (
        f"case.flags: {flag!r} {said} caseroute's conventional {meaning} flag {name!r}, but "
        f"this ruleset's {meaning} flag is {own!r}; send {own!r} for that"
    )


def flag_spelling_problems(flags: Iterable[str], constraints: Constraints) -> list[str]:
    """A detail for each case flag that looks like a hard-constraint flag without being it.

    Args:
        flags: The case's flags, normalised.
        constraints: The ruleset's hard constraints.

    Returns:
        One line per such flag (``case.flags: 'safegaurding' looks like ...``), in flag order.
    """
    present = frozenset(flags)
    own = constraints.hard_flags()
    conventional = constraints.conventional_flags()
    problems = []
    for flag in sorted(present):
        found = next(
            (
                (name, meaning)
                for name, meaning in own
                if name not in present and resembles(flag, name)
            ),
            None,
        )
        if found is not None:
            name, meaning = found
            problems.append(
                f"case.flags: {flag!r} looks like the ruleset's {meaning} flag {name!r} but "
                f"is not it; send {name!r} if that is meant (a hard-constraint flag must be "
                "spelt as the ruleset names it; case, spaces and - aside), or another flag"
            )
            continue
        for name, meaning in conventional:
            if flag == name or resembles(flag, name):
                problems.append(_conventional_problem(flag, name, meaning, constraints))
                break
    return problems
