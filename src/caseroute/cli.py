"""The ``caseroute`` command: serve, decide, check and test rulesets, read the decision log.

Exit codes: 0 success; 1 the ruleset has errors or golden cases failed; 2 bad usage or input.
``rules diff`` is like ``diff``: 0 the same in meaning, 1 they differ, 2 an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caseroute import __version__
from caseroute.domain.codec import parse_case, parse_roster, parse_timestamp
from caseroute.domain.errors import (
    CaserouteError,
    ConfigError,
    Problem,
    RequestError,
    RulesetError,
    Severity,
)
from caseroute.domain.json_source import parse_json_bytes
from caseroute.render import escape_lines, escape_text, safe_json

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from caseroute.audit.config import AuditConfig
    from caseroute.audit.store import SqliteAuditStore
    from caseroute.domain.limits import InputLimits
    from caseroute.domain.roster import Roster
    from caseroute.grpc_api.server import ServerConfig
    from caseroute.grpc_api.tls import ClientTls, ServerTls
    from caseroute.rules.model import CompiledRuleset

DEFAULT_RULESET = Path("rulesets/patient-enquiries")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input; the message says what to fix."""


def _out(line: str) -> None:
    """Print one line of human-readable output with caller/operator text escaped on it."""
    sys.stdout.write(escape_text(line) + "\n")


def _default_engine() -> str:
    engine = os.environ.get("CASEROUTE_ENGINE", "durable")
    if engine not in ("durable", "python"):
        raise SystemExit(f"caseroute: CASEROUTE_ENGINE={engine!r}; use durable or python")
    return engine


def _default_ruleset() -> Path:
    return Path(os.environ.get("CASEROUTE_RULESET", str(DEFAULT_RULESET)))


def _read_json(path: Path, what: str) -> Any:
    # Strict: a duplicate key (which would silently drop e.g. a safeguarding flag), NaN or
    # Infinity, bad UTF-8 or bad syntax is a RequestError naming the path and the file.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    return parse_json_bytes(data, root=what, source=str(path))


def _parse_now(text: str | None) -> datetime:
    # The CLI is the edge: decide() itself never reads the clock.
    return _parse_instant(text, "--now") or datetime.now(UTC)


def _cmd_decide(args: argparse.Namespace) -> int:
    from caseroute.engine.case_rules import EngineKind, prepare_ruleset
    from caseroute.engine.decide import decide
    from caseroute.render import render_json, render_text
    from caseroute.rules.compiler import load_ruleset

    ruleset = None
    if not args.server:  # loaded first: an invalid case is told by its own safeguarding flag
        ruleset = prepare_ruleset(load_ruleset(args.ruleset), EngineKind(args.engine))
    flags = frozenset({ruleset.compiled.constraints.safeguarding_flag} if ruleset else ())
    case = parse_case(_read_json(args.case, "case"), safeguarding_flags=flags)
    roster = parse_roster(_read_json(args.roster, "roster"))
    if ruleset is None:
        from caseroute.grpc_api.client import decide_remote

        decision = decide_remote(
            args.server,
            case,
            roster,
            now=_parse_instant(args.now, "--now"),
            request_id=args.request_id,
            ruleset_name=args.ruleset_name,
            ruleset_version=args.ruleset_version,
            agent_detail=not args.no_agent_detail,
            timeout_s=args.timeout,
            tls=_client_tls(args),
        )
    else:
        decision = decide(
            case, roster, ruleset, _parse_now(args.now), agent_detail=not args.no_agent_detail
        )
    sys.stdout.write((render_json(decision) if args.json else render_text(decision)) + "\n")
    return EXIT_OK


def _cmd_health(args: argparse.Namespace) -> int:
    from caseroute.grpc_api.client import check_health

    status = check_health(args.server, args.service, args.timeout, _client_tls(args))
    _out(f"{args.server}: {status}")
    return EXIT_OK if status == "SERVING" else EXIT_FAILED


def _cmd_serve(args: argparse.Namespace) -> int:
    from caseroute.grpc_api.server import serve

    return serve(server_config(args))


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The server settings ``caseroute serve`` was given.

    Raises:
        UsageError: If a TLS or limit setting is inconsistent.
    """
    from caseroute.engine.case_rules import EngineKind
    from caseroute.grpc_api.server import ServerConfig

    return ServerConfig(
        rulesets=args.rulesets,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        max_message_mb=args.max_message_mb,
        grace_s=args.grace,
        engine=EngineKind(args.engine),
        default_ruleset=args.default_ruleset,
        roster_cache_agents=args.roster_cache_agents,
        roster_cache_mb=args.roster_cache_mb,
        limits=_input_limits(args),
        audit=_audit_config(args),
        tls=_server_tls(args),
    )


_LIMIT_HELP = {
    "max_agents": "agents in one roster",
    "max_batch_cases": "cases in one DecideBatch",
    "max_batch_pairs": "cases x agents in one DecideBatch (the matching work)",
    "max_id_chars": "characters of an id or code (request_id, case_id, agent_id, flags, names)",
    "max_text_chars": "characters of a free-text value (attribute values)",
    "max_list_items": "items in one list (flags, skills, licences, territories, languages...)",
    "max_attributes": "entries in one attributes map",
    "max_sentiment_readings": "readings in case.sentiment",
    "max_sla_clocks": "clocks in case.sla_clocks",
}


def _limit_env(name: str) -> str:
    return "CASEROUTE_" + name.upper()


def _whole_number(minimum: int, env_name: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``; the error names the env variable too."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of at least {minimum}, got {text!r} "
                f"(set by the flag or ${env_name})"
            )
        return value

    return parse


def _add_limits(cmd: argparse.ArgumentParser) -> None:
    from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits, limit_flag

    group = cmd.add_argument_group(
        "request size limits (over a limit: INVALID_ARGUMENT naming the field and the limit)"
    )
    for spec in dataclasses.fields(InputLimits):
        env_name = _limit_env(spec.name)
        default = getattr(DEFAULT_LIMITS, spec.name)
        group.add_argument(
            limit_flag(spec.name),
            dest=spec.name,
            type=_whole_number(1, env_name),
            default=os.environ.get(env_name, str(default)),
            metavar="N",
            help=f"{_LIMIT_HELP.get(spec.name, spec.name.replace('_', ' '))} "
            f"(${env_name}, default {default})",
        )


def _input_limits(args: argparse.Namespace) -> InputLimits:
    from caseroute.domain.limits import InputLimits

    try:
        return InputLimits(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(InputLimits)}
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _server_tls(args: argparse.Namespace) -> ServerTls | None:
    from caseroute.grpc_api.tls import ServerTls

    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise UsageError("--tls-client-ca needs --tls-cert and --tls-key (TLS itself)")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    return ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca)


def _client_tls(args: argparse.Namespace) -> ClientTls | None:
    from caseroute.grpc_api.tls import ClientTls

    if args.tls_ca is None:
        if args.tls_cert is not None or args.tls_key is not None:
            raise UsageError("--tls-cert/--tls-key need --tls-ca (the server's CA)")
        return None
    return ClientTls(args.tls_ca, args.tls_cert, args.tls_key)


def _audit_config(args: argparse.Namespace) -> AuditConfig:
    from caseroute.audit.config import AuditConfig

    return AuditConfig(
        db=args.audit_db,
        key_file=args.audit_key_file,
        key_hex=os.environ.get("CASEROUTE_AUDIT_KEY"),
        masked_fields=_masked_fields(args),
    )


def _masked_fields(args: argparse.Namespace) -> tuple[str, ...]:
    """``--audit-masked-fields`` as paths (comma-separated; blanks ignored)."""
    return tuple(p.strip() for p in args.audit_masked_fields.split(",") if p.strip())


def _open_log(args: argparse.Namespace) -> SqliteAuditStore:
    from caseroute.audit.config import exposed_files, exposure_message
    from caseroute.audit.store import SqliteAuditStore

    if not args.audit_db.is_file():
        raise UsageError(
            f"no decision log at {args.audit_db}; pass --audit-db (or $CASEROUTE_AUDIT_DB) "
            "pointing at the server's log"
        )
    exposed = exposed_files(args.audit_db)
    if exposed:  # read-only auditors may share a group; say it loudly, the server refuses
        sys.stderr.write(f"caseroute: WARNING: {escape_text(exposure_message(exposed))}\n")
    return SqliteAuditStore(args.audit_db, readonly=True)


def _cmd_audit_show(args: argparse.Namespace) -> int:
    from caseroute.audit.show import render_record
    from caseroute.audit.store import era_of
    from caseroute.service import DecisionLog

    store = _open_log(args)
    try:
        audited = DecisionLog(store).get(args.decision_id)
        if args.json:
            text = safe_json(audited.record.as_dict(), indent=2)
        else:
            era = era_of(audited.record.seq, store.key_history())
            text = render_record(audited.record, audited.decision, store.get_blob, era)
    finally:
        store.close()
    sys.stdout.write(text + "\n")
    return EXIT_OK


def _cmd_audit_export(args: argparse.Namespace) -> int:
    store = _open_log(args)
    since = _parse_instant(args.since, "--since")
    until = _parse_instant(args.until, "--until")
    count = 0
    try:
        for record in store.records(case_id=args.case_id, since=since, until=until):
            sys.stdout.write(safe_json(record.as_dict(), sort_keys=True) + "\n")
            count += 1
    finally:
        store.close()
    sys.stderr.write(f"exported {count} decision(s)\n")
    return EXIT_OK


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from caseroute.audit.verify import verify_chain

    store = _open_log(args)
    try:
        head = store.head()
        report = verify_chain(store.records(), head, store.get_blob)
        eras = store.key_history()
    finally:
        store.close()
    if not report.ok:
        where = f" (decision {report.decision_id})" if report.decision_id else ""
        _out(f"TAMPERED: {report.problem}{where}; checked {report.records} record(s)")
        return EXIT_FAILED
    if args.expect_head and args.expect_head != f"{head[0]}:{head[1]}":
        sys.stdout.write(
            f"TAMPERED: the chain verifies internally but its head is {head[0]}:{head[1]}, not "
            f"the {args.expect_head} recorded earlier (records rewritten or truncated)\n"
        )
        return EXIT_FAILED
    sys.stdout.write(
        f"ok: {report.records} record(s), every link and blob verified; head "
        f"{head[0]}:{head[1]} (keep it elsewhere and pass it as --expect-head next time)\n"
    )
    if not eras:
        sys.stdout.write("masking key eras: none recorded (written before key fingerprints)\n")
        return EXIT_OK
    sys.stdout.write("masking key eras:\n")
    for era in eras:
        rotated = f"; rotated from {era.old_fingerprint}" if era.old_fingerprint else ""
        sys.stdout.write(
            f"  era {era.era} from record {era.first_seq}: key {era.new_fingerprint} "
            f"(since {era.at}{rotated})\n"
        )
    return EXIT_OK


def _cmd_audit_rotate_key(args: argparse.Namespace) -> int:
    from caseroute.audit.config import exposed_files, exposure_message, load_key
    from caseroute.audit.masking import key_fingerprint
    from caseroute.audit.store import SqliteAuditStore
    from caseroute.domain.codec import format_timestamp

    db, key_file = args.audit_db, args.new_key_file
    if not db.is_file():
        raise UsageError(f"no decision log at {db}; pass --audit-db pointing at the server's log")
    exposed = exposed_files(db)
    if exposed:
        raise ConfigError(exposure_message(exposed))
    existed = key_file.exists()
    store = SqliteAuditStore(db)
    try:
        head, eras = store.head()[0], store.key_history()
        if existed:
            fingerprint = key_fingerprint(load_key(key_file, None, create=False))
            if eras and eras[-1].new_fingerprint == fingerprint:
                raise UsageError(
                    f"{key_file} holds the key already in use (fingerprint {fingerprint}); "
                    "nothing to rotate"
                )
        if not args.confirm:
            raise UsageError(
                f"rotating the masking key of {db} starts a new key era at record {head + 1}: "
                "from then on the same patient gets a different digest than in the "
                f"{head} earlier record(s); keep the old key if those digests must still be "
                "matched. Rerun with --confirm to rotate"
            )
        fingerprint = key_fingerprint(load_key(key_file, None))  # creates it when missing
        era = store.rotate_key(fingerprint, format_timestamp(datetime.now(UTC)))
    finally:
        store.close()
    where = (
        f"the new key is {key_file}"
        if existed
        else f"a new key was written to {key_file} (mode 0600, back it up separately)"
    )
    sys.stdout.write(
        f"masking key rotated: key era {era.era} starts at record {era.first_seq} (fingerprint "
        f"{era.old_fingerprint} -> {era.new_fingerprint}); {where}; restart the servers with "
        f"--audit-key-file {key_file}\n"
    )
    return EXIT_OK


def _parse_instant(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    value = parse_timestamp(text)
    if value is None:
        raise UsageError(
            f"{flag} {text!r} is not an ISO-8601 instant with offset; e.g. 2026-11-21T10:00:00Z"
        )
    return value


def _problem_data(problem: Problem) -> dict[str, object]:
    """One ruleset problem as JSON data (``rules check --format json``)."""
    return {
        "code": problem.code,
        "severity": problem.severity.value,
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "rule_id": problem.rule_id,
        "message": problem.message,
    }


def _print_json(data: object) -> None:
    sys.stdout.write(safe_json(data, indent=2) + "\n")


def _check_roster(args: argparse.Namespace) -> tuple[Roster, date] | None:
    """The roster ``rules check --roster`` checks against, and the day it judges licences on."""
    if args.roster is None:
        for flag, given in (("--now", args.now), ("--strict", args.strict)):
            if given:
                raise UsageError(f"{flag} applies to the roster check; add --roster ROSTER.json")
        return None
    try:
        roster = parse_roster(_read_json(args.roster, "roster"))
    except RequestError as exc:
        details = "\n".join(f"  - {v}" for v in exc.violations)
        raise UsageError(
            f"{args.roster} is not a valid roster ({len(exc.violations)} problem(s)); fix it "
            f"and re-run:\n{details}"
        ) from None
    now = _parse_instant(args.now, "--now") or roster.taken_at
    return roster, now.astimezone(UTC).date()


def _cmd_rules_check(args: argparse.Namespace) -> int:
    import logging

    from caseroute.audit.config import check_masked_fields
    from caseroute.audit.masking import Masker, masked_reads
    from caseroute.engine.satisfiable import unsatisfiable_requirements
    from caseroute.rules.compiler import load_ruleset

    masker = Masker(b"", check_masked_fields(_masked_fields(args)))
    against = _check_roster(args)
    as_json = args.format == "json"
    show = (lambda _line: None) if as_json else _out
    status = EXIT_OK
    reports: list[dict[str, object]] = []
    for path in args.paths:
        report: dict[str, object] = {
            "path": str(path),
            "name": None,
            "version": None,
            "sha256": None,
            "ok": False,
        }
        reports.append(report)
        try:
            compiled = load_ruleset(path)
        except RulesetError as exc:
            errors = [p for p in exc.problems if p.severity is Severity.ERROR]
            for problem in exc.problems:
                show(str(problem))
            show(f"{path}: {len(errors)} error(s), {len(exc.problems) - len(errors)} warning(s)")
            report["problems"] = [_problem_data(p) for p in exc.problems]
            status = EXIT_FAILED
            continue
        except Exception:  # a loader bug must not stop the other paths from being checked
            logging.getLogger("caseroute.rules").exception("checking %s failed", path)
            message = (
                "caseroute failed while checking this ruleset (a bug: please report it with "
                "the file); the other paths are still checked"
            )
            show(f"{path}: error: {message}")
            report["problems"] = [_problem_data(Problem("check.internal", message, str(path)))]
            status = EXIT_FAILED
            continue
        problems = [*compiled.warnings, *masked_reads(compiled, masker)]
        if against is not None:
            roster, day = against
            findings = unsatisfiable_requirements(compiled, roster, args.roster.name, day)
            severity = Severity.ERROR if args.strict else Severity.WARNING
            problems += [dataclasses.replace(p, severity=severity) for p in findings]
        errors = [p for p in problems if p.severity is Severity.ERROR]
        for problem in problems:
            show(str(problem))
        summary = (
            f"{compiled.name} version {compiled.version}, {len(compiled.rules)} rules, "
            f"{len(compiled.leaves)} conditions, sha256 {compiled.sha256}"
        )
        if errors:
            show(
                f"{path}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s) "
                f"- {summary}"
            )
            status = EXIT_FAILED
        else:
            show(f"{path}: ok - {summary}; {len(problems)} warning(s)")
        report.update(
            name=compiled.name,
            version=compiled.version,
            sha256=compiled.sha256,
            ok=not errors,
            problems=[_problem_data(p) for p in problems],
        )
    if as_json:
        _print_json(
            {
                "command": "rules check",
                "ok": status == EXIT_OK,
                "roster": None if args.roster is None else str(args.roster),
                "day": None if against is None else against[1].isoformat(),
                "paths": reports,
            }
        )
    return status


def _junit_properties(
    path: Path, compiled: CompiledRuleset | None, args: argparse.Namespace
) -> dict[str, str]:
    """The ``<property>`` elements of a ``rules test --format junit`` suite."""
    if compiled is None:
        return {"path": str(path)}
    return {
        "path": str(path),
        "ruleset_version": compiled.version,
        "ruleset_sha256": compiled.sha256,
        "engine": args.engine,
    }


def _junit_load_error(
    path: Path, compiled: CompiledRuleset | None, args: argparse.Namespace, exc: RulesetError
) -> ET.Element:
    """The suite of a ruleset (``compiled`` is None) or golden file that does not load."""
    from caseroute.rules.junit import load_error_suite, problem_counts

    what = "the ruleset" if compiled is None else "the golden cases beside the ruleset"
    return load_error_suite(
        name=str(path) if compiled is None else f"{compiled.name}@{compiled.version}",
        classname=str(path) if compiled is None else compiled.name,
        testcase="load ruleset" if compiled is None else "load golden cases",
        message=f"{what} {'does' if compiled is None else 'do'} not load: "
        f"{problem_counts(exc.problems)}; fix each problem listed (file:line) and re-run",
        problems=exc.problems,
        properties=_junit_properties(path, compiled, args),
    )


def _cmd_rules_test(args: argparse.Namespace) -> int:
    from caseroute.engine.case_rules import EngineKind, prepare_ruleset
    from caseroute.engine.decide import decide
    from caseroute.rules.compiler import load_ruleset
    from caseroute.rules.golden import load_golden, rule_coverage, run_golden
    from caseroute.rules.junit import golden_suite, render_junit

    path: Path = args.path
    as_json = args.format == "json"
    report: dict[str, object] = {"path": str(path), "name": None, "version": None, "sha256": None}
    compiled = None
    try:
        ruleset = prepare_ruleset(load_ruleset(path), EngineKind(args.engine))
        compiled = ruleset.compiled
        report.update(name=compiled.name, version=compiled.version, sha256=compiled.sha256)
        cases = load_golden(path if path.is_dir() else path.parent)
    except RulesetError as exc:
        if args.format == "junit":
            sys.stdout.write(render_junit([_junit_load_error(path, compiled, args, exc)]))
            return EXIT_FAILED
        if not as_json:
            raise
        report.update(ok=False, problems=[_problem_data(p) for p in exc.problems])
        _print_json({"command": "rules test", "ok": False, "paths": [report]})
        return EXIT_FAILED
    if not cases:
        raise UsageError(f"no golden cases found in {path}/golden/*.yaml")
    results = run_golden(cases, lambda c, r, now: decide(c, r, ruleset, now))
    failed = [r for r in results if not r.passed]
    cover = rule_coverage(results, ruleset.compiled.rules)
    gaps = [
        rule_id for rule_id, (decided, not_fired) in cover.items() if not decided or not not_fired
    ]
    ok = not failed and not (gaps and args.require_coverage)
    if args.format == "junit":
        coverage = cover if args.require_coverage else None
        properties = _junit_properties(path, ruleset.compiled, args)
        suite = golden_suite(ruleset.compiled, results, coverage, properties)
        sys.stdout.write(render_junit([suite]))
        return EXIT_OK if ok else EXIT_FAILED
    if as_json:
        report.update(
            ok=ok,
            passed=len(results) - len(failed),
            failed=len(failed),
            problems=[],
            cases=[
                {
                    "name": r.case.name,
                    "location": r.case.location,
                    "passed": r.passed,
                    "mismatches": list(r.mismatches),
                }
                for r in results
            ],
            coverage=[
                {
                    "rule_id": rule_id,
                    "decided": decided,
                    "not_fired": not_fired,
                    "gap": rule_id in gaps,
                }
                for rule_id, (decided, not_fired) in cover.items()
            ],
        )
        _print_json({"command": "rules test", "ok": ok, "paths": [report]})
        return EXIT_OK if ok else EXIT_FAILED
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        _out(f"{mark} {result.case.name} ({result.case.location})")
        for mismatch in result.mismatches:
            _out(f"     {mismatch}")
    sys.stdout.write("\nrule coverage (cases decided / cases not fired; catch-all: not decided):\n")
    for rule_id, (decided, not_fired) in cover.items():
        note = (
            ""
            if rule_id not in gaps
            else "   <- needs a case where it " + ("decides" if not decided else "does not fire")
        )
        _out(f"  {rule_id}: {decided} / {not_fired}{note}")
    sys.stdout.write(f"\n{len(results) - len(failed)} passed, {len(failed)} failed\n")
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_rules_fmt(args: argparse.Namespace) -> int:
    import difflib
    import logging

    from caseroute.rules.compiler import ruleset_file
    from caseroute.rules.fmt import format_file, write_atomically

    as_json = args.format == "json"
    show = (lambda _line: None) if as_json else _out
    changed = refused = False
    reports: list[dict[str, object]] = []
    for given in args.paths:
        path = ruleset_file(given)
        report: dict[str, object] = {"path": str(path), "status": "refused", "problems": []}
        reports.append(report)
        try:
            original, formatted = format_file(path)
        except RulesetError as exc:  # never round-trip a file the loader refuses
            for problem in exc.problems:
                show(str(problem))
            show(f"{path}: not formatted: fix the problems above and re-run")
            report["problems"] = [_problem_data(p) for p in exc.problems]
            refused = True
            continue
        except Exception:  # a formatter bug must not stop the other paths
            logging.getLogger("caseroute.rules").exception("formatting %s failed", path)
            message = (
                "caseroute failed while formatting this ruleset (a bug: please report it with "
                "the file); the file is unchanged"
            )
            show(f"{path}: error: {message}")
            report["problems"] = [_problem_data(Problem("fmt.internal", message, str(path)))]
            refused = True
            continue
        if original == formatted:
            report["status"] = "unchanged"
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
                report["problems"] = [_problem_data(Problem("fmt.unwritable", message, str(path)))]
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
    status = EXIT_USAGE if refused else EXIT_FAILED if changed and args.check else EXIT_OK
    if as_json:
        _print_json(
            {"command": "rules fmt", "check": args.check, "ok": status == EXIT_OK, "paths": reports}
        )
    return status


def _cmd_rules_diff(args: argparse.Namespace) -> int:
    import logging

    from caseroute.rules.compiler import load_ruleset
    from caseroute.rules.diff import diff_rulesets
    from caseroute.rules.diff_render import diff_as_data, render_diff_markdown, render_diff_text

    # Exit 1 means "they differ" (like diff), so every failure here must be 2, never 1.
    loaded = []
    for label, path in (("OLD", args.old), ("NEW", args.new)):
        try:
            loaded.append(load_ruleset(path))
        except RulesetError as exc:
            errors = [p for p in exc.problems if p.severity is Severity.ERROR]
            for problem in exc.problems:
                sys.stderr.write(escape_text(str(problem)) + "\n")
            sys.stderr.write(
                escape_text(
                    f"caseroute: {label} ruleset {path} has {len(errors)} error(s); fix them "
                    "(`caseroute rules check` lists them) and diff again"
                )
                + "\n"
            )
        except Exception:  # a loader bug must not read as "they differ" (exit 1)
            logging.getLogger("caseroute.rules").exception("loading %s failed", path)
            sys.stderr.write(
                escape_text(
                    f"caseroute: error: caseroute failed while loading the {label} ruleset "
                    f"{path} (a bug: please report it with the file)"
                )
                + "\n"
            )
    if len(loaded) != 2:  # one of OLD and NEW did not load
        return EXIT_USAGE
    try:
        diff = diff_rulesets(loaded[0], loaded[1])
    except Exception:  # a diff bug must not read as "they differ" (exit 1)
        logging.getLogger("caseroute.rules").exception(
            "diffing %s and %s failed", args.old, args.new
        )
        sys.stderr.write(
            "caseroute: error: caseroute failed while comparing these rulesets (a bug: please "
            "report it with both files)\n"
        )
        return EXIT_USAGE
    if args.format == "json":
        sys.stdout.write(safe_json(diff_as_data(diff), indent=2) + "\n")
    else:
        render = render_diff_markdown if args.format == "markdown" else render_diff_text
        for line in render(diff):
            _out(line)
    return EXIT_FAILED if diff.differs else EXIT_OK


def _cmd_rules_fields(_: argparse.Namespace) -> int:
    from caseroute.rules.fields import CASE_FIELDS

    for path, ftype in CASE_FIELDS.items():
        optional = " (may be missing)" if ftype.optional else ""
        sys.stdout.write(f"{path:34} {ftype.describe()}{optional}: {ftype.doc}\n")
    sys.stdout.write(
        f"{'case.attributes.<name>':34} as declared under `attributes:`\n"
        f"{'params.<name>':34} constants declared under `params:`\n"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="caseroute", description=__doc__)
    parser.add_argument("--version", action="version", version=f"caseroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    engines = ["durable", "python"]

    decide = sub.add_parser(
        "decide",
        help="decide one case from JSON files (locally: a dry run, not recorded in the decision "
        "log; with --server: a real, audited decision)",
    )
    decide.add_argument("--case", type=Path, required=True, help="case JSON file")
    decide.add_argument("--roster", type=Path, required=True, help="roster JSON file")
    decide.add_argument(
        "--ruleset",
        type=Path,
        default=_default_ruleset(),
        help=f"ruleset directory or YAML file (default: $CASEROUTE_RULESET or {DEFAULT_RULESET})",
    )
    decide.add_argument("--now", help="decision instant, ISO-8601 with offset (default: now)")
    decide.add_argument("--json", action="store_true", help="print the decision as JSON")
    decide.add_argument(
        "--engine",
        choices=engines,
        default=_default_engine(),
        help="engine of record (default: $CASEROUTE_ENGINE or durable)",
    )
    remote = decide.add_argument_group("remote mode (call a running server)")
    remote.add_argument("--server", metavar="HOST:PORT", help="decide on this caseroute server")
    remote.add_argument("--request-id", help="idempotency key (default: a new UUID)")
    remote.add_argument("--ruleset-name", default="", help="ruleset (default: the server's)")
    remote.add_argument("--ruleset-version", default="", help="pin a ruleset version")
    remote.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    _add_client_tls(remote)
    decide.add_argument(
        "--no-agent-detail",
        action="store_true",
        help="omit per-agent verdicts (counts and top ranking stay)",
    )
    decide.set_defaults(run=_cmd_decide)

    serve_cmd = sub.add_parser("serve", help="run the gRPC server")
    env = os.environ.get
    serve_cmd.add_argument(
        "--rulesets",
        type=Path,
        default=Path(env("CASEROUTE_RULESETS", "rulesets")),
        help="rulesets directory ($CASEROUTE_RULESETS, default rulesets)",
    )
    serve_cmd.add_argument(
        "--host",
        default=env("CASEROUTE_HOST", "127.0.0.1"),
        help="bind address ($CASEROUTE_HOST, default 127.0.0.1)",
    )
    serve_cmd.add_argument(
        "--port",
        type=_whole_number(0, "CASEROUTE_PORT"),
        default=env("CASEROUTE_PORT", "50051"),  # a string: argparse converts it, cleanly
        help="port; 0 picks one ($CASEROUTE_PORT, default 50051)",
    )
    serve_cmd.add_argument(
        "--workers",
        type=_whole_number(0, "CASEROUTE_WORKERS"),
        default=env("CASEROUTE_WORKERS", "0"),
        help="worker processes; 0 = one per core ($CASEROUTE_WORKERS)",
    )
    serve_cmd.add_argument("--threads", type=int, default=16, help="request threads per worker")
    serve_cmd.add_argument(
        "--max-message-mb",
        type=int,
        default=64,
        help="largest request/response in MiB (default 64)",
    )
    serve_cmd.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds in-flight calls get after SIGTERM (default 10)",
    )
    serve_cmd.add_argument("--engine", choices=engines, default=_default_engine())
    serve_cmd.add_argument("--default-ruleset", help="ruleset for requests that name none")
    serve_cmd.add_argument(
        "--roster-cache-agents",
        type=_whole_number(0, "CASEROUTE_ROSTER_CACHE_AGENTS"),
        default=env("CASEROUTE_ROSTER_CACHE_AGENTS", "100000"),
        help="agents kept in each worker's parsed-roster cache; 0 turns it off "
        "($CASEROUTE_ROSTER_CACHE_AGENTS, default 100000)",
    )
    serve_cmd.add_argument(
        "--roster-cache-mb",
        type=_whole_number(0, "CASEROUTE_ROSTER_CACHE_MB"),
        default=env("CASEROUTE_ROSTER_CACHE_MB", "256"),
        help="estimated MiB of parsed rosters each worker keeps (least recently used go "
        "first); 0 turns the cache off ($CASEROUTE_ROSTER_CACHE_MB, default 256)",
    )
    _add_limits(serve_cmd)
    _add_audit_db(serve_cmd)
    serve_cmd.add_argument(
        "--audit-key-file",
        type=Path,
        default=_env_path("CASEROUTE_AUDIT_KEY_FILE"),
        help="HMAC masking key file, hex; created (mode 0600) if missing "
        "($CASEROUTE_AUDIT_KEY_FILE, default <audit-db>.key; $CASEROUTE_AUDIT_KEY overrides)",
    )
    _add_masked_fields(serve_cmd)
    tls = serve_cmd.add_argument_group("TLS (default: plaintext, for a trusted network only)")
    tls.add_argument(
        "--tls-cert", type=Path, default=_env_path("CASEROUTE_TLS_CERT"), help="PEM certificate"
    )
    tls.add_argument(
        "--tls-key", type=Path, default=_env_path("CASEROUTE_TLS_KEY"), help="PEM private key"
    )
    tls.add_argument(
        "--tls-client-ca",
        type=Path,
        default=_env_path("CASEROUTE_TLS_CLIENT_CA"),
        help="require client certificates signed by this CA (mutual TLS); the client's "
        "identity is recorded as the caller of each decision",
    )
    serve_cmd.set_defaults(run=_cmd_serve)

    health_cmd = sub.add_parser("health", help="check a server's gRPC health (exit 0: SERVING)")
    health_cmd.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT")
    health_cmd.add_argument("--service", default="", help="service name (default: overall)")
    health_cmd.add_argument("--timeout", type=float, default=5.0)
    _add_client_tls(health_cmd)
    health_cmd.set_defaults(run=_cmd_health)

    rules = sub.add_parser("rules", help="check, test and document rulesets")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser(
        "check",
        help="validate rulesets; print every problem (with --roster: also requirements no "
        "agent on that roster can satisfy)",
    )
    check.add_argument("paths", type=Path, nargs="+", help="ruleset directories or files")
    _add_masked_fields(check)
    check.add_argument(
        "--roster",
        type=Path,
        metavar="ROSTER.json",
        help="also report requirements no agent on this roster can ever satisfy (a licence "
        "type nobody holds, a jurisdiction nobody is licensed in, a skill level nobody "
        "reaches, a language nobody speaks): roster.unsatisfiable_* warnings",
    )
    check.add_argument(
        "--now",
        help="with --roster: the instant licence expiry and compact membership are judged at, "
        "ISO-8601 with offset (default: the roster's taken_at)",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="with --roster: roster findings are errors (exit 1), not warnings; the roster is "
        "a snapshot, so they are warnings by default",
    )
    _add_format(check)
    check.set_defaults(run=_cmd_rules_check)
    test = rules_sub.add_parser("test", help="run a ruleset's golden cases")
    test.add_argument("path", type=Path, help="ruleset directory")
    test.add_argument("--engine", choices=engines, default=_default_engine())
    test.add_argument(
        "--require-coverage",
        action="store_true",
        help="fail unless every rule decides some case and misses another",
    )
    _add_format(test, junit=True)
    test.set_defaults(run=_cmd_rules_test)
    fmt = rules_sub.add_parser(
        "fmt",
        help="rewrite rulesets in the canonical layout, keeping comments",
        description="Rewrite each ruleset in one canonical layout (key order, 2-space indent, "
        "conditions quoted only when needed), keeping comments and meaning. A file that does "
        "not load is refused with its problems (exit 2). Exit 1 with --check if any would "
        "change.",
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
        "status (unchanged, would_reformat, reformatted, refused), problems and, with --diff, "
        "the diff",
    )
    fmt.set_defaults(run=_cmd_rules_fmt)
    fields = rules_sub.add_parser("fields", help="list the fields conditions can read")
    fields.set_defaults(run=_cmd_rules_fields)
    rules_diff = rules_sub.add_parser(
        "diff",
        help="compare two versions of a ruleset (exit 0: same meaning, 1: they differ, 2: error)",
        description="Compare two versions of a ruleset, rule by rule (matched by id): rules "
        "added, removed and moved, conditions, actions, priorities, params, signals, "
        "attributes, constraints, compacts, matching and queues; metadata, descriptions and "
        "reworded conditions are listed too but do not count as differences. Exit status: 0 "
        "when the two are identical in meaning, 1 when they differ, 2 when either cannot be "
        "loaded (its problems are printed with file:line on stderr).",
    )
    rules_diff.add_argument("old", type=Path, help="the version before: ruleset directory or file")
    rules_diff.add_argument("new", type=Path, help="the version after: ruleset directory or file")
    rules_diff.add_argument(
        "--format",
        choices=["text", "json", "markdown"],
        default="text",
        help="text (default, one line per change), json, or markdown (a pull-request comment)",
    )
    rules_diff.set_defaults(run=_cmd_rules_diff)

    audit = sub.add_parser("audit", help="read and verify the decision log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    show = audit_sub.add_parser("show", help="one decision with its explanation")
    show.add_argument("decision_id", help="decision id (dec_...)")
    show.add_argument("--json", action="store_true", help="print the stored record as JSON")
    show.set_defaults(run=_cmd_audit_show)
    export = audit_sub.add_parser("export", help="decisions as JSON lines on stdout")
    export.add_argument("--since", help="decisions with now >= this instant (ISO-8601)")
    export.add_argument("--until", help="decisions with now < this instant (ISO-8601)")
    export.add_argument("--case-id", default="", help="only this case")
    export.set_defaults(run=_cmd_audit_export)
    verify = audit_sub.add_parser("verify", help="walk the hash chain; exit 1 if tampered")
    verify.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        help="head printed by an earlier verify: detects rewriting of the whole tail",
    )
    verify.set_defaults(run=_cmd_audit_verify)
    rotate = audit_sub.add_parser(
        "rotate-key",
        help="change the masking key on purpose: starts a new, recorded key era (stop the "
        "servers first; a server still on the old key stops writing)",
    )
    rotate.add_argument(
        "--new-key-file",
        type=Path,
        required=True,
        help="the new key (hex); created with a random key, mode 0600, if missing",
    )
    rotate.add_argument(
        "--confirm", action="store_true", help="really rotate (without it: say what would happen)"
    )
    rotate.set_defaults(run=_cmd_audit_rotate_key)
    for cmd in (show, export, verify, rotate):
        _add_audit_db(cmd)
    return parser


def _add_format(cmd: argparse.ArgumentParser, *, junit: bool = False) -> None:
    cmd.add_argument(
        "--format",
        choices=["text", "json", "junit"] if junit else ["text", "json"],
        default="text",
        help="text for people (default), or one JSON document on stdout for CI: per path its "
        "name, version, sha256, ok and problems (code, severity, file, line, column, rule_id, "
        "message)"
        + (
            "; or JUnit XML on stdout (a testcase per golden case, and per rule with "
            "--require-coverage) for CI test reports"
            if junit
            else ""
        ),
    )


def _add_client_tls(group: argparse._ActionsContainer) -> None:
    group.add_argument("--tls-ca", type=Path, help="PEM CA of the server's certificate (TLS)")
    group.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    group.add_argument("--tls-key", type=Path, help="PEM client private key (mutual TLS)")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _add_audit_db(cmd: argparse.ArgumentParser) -> None:
    from caseroute.audit.config import DEFAULT_AUDIT_DB

    cmd.add_argument(
        "--audit-db",
        type=Path,
        default=Path(os.environ.get("CASEROUTE_AUDIT_DB", str(DEFAULT_AUDIT_DB))),
        help=f"decision log SQLite file ($CASEROUTE_AUDIT_DB, default {DEFAULT_AUDIT_DB})",
    )


def _add_masked_fields(cmd: argparse.ArgumentParser) -> None:
    from caseroute.audit.masking import DEFAULT_MASKED_PATHS

    cmd.add_argument(
        "--audit-masked-fields",
        default=os.environ.get("CASEROUTE_AUDIT_MASKED_FIELDS", ",".join(DEFAULT_MASKED_PATHS)),
        metavar="PATH,...",
        help="case fields the decision log stores only as keyed digests "
        "($CASEROUTE_AUDIT_MASKED_FIELDS; default: patient names, identifiers, contact "
        "details and free text, see docs/audit.md)",
    )


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
        sys.stderr.write(
            f"caseroute: {escape_lines(str(exc))}\nRun `caseroute rules check` on the ruleset.\n"
        )
        return EXIT_FAILED
    except CaserouteError as exc:
        sys.stderr.write(f"caseroute: {escape_lines(str(exc))}\n")
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`caseroute ... | head`): stop quietly. Point stdout at devnull
        # so the interpreter's final flush does not raise again (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
