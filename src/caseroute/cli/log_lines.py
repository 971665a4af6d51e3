"""Log lines of the commands that read the decision log: none unless the operator asks for them.

A sink logs why a read failed (``AUDIT READ FAILED on <log>: <cause>``) for a server's
operators. Run by ``caseroute audit ...`` or ``caseroute replay`` with no logging set up,
Python wrote those lines to stderr itself (``logging.lastResort``) beside the command's own
message: the same failure twice, in two formats. Now the command's message is the one line
(it names the log, the cause and what to do), and the detail is logged only when a logging
setting is given (``--log-level``, ``--log-format``, their variables or ``[logs]`` keys), in
the format ``caseroute serve`` logs in. A program that set up logging itself (root handlers)
keeps receiving the lines.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable

from caseroute.cli.settings import add_settings, setting_source

LOG_SETTINGS = ("log_format", "log_level")
"""The settings that ask for log lines."""
LOG_GROUP = (
    "log lines (none unless one of these is given: then the decision log's detail, such as "
    "why a read failed, is logged on stderr before the command's message)"
)


def add_log_settings(cmd: argparse.ArgumentParser) -> None:
    """Give ``cmd`` ``--log-format`` and ``--log-level``, listed under their own heading."""
    add_settings(cmd, LOG_SETTINGS, cmd.add_argument_group(LOG_GROUP))


def with_log_lines(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with log lines only when asked for (module docstring); as it was after it."""

    @functools.wraps(run)  # the command's own module and name (tests/test_cli_package.py)
    def logged(args: argparse.Namespace) -> int:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        if any(setting_source(args, dest).kind != "default" for dest in LOG_SETTINGS):
            from caseroute.logs import configure_logging

            configure_logging(args.log_format, args.log_level)
        elif not handlers:
            # A handler found anywhere up the tree keeps logging.lastResort silent.
            root.addHandler(logging.NullHandler())
        try:
            return run(args)
        finally:
            for added in [h for h in root.handlers if h not in handlers]:
                root.removeHandler(added)
                added.close()
            for removed in [h for h in handlers if h not in root.handlers]:
                root.addHandler(removed)
            root.setLevel(level)

    return logged
