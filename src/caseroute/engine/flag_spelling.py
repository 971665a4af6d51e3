"""Case flags that look like a hard-constraint flag without being it: business-invalid data.

A case's flags are normalised as they are read (NFKC, trimmed, case-folded, ``-`` to ``_``),
so ``Safeguarding`` and ``consent-missing`` are the hard-constraint flags themselves. Any other
valid token was taken as some other flag, so ``safeguarding_``, ``safeguarding:child``,
``safegaurding`` or ``missing_consent`` were routed as if unflagged, and assigned (review R31a
F1). Such a flag is now a data problem: the case goes to the exceptions queue with the reason,
and is never assigned. A flag counts as looking like a hard flag ``H`` when, without being
``H``:

- its letters and digits are ``H``'s (``safeguarding.``, ``safe_guarding``);
- its words (split at ``_ . : /``) are all among ``H``'s, or ``H``'s all among its
  (``safeguarding:child``, ``missing_consent``, ``consent``), or ``H``'s words all run
  together inside its letters (``safeguardingconcern``, ``missingconsent``);
- or its letters are at least ``SIMILAR`` alike (``safegaurding``, ``safeguard``).

A ruleset naming its own safeguarding flag, or enforcing no consent constraint, also treats
caseroute's conventional flags (``safeguarding``, ``consent_missing``) and their near spellings
so: a case carrying one is never routed as unflagged either. Words of other
meaning (``no_consent``, ``consent_withdrawn`` for ``consent_missing``) are not spellings and
are not caught: a ruleset's golden cases and the callers' contract name the flags.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache

from caseroute.rules.model import Constraints

SIMILAR = 0.8
"""``difflib`` ratio of two flags' letters and digits from which one is taken as a misspelling."""

_WORDS = re.compile(r"[^_.:/]+")


def _letters(flag: str) -> str:
    return "".join(ch for ch in flag if ch.isalnum())


@lru_cache(maxsize=4096)
def resembles(flag: str, hard: str) -> bool:
    """Whether case flag ``flag`` looks like hard-constraint flag ``hard`` without being it.

    Args:
        flag: A case's flag, normalised.
        hard: A ruleset's hard-constraint flag (normalised: the schema refuses any other).

    Returns:
        True for a near spelling (module docstring); False for ``hard`` itself or any other.
    """
    if flag == hard:
        return False
    mine, theirs = _letters(flag), _letters(hard)
    if not mine or not theirs:
        return False
    if mine == theirs:
        return True
    words, hard_words = frozenset(_WORDS.findall(flag)), frozenset(_WORDS.findall(hard))
    if words <= hard_words or hard_words <= words:
        return True
    # Run together: every word of the hard flag inside the flag's letters
    # (``safeguardingconcern``, ``missingconsent``; review R31d 1).
    if all(_letters(word) in mine for word in hard_words):
        return True
    # A ratio of SIMILAR needs the shorter at least 2/3 of the longer: skip difflib otherwise
    # (200 new 200-character flags cost ~89 ms a case before; review R31d 6).
    if 3 * min(len(mine), len(theirs)) < 2 * max(len(mine), len(theirs)):
        return False
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    return matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


def hard_flags(constraints: Constraints) -> tuple[tuple[str, str], ...]:
    """The ruleset's hard-constraint flags, each with what it means, in a fixed order."""
    flags = [(constraints.safeguarding_flag, "safeguarding")]
    if constraints.consent_flag is not None:
        flags.append((constraints.consent_flag, "consent"))
    return tuple(flags)


CONVENTIONAL = (("safeguarding", "safeguarding"), ("consent_missing", "consent"))
"""caseroute's conventional hard-constraint flags (the reference ruleset's), each with what
it means. A ruleset that names another flag, or enforces no consent constraint, still never
routes a case carrying one (or a near spelling of one) as unflagged."""


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
    own = hard_flags(constraints)
    names = {name for name, _ in own}
    conventional = [(name, meaning) for name, meaning in CONVENTIONAL if name not in names]
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
