"""The ``caseroute`` command: serve, decide, check and test rulesets, read the decision log.

Exit codes: 0 success; 1 the ruleset has errors or golden cases failed; 2 bad usage or input;
3 the decision log could not be read, so nothing was checked (``audit verify|show|export|events``,
``replay``, ``report``, ``rules shadow-report``). ``rules diff`` is like ``diff``: 0 the same in
meaning, 1 they differ, 2 an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from caseroute import __version__
from caseroute.cli import (
    audit,
    config,
    decide,
    replay,
    report,
    rules,
    rules_admin,
    rules_fmt,
    rules_shadow,
    rules_versions,
    serve,
    simulate,
)
from caseroute.cli.entry import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    INTERRUPTED,
    TERMINATED,
    TerminatedError,
)
from caseroute.cli.output import EXIT_FAILED, EXIT_USAGE, UsageError
from caseroute.cli.problem_lines import ruleset_error_text
from caseroute.cli.ruleset_advice import next_step
from caseroute.cli.settings import SettingsParser
from caseroute.domain.errors import CaserouteError, ConfigError, RequestError, RulesetError
from caseroute.render import escape_lines


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    # SettingsParser: each (sub)command resolves its settings (flag > env > file > default)
    # as it is parsed, so main() and build_parser().parse_args() give the same values.
    # Typed as the base class: every register() takes plain ArgumentParser subcommands.
    parser: argparse.ArgumentParser = SettingsParser(prog="caseroute", description=__doc__)
    parser.add_argument("--version", action="version", version=f"caseroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # Invariant: registration order is the order `caseroute --help` lists the commands in.
    decide.register(sub)
    serve.register(sub)
    rules_sub = rules.register(sub)
    rules_versions.register(rules_sub)
    rules_admin.register(rules_sub)
    rules_fmt.register(rules_sub)
    rules_shadow.register(rules_sub)
    audit.register(sub)
    simulate.register(sub)
    replay.register(sub)
    report.register(sub)
    config.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
    # Messages quote caller and operator text (file names, ids, values): escaped per line.
    except UsageError as exc:
        sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
        return EXIT_USAGE
    except (RequestError, ConfigError) as exc:
        sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
        return EXIT_USAGE
    except RulesetError as exc:
        step = next_step(exc)  # rules check only where it helps: not for the log's own copy
        text = ruleset_error_text(exc)  # a hostile file's thousands of problems: capped
        sys.stderr.write(f"caseroute: {escape_lines(text)}\n{escape_lines(step)}\n")
        return EXIT_FAILED
    except CaserouteError as exc:
        sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
        return EXIT_FAILED
    except TerminatedError:
        # SIGTERM where a command takes it (replay's workers): stopped as for Ctrl-C.
        sys.stderr.write(TERMINATED)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        # Ctrl-C: one line, no traceback (review R32b F9). Commands write only stdout, so
        # what stopped short is what was printed: a report or export cut off. (While the
        # command loads, caseroute.cli.entry prints the same line.)
        sys.stderr.write(INTERRUPTED)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`caseroute ... | head`): stop quietly. Point stdout at devnull
        # so the interpreter's final flush does not raise again (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return code
