"""protobuf <-> lifecycle values for the RulesetAdmin service, one function per message."""

from __future__ import annotations

from caseroute.domain.errors import FieldViolation, Problem, RequestError, Severity
from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import admin_pb2 as apb
from caseroute.lifecycle import LifecycleOutcome, RulesetInfo, RulesetText
from caseroute.rules.compiler import MAX_RULESET_BYTES

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


def validate_source(request: apb.ValidateRulesetRequest) -> tuple[str, str]:
    """The ``(text, file_name)`` to validate.

    Raises:
        RequestError: Naming ``source`` (missing, over ``MAX_RULESET_BYTES``) or
            ``file_name`` (too long, with a directory part).
    """
    violations = []
    size = len(request.source.encode())
    if size == 0:
        violations.append(FieldViolation("source", "is required: send the ruleset's YAML text"))
    elif size > MAX_RULESET_BYTES:
        violations.append(
            FieldViolation(
                "source",
                f"is {size} bytes; a ruleset file may be at most {MAX_RULESET_BYTES} bytes: "
                "split the ruleset or shorten it",
            )
        )
    violations += _text_violations("file_name", request.file_name, required=False)
    if "/" in request.file_name or "\\" in request.file_name:
        violations.append(FieldViolation("file_name", "is a name, not a path: drop the directory"))
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
