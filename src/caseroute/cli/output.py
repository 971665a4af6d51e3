"""How a command reports: escaped lines, JSON, usage errors and exit codes."""

from __future__ import annotations

import sys

from caseroute.render import escape_text, safe_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_UNREADABLE = 3
"""The decision log (or the server replaying it) could not be read, so nothing was checked:
``audit verify|show|export|events`` and ``replay``. Never 1, which is a finding (TAMPERED, an
edited record, a gate exceeded): a monitor or a CI gate tells an outage from a finding."""
# EXIT_INTERRUPTED (130) lives in caseroute.cli.entry, which must load before anything else.


class UsageError(Exception):
    """Bad command-line input; the message says what to fix."""


def out(line: str) -> None:
    """Print one line of human-readable output with caller/operator text escaped on it."""
    sys.stdout.write(escape_text(line) + "\n")


def print_json(data: object) -> None:
    """Print ``data`` as indented JSON with nothing a terminal acts on left raw."""
    sys.stdout.write(safe_json(data, indent=2) + "\n")
