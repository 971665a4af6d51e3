"""The error tree of caseroute; every user-facing error says what, where and what to do.

::

    CaserouteError
    ├── RequestError           case/roster input is protocol-invalid (names each field path)
    ├── RulesetError           a ruleset failed to load or compile (every Problem at once)
    │   └── GoldenFileError    a version's golden case files did not load (every Problem)
    ├── RulesetNotFoundError   no ruleset with that name / version is loaded
    ├── RulesetStateError      a lifecycle change the rulesets' state does not allow (activate
    │   │                      a version that did not load, roll back with no previous version)
    │   └── RulesetRetiredError  a request pinned a version its operators retired (rolled back)
    ├── NoRulesetLoadedError   the service has no ruleset at all yet
    ├── AuditUnavailableError  the decision log cannot be written (no decision is returned)
    │   └── AuditBusyError     a bounded read gave up waiting for a lock another connection holds
    ├── IdempotencyConflictError  a request_id was reused with a different input
    ├── DecisionNotFoundError  no audit record has that decision_id
    ├── ResponseTooLargeError  the reply would exceed what the transport may send (nothing
    │                          recorded now; a replayed retry's decisions were recorded before)
    ├── RosterNotCachedError   a request named its roster by roster_sha256 only, and this server
    │                          does not hold that roster (send the roster itself)
    ├── CallEndedError         the caller's deadline passed before the decisions were
    │   │                      recorded: nothing is recorded
    │   └── CallCancelledError the call was cancelled (by the caller, or by a server stopping
    │                          past its grace) before the decisions were recorded
    ├── ConfigError            a server or CLI setting is invalid (names the setting)
    ├── EngineUnavailableError the durable_rules engine cannot be imported or used
    └── EngineValidationError  durable_rules rejected, crashed or hung on a compiled ruleset

Business-invalid data (a clinical case without a patient location, say) is *not* an error: it
becomes an EXCEPTION decision routed to the exceptions queue, so the calling flow never halts.
The domain knows no transport: no status codes here; the gRPC layer maps these in one table.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from caseroute.domain.limits import quote_clipped


class CaserouteError(Exception):
    """Base class of every error caseroute raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one input field.

    Attributes:
        field: Dotted path into the input, e.g. ``roster.agents[3].capacity.max``.
        message: What is wrong and what to send instead.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RequestError(CaserouteError):
    """The case or roster is not valid input; each violation names a field path."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        if not violations:
            raise ValueError("RequestError needs at least one violation")
        self.violations = tuple(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"invalid request ({len(self.violations)} problem(s)):\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Rebuilt from its violations, not its message (for replay's worker processes).

        The default rebuild passed the message as the violations (review R32b F2).
        """
        return (type(self), (list(self.violations),), self.__dict__)


class Severity(StrEnum):
    """How bad a ruleset problem is: errors stop a load, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One ruleset problem, located in the operator's file.

    Attributes:
        code: Stable identifier, e.g. ``expr.unknown_field``; safe to match on.
        message: What is wrong and what to do about it.
        file: Path of the YAML file.
        line: 1-based line, or 0 when the problem is about the whole file.
        column: 1-based column, or 0 when unknown.
        rule_id: The rule it concerns, when it concerns one.
        severity: Error (blocks loading) or warning.
        golden_case: The golden case it concerns, when it is a golden file's problem (a golden
            case is not a rule: printed ``[golden case <name>]``, never ``[rule <name>]``).
    """

    code: str
    message: str
    file: str
    line: int = 0
    column: int = 0
    rule_id: str | None = None
    severity: Severity = Severity.ERROR
    golden_case: str | None = None

    @property
    def location(self) -> str:
        """``file:line[:column]`` in the form editors and CI annotate."""
        if self.line == 0:
            return self.file
        if self.column == 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        rule = f" [rule {self.rule_id}]" if self.rule_id else ""
        case = f" [golden case {self.golden_case}]" if self.golden_case else ""
        return f"{self.location}: {self.severity.value} {self.code}{rule}{case}: {self.message}"


class RulesetError(CaserouteError):
    """A ruleset could not be loaded; carries every problem found, not just the first."""

    HEADLINE = "ruleset has {errors} error(s)"
    """The message's first line; ``{errors}`` is the number of errors."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.severity is Severity.ERROR]
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{self.HEADLINE.format(errors=len(errors))}:\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Rebuilt from its problems, not its message (see ``RequestError.__reduce__``)."""
        return (type(self), (list(self.problems),), self.__dict__)


class GoldenFileError(RulesetError):
    """A version's golden case files could not be read; carries every problem found.

    Its own headline: the ruleset itself loaded, and ``rules check`` (which reads no golden
    file) finds nothing, so "ruleset has N error(s)" sent operators to the wrong file.
    """

    HEADLINE = "golden file(s) have {errors} error(s)"


class RulesetNotFoundError(CaserouteError):
    """No loaded ruleset matches the requested name (and version)."""


class RulesetStateError(CaserouteError):
    """A valid lifecycle request the current ruleset state does not allow; nothing changed.

    For example: activating a version that failed to load, rolling back a ruleset that has
    no previously active version, or a pointer file the server cannot write.
    """


class RulesetRetiredError(RulesetStateError):
    """A request pinned a version its ``serving.yaml`` lists as retired: it does not decide.

    A rollback retires the version it leaves (review R36a M1: a caller pinning it went on
    getting its decisions). Activating the version again takes it out of ``retired``.
    """


class NoRulesetLoadedError(CaserouteError):
    """The service has no usable ruleset (none found, or every one failed to load)."""


class AuditUnavailableError(CaserouteError):
    """The decision log could not durably store a record (disk full, locked, read-only...)."""


class AuditBusyError(AuditUnavailableError):
    """A read bounded by a caller's deadline gave up waiting for a lock another connection holds.

    SQLite's busy wait (up to the store's busy timeout) calls no progress handler, so a roster
    lookup with a fraction of a second left waited 10 s on a log another connection held in
    exclusive locking mode (or recovered after a crash). Its wait is now cut at its deadline.
    """


class RecordRefusedError(CaserouteError):
    """The decision log refused one call's records for their values: nothing was recorded.

    Not an outage (the log takes other calls' records), so health does not follow it, and
    not retryable: the same values are refused again. The parsers refuse every value a store
    is known to refuse, so this is a server defect; transports answer INTERNAL, the detail in
    the server log (review R32c F2: a NUL PostgreSQL refused turned the replica NOT_SERVING).
    """


class IdempotencyConflictError(CaserouteError):
    """The request_id was already used for a different input."""

    @classmethod
    def for_request(cls, request_id: str) -> IdempotencyConflictError:
        """The error for ``request_id``, saying what differs and what to do.

        The id is quoted clipped: a long one (valid ids reach 200 characters, up to 800
        bytes) pushed "send a new request_id" past a transport's clip (review R34a F3).
        """
        return cls(
            f"request_id {quote_clipped(request_id)} was already used with a different input "
            "(another case, roster, ruleset selector, now or explanation level); send a new "
            "request_id for a new request"
        )


class DecisionNotFoundError(CaserouteError):
    """The decision log holds no record with the requested decision_id."""


class RecordDamagedError(CaserouteError):
    """A stored record cannot be read back as a decision: the log was edited or damaged.

    Its stored decision does not rebuild, or the ruleset source its rules are rendered from is
    missing or altered. ``caseroute audit verify`` names what changed.
    """


class ResponseTooLargeError(CaserouteError):
    """The decisions' reply would exceed the transport's size limit.

    Nothing was recorded for a new decision; a replayed retry's decisions were recorded before.
    """


class CallEndedError(CaserouteError):
    """The call's deadline passed before its decisions were recorded.

    Raised by a transport's ``before_record`` hook, so nothing is recorded that the caller
    can no longer receive; a retry with the same request_id decides afresh.
    """


class CallCancelledError(CallEndedError):
    """The call was cancelled before its decisions were recorded: nothing is recorded."""


class RosterNotCachedError(CaserouteError):
    """A request sent only a roster_sha256, and this server does not hold that roster.

    Not a client mistake: a server keeps rosters for a while (per worker, least recently used
    first out), so the caller resends the request with the roster itself.

    Attributes:
        roster_sha256: The hash the request named.
    """

    def __init__(self, roster_sha256: str) -> None:
        self.roster_sha256 = roster_sha256
        super().__init__(
            f"roster_sha256 {roster_sha256} names no roster this server holds (rosters are "
            "kept per server process for a while); send the request again with the roster "
            "itself"
        )


class ConfigError(CaserouteError):
    """A setting (flag, environment variable, key file) is invalid; the message names it."""


class EngineUnavailableError(CaserouteError):
    """durable_rules cannot be used in this process (not installed, or fails to import)."""


class EngineValidationError(CaserouteError):
    """durable_rules rejected, crashed on, or hung while creating a compiled ruleset."""


def withheld_cause(exc: BaseException, might_quote: str = "case values") -> str:
    """An unexpected exception for a log line: its type and frames, never its message.

    An exception's text may quote the data it failed on (a patient's name in a KeyError, a
    fact in an engine error), and PHI never reaches a log line; the frames say where it failed.

    Args:
        exc: The exception.
        might_quote: What its message might quote, for the reader of the log.

    Returns:
        ``"<Type> (message withheld: it may quote <might_quote>)"`` and the traceback frames.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{type(exc).__name__} (message withheld: it may quote {might_quote})\n{frames}"
