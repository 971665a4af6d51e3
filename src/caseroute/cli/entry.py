"""The process entry point: runs the command, and turns Ctrl-C while it loads into exit 130.

Every way to start caseroute comes here: the ``caseroute`` script, ``python -m caseroute`` and
``python -m caseroute.cli``. This module imports only the standard library, and so does the
``caseroute.cli`` package it sits in: the command's own modules (grpc, protobuf, durable_rules,
...) take most of a second to load, and a Ctrl-C then printed a ``KeyboardInterrupt``
traceback instead of the one line an interrupt inside a command prints.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT, as shells report a process the signal ended."""
INTERRUPTED = "caseroute: interrupted; any output printed is incomplete\n"
"""The line Ctrl-C prints, whether it came while the command loaded or while it ran."""
EXIT_TERMINATED = 143
"""SIGTERM taken by a command that stops its worker processes first: 128 + SIGTERM."""
TERMINATED = "caseroute: terminated (SIGTERM); any output printed is incomplete\n"
"""The line such a command prints when SIGTERM stopped it."""


class TerminatedError(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so a command unwinds as it does for Ctrl-C.

    A ``KeyboardInterrupt`` so every clean-up written for Ctrl-C (a worker pool's shutdown)
    runs for it too; ``caseroute.cli.command.main`` turns it into ``EXIT_TERMINATED``.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Load and run the command line (``caseroute.cli.command.main``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit code: the command's, or 130 when interrupted before it could catch
        the interrupt itself (while its modules load or its parser is built).
    """
    try:
        from caseroute.cli.command import main as run_command

        return run_command(argv)
    except KeyboardInterrupt:
        # Nothing has been printed yet (commands catch their own interrupts): no traceback.
        sys.stderr.write(INTERRUPTED)
        return EXIT_INTERRUPTED
