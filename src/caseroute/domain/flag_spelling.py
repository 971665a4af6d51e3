"""When one flag is a near spelling of another: the rule for hard-constraint flags.

A case's flags are normalised as they are read (NFKC, trimmed, case-folded, ``-`` to ``_``), so
``Safeguarding`` and ``consent-missing`` are the hard-constraint flags themselves. A flag counts
as looking like a hard flag ``H`` when, without being ``H``:

- its letters and digits are ``H``'s (``safeguarding.``, ``safe_guarding``);
- its words (split at ``_ . : /``) are all among ``H``'s (``consent``, ``missing_consent``);
- each of ``H``'s words is among its letters (``safeguarding:child``, ``safeguardingconcern``,
  ``missingconsent``), or some stretch of them is at least ``WORD_SIMILAR`` alike to it,
  wherever its word breaks fall (``safegaurding:child``, ``missing_consnt``,
  ``child_safeguard``, ``safe-gaurding-child``);
- or its letters are at least ``SIMILAR`` alike (``safegaurding``, ``safeguard``).

Words of other meaning (``no_consent``, ``consent_withdrawn`` for ``consent_missing``) are not
spellings and are not caught. Fail-closed on near words: a word one letter from a hard word
counts as it (``missing_content``), as does a hard word with a qualifier
(``safeguarding_cleared``, ``safeguard_training_done``). The engine makes a case carrying
such a flag an EXCEPTION (``engine/flag_spelling.py``); ``rules check`` warns about a rule
that reads one (``lint.flag_look_alike``), since such a rule never sees a routed case
carrying it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

SIMILAR = 0.8
"""Similarity (``rapidfuzz.fuzz.ratio`` / 100: twice the longest common subsequence over both
lengths, as difflib's ratio) of two flags' letters from which one is a misspelling of the
other (``safegaurding``, ``safeguard``)."""

WORD_SIMILAR = 0.85
"""Similarity of a hard flag's word to the closest stretch of a flag's letters from which it
is taken as in the flag, misspelt (``safegaurding:child``, ``missing_consnt``): one edit in a
7-letter word (``consnt``, ``consant``, ``consnet``) is 0.86 or more; at 0.8, longer
unrelated words matched (``lifeguarding`` 0.83 to ``safeguarding``)."""

_WORDS = re.compile(r"[^_.:/]+")
_NOT_LETTERS = re.compile(r"[\W_]+")


def _letters(flag: str) -> str:
    """The flag's letters and digits (a regex: a loop over its characters cost ~4x as much)."""
    return _NOT_LETTERS.sub("", flag)


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
    if words <= hard_words:
        return True
    if all(_present(_letters(word), mine) for word in hard_words):
        return True
    return fuzz.ratio(mine, theirs, score_cutoff=100 * SIMILAR) > 0


def _present(word: str, letters: str) -> bool:
    """Whether a hard flag's word is among a flag's letters, as it is or misspelt.

    Misspelt: some stretch of the letters is at least ``WORD_SIMILAR`` alike to it, wherever
    the flag's own word breaks fall (``safe_gaurding_child``: review R32d F4). The search is
    ``rapidfuzz``'s (C++, bit-parallel): difflib over every word and its ends cost up to
    ~650 ms for 200 hostile flags (review R32d F1).
    """
    if not word or word in letters:
        return True
    cutoff = 100 * WORD_SIMILAR
    if len(letters) <= len(word):  # a shorter flag is compared whole (``safe`` is no match)
        return fuzz.ratio(word, letters, score_cutoff=cutoff) > 0
    return fuzz.partial_ratio(word, letters, score_cutoff=cutoff) > 0


CONVENTIONAL = (("safeguarding", "safeguarding"), ("consent_missing", "consent"))
"""caseroute's conventional hard-constraint flags (the reference ruleset's), each with what
it means. A ruleset that names another flag, or enforces no consent constraint, still never
routes a case carrying one (or a near spelling of one) as unflagged."""
