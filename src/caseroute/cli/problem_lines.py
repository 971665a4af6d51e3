"""A ruleset's problems as text lines, at most so many of one code, the rest counted in a line.

A generated or hostile file (thousands of areas, each with the same mistake) printed thousands
of lines of one kind, from every command that reads a ruleset: the first ones, with their
``file:line``, and a count say as much. Counts (``N error(s)``) and ``--format json`` are
never capped; only the lines printed are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from caseroute.domain.errors import Severity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from caseroute.domain.errors import Problem, RulesetError

SHOWN_PER_CODE = 20
"""Problems of one code printed as text by default (``rules check --max-per-code``)."""

SEE_EVERY_ONE = "run `caseroute rules check --max-per-code 0` on the file to see every one"
"""How a command without ``--max-per-code`` says where the problems it did not print are."""


def capped_lines(
    problems: Sequence[Problem], most: int = SHOWN_PER_CODE, every: str = SEE_EVERY_ONE
) -> list[str]:
    """Each problem's line, at most ``most`` per code (0: all), then one line per code cut short.

    Args:
        problems: The problems, in the order they are to be read.
        most: Lines per code; 0 prints every problem.
        every: Where the rest can be seen (the end of each counting line).

    Returns:
        The lines, problems first in their own order, then the counting lines.
    """
    lines: list[str] = []
    shown: dict[str, int] = {}
    left: dict[str, list[Problem]] = {}
    for problem in problems:
        seen = shown.get(problem.code, 0)
        if most and seen >= most:
            left.setdefault(problem.code, []).append(problem)
            continue
        shown[problem.code] = seen + 1
        lines.append(str(problem))
    lines += [
        f"... and {len(rest)} more {code} problem(s) like these, from {rest[0].location} "
        f"to {rest[-1].location}; fix the ones above and check again, or {every}"
        for code, rest in left.items()
    ]
    return lines


def ruleset_error_text(exc: RulesetError) -> str:
    """``str(exc)`` (its headline, then a problem a line), with ``capped_lines``' cap.

    The error's own message lists every problem, for logs and callers that want them all.
    """
    errors = sum(p.severity is Severity.ERROR for p in exc.problems)
    lines = "\n".join(f"  {line}" for line in capped_lines(exc.problems))
    return f"{exc.HEADLINE.format(errors=errors)}:\n{lines}"
