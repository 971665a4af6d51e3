"""When one flag is a near spelling of another: the rule for hard-constraint flags.

A case's flags are normalised as they are read (NFKC, trimmed, case-folded, ``-`` to ``_``), so
``Safeguarding`` and ``consent-missing`` are the hard-constraint flags themselves. A hard flag's
*distinctive word* says what it guards: the flag itself when it is one word (``safeguarding``),
else its word ``consent`` or ``safeguarding`` (``consent`` of ``consent_missing``; a flag of
several words with neither, such as ``sg_concern``, has none). A flag counts as looking like a
hard flag ``H`` when, without being ``H``:

- its letters and digits are ``H``'s (``safeguarding.``, ``safe_guarding``);
- its words (split at ``_ . : /``) are all among ``H``'s (``consent``, ``missing_consent``);
- ``H``'s distinctive word is among its letters, with anything else around it (``consent:no``,
  ``no_consent``, ``consent_withdrawn``, ``consented``, ``safeguarding:child``,
  ``safeguardingconcern``), or some stretch of them is at least ``WORD_SIMILAR`` alike to it,
  wherever its word breaks fall (``safegaurding:child``, ``no_consnt``, ``child_safeguard``,
  ``safe-gaurding-child``); without a distinctive word, each of ``H``'s words must be so;
- one of its words is the distinctive word cut short, ``MIN_START`` letters or more (``safe``,
  ``safeg``, ``safeg:child``, ``cons``, ``conse_no``);
- or its letters are at least ``SIMILAR`` alike (``safegaurding``, ``safeguard``).

A flag that names consent at all cannot be told apart from one saying it is missing: a routing
service cannot know that ``consent_given`` means yes and ``consent_withdrawn`` or ``consent_m``
no, so every one is ambiguous (review M3: ``consent:no``, ``no_consent`` and the like were
routed as unflagged while the bare ``consent`` was not). Fail-closed on near words: a word one
letter from a hard word counts as it (``missing_content``, ``content_warning``), as does a hard
word with a qualifier (``safeguarding_cleared``, ``safeguard_training_done``) and a word that
starts it (``safe_to_text``). Not caught (a limit): abbreviations shorter than ``MIN_START``
(``sg``, ``saf``, ``con``), a start run into other letters (``safegchild``), other forms of the
word (``safeguards_ok``, ``safeguarded``), and words that only begin like it (``safety``).

The engine makes a case carrying such a flag an EXCEPTION (``engine/flag_spelling.py``);
``rules check`` warns about a rule that reads one (``lint.flag_look_alike``), since such a rule
never sees a routed case carrying it.
"""

from __future__ import annotations

import re
import unicodedata
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

MIN_START = 4
"""Letters from which a word of a flag that starts a hard flag's distinctive word counts as that
word cut short (``safe``, ``safeg``, ``cons``; review L3). Shorter starts (``saf``, ``con``)
and abbreviations (``sg``) stand for other words too often to refuse: a documented limit."""

CONVENTIONAL = (("safeguarding", "safeguarding"), ("consent_missing", "consent"))
"""caseroute's conventional hard-constraint flags (the reference ruleset's), each with what
it means. A ruleset that names another flag, or enforces no consent constraint, still never
routes a case carrying one (or a near spelling of one) as unflagged."""

MEANINGS = frozenset(meaning for _, meaning in CONVENTIONAL)
"""The words naming what a hard constraint guards: a hard flag of several words that has one
has it as its distinctive word (``consent`` of ``consent_missing`` or ``no_consent``)."""


def normalise_flag(text: str) -> str:
    """The one spelling of a flag: NFKC, trimmed, case-folded, ``-`` folded to ``_``.

    NFKC folds compatibility forms (fullwidth letters, the long s) onto ASCII first, so no
    spelling of a hard-constraint flag can slip past (``Consent-Missing`` is
    ``consent_missing``); what remains must match ``reader.FLAG``.

    Args:
        text: The flag as sent.

    Returns:
        The normalised flag (not yet validated).
    """
    return unicodedata.normalize("NFKC", text).casefold().strip().replace("-", "_")


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
    distinctive = distinctive_words(hard)
    # Invariant: a distinctive word is one of the hard flag's words, so a flag carrying all of
    # them carries it: checking it alone refuses everything the all-words rule did, and more.
    if distinctive:
        if any(_present(word, mine) or _cut_short(word, words) for word in distinctive):
            return True
    elif all(_present(_letters(word), mine) for word in hard_words):
        return True
    return fuzz.ratio(mine, theirs, score_cutoff=100 * SIMILAR) > 0


def misspells(flag: str, other: str) -> bool:
    """Whether hard flag ``flag`` reads as a slip of the pen for flag ``other``.

    Tighter than ``resembles``: the same letters, or letters at least ``SIMILAR`` alike
    (``consent_mising``, ``safegaurding``), never a flag that only shares a word (``no_consent``
    is a name of its own, not a misspelling of ``consent_missing``). ``rules check`` warns about
    a ruleset's hard flag that misspells a flag callers are known to send
    (``lint.flag_near_miss``); deciding never reads this.

    Args:
        flag: A ruleset's hard-constraint flag, normalised.
        other: A flag spelt elsewhere (caseroute's conventional one, a rule's test), normalised.

    Returns:
        True when they differ and one looks like a misspelling of the other.
    """
    if flag == other:
        return False
    mine, theirs = _letters(flag), _letters(other)
    return bool(mine and theirs) and (
        mine == theirs or fuzz.ratio(mine, theirs, score_cutoff=100 * SIMILAR) > 0
    )


@lru_cache(maxsize=256)
def distinctive_words(hard: str) -> frozenset[str]:
    """The words of hard-constraint flag ``hard`` that say what it guards.

    Args:
        hard: A ruleset's hard-constraint flag, normalised.

    Returns:
        Its letters when it is one word (``safeguarding``); else its words among ``MEANINGS``
        (``consent`` of ``consent_missing``), none for a flag such as ``sg_concern``.
    """
    words = _WORDS.findall(hard)
    if len(words) == 1:
        return frozenset({_letters(hard)})
    return frozenset(word for word in words if word in MEANINGS)


def _cut_short(word: str, words: frozenset[str]) -> bool:
    """Whether one of a flag's words is hard word ``word`` cut short (``safeg``; review L3).

    Only a whole word of the flag counts, ``MIN_START`` letters or more: a flag's letters
    starting so (``safety``, ``constant``) are other words far more often than truncations.
    """
    return any(MIN_START <= len(mine) < len(word) and word.startswith(mine) for mine in words)


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
