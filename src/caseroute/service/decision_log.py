"""The decision log as transports read it: one decision, and pages of a filtered listing.

Never imports gRPC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from caseroute.audit.explain import StoredExplainer
from caseroute.audit.record import AuditRecord
from caseroute.audit.store import AuditSink
from caseroute.audit.stream_check import record_as_hashed
from caseroute.domain.decision import Decision
from caseroute.domain.errors import (
    DecisionNotFoundError,
    FieldViolation,
    RecordDamagedError,
    RequestError,
)
from caseroute.domain.fingerprint import canonical_json, format_timestamp
from caseroute.domain.limits import quote_clipped
from caseroute.domain.reader import unsafe_text


@dataclass(frozen=True, slots=True)
class AuditedDecision:
    """A stored decision: the audit record and the decision rebuilt from it."""

    record: AuditRecord
    decision: Decision


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """One page of a decision listing; ``next_page_token`` is "" on the last page."""

    decisions: tuple[AuditedDecision, ...]
    next_page_token: str


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_UNSAFE = (
    "must not contain control or invisible formatting characters (no decision or case has "
    "one); check the id you sent"
)
"""Why an id holding one is refused: the parsers refuse such ids, so no record holds one, and
PostgreSQL cannot take a NUL in a query (its refusal read as an outage, review R32c F2)."""


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Which decisions to list.

    Attributes:
        case_id: Only this case ("" = every case).
        since: Only decisions with ``now >= since`` (None = unbounded).
        until: Only decisions with ``now < until`` (None = unbounded).
        page_size: Decisions per page (0 = 50; at most 500).
        page_token: ``next_page_token`` of the previous page, with the same filters.
    """

    case_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page_size: int = 0
    page_token: str = ""


def _audited(record: AuditRecord, explain: StoredExplainer) -> AuditedDecision:
    """``record`` with its decision rebuilt.

    Raises:
        RecordDamagedError: If the stored decision or its ruleset source does not rebuild.
    """
    try:
        return AuditedDecision(record, explain.decision(record))
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise RecordDamagedError(
            f"record {record.seq} (decision {str(record.decision_id)[:80]!r}) cannot be "
            "rebuilt from the decision log: its stored decision or the ruleset source it was "
            "decided with was edited or lost; run `caseroute audit verify` on the log"
        ) from exc


def edited_refusal(record: AuditRecord, problem: str) -> RecordDamagedError:
    """The refusal of a record whose row fails its own checks, in ``audit show``'s words.

    Args:
        record: The record as its hashed text holds it (its id is the one the text names).
        problem: Why its row cannot be trusted, in verify's words (names the record's seq
            and the column, never a path or an exception's text).

    Returns:
        The error to raise (DATA_LOSS at the gRPC boundary).
    """
    return RecordDamagedError(
        f"{problem} (decision {str(record.decision_id)[:80]!r}): it is not served, since the "
        "decision log was edited after it was recorded; run `caseroute audit verify` on the "
        "log and restore it from a copy you trust"
    )


def _trusted(record: AuditRecord, explain: StoredExplainer) -> AuditedDecision:
    """``record`` decoded from its hashed text with its decision rebuilt, if its row holds.

    Raises:
        RecordDamagedError: If its row was edited after it was hashed, or it does not rebuild.
    """
    hashed, problem = record_as_hashed(record)
    if problem is not None:
        raise edited_refusal(hashed, problem)
    return _audited(hashed, explain)


class DecisionLog:
    """Reads the decision log for auditors: one decision, or pages by case and time range."""

    def __init__(self, sink: AuditSink) -> None:
        """Read from ``sink``."""
        self._sink = sink

    def get(self, decision_id: str) -> AuditedDecision:
        """One decision by id, as the text its chain hash covers holds it; never an edited row.

        What GetDecision serves: the tamper-evident truth or nothing. A row that fails its own
        checks (``stream_check.record_as_hashed``) is refused, not served with a warning the
        transport has no place for.

        Raises:
            DecisionNotFoundError: If no record has that id.
            RecordDamagedError: If its row was edited after it was hashed (``edited_refusal``),
                or its hashed decision does not rebuild.
            AuditUnavailableError: If the store cannot be read.
            RequestError: If the id holds a control or invisible formatting character.
        """
        return _trusted(self._find(decision_id), StoredExplainer(self._sink.get_blob))

    def get_as_hashed(self, decision_id: str) -> tuple[AuditedDecision, str | None]:
        """One decision by id, read from the text its chain hash covers, and its row's problem.

        What ``caseroute audit show`` prints: every value from the record's hashed text, never
        from the columns beside it (copies an edit can change alone), and, when the row fails
        its own hash or a column disagrees with the text, why, in ``audit verify``'s words
        (``stream_check.record_as_hashed``).

        Returns:
            The decision, and the problem (None when the row is as its writer stored it).

        Raises:
            DecisionNotFoundError: If no record has that id.
            RecordDamagedError: If its hashed decision does not rebuild.
            AuditUnavailableError: If the store cannot be read.
            RequestError: If the id holds a control or invisible formatting character.
        """
        record, problem = record_as_hashed(self._find(decision_id))
        return _audited(record, StoredExplainer(self._sink.get_blob)), problem

    def _find(self, decision_id: str) -> AuditRecord:
        """The record stored under ``decision_id`` (its column, as the log indexes it)."""
        if unsafe_text(decision_id):  # never a decision's id; PostgreSQL cannot even compare it
            raise RequestError([FieldViolation("decision_id", _UNSAFE)])
        record = self._sink.get(decision_id)
        if record is None:
            raise DecisionNotFoundError(
                f"no decision {quote_clipped(decision_id)} in the decision log; check the id "
                "(decision ids start with dec_) and that this server writes to the store that "
                "decided it"
            )
        return record

    def list(self, query: DecisionQuery) -> DecisionPage:
        """Decisions in log order for a case and/or a range of decision instants.

        Args:
            query: Filters and page.

        Returns:
            The page.

        Each record is read from its hashed text, as ``get`` reads one; the filters select by
        the columns beside it, which is why a row whose columns disagree with its text is
        refused rather than listed.

        Raises:
            RequestError: If the page size, time range or page token is invalid.
            RecordDamagedError: If a record of the page was edited after it was hashed, or
                does not rebuild (the first such record is named).
        """
        case_id, since, until = query.case_id, query.since, query.until
        violations = []
        if unsafe_text(case_id):  # never a case's id (the parsers refuse them)
            violations.append(FieldViolation("case_id", _UNSAFE))
        if not 0 <= query.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be 0-{MAX_PAGE_SIZE}"))
        if since is not None and until is not None and until <= since:
            violations.append(FieldViolation("until", "must be later than since"))
        query_key = _query_key(query)
        after = 0
        if query.page_token:
            after = _read_token(query.page_token, query_key, violations)
        if violations:
            raise RequestError(violations)
        size = query.page_size or DEFAULT_PAGE_SIZE
        records = self._sink.query(
            case_id=case_id, since=since, until=until, after_seq=after, limit=size + 1
        )
        more = len(records) > size
        records = records[:size]
        token = _make_token(records[-1].seq, query_key) if more else ""
        explain = StoredExplainer(self._sink.get_blob)
        return DecisionPage(tuple(_trusted(r, explain) for r in records), token)

    def token_after(self, query: DecisionQuery, seq: int) -> str:
        """A page token that continues ``query``'s listing after the record ``seq``.

        Transports use it to cut a page short (a reply too large to send) without losing
        the records after the cut.
        """
        return _make_token(seq, _query_key(query))


def _query_key(query: DecisionQuery) -> str:
    since, until = query.since, query.until
    return hashlib.sha256(
        canonical_json(
            [query.case_id, since and format_timestamp(since), until and format_timestamp(until)]
        ).encode()
    ).hexdigest()[:16]


def _make_token(after_seq: int, query_key: str) -> str:
    raw = json.dumps({"after": after_seq, "query": query_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_PAGE_TOKEN = 200  # the tokens _make_token issues are under 80 characters
MAX_SEQ = 2**63  # SQLite INTEGER is 64-bit signed: a record seq is always below this


def _read_token(token: str, query_key: str, violations: list[FieldViolation]) -> int:
    try:
        # A token longer than any issued one is refused unread (and json.loads of a deeply
        # nested document raises RecursionError, which must not reach the caller as INTERNAL).
        data = json.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(token) <= MAX_PAGE_TOKEN
            else b""
        )
        after, key = data["after"], str(data["query"])
        # Exactly what _make_token writes: a record seq, an int SQLite can hold. A forged
        # 1e999 or 2**70 would otherwise raise OverflowError (INTERNAL) further down.
        if type(after) is not int or not 0 <= after < MAX_SEQ:
            raise ValueError(after)  # noqa: TRY301 - one refusal for every malformed token
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        violations.append(
            FieldViolation("page_token", "is not a token this service issued; omit it to start")
        )
        return 0
    if key != query_key:
        violations.append(
            FieldViolation(
                "page_token",
                "belongs to a listing with other filters; send the same case_id, since and "
                "until as the first page, or omit the token to start over",
            )
        )
    return after
