"""``caseroute rules fmt``: rewrite rulesets in one canonical layout, never one that has decided.

A version that has decided never changes: a server refuses its new content
(``versions.changed_after_deciding``). Two checks keep ``fmt`` from rewriting one:

- the version's ``serving.yaml`` names it (active, shadow, previous or retired): ``fmt.published``;
- the decision log holds decisions of the file's name and version with its current content:
  ``fmt.decided``. This is what covers a ruleset with no ``serving.yaml`` (a flat
  ``rulesets/<name>/ruleset.yaml`` or a ruleset's only version directory), which a server serves
  without a pointer (review R32d F10). The log is ``--audit-db`` (``$CASEROUTE_AUDIT_DB``,
  ``[audit] db``); when none is set and the default file is missing, such a file is formatted
  and a note on stderr says it was not checked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from caseroute.cli.options import add_audit_db
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, out, print_json
from caseroute.cli.problem_lines import capped_lines
from caseroute.cli.rules import RulesCommands, internal_failure, problem_data
from caseroute.cli.settings import setting_source
from caseroute.domain.errors import AuditUnavailableError, Problem, RulesetError
from caseroute.render import escape_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from caseroute.audit.postgres import PostgresAuditSink
    from caseroute.audit.store import SqliteAuditStore


def _published_refusal(path: Path) -> list[Problem] | None:
    """Why ``rules fmt`` must leave the ruleset file ``path`` alone (None: it may format it).

    Review R32a F2: the docs' `rules fmt rulesets/<name>` rewrote published versions, whose new
    content every restarted worker then refused (no active version). Review R34b F8: so did a
    version rolled back from, and any version while its serving.yaml did not read.
    """
    from caseroute.rules.layout import published_as

    try:
        role = published_as(path.parent)
    except RulesetError as exc:
        message = (
            "not formatted: its serving.yaml does not read (above), so whether this version "
            "is published, and may have decided, is unknown; fix serving.yaml and re-run"
        )
        return [*exc.problems, Problem("fmt.published", message, str(path))]
    if role is None:
        return None
    message = (
        f"not formatted: this version is {role} in its serving.yaml, and a version that "
        "has decided never changes (a server refuses its new content: "
        "versions.changed_after_deciding); format a new version instead (`caseroute "
        "rules new-version`), or format a version before it is published"
    )
    return [Problem("fmt.published", message, str(path))]


class _DecidedCheck:
    """Whether the decision log holds decisions of a file's version with its current content.

    The log is opened read-only on the first file that needs it, and closed by ``close``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._store: SqliteAuditStore | PostgresAuditSink | None = None
        self._opened = False
        self.unchecked: list[Path] = []
        """Files formatted without a log to ask (none configured, the default file missing)."""

    def _log(self) -> SqliteAuditStore | PostgresAuditSink | None:
        from caseroute.audit.location import PostgresLocation
        from caseroute.cli.audit import open_any_log

        if not self._opened:
            self._opened = True
            where = self._args.audit_db
            given = setting_source(self._args, "audit_db").kind != "default"
            if given or isinstance(where, PostgresLocation) or where.is_file():
                try:
                    self._store = open_any_log(self._args)
                except AuditUnavailableError as exc:
                    raise UsageError(str(exc)) from None
        return self._store

    def refusal(self, path: Path) -> list[Problem] | None:
        """``fmt.decided`` when the log shows ``path``'s version decided with this content.

        Raises:
            UsageError: If the log is set but cannot be opened or read.
        """
        from caseroute.rules.compiler import load_ruleset

        log = self._log()
        if log is None:
            self.unchecked.append(path)
            return None
        compiled = load_ruleset(path)  # it loaded for formatting: the same file loads again
        try:
            decided = log.decided_sha256s(compiled.name, compiled.version)
        except AuditUnavailableError:
            raise UsageError(
                f"cannot read the decision log {self._args.audit_db} to learn whether "
                f"{path} has decided; check that --audit-db names a caseroute decision log "
                "this user can read"
            ) from None
        if compiled.sha256 not in decided:
            return None
        message = (
            f"not formatted: the decision log ({self._args.audit_db}) holds decisions of "
            f"ruleset {compiled.name} version {compiled.version} made with this file as it is, "
            "and a version that has decided never changes (a server refuses its new content: "
            "versions.changed_after_deciding); format a new version instead (`caseroute rules "
            "new-version`)"
        )
        return [Problem("fmt.decided", message, str(path))]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _refusal(path: Path, decided: _DecidedCheck) -> list[Problem] | None:
    """Why ``path``, which formatting would change, must be left as it is (None: write it)."""
    return _published_refusal(path) or decided.refusal(path)


def _cmd_rules_fmt(args: argparse.Namespace) -> int:
    decided = _DecidedCheck(args)
    try:
        return _format_paths(args, decided)
    finally:
        decided.close()


def _format_paths(args: argparse.Namespace, decided: _DecidedCheck) -> int:
    import difflib

    from caseroute.rules.compiler import ruleset_file
    from caseroute.rules.fmt import format_file, write_atomically
    from caseroute.rules.layout import expand_sources

    as_json = args.format == "json"
    show: Callable[[str], None] = (lambda _line: None) if as_json else out
    changed = refused = False
    reports: list[dict[str, object]] = []
    for source in [p for given in args.paths for p in expand_sources(given)]:
        path = ruleset_file(source)
        report: dict[str, object] = {"path": str(path), "status": "refused", "problems": []}
        reports.append(report)
        try:
            original, formatted = format_file(path)
        except RulesetError as exc:  # never round-trip a file the loader refuses
            for line in capped_lines(exc.problems):
                show(line)
            show(f"{path}: not formatted: fix the problems above and re-run")
            report["problems"] = [problem_data(p) for p in exc.problems]
            refused = True
            continue
        except Exception as exc:  # noqa: BLE001 - a formatter bug must not stop the other paths
            report["problems"] = internal_failure(
                exc, path, "formatting", "fmt.internal", "the file is unchanged", show
            )
            refused = True
            continue
        if original == formatted:
            report["status"] = "unchanged"
            continue
        refusal = None if args.check else _refusal(path, decided)
        if refusal is not None:
            for problem in refusal:
                show(
                    f"{path}: {problem.message}"
                    if problem.code in {"fmt.published", "fmt.decided"}
                    else str(problem)
                )
            report["status"] = "decided" if refusal[-1].code == "fmt.decided" else "published"
            report["problems"] = [problem_data(p) for p in refusal]
            refused = True
            continue
        changed = True
        if args.check:
            show(f"{path}: would reformat")
            report["status"] = "would_reformat"
        else:
            try:
                write_atomically(path, formatted)
            except OSError as exc:
                message = (
                    f"cannot write the formatted file: {exc.strerror or type(exc).__name__}; "
                    "the file is unchanged"
                )
                show(f"{path}: {message}")
                report["problems"] = [problem_data(Problem("fmt.unwritable", message, str(path)))]
                refused = True
                continue
            show(f"{path}: reformatted")
            report["status"] = "reformatted"
        if args.diff:
            diff = list(
                difflib.unified_diff(
                    original.splitlines(),
                    formatted.splitlines(),
                    f"{path}",
                    f"{path} (formatted)",
                    lineterm="",
                )
            )
            for line in diff:
                show(line)
            report["diff"] = "\n".join(diff) + "\n"
    _note_unchecked(args, decided.unchecked)
    status = EXIT_USAGE if refused else EXIT_FAILED if changed and args.check else EXIT_OK
    if as_json:
        print_json(
            {"command": "rules fmt", "check": args.check, "ok": status == EXIT_OK, "paths": reports}
        )
    return status


def _note_unchecked(args: argparse.Namespace, unchecked: list[Path]) -> None:
    """Say on stderr which pointer-less versions were formatted without asking a log."""
    from caseroute.rules.serving import SERVING_FILE

    bare = [p for p in unchecked if not (p.parent.parent / SERVING_FILE).is_file()]
    if not bare:
        return
    sys.stderr.write(
        escape_text(
            f"caseroute: note: {len(bare)} file(s) formatted without asking a decision log "
            f"whether they have decided (none at {args.audit_db}); a server serves a ruleset "
            "with no serving.yaml as it is, so if one serves these, pass --audit-db so that "
            "`rules fmt` refuses a version that has decided"
        )
        + "\n"
    )


def register(rules_sub: RulesCommands) -> None:
    """Add ``rules fmt`` to the ``rules`` group."""
    fmt = rules_sub.add_parser(
        "fmt",
        help="rewrite rulesets in the canonical layout, keeping comments",
        description="Rewrite each ruleset in one canonical layout (key order, 2-space indent, "
        "conditions quoted only when needed), keeping comments and meaning. A file that does "
        "not load is refused with its problems (exit 2), and so is a version that has decided: "
        "one its serving.yaml names, or one the decision log (--audit-db) holds decisions of "
        "with its current content. Exit 1 with --check if any would change.",
    )
    fmt.add_argument("paths", type=Path, nargs="+", help="ruleset directories or files")
    fmt.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the files that would change and exit 1 if any would",
    )
    fmt.add_argument("--diff", action="store_true", help="also print a unified diff per change")
    fmt.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people (default), or one JSON document on stdout for CI: per path its "
        "status (unchanged, would_reformat, reformatted, published, decided, refused), "
        "problems and, with --diff, the diff",
    )
    add_audit_db(fmt)
    fmt.set_defaults(run=_cmd_rules_fmt)
