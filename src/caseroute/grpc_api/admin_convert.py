"""protobuf <-> lifecycle values for the RulesetAdmin service, one function per message."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from caseroute.domain.errors import FieldViolation, Problem, RequestError, Severity
from caseroute.domain.fingerprint import canonical_json
from caseroute.lifecycle import LifecycleOutcome, RulesetInfo, RulesetText
from caseroute.replay import RecordFilter, report_data
from caseroute.replay.report import DEFAULT_SAMPLE
from caseroute.replay_admin import MAX_REPLAY_RECORDS, MAX_SAMPLE, ReplayCandidate, ServerReplay
from caseroute.rules.compiler import MAX_RULESET_BYTES
from caseroute.v1 import admin_pb2 as apb
from caseroute.wire import convert

MAX_NAME_CHARS = 200
"""Characters of a ruleset name, version or file name in an admin request."""
DEFAULT_FILE_NAME = "ruleset.yaml"
"""The file name diagnostics carry when ValidateRuleset names none."""

_SEVERITY = {Severity.ERROR: apb.SEVERITY_ERROR, Severity.WARNING: apb.SEVERITY_WARNING}


def _text_violations(field: str, value: str, *, required: bool) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required")] if required else []
    if len(value) > MAX_NAME_CHARS:
        return [FieldViolation(field, f"is {len(value)} characters; at most {MAX_NAME_CHARS}")]
    if not value.isprintable():
        return [FieldViolation(field, "holds control or invisible characters; remove them")]
    return []


def _refuse(violations: list[FieldViolation]) -> None:
    if violations:
        raise RequestError(violations)


def ruleset_ref(name: str, version: str, *, version_required: bool) -> tuple[str, str]:
    """A checked ``(name, version)`` from an admin request.

    Raises:
        RequestError: Naming ``name`` or ``version`` if missing, too long or not printable.
    """
    _refuse(
        _text_violations("name", name, required=True)
        + _text_violations("version", version, required=version_required)
    )
    return name, version


def validate_source(request: apb.ValidateRulesetRequest, prefix: str = "") -> tuple[str, str]:
    """The ``(text, file_name)`` to validate (field paths start with ``prefix``).

    Raises:
        RequestError: Naming ``source`` (missing, over ``MAX_RULESET_BYTES``) or
            ``file_name`` (too long, with a directory part).
    """
    violations = []
    size = len(request.source.encode())
    if size == 0:
        violations.append(
            FieldViolation(f"{prefix}source", "is required: send the ruleset's YAML text")
        )
    elif size > MAX_RULESET_BYTES:
        violations.append(
            FieldViolation(
                f"{prefix}source",
                f"is {size} bytes; a ruleset file may be at most {MAX_RULESET_BYTES} bytes: "
                "split the ruleset or shorten it",
            )
        )
    violations += _text_violations(f"{prefix}file_name", request.file_name, required=False)
    if "/" in request.file_name or "\\" in request.file_name:
        violations.append(
            FieldViolation(f"{prefix}file_name", "is a name, not a path: drop the directory")
        )
    _refuse(violations)
    return request.source, request.file_name or DEFAULT_FILE_NAME


def list_response(infos: list[RulesetInfo]) -> apb.ListRulesetsResponse:
    """ListRulesets' reply."""
    reply = apb.ListRulesetsResponse()
    for info in infos:
        status = reply.rulesets.add(
            name=info.name,
            active_version=info.active_version or "",
            shadow_version=info.shadow_version or "",
            previous_versions=list(info.previous_versions),
            retired_versions=list(info.retired_versions),
            last_error=info.last_error or "",
        )
        for version in info.versions:
            status.versions.add(version=version.version, sha256=version.sha256, path=version.path)
        if info.last_reload is not None:
            status.last_reload.CopyFrom(convert.datetime_to_timestamp(info.last_reload))
    return reply


def source_response(text: RulesetText) -> apb.GetRulesetResponse:
    """GetRuleset's reply."""
    return apb.GetRulesetResponse(
        name=text.name, version=text.version, sha256=text.sha256, text=text.text
    )


def diagnostic_to_proto(problem: Problem) -> apb.Diagnostic:
    """One ruleset problem as a Diagnostic."""
    return apb.Diagnostic(
        code=problem.code,
        severity=_SEVERITY[problem.severity],
        file=problem.file,
        line=problem.line,
        column=problem.column,
        rule_id=problem.rule_id or "",
        message=problem.message,
    )


def validate_response(problems: list[Problem]) -> apb.ValidateRulesetResponse:
    """ValidateRuleset's reply: every problem, and whether none is an error."""
    return apb.ValidateRulesetResponse(
        diagnostics=[diagnostic_to_proto(p) for p in problems],
        valid=all(p.severity is not Severity.ERROR for p in problems),
    )


def outcome_to_proto(outcome: LifecycleOutcome) -> apb.LifecycleOutcome:
    """An activation's, rollback's or reload's outcome."""
    reply = apb.LifecycleOutcome(
        action=outcome.action, actor=outcome.actor, errors=list(outcome.errors)
    )
    reply.at.CopyFrom(convert.datetime_to_timestamp(outcome.at))
    for change in outcome.changes:
        reply.changes.add(
            ruleset_name=change.ruleset_name,
            role=change.role,
            from_version=change.from_version,
            from_sha256=change.from_sha256,
            to_version=change.to_version,
            to_sha256=change.to_sha256,
        )
    return reply


MAX_REPLAY_SPEC_CHARS = 2 * MAX_NAME_CHARS + 1
"""Characters of a Replay candidate's ``NAME@VERSION``."""


def _plain_name(field: str, part: str, value: str) -> list[FieldViolation]:
    """A ruleset name or version that can only name a directory under the rulesets dir."""
    problems = _text_violations(field, value, required=True)
    if problems:
        return [FieldViolation(field, f"its {part} {problems[0].message}")]
    if value in (".", "..") or any(c in value for c in "/\\\0"):
        return [FieldViolation(field, f"its {part} must be a plain name, not a path")]
    return []


def _replay_candidate(
    candidate: apb.ReplayCandidate,
) -> tuple[ReplayCandidate, list[FieldViolation]]:
    kind = candidate.WhichOneof("candidate")
    if kind == "ruleset":
        spec = candidate.ruleset
        name, sep, version = spec.rpartition("@")
        if len(spec) > MAX_REPLAY_SPEC_CHARS or not sep:
            return ReplayCandidate(), [
                FieldViolation(
                    "candidate.ruleset",
                    f"is not NAME@VERSION (at most {MAX_REPLAY_SPEC_CHARS} characters), e.g. "
                    "patient-enquiries@2026.11.1",
                )
            ]
        violations = _plain_name("candidate.ruleset", "name", name)
        violations += _plain_name("candidate.ruleset", "version", version)
        return ReplayCandidate(name=name, version=version), violations
    if kind != "source":
        return ReplayCandidate(), [
            FieldViolation(
                "candidate",
                "is required: send the candidate's YAML in candidate.source or NAME@VERSION "
                "in candidate.ruleset",
            )
        ]
    text, file_name = validate_source(
        apb.ValidateRulesetRequest(source=candidate.source, file_name=candidate.file_name),
        prefix="candidate.",
    )
    return ReplayCandidate(source=text, file_name=file_name), []


def _instant(
    request: apb.ReplayRequest,
    field: Literal["since", "until"],
    violations: list[FieldViolation],
) -> datetime | None:
    if not request.HasField(field):
        return None
    try:
        return convert.timestamp_to_datetime(getattr(request, field))
    except (ValueError, OverflowError):
        violations.append(
            FieldViolation(field, "is not an instant between years 1 and 9999; send a valid one")
        )
        return None


def replay_request(
    request: apb.ReplayRequest,
) -> tuple[ReplayCandidate, RecordFilter, int]:
    """The checked ``(candidate, filter, sample_size)`` of a Replay request.

    Raises:
        RequestError: Naming each bad field (``candidate.*``, ``until``, ``case_id``,
            ``limit``, ``sample_size``).
    """
    violations: list[FieldViolation] = []
    try:
        candidate, found = _replay_candidate(request.candidate)
        violations += found
    except RequestError as exc:
        candidate = ReplayCandidate()
        violations += exc.violations
    since = _instant(request, "since", violations)
    until = _instant(request, "until", violations)
    if since is not None and until is not None and until <= since:
        violations.append(FieldViolation("until", "must be after since"))
    violations += _text_violations("case_id", request.case_id, required=False)
    if request.limit > MAX_REPLAY_RECORDS:
        violations.append(
            FieldViolation(
                "limit",
                f"is {request.limit}; at most {MAX_REPLAY_RECORDS} records per call (0: that "
                "maximum): narrow since/until, or replay a copy of the log locally",
            )
        )
    if request.sample_size > MAX_SAMPLE:
        violations.append(
            FieldViolation("sample_size", f"is {request.sample_size}; at most {MAX_SAMPLE}")
        )
    _refuse(violations)
    where = RecordFilter(since, until, request.case_id, request.limit or None)
    return candidate, where, request.sample_size or DEFAULT_SAMPLE


def candidate_problems(problems: tuple[Problem, ...], field: str) -> RequestError:
    """A candidate's ruleset problems as field violations (``file:line`` in each)."""
    return RequestError(
        [FieldViolation(field, str(p)) for p in problems if p.severity is Severity.ERROR]
        or [FieldViolation(field, str(p)) for p in problems]
        or [FieldViolation(field, "does not load")]
    )


def replay_response(result: ServerReplay) -> apb.ReplayResponse:
    """Replay's reply: the typed totals and the whole report as canonical JSON."""
    report = result.report
    return apb.ReplayResponse(
        ruleset_name=report.ruleset_name,
        ruleset_version=report.ruleset_version,
        ruleset_sha256=report.ruleset_sha256,
        total=report.total,
        changed=report.changed,
        not_replayable=report.not_replayable,
        other_ruleset=report.other_ruleset,
        classes=dict(report.classes),
        rates={name: report.rate(name) for name, _ in report.classes},
        limit_reached=result.limit_reached,
        report_json=canonical_json(report_data(report)),
    )
