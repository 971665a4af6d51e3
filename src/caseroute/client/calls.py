"""``Client``: one channel to a caseroute server or its replicas, and the calls of its services."""

from __future__ import annotations

import hashlib
import marshal
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Self, TypeVar

import grpc

from caseroute.client.channel import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RECEIVE_MB,
    MAX_ATTEMPTS_CAP,
    LoadBalancing,
    open_client_channel,
    replica_target,
)
from caseroute.client.errors import ClientError, InvalidRequestError, error_from_rpc
from caseroute.client.ids import derive_request_id
from caseroute.client.results import BatchDecided, Decided, DecisionPage, LoggedDecision
from caseroute.domain.case import Case
from caseroute.domain.code_built import checked_case, checked_roster
from caseroute.domain.codec import parse_case, parse_roster, parse_timestamp
from caseroute.domain.enums import ExplanationLevel
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.field_reader import beyond_utc
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.domain.reader import INSTANT_OUT_OF_RANGE, INSTANT_SHAPE, request_id_problem
from caseroute.domain.roster import Roster
from caseroute.grpc_api.tls import ClientTls
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

DEFAULT_TIMEOUT_S = 30.0
"""Deadline of one call, retries included, in seconds."""
MAX_TIMEOUT_S = 86_400.0
"""Longest deadline of one call, in seconds: a day, far beyond any call's need. gRPC fails a
call at once with DEADLINE_EXCEEDED (nothing sent) for a deadline it cannot represent
(infinity, NaN, ~1e10 s), so such timeouts are refused before sending (review R34a F5)."""
ROSTER_NOT_CACHED = "ROSTER_NOT_CACHED"
"""google.rpc.ErrorInfo reason of a server that does not hold a roster sent by its hash."""
KNOWN_ROSTERS = 64
"""Roster hashes a client remembers the server accepted (least recently used first out)."""
HASHED_ROSTERS = 8
"""``Roster`` objects whose hash a client keeps, so the same object is hashed once."""
PARSED_ROSTERS = 8
"""Roster dicts whose parsed ``Roster`` a client keeps, found again by their exact content."""
REPLICAS_BEHIND_A_NAME = 3
"""Replicas assumed behind one target balanced round_robin (a DNS name): see ``_spread``."""
MISSES_BEFORE_FULL = 2
"""Refusals of a roster sent by hash, each after the server had accepted it in full, before
the client sends that roster in full for ``FULL_BETWEEN_TRIES`` calls: a server whose roster
cache is off (``--roster-cache-agents 0``) or thrashing refuses every call by hash, which
cost each call a second round trip."""
FULL_BETWEEN_TRIES = 32
"""Calls that send such a roster in full before it is tried by hash once more."""

_R = TypeVar("_R")
_K = TypeVar("_K")

CaseInput = Case | Mapping[str, Any]
"""A case: a ``Case``, or a dict in caseroute's JSON dialect (what ``caseroute decide`` reads)."""
RosterInput = Roster | Mapping[str, Any]
"""A roster snapshot: a ``Roster``, or a dict in caseroute's JSON dialect."""
Instant = datetime | str
"""An instant: an aware ``datetime``, or RFC 3339 text with an offset (``2026-11-21T10:00:00Z``)."""


_LEVELS = {
    ExplanationLevel.SUMMARY: pb.EXPLANATION_LEVEL_SUMMARY,
    ExplanationLevel.FULL: pb.EXPLANATION_LEVEL_FULL,
}


def _case(value: object, path: str) -> Case:
    if isinstance(value, Case):
        # Read as the server will read it: a field the message would reshape, or one it
        # cannot carry, is named before sending. ``flags="safeguarding"`` became the one-letter
        # flags ``a, d, e, ...`` in the message, which the server accepts, and the case was
        # ASSIGNED; a float ``min_level`` raised TypeError (reviews R29 F1, R29b).
        return checked_case(value, path)
    if isinstance(value, Mapping):
        return parse_case(dict(value), path)
    raise RequestError(
        [FieldViolation(path, f"must be a Case or a dict, not {type(value).__name__}")]
    )


def _roster(value: object) -> Roster:
    """A roster given as a dict, parsed (``Client._roster_of`` reads a ``Roster`` itself)."""
    if isinstance(value, Mapping):
        return parse_roster(dict(value))
    raise RequestError(
        [FieldViolation("roster", f"must be a Roster or a dict, not {type(value).__name__}")]
    )


def _content_key(value: object) -> tuple[bytes, bytes] | None:
    """A digest of a plain ``dict``'s exact content and the bytes it hashes, or None.

    ``marshal`` writes only exact built-in types (a ``str`` subclass, a ``Mapping`` that is
    not a ``dict``, a ``datetime`` make it refuse) and keeps every type apart (``5``,
    ``5.0`` and ``True`` are equal in Python but written differently, as the strict parser
    treats them differently), so equal digests mean content the parser reads alike. Format
    version 2: from version 3 on, the bytes also depend on which objects are shared or
    interned (references), so the same content could miss. The caller parses the content
    back from these bytes, not from ``value``: another thread changing the dict meanwhile
    must not put one content's roster under another's key.
    """
    if type(value) is not dict:
        return None
    try:
        blob = marshal.dumps(value, 2)
    except ValueError:  # a value marshal does not write: no key, parsed every time
        return None
    return hashlib.sha256(blob).digest(), blob


def _instant(value: Instant, field: str) -> datetime:
    """``value`` as an aware datetime (text read in UTC), refused at ``field`` if it is not one.

    An aware instant that is year 0 or 10000 in UTC is refused for its range: it raised a bare
    OverflowError while deriving the request id, or, with a request_id, was sent to be refused
    by the server (review R34a F5).
    """
    parsed = parse_timestamp(value) if isinstance(value, str | datetime) else None
    if parsed is None:
        wanted = (
            INSTANT_OUT_OF_RANGE
            if beyond_utc(value)
            else f"must be an aware datetime or {INSTANT_SHAPE}, e.g. 2026-11-21T10:00:00Z"
        )
        raise RequestError([FieldViolation(field, wanted)])
    return value if isinstance(value, datetime) else parsed


def _timeout_problem(timeout: object) -> str | None:
    """Why ``timeout`` (seconds) cannot be a call's deadline, or None."""
    if (
        isinstance(timeout, int | float)
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)
        and 0 < timeout <= MAX_TIMEOUT_S
    ):
        return None
    return f"must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, not {timeout!r}"


def _check_timeout(timeout: float | None) -> None:
    """Refuse a per-call ``timeout`` (None: the client's) that cannot work, before sending.

    Raises:
        InvalidRequestError: At ``timeout``, with ``sent=False``.
    """
    problem = None if timeout is None else _timeout_problem(timeout)
    if problem is not None:
        raise InvalidRequestError.before_sending(RequestError([FieldViolation("timeout", problem)]))


def _attempt(parse: Callable[[], _R], violations: list[FieldViolation]) -> _R | None:
    """``parse()``; None when it raises RequestError, whose violations join ``violations``."""
    try:
        return parse()
    except RequestError as error:
        violations += error.violations
        return None


def _level(value: ExplanationLevel | str) -> ExplanationLevel:
    try:
        return ExplanationLevel(value)
    except ValueError:
        raise RequestError(
            [FieldViolation("explanation_level", f"must be 'summary' or 'full', not {value!r}")]
        ) from None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A request's parsed content and the id, selector and instant it is sent with."""

    cases: tuple[Case, ...]
    roster: Roster
    roster_sha256: str
    level: ExplanationLevel
    request_id: str
    selector: pb.RulesetSelector
    now: datetime


def _roster_unknown(error: ClientError) -> bool:
    """A server from before ``roster_sha256`` refusing a request without a roster."""
    return any(v.field == "roster" for v in error.violations) and len(error.violations) == 1


def _logged(msg: pb.AuditedDecision) -> LoggedDecision:
    return LoggedDecision(
        seq=msg.seq,
        decision=convert.decision_from_proto(msg.decision),
        request_id=msg.request_id,
        recorded_at=convert.timestamp_to_datetime(msg.recorded_at),
        caller=msg.caller,
        input_json=msg.input_json,
        request_sha256=msg.request_sha256,
        prev_hash=msg.prev_hash,
        record_hash=msg.record_hash,
    )


class Client:
    """A caseroute server's routing and decision-log calls over one channel.

    Thread-safe: one client may serve many threads. Use it as a context manager, or call
    ``close``. Every call raises a ``caseroute.client.ClientError`` subclass on failure.

    Rosters go by hash: once a call with a roster succeeded, later calls with the same roster
    send only its ``roster_sha256``, and if the server answers FAILED_PRECONDITION with reason
    ``ROSTER_NOT_CACHED`` (another worker, or the roster was evicted) the call is sent again
    with the roster, once (a roster refused like that ``MISSES_BEFORE_FULL`` times in a row
    goes in full for ``FULL_BETWEEN_TRIES`` calls). A roster is parsed and hashed once: the
    same ``Roster`` object, or a dict with the same content (the last ``PARSED_ROSTERS``
    kept), is found again.

    Several replicas sharing one decision log: give their addresses, and calls are spread over
    them with gRPC's ``round_robin`` policy; a call answered UNAVAILABLE (a replica killed,
    draining or restarting) is retried, with the same request_id, on the next ready replica.

    Example::

        with Client("localhost:50051") as client:
            reply = client.decide(case_dict, roster_dict)
            print(reply.decision.outcome, reply.decision.agent_id)

        with Client(["10.0.0.5:50051", "10.0.0.6:50051"]) as replicas:  # round_robin
            ...
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        tls: ClientTls | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_receive_mb: int = DEFAULT_MAX_RECEIVE_MB,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        roster_by_hash: bool = True,
        load_balancing: LoadBalancing | None = None,
    ) -> None:
        """Open a channel to ``target``.

        Args:
            target: ``host:port`` (any gRPC target: ``dns:///host:port``, ``unix:/path``), or
                several replicas: a sequence of ``IP:PORT`` addresses, the same separated by
                commas, or a gRPC target such as ``ipv4:10.0.0.5:50051,10.0.0.6:50051``.
            tls: The server's CA and, for mutual TLS, a client certificate and key (None:
                plaintext).
            token: Bearer token sent as ``authorization: Bearer <token>`` on every call.
            timeout: Default deadline of one call in seconds, retries included (above 0, at
                most ``MAX_TIMEOUT_S``).
            max_receive_mb: Largest reply accepted, in MiB (gRPC's own default is 4).
            max_attempts: Attempts per call while the server answers UNAVAILABLE, 1 to 5
                (1: no retry).
            clock: Where the decision instant comes from when a call gives none (tests
                pass a fixed one).
            roster_by_hash: Send a roster the server accepted before as its
                ``roster_sha256`` only (False: always send the roster).
            load_balancing: gRPC's ``round_robin`` or ``pick_first``. None: ``round_robin``
                when ``target`` names several addresses, else ``pick_first``; give
                ``round_robin`` for one DNS name that resolves to every replica.

        Raises:
            ValueError: If a number is out of range, or ``target`` names several addresses
                that are not IP:PORT of one family.
            ConfigError: If a TLS file cannot be read.
        """
        if not 1 <= max_attempts <= MAX_ATTEMPTS_CAP:
            raise ValueError(f"max_attempts must be 1-{MAX_ATTEMPTS_CAP}, not {max_attempts}")
        if max_receive_mb < 1:
            raise ValueError(f"max_receive_mb must be at least 1, not {max_receive_mb}")
        timeout_problem = _timeout_problem(timeout)
        if timeout_problem is not None:
            raise ValueError(f"timeout {timeout_problem}")
        uri, addresses = replica_target(target)
        # As the caller wrote it, for errors when nothing answered there.
        self._target = target if isinstance(target, str) else ",".join(target)
        if load_balancing is None:
            load_balancing = "round_robin" if addresses > 1 else "pick_first"
        elif load_balancing not in ("pick_first", "round_robin"):
            raise ValueError(
                f"load_balancing must be 'round_robin' or 'pick_first', not {load_balancing!r}"
            )
        self._channel = open_client_channel(uri, tls, max_receive_mb, max_attempts, load_balancing)
        # Each replica caches rosters on its own. Under round_robin, the call after one that
        # sent a roster goes to another replica, so a roster goes in full with the next
        # replicas-1 calls too: by hash alone, a resend after ROSTER_NOT_CACHED lands on the
        # next replica in turn, and in lock-step a replica can miss on every call forever.
        replicas = addresses if addresses > 1 else REPLICAS_BEHIND_A_NAME
        self._spread = replicas - 1 if load_balancing == "round_robin" else 0
        self._routing = routing_pb2_grpc.RoutingServiceStub(self._channel)
        self._log = routing_pb2_grpc.DecisionLogStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._clock = clock
        self._by_hash = roster_by_hash
        self._lock = threading.Lock()
        # hashes the server accepted -> calls still to send that roster in full (see _spread)
        self._known: OrderedDict[str, int] = OrderedDict()
        # hashes refused by hash since the last call by hash that passed -> how many times
        self._misses: OrderedDict[str, int] = OrderedDict()
        self._hashed: OrderedDict[int, tuple[Roster, str]] = OrderedDict()  # id -> (it, hash)
        self._parsed: OrderedDict[bytes, Roster] = OrderedDict()  # _content_key -> parsed
        self._checked: OrderedDict[int, tuple[Roster, Roster]] = OrderedDict()  # id -> it, read

    def _call(self, method: Callable[..., _R], request: object, timeout: float | None) -> _R:
        deadline = self._timeout if timeout is None else timeout
        try:
            return method(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(error, self._target, deadline) from None

    def _roster_of(self, value: object) -> Roster:
        """``value`` as a ``Roster``; a dict parsed before (same exact content) is not again.

        A roster passed as a dict used to be parsed and hashed on every call (~2.6 ms of
        client CPU at 100 agents); its content key costs ~0.1 ms, and the ``Roster`` kept for
        it is the same object each time, so ``_roster_hash`` finds its hash too. A dict that
        fails to parse is not kept (its errors are raised every time).

        Raises:
            RequestError: If ``value`` is not a valid roster.
        """
        if isinstance(value, Roster):  # checked as a Case is, once per Roster object
            return self._once_per_roster(self._checked, value, checked_roster)
        keyed = _content_key(value)
        if keyed is None:
            return _roster(value)
        key, blob = keyed
        with self._lock:
            kept = self._parsed.get(key)
            if kept is not None:
                self._parsed.move_to_end(key)
                return kept
        # The content hashed, whatever ``value`` holds now; the bytes are ours (just written).
        roster = _roster(marshal.loads(blob))  # noqa: S302
        with self._lock:
            self._parsed[key] = roster
            if len(self._parsed) > PARSED_ROSTERS:
                self._parsed.popitem(last=False)
        return roster

    def _roster_hash(self, roster: Roster) -> str:
        """``roster_sha256(roster)``, computed once per ``Roster`` object kept here."""
        return self._once_per_roster(self._hashed, roster, roster_sha256)

    def _once_per_roster(
        self,
        memo: OrderedDict[int, tuple[Roster, _K]],
        roster: Roster,
        make: Callable[[Roster], _K],
    ) -> _K:
        """``make(roster)``, once per ``Roster`` object among the last ``HASHED_ROSTERS``."""
        with self._lock:
            kept = memo.get(id(roster))
            if kept is not None and kept[0] is roster:
                memo.move_to_end(id(roster))
                return kept[1]
        made = make(roster)
        with self._lock:
            memo[id(roster)] = (roster, made)  # holding it keeps its id unique
            if len(memo) > HASHED_ROSTERS:
                memo.popitem(last=False)
        return made

    def _server_holds(self, sha: str, *, held: bool) -> None:
        """Remember (or forget) that the server accepted the roster with this hash.

        A roster the server refused by hash ``MISSES_BEFORE_FULL`` times in a row, each time
        after accepting it in full, goes in full for the next ``FULL_BETWEEN_TRIES`` calls.
        """
        with self._lock:
            if held:
                misses = self._misses.get(sha, 0)
                full = FULL_BETWEEN_TRIES if misses >= MISSES_BEFORE_FULL else self._spread
                self._known.setdefault(sha, full)
                self._known.move_to_end(sha)
                if len(self._known) > KNOWN_ROSTERS:
                    self._known.popitem(last=False)
            elif self._known.pop(sha, None) is not None:
                # Counted once per acceptance: calls by hash in flight together when the
                # server lost the roster (a restart) are refused together, one miss between
                # them, not MISSES_BEFORE_FULL.
                self._misses[sha] = self._misses.pop(sha, 0) + 1
                if len(self._misses) > KNOWN_ROSTERS:
                    self._misses.popitem(last=False)

    def _held_by_hash(self, sha: str, *, probed: bool = False) -> None:
        """A call sent this roster by hash alone and the server had it: no misses owed.

        ``probed``: it was the try after ``FULL_BETWEEN_TRIES`` calls in full, which took the
        hash out of ``_known`` while in flight; the next calls go by hash again.
        """
        if sha in self._misses or probed:
            with self._lock:
                self._misses.pop(sha, None)
                if probed:
                    self._known[sha] = 0
                    self._known.move_to_end(sha)
                    if len(self._known) > KNOWN_ROSTERS:
                        self._known.popitem(last=False)

    def _send(
        self,
        method: Callable[..., _R],
        request: pb.DecideRequest | pb.DecideBatchRequest,
        sent: _Prepared,
        timeout: float | None,
    ) -> _R:
        """Send a Decide or DecideBatch request, its roster by hash when the server has it.

        ``request`` carries everything but the roster, and ``roster_sha256``.

        Raises:
            ClientError: As ``_call``; ROSTER_NOT_CACHED never reaches the caller.
        """
        sha = sent.roster_sha256
        if self._by_hash:
            with self._lock:
                owed = self._known.get(sha)
                by_hash = owed == 0
                # The one try by hash after FULL_BETWEEN_TRIES calls in full: the calls made
                # meanwhile go in full (from many threads, every call that found 0 tried the
                # hash and was refused: two round trips each, as with no pause at all).
                probing = by_hash and self._misses.get(sha, 0) >= MISSES_BEFORE_FULL
                if owed:
                    self._known[sha] = owed - 1
                elif probing:
                    del self._known[sha]
            if by_hash:
                try:
                    reply = self._call(method, request, timeout)
                except ClientError as error:
                    if error.reason != ROSTER_NOT_CACHED and not _roster_unknown(error):
                        raise
                    if _roster_unknown(error):
                        self._by_hash = False  # a server from before roster_sha256
                    self._server_holds(sha, held=False)
                else:
                    self._held_by_hash(sha, probed=probing)
                    return reply
        request.roster.CopyFrom(convert.roster_to_proto(sent.roster))
        reply = self._call(method, request, timeout)
        self._server_holds(sha, held=True)
        return reply

    def _prepare(
        self,
        cases: Sequence[tuple[object, str]],
        roster: object,
        *,
        now: Instant | None,
        ruleset: str | None,
        version: str | None,
        request_id: str | None,
        level: ExplanationLevel | str,
        timeout: float | None = None,
    ) -> _Prepared:
        """Parse a request's content and settle its id and instant (the clock read once, first).

        Raises:
            InvalidRequestError: Every problem found (cases, roster, level, now, timeout) at
                once.
        """
        violations: list[FieldViolation] = []
        timeout_problem = None if timeout is None else _timeout_problem(timeout)
        if timeout_problem is not None:
            violations.append(FieldViolation("timeout", timeout_problem))
        parsed = [_attempt(partial(_case, value, path), violations) for value, path in cases]
        parsed_roster = _attempt(lambda: self._roster_of(roster), violations)
        parsed_level = _attempt(lambda: _level(level), violations)
        if request_id is not None:
            # The server's length limit is its own setting (checked there: no longer id is
            # refused here); an empty or blank id, or one with control characters, is refused
            # by every server, so before sending.
            longest = max(len(request_id), DEFAULT_LIMITS.max_id_chars)
            problem = request_id_problem(request_id, longest)
            if problem is not None:
                violations.append(FieldViolation("request_id", problem))
        instant = _attempt(
            lambda: self._clock() if now is None else _instant(now, "now"), violations
        )
        if violations or parsed_roster is None or parsed_level is None or instant is None:
            raise InvalidRequestError.before_sending(RequestError(violations))
        parsed_cases = tuple(c for c in parsed if c is not None)  # all of them: no violations
        selector = pb.RulesetSelector(name=ruleset or "", version=version or "")
        sha = self._roster_hash(parsed_roster)
        if request_id is None:
            request_id = derive_request_id(
                parsed_cases,
                parsed_roster,
                now=instant,
                ruleset_name=selector.name,
                ruleset_version=selector.version,
                full=parsed_level is ExplanationLevel.FULL,
                roster_hash=sha,
            )
        return _Prepared(
            parsed_cases,
            parsed_roster,
            sha,
            parsed_level,
            request_id,
            selector,
            instant,
        )

    def decide(
        self,
        case: CaseInput,
        roster: RosterInput,
        *,
        now: Instant | None = None,
        ruleset: str | None = None,
        version: str | None = None,
        request_id: str | None = None,
        explanation_level: ExplanationLevel | str = ExplanationLevel.SUMMARY,
        timeout: float | None = None,
    ) -> Decided:
        """Route one case (RoutingService.Decide); the decision is recorded before it returns.

        Args:
            case: The case: a ``Case`` or a dict in the JSON dialect.
            roster: The roster snapshot: a ``Roster`` or a dict in the JSON dialect.
            now: The decision instant. None: this client's clock, read once here (so calling
                again later, e.g. at ``next_relaxation_at``, asks for a new decision).
            ruleset: Ruleset name (None: the server's default).
            version: Ruleset version to pin (None: the active one).
            request_id: Idempotency key, 1-200 characters. None: derived from everything
                sent (``auto-<sha256>``), so sending the same request again returns the same
                decision.
            explanation_level: ``summary`` (default) or ``full`` (a verdict per agent).
            timeout: Deadline in seconds for this call (None: the client's); above 0, at most
                ``MAX_TIMEOUT_S``.

        Returns:
            The decision, the instant used, whether it was replayed, and the request id.

        Raises:
            InvalidRequestError: If the input is invalid (``violations`` names each field),
                here before sending or by the server.
            ClientError: A subclass per status code (see ``caseroute.client.errors``).
        """
        sent = self._prepare(
            [(case, "case")],
            roster,
            now=now,
            ruleset=ruleset,
            version=version,
            request_id=request_id,
            level=explanation_level,
            timeout=timeout,
        )
        request = pb.DecideRequest(
            request_id=sent.request_id,
            ruleset=sent.selector,
            case=convert.case_to_proto(sent.cases[0]),
            now=convert.datetime_to_timestamp(sent.now),
            explanation_level=_LEVELS[sent.level],
            roster_sha256=sent.roster_sha256,
        )
        reply: pb.DecideResponse = self._send(self._routing.Decide, request, sent, timeout)
        return Decided(
            convert.decision_from_proto(reply.decision),
            convert.timestamp_to_datetime(reply.now),
            reply.replayed,
            sent.request_id,
        )

    def decide_batch(
        self,
        cases: Sequence[CaseInput],
        roster: RosterInput,
        *,
        now: Instant | None = None,
        ruleset: str | None = None,
        version: str | None = None,
        request_id: str | None = None,
        explanation_level: ExplanationLevel | str = ExplanationLevel.SUMMARY,
        timeout: float | None = None,
    ) -> BatchDecided:
        """Route many cases against one roster, in order (RoutingService.DecideBatch).

        Each assignment uses one unit of the agent's capacity for the cases after it. The
        arguments are those of ``decide``; invalid cases are named ``cases[i]``.

        Returns:
            One decision per case in order, the instant used, replayed, and the request id.

        Raises:
            InvalidRequestError: If the input is invalid (every case's problems at once).
            ClientError: A subclass per status code (see ``caseroute.client.errors``).
        """
        sent = self._prepare(
            [(case, f"cases[{i}]") for i, case in enumerate(cases)],
            roster,
            now=now,
            ruleset=ruleset,
            version=version,
            request_id=request_id,
            level=explanation_level,
            timeout=timeout,
        )
        request = pb.DecideBatchRequest(
            request_id=sent.request_id,
            ruleset=sent.selector,
            cases=[convert.case_to_proto(case) for case in sent.cases],
            now=convert.datetime_to_timestamp(sent.now),
            explanation_level=_LEVELS[sent.level],
            roster_sha256=sent.roster_sha256,
        )
        reply: pb.DecideBatchResponse = self._send(
            self._routing.DecideBatch, request, sent, timeout
        )
        return BatchDecided(
            tuple(convert.decision_from_proto(d) for d in reply.decisions),
            convert.timestamp_to_datetime(reply.now),
            reply.replayed,
            sent.request_id,
        )

    def get_decision(self, decision_id: str, *, timeout: float | None = None) -> LoggedDecision:
        """One recorded decision by id (DecisionLog.GetDecision).

        Raises:
            InvalidRequestError: If ``timeout`` cannot be a deadline (nothing sent).
            NotFoundError: If the log holds no decision with that id.
            ClientError: A subclass per status code.
        """
        _check_timeout(timeout)
        reply: pb.AuditedDecision = self._call(
            self._log.GetDecision, pb.GetDecisionRequest(decision_id=decision_id), timeout
        )
        return _logged(reply)

    def decision_pages(
        self,
        *,
        case_id: str | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> Iterator[DecisionPage]:
        """Pages of recorded decisions in log order (DecisionLog.ListDecisions), fetched lazily.

        Args:
            case_id: Only this case (None: every case).
            since: Only decisions whose instant is at or after this.
            until: Only decisions whose instant is before this.
            page_size: Decisions per page, 1-500 (0: the server's 50); the server may send
                fewer to stay under its largest response.
            page_token: Continue from a page's ``next_page_token`` ("" : from the start).
            timeout: Deadline in seconds for each page (None: the client's).

        Yields:
            Each page, the last one with ``next_page_token == ""``.

        Raises:
            InvalidRequestError: If a filter, the page size or ``timeout`` is invalid.
            ClientError: A subclass per status code.
        """
        _check_timeout(timeout)
        request = pb.ListDecisionsRequest(
            case_id=case_id or "", page_size=page_size, page_token=page_token
        )
        try:
            if since is not None:
                request.since.CopyFrom(convert.datetime_to_timestamp(_instant(since, "since")))
            if until is not None:
                request.until.CopyFrom(convert.datetime_to_timestamp(_instant(until, "until")))
        except RequestError as error:
            raise InvalidRequestError.before_sending(error) from None
        while True:
            reply: pb.ListDecisionsResponse = self._call(self._log.ListDecisions, request, timeout)
            yield DecisionPage(tuple(_logged(d) for d in reply.decisions), reply.next_page_token)
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    def list_decisions(
        self,
        *,
        case_id: str | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[LoggedDecision]:
        """Every recorded decision matching the filters, in log order, page after page.

        The arguments are those of ``decision_pages``; pages are fetched as you iterate.

        Raises:
            ClientError: A subclass per status code (raised while iterating).
        """
        for page in self.decision_pages(
            case_id=case_id, since=since, until=until, page_size=page_size, timeout=timeout
        ):
            yield from page.decisions

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Self:
        """The client itself."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the channel."""
        self.close()
