"""How a command reports: escaped lines, JSON, usage errors and exit codes."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from caseroute.domain.errors import AuditUnavailableError
from caseroute.render import escape_lines, escape_text, safe_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_UNREADABLE = 3
"""The decision log (or the server replaying it) could not be read, so nothing was checked:
``audit verify|show|export|events``, ``replay``, ``report`` and ``rules shadow-report``; for
``audit rotate-key``, the log could not be reached or the rotation not confirmed. Never
1, which is a finding (TAMPERED, an edited record, a gate exceeded): a monitor or a CI gate
tells an outage from a finding."""
# EXIT_INTERRUPTED (130) lives in caseroute.cli.entry, which must load before anything else.


def unreadable_exits_3(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """``run``, exiting ``EXIT_UNREADABLE`` with its one line when the log cannot be read.

    ``audit show`` and ``export`` exit 1 for a finding (an edited record): an unreadable log
    exited 1 too, and a script could not tell an outage from an edit. ``report`` exited 1 and
    ``rules shadow-report`` 2 (a usage error) for the same outage.
    """

    @functools.wraps(run)  # the command's own module and name (tests/test_cli_package.py)
    def run_or_unreadable(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except AuditUnavailableError as exc:
            sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
            return EXIT_UNREADABLE

    return run_or_unreadable


class UsageError(Exception):
    """Bad command-line input; the message says what to fix."""


def out(line: str) -> None:
    """Print one line of human-readable output with caller/operator text escaped on it."""
    sys.stdout.write(escape_text(line) + "\n")


def print_json(data: object) -> None:
    """Print ``data`` as indented JSON with nothing a terminal acts on left raw."""
    sys.stdout.write(safe_json(data, indent=2) + "\n")
