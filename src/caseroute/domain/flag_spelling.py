"""When one flag is a near spelling of another: the rule for hard-constraint flags.

A case's flags are normalised as they are read (NFKC, trimmed, case-folded, ``-`` to ``_``), so
``Safeguarding`` and ``consent-missing`` are the hard-constraint flags themselves. A flag counts
as looking like a hard flag ``H`` when, without being ``H``:

- its letters and digits are ``H``'s (``safeguarding.``, ``safe_guarding``);
- its words (split at ``_ . : /``) are all among ``H``'s, or ``H``'s all among its
  (``safeguarding:child``, ``missing_consent``, ``consent``), or ``H``'s words all run
  together inside its letters (``safeguardingconcern``, ``missingconsent``);
- or its letters are at least ``SIMILAR`` alike (``safegaurding``, ``safeguard``).

Words of other meaning (``no_consent``, ``consent_withdrawn`` for ``consent_missing``) are not
spellings and are not caught. The engine makes a case carrying such a flag an EXCEPTION
(``engine/flag_spelling.py``); ``rules check`` warns about a rule that reads one
(``lint.flag_look_alike``), since such a rule never sees a routed case carrying it.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

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


CONVENTIONAL = (("safeguarding", "safeguarding"), ("consent_missing", "consent"))
"""caseroute's conventional hard-constraint flags (the reference ruleset's), each with what
it means. A ruleset that names another flag, or enforces no consent constraint, still never
routes a case carrying one (or a near spelling of one) as unflagged."""
