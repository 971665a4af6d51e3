"""Characters a word processor or web page puts where a ruleset needs plain ASCII.

Text copied from a document, an email or a wiki brings typographic quotes (U+2018, U+201C),
dashes (U+2013, U+2212), non-breaking and other Unicode spaces, and full-width punctuation.
Each looks like the ASCII character YAML or a condition needs and is not it, so the file fails
to read and the operator, seeing what looks like correct text, cannot tell why. This table
names them and the character to type instead.
"""

from __future__ import annotations

import unicodedata

_PLAIN = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys(
        "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
        "\u202f\u205f\u3000",
        " ",
    ),
    "\uff1a": ":",
    "\uff1d": "=",
    "\uff08": "(",
    "\uff09": ")",
    "\uff0c": ",",
    "\uff3b": "[",
    "\uff3d": "]",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
}


def lookalike(text: str) -> tuple[int, str] | None:
    """The first look-alike character in ``text``: its offset and the advice for it.

    Args:
        text: A line, or a condition.

    Returns:
        ``(offset, advice)``, the advice naming the character (``U+2018 LEFT SINGLE QUOTATION
        MARK``) and the ASCII to type instead; ``None`` when there is none.
    """
    for offset, char in enumerate(text):
        plain = _PLAIN.get(char)
        if plain is not None:
            name = unicodedata.name(char, "")
            shown, typed = ("a space", "space") if plain == " " else (plain, plain)
            return offset, (
                f"{char!r} (U+{ord(char):04X} {name}) looks like {shown} but is not it (text "
                f"copied from a document or web page?): type a plain {typed} instead"
            )
    return None
