"""Texts of a ``[first][rest]{0,n}`` pattern, drawn as a character and a text (not from_regex).

``st.from_regex`` was most of some property tests' time (agent ids, codes, attribute keys drawn
many times an example). ``pattern_texts(first, rest, n)`` gives exactly the strings
``[first][rest]{0,n}`` matches, with the same spread of lengths and characters as measured
against ``st.from_regex`` on these patterns (``tests/wire/test_fast_known_agents.py`` says how).
"""

import operator
import string

from hypothesis import strategies as st

ALNUM = string.ascii_letters + string.digits
"""``[A-Za-z0-9]``: the first character of an identifier (``CODE_RE``)."""

IDENTIFIER_REST = ALNUM + "_.:/-"
"""``[A-Za-z0-9_.:/-]``: an identifier's other characters."""

KEY_FIRST = string.ascii_lowercase + "_"
"""``[a-z_]``: the first character of the attribute keys these tests draw."""

KEY_REST = string.ascii_lowercase + string.digits + "_"
"""``[a-z0-9_]``: their other characters."""


def pattern_texts(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    """Strings of one character of ``first`` then at most ``max_rest`` of ``rest``."""
    return st.builds(operator.add, st.sampled_from(first), st.text(rest, max_size=max_rest))
