"""What to do next about a ruleset that did not load, chosen by where its problems are."""

from __future__ import annotations

import shlex
from pathlib import Path

from caseroute import __version__
from caseroute.domain.errors import RulesetError, Severity
from caseroute.rules.serving import SERVING_FILE


def next_step(exc: RulesetError) -> str:
    """The line printed after a ruleset's problems: what would help, which is not always a check.

    ``rules check`` helps with a file on disk; it cannot reach a source the decision log
    stored, and says nothing new about a path that holds no ruleset.

    Args:
        exc: The error, with every problem found (at least one).

    Returns:
        One sentence, naming the file or directory to act on.
    """
    from caseroute.replay.candidate import FROM_LOG  # the CLI's start stays light

    errors = [p for p in exc.problems if p.severity is Severity.ERROR] or list(exc.problems)
    first = errors[0]
    where = Path(first.file)
    codes = {p.code for p in errors}
    if first.file.endswith(FROM_LOG):
        version = first.file.removesuffix(FROM_LOG)
        return (
            f"This is the source {version} decided with, as the decision log stored it; it does "
            f"not compile with caseroute {__version__}, and no file holds it for `caseroute rules "
            "check`: replay with the caseroute version that recorded it, or pass --candidate the "
            "version's file or directory once it loads here."
        )
    if codes == {"source.unreadable"}:
        pointer = where.parent / SERVING_FILE
        if pointer.is_file():  # the version a ruleset's pointer names is not there
            return (
                f"{pointer} names version {where.name}, which is not in {where.parent}: point "
                f"`active:` at a version that exists (`caseroute rules check "
                f"{shlex.quote(str(where.parent))}` lists what loads), or pass a version's "
                "directory."
            )
        return (
            f"Check the path: {first.file} must be a ruleset file, or a directory holding "
            "ruleset.yaml, that this user can read."
        )
    if all(code.startswith("serving.") for code in codes):
        return (
            f"Fix {first.file} at the line above (it names the version that serves), then run "
            f"`caseroute rules check {shlex.quote(str(where.parent))}`."
        )
    return (
        f"Fix the problems at the lines above, then run `caseroute rules check "
        f"{shlex.quote(first.file)}` (it reports every problem and warning)."
    )
