"""When one flag is a near spelling of another: the rule for hard-constraint flags.

A case's flags are normalised as they are read (NFKC, trimmed, case-folded, ``-`` to ``_``), so
``Safeguarding`` and ``consent-missing`` are the hard-constraint flags themselves. A flag counts
as looking like a hard flag ``H`` when, without being ``H``:

- its letters and digits are ``H``'s (``safeguarding.``, ``safe_guarding``);
- its words (split at ``_ . : /``) are all among ``H``'s (``consent``, ``missing_consent``);
- each of ``H``'s words is in it: as one of its words (``safeguarding:child``), run together
  inside its letters (``safeguardingconcern``, ``missingconsent``), or at least ``SIMILAR``
  alike to one of its words or to a word's first or last letters (``safegaurding:child``,
  ``missing_consnt``, ``child_safeguard``, ``safegaurdingconcern``);
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
    # Every word of the hard flag in the flag: as a word, run together inside its letters
    # (``safeguardingconcern``; review R31d 1), or misspelt at a word's start or end
    # (``safegaurding:child``, ``missing_consnt``; review R32c F1).
    pieces = [_letters(word) for word in words]
    if all(_present(_letters(word), mine, pieces) for word in hard_words):
        return True
    return _similar(mine, _Alike(theirs))


class _Alike:
    """One text to compare others with (difflib keeps what it learns of it between them)."""

    __slots__ = ("matcher", "size")

    def __init__(self, text: str) -> None:
        self.size = len(text)
        self.matcher = difflib.SequenceMatcher(None, "", text, autojunk=False)


def _similar(one: str, other: _Alike) -> bool:
    """Whether ``one`` and ``other``'s text (letters only) are at least ``SIMILAR`` alike."""
    # A ratio of SIMILAR needs the shorter at least 2/3 of the longer: skip difflib otherwise
    # (200 new 200-character flags cost ~89 ms a case before; review R31d 6).
    if 3 * min(len(one), other.size) < 2 * max(len(one), other.size):
        return False
    matcher = other.matcher
    matcher.set_seq1(one)
    return matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


def _present(word: str, letters: str, pieces: list[str]) -> bool:
    """Whether a hard flag's word is in a flag: among its letters, or near one of its words.

    Near: a word of the flag (``pieces``, letters only) alike to it, or its first or last
    ``len(word)`` letters, one fewer or one more (a word misspelt, then run together with
    another: ``safegaurdingconcern``).
    """
    if not word or word in letters:
        return True
    # Two texts SIMILAR alike within the length bound share a run of two letters (all runs
    # of one would match at most about half of each): a text with none of the word's pairs
    # is not compared (review R32c F1's first version spent ~170 ms on 200 new flags).
    pairs = {word[i : i + 2] for i in range(len(word) - 1)} or {word}
    alike, size = _Alike(word), len(word)
    for piece in pieces:
        if not any(pair in piece for pair in pairs):
            continue
        if _similar(piece, alike):
            return True
        for cut in (size - 1, size, size + 1):
            if 0 < cut < len(piece) and any(
                _similar(end, alike)
                for end in (piece[:cut], piece[-cut:])
                if any(pair in end for pair in pairs)
            ):
                return True
    return False


CONVENTIONAL = (("safeguarding", "safeguarding"), ("consent_missing", "consent"))
"""caseroute's conventional hard-constraint flags (the reference ruleset's), each with what
it means. A ruleset that names another flag, or enforces no consent constraint, still never
routes a case carrying one (or a near spelling of one) as unflagged."""
