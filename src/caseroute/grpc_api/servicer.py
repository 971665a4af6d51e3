"""RoutingService and DecisionLog RPCs: convert the request, call the core, convert the reply."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from caseroute.domain.errors import (
    CallCancelledError,
    CallEndedError,
    FieldViolation,
    RequestError,
    ResponseTooLargeError,
    RosterNotCachedError,
)
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits, clip, quote_clipped
from caseroute.grpc_api.auth import authenticated
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import RosterLog
from caseroute.grpc_api.status import status_for
from caseroute.service import (
    DecideCommand,
    DecideResult,
    DecisionLog,
    DecisionQuery,
    RoutingCore,
    batch_size_violations,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from caseroute.wire.convert import KnownRoster, RosterStore
from caseroute.wire.request_bytes import cut_span
from caseroute.wire.unknown_fields import unknown_field_violations

log = logging.getLogger("caseroute.grpc")

R = TypeVar("R")
M = TypeVar("M")
P = TypeVar("P", bound=Message)
Q = TypeVar("Q", pb.DecideRequest, pb.DecideBatchRequest)

DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
"""The server's default largest reply (``--max-response-mb 4``): what gRPC clients accept by
default (4 MiB), so a reply a client would refuse is refused here, before it is recorded."""
DEFAULT_REPLY_LIMIT_SETTING = "--max-response-mb"
"""The server setting named when a reply is too large."""


class RefusedRequest:
    """Stands in for a request refused as it was decoded.

    Each servicer method answers it INVALID_ARGUMENT (``_refuse_unread``) before anything runs
    but the access check (the interceptors wrap the method, so they still run first).
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class UndecodableRequest(RefusedRequest):
    """Stands in for a request whose bytes are not the method's protobuf message.

    Attributes:
        message: Full name of the message the method takes.
        size: How many bytes arrived.
    """

    message: str
    size: int


@dataclass(frozen=True, slots=True)
class UnknownFieldsRequest(RefusedRequest):
    """Stands in for a request holding fields this server's caseroute.v1 does not define.

    Decide and DecideBatch name them among their other problems where they convert
    (``wire.unknown_fields``); every other caseroute method's request is refused here, as it
    is decoded (review M6's rule on every RPC: an admin or replay request read as if a field
    it sent were absent would do something the caller did not ask for).

    Attributes:
        request: The request as parsed (its known fields; what the call log reads).
        violations: One per message holding unknown fields, at its field path.
    """

    request: Message
    violations: tuple[FieldViolation, ...]


def lenient_deserializer(message: type[M]) -> Callable[[bytes], M | UndecodableRequest]:
    """A request deserializer that never raises.

    grpcio answers a raising deserializer with INTERNAL and logs a traceback per call; this
    one hands the servicer an ``UndecodableRequest`` instead, which it refuses as
    INVALID_ARGUMENT with one log line.

    Args:
        message: The generated message class.

    Returns:
        bytes -> the message, or an ``UndecodableRequest``.
    """
    parse: Callable[[bytes], M] = message.FromString  # type: ignore[attr-defined]
    name: str = message.DESCRIPTOR.full_name  # type: ignore[attr-defined]

    def deserialize(data: bytes) -> M | UndecodableRequest:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError or worse: the bytes are not the message
            return UndecodableRequest(name, len(data))

    return deserialize


@dataclass(frozen=True, slots=True)
class RosterCut(Generic[Q]):
    """A Decide or DecideBatch request whose roster field was cut from its bytes unparsed.

    The servicer looks the roster up by its bytes in place (``RosterCache.find_sent_at``):
    a roster sent again is then neither copied nor parsed nor serialised nor hashed. When it
    is not found there, the servicer parses ``data`` whole, exactly as
    ``lenient_deserializer`` would have.

    Attributes:
        message: The request's other fields, parsed (its roster field unset).
        data: The whole request's bytes.
        start: Where the roster field's bytes (a serialized Roster, not yet checked) begin.
        stop: Where they end.
    """

    message: Q
    data: bytes
    start: int
    stop: int

    @property
    def roster(self) -> bytes:
        """The roster field's bytes as sent: a copy, so keeping it never keeps ``data``."""
        return self.data[self.start : self.stop]

    @property
    def request_id(self) -> str:
        """The request's ``request_id`` (what the call log and test hooks read)."""
        return self.message.request_id


def roster_cut_deserializer(
    message: type[Q],
) -> Callable[[bytes], Q | RosterCut[Q] | UndecodableRequest]:
    """A request deserializer for Decide or DecideBatch that leaves the roster unparsed.

    The request's top-level fields are read from the wire bytes (``wire.request_bytes``); when
    the roster field occurs once and nothing is unusual, it is cut out and the rest parsed
    (a ``RosterCut``); otherwise, the whole request is parsed as ``lenient_deserializer`` does
    (the same message, or the same ``UndecodableRequest``).

    Args:
        message: ``pb.DecideRequest`` or ``pb.DecideBatchRequest``.

    Returns:
        bytes -> a ``RosterCut``, the message, or an ``UndecodableRequest``.
    """
    whole = lenient_deserializer(message)
    parse = message.FromString
    number = message.DESCRIPTOR.fields_by_name["roster"].number

    def deserialize(data: bytes) -> Q | RosterCut[Q] | UndecodableRequest:
        cut = cut_span(data, number)
        if cut is None:
            return whole(data)
        rest, start, stop = cut
        try:
            return RosterCut(parse(rest), data, start, stop)
        except Exception:  # noqa: BLE001 - the whole parse decides what is wrong, as before
            return whole(data)

    return deserialize


def strict_deserializer(
    message: type[P],
) -> Callable[[bytes], P | UndecodableRequest | UnknownFieldsRequest]:
    """A request deserializer that never raises and refuses fields the message does not define.

    Args:
        message: The generated message class (none of these requests holds a list, so the
            default ``InputLimits`` bound nothing the walk reads).

    Returns:
        bytes -> the message, an ``UndecodableRequest``, or an ``UnknownFieldsRequest``.
    """
    lenient = lenient_deserializer(message)

    def deserialize(data: bytes) -> P | UndecodableRequest | UnknownFieldsRequest:
        parsed = lenient(data)
        if isinstance(parsed, UndecodableRequest):
            return parsed
        violations = unknown_field_violations(parsed, "", DEFAULT_LIMITS)
        return UnknownFieldsRequest(parsed, tuple(violations)) if violations else parsed

    return deserialize


def request_deserializer(message: type[M]) -> Callable[[bytes], Any]:
    """The server's deserializer for a method taking ``message``.

    Decide and DecideBatch requests get ``roster_cut_deserializer`` (their converters name
    unknown fields among their other problems), every other message ``strict_deserializer``.
    """
    if message is pb.DecideRequest or message is pb.DecideBatchRequest:
        return roster_cut_deserializer(message)
    return strict_deserializer(message)


_WHOLE_DECIDE = lenient_deserializer(pb.DecideRequest)
_WHOLE_BATCH = lenient_deserializer(pb.DecideBatchRequest)


def _fail(context: grpc.ServicerContext, exc: Exception, reference: str) -> None:
    """End the call with the status table's answer for ``exc``: the status alone, no message.

    On a real server this raises (``abort_with_status``): the call ends with code, message and
    the rich status (trailing metadata) and no response message, a trailers-only response. A
    status set beside a returned (empty) message went out with that message, and a gRPC
    client treats a call that received a message as committed: it never retried it, so an
    UNAVAILABLE from a replica whose log refused writes reached the caller instead of the
    next replica, against the retry policy of ``caseroute.client`` (and Envoy's
    ``retry_on: unavailable``). grpcio-testing's context has no ``abort_with_status`` (and its
    ``abort`` drops trailing metadata): there the status is set and the servicer returns an
    empty message, which grpcio-testing reports as the status alone.

    Raises:
        Exception: grpcio's abort, on a real server (the call has ended).
    """
    status = status_for(exc, reference)
    try:
        context.abort_with_status(status)
    except NotImplementedError:  # grpcio-testing's servicer context
        context.set_trailing_metadata(status.trailing_metadata)
        context.set_code(status.code)
        context.set_details(status.details)


def _refuse_unread(
    context: grpc.ServicerContext, method: str, request: RefusedRequest, empty: R
) -> R:
    """End the call INVALID_ARGUMENT for a request refused as it was decoded; ``empty`` back."""
    if isinstance(request, UnknownFieldsRequest):
        log.warning(
            "%s refused: %s holds fields it does not define, at %s",
            method,
            request.request.DESCRIPTOR.full_name,
            clip(", ".join(_loggable_path(v.field) for v in request.violations[:5]), 300),
        )
        _fail(context, RequestError(list(request.violations)), method)
        return empty
    assert isinstance(request, UndecodableRequest)  # noqa: S101 - the only other kind
    log.warning(
        "%s refused: request bytes are not a valid %s (%d bytes)",
        method,
        request.message,
        request.size,
    )
    violation = FieldViolation(
        "request",
        f"is not a valid {request.message} protobuf message; send the message the .proto defines",
    )
    _fail(context, RequestError([violation]), method)
    return empty


_ATTRIBUTE_KEY = re.compile(r"\.attributes[.\[].*$")
"""An attribute's key and all after it: the one member name a caller writes freely.

Every form a key takes in a path is withheld: plain (``.MRN-1234``, hyphens included, see
``limits.key_path``) or quoted (``['Ada Lovelace']``).
"""


def _loggable_path(field: str) -> str:
    """A field path for the log, with an attribute's key withheld.

    The key is text the caller wrote (``attributes['Ada Lovelace']`` is a name, not a field
    name), so the log keeps ``case.attributes[…]``; the caller's error still names it.
    """
    return _ATTRIBUTE_KEY.sub(".attributes[…]", field)


def _deadline_passed(context: grpc.ServicerContext) -> bool:
    """Whether the call's deadline has passed (it waited in the queue too long)."""
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _call_ended(context: grpc.ServicerContext) -> str | None:
    """How the call ended (``deadline``, ``cancelled``), or None while the caller waits."""
    if _deadline_passed(context):
        return "deadline"
    return None if context.is_active() else "cancelled"


def _serve(
    context: grpc.ServicerContext,
    method: str,
    reference: str,
    work: Callable[[], R],
    empty: Callable[[], R],
) -> R:
    """Run ``work``; any exception ends the call with the status table's answer."""
    if _deadline_passed(context):
        context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
        context.set_details("deadline passed before the request was decoded")
        return empty()
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - the RPC boundary: the status table decides
        if isinstance(exc, RequestError):
            # Field paths only: messages may quote the caller's (possibly PHI) values.
            log.info(
                "%s refused: request_id=%s invalid: %d problem(s) at %s",
                method,
                clip(repr(reference), 120),
                len(exc.violations),
                clip(", ".join(_loggable_path(v.field) for v in exc.violations[:5]), 300),
            )
        _fail(context, exc, reference)
        return empty()


_REPLAYED_BYTES: dict[str, int] = {}


def _replayed_bytes(reply: Message) -> int:
    """What ``replayed = true`` adds to a reply like ``reply`` (proto3 omits it when false)."""
    name = reply.DESCRIPTOR.full_name
    found = _REPLAYED_BYTES.get(name)
    if found is None:  # once per reply type; a dict write is atomic under the GIL
        found = _REPLAYED_BYTES[name] = type(reply)(replayed=True).ByteSize()
    return found


class SizedReply(Generic[P]):
    """Builds a reply once, before the decisions are recorded, and refuses one too large to send.

    ``check`` is the core's ``before_record`` hook: it converts the result, and raises
    ResponseTooLargeError (so nothing is recorded) when the message exceeds what the server
    may send. ``reply`` then hands back that same message instead of converting again.

    The core also calls ``check`` with a retry's stored result (``DecideResult.replayed``):
    those decisions are recorded already, and asking again for less under the same request_id
    is a different input (ALREADY_EXISTS), so that refusal says so and where to read them.
    """

    def __init__(
        self,
        build: Callable[[DecideResult], P],
        max_bytes: int,
        setting: str = DEFAULT_REPLY_LIMIT_SETTING,
        request_id: str = "",
        ended: Callable[[], str | None] | None = None,
    ) -> None:
        """Build replies with ``build``; refuse those over ``max_bytes`` serialized bytes.

        Args:
            build: Converts a result to the reply message.
            max_bytes: The largest reply sent.
            setting: The server setting that sets ``max_bytes``, named in the refusal.
            request_id: The request's id, named in the refusal of a replayed result.
            ended: How the call has ended (``deadline``, ``cancelled``), or None while the
                caller waits: once ended nothing is recorded, since the caller can no longer
                receive it (review R31c, 4).
        """
        self._build = build
        self._max_bytes = max_bytes
        self._setting = setting
        self._request_id = request_id
        self._ended = ended
        self._built: tuple[DecideResult, P] | None = None

    def check(self, result: DecideResult) -> None:
        """Build the reply for ``result``; raise if it cannot be delivered.

        A first answer is measured with room for the ``replayed`` flag its retry carries:
        a reply that fitted only without it could never be answered again (review R31c, 1).

        Raises:
            CallEndedError: If the call's deadline passed before anything was recorded
                (``CallCancelledError``: if it was cancelled).
            ResponseTooLargeError: If the serialized reply exceeds the limit.
        """
        ended = self._ended() if self._ended is not None else None
        if ended is not None:
            # A retry's decisions were recorded by the first call: say so (review R31d 9).
            recorded = (
                "its decisions were recorded by an earlier call"
                if result.replayed
                else "nothing was recorded"
            )
            if ended == "deadline":
                raise CallEndedError(
                    f"the call's deadline passed before its decisions were recorded: {recorded}; "
                    "retry with the same request_id and a longer deadline"
                )
            raise CallCancelledError(
                f"the call was cancelled before its decisions were recorded: {recorded}; retry "
                "with the same request_id"
            )
        reply = self._build(result)
        size = reply.ByteSize()
        if not result.replayed:
            size += _replayed_bytes(reply)
        if size > self._max_bytes:
            raise self._too_large(result, size)
        self._built = (result, reply)

    def _too_large(self, result: DecideResult, size: int) -> ResponseTooLargeError:
        """The refusal of a ``size``-byte reply: nothing recorded, or (a replay) all recorded.

        Invariant: within ``status.MAX_MESSAGE_BYTES`` (400) for sizes and limits under
        100 MB, so the status never cuts what to do off the end: the request_id is quoted
        clipped (``quote_clipped``: at most 42 bytes).
        """
        over = (
            f"the reply would be {size} bytes, over this server's limit of {self._max_bytes} "
            f"bytes ({self._setting})"
        )
        if not result.replayed:
            return ResponseTooLargeError(
                f"{over}; nothing was recorded: ask for EXPLANATION_LEVEL_SUMMARY (the same "
                "request_id may be reused), split the batch, or raise your client's receive "
                f"limit and ask the operators to raise {self._setting}"
            )
        return ResponseTooLargeError(
            f"{over}; its decisions are recorded (request_id {quote_clipped(self._request_id)}, "
            f"first {result.decisions[0].decision_id}): another explanation level under it is "
            "another input (ALREADY_EXISTS); read them with GetDecision or `caseroute audit "
            f"show`, or raise your receive limit and {self._setting}"
        )

    def reply(self, result: DecideResult) -> P:
        """The reply for ``result``: the one ``check`` built, or a new one (another result)."""
        if self._built is not None and self._built[0] is result:
            return self._built[1]
        return self._build(result)  # a concurrent retry's stored result came back instead


def caller_identity(context: grpc.ServicerContext) -> str:
    """The audited caller: the bearer token's identity, else the TLS client certificate's, or ""."""
    who = authenticated()
    if who is not None and who.by_token:
        return who.identity
    try:
        identities = context.peer_identities()
    except NotImplementedError:  # grpcio-testing's context has no transport security
        return ""
    return ",".join(i.decode(errors="replace") for i in identities) if identities else ""


def agent_detail(level: int) -> bool:
    """Whether an ``explanation_level`` asks for per-agent verdicts.

    Unset is SUMMARY: a FULL explanation holds a verdict per agent, and a batch of them
    outgrows what gRPC clients receive by default (1,000 cases x 50 agents is over 7 MB). The
    audit record is the same either way: the failed checks per agent stay readable there
    (``caseroute audit show``).

    Raises:
        RequestError: For a value the enum does not define (a newer client's level), at
            ``explanation_level``.
    """
    if level == pb.EXPLANATION_LEVEL_FULL:
        return True
    if level in (pb.EXPLANATION_LEVEL_UNSPECIFIED, pb.EXPLANATION_LEVEL_SUMMARY):
        return False
    raise RequestError(
        [
            FieldViolation(
                "explanation_level",
                f"{level} is not an ExplanationLevel; send EXPLANATION_LEVEL_SUMMARY (the "
                "default) or EXPLANATION_LEVEL_FULL",
            )
        ]
    )


class _Loaded:
    """A call's ``RosterStore`` that also knows one roster loaded for it from the decision log.

    The loaded roster is in the cache too, but a busy cache may evict it before the call's
    command is built again: the call uses it whatever the cache does meanwhile.
    """

    __slots__ = ("_known", "_rosters")

    def __init__(self, rosters: RosterStore, known: KnownRoster) -> None:
        self._rosters = rosters
        self._known = known

    def parse(self, msg: pb.Roster, path: str = "roster", *, limits: InputLimits) -> KnownRoster:
        """``RosterStore.parse`` of the call's store."""
        return self._rosters.parse(msg, path, limits=limits)

    def find(self, roster_sha256: str, *, limits: InputLimits) -> KnownRoster | None:
        """The loaded roster when it is the one named; else the call's store's ``find``."""
        if roster_sha256 == self._known.fingerprint.sha256:
            return self._known
        return self._rosters.find(roster_sha256, limits=limits)


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    """Thin servicer over ``RoutingCore``."""

    def __init__(
        self,
        core: RoutingCore,
        *,
        limits: InputLimits = DEFAULT_LIMITS,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        reply_limit_setting: str = DEFAULT_REPLY_LIMIT_SETTING,
        roster_cache: RosterCache | None = None,
        roster_log: RosterLog | None = None,
    ) -> None:
        """Serve decisions from ``core``.

        Args:
            core: The core.
            limits: Request size limits enforced while converting.
            max_reply_bytes: Largest reply sent; a larger one is refused before it is recorded.
            reply_limit_setting: The server setting that sets ``max_reply_bytes`` (named in
                the refusal).
            roster_cache: Rosters seen before, by bytes and by ``roster_sha256`` (None: a
                cache of the default size, this servicer's own).
            roster_log: Where a roster sent by ``roster_sha256`` alone and not in the cache
                is looked up before the call is refused ROSTER_NOT_CACHED (the decision log
                replicas share; None: nowhere). It loads into ``roster_cache``.
        """
        self._core = core
        self._limits = limits
        self.roster_cache = roster_cache if roster_cache is not None else RosterCache()
        """Where requests' rosters are parsed and kept; found by ``roster_sha256`` too."""
        self._roster_log = roster_log
        self._max_reply_bytes = max_reply_bytes
        self._setting = reply_limit_setting

    def _decide(
        self,
        context: grpc.ServicerContext,
        level: int,
        command: Callable[[RosterStore], DecideCommand],
        rosters: RosterStore,
        build: Callable[[DecideResult], P],
    ) -> P:
        violations: list[FieldViolation] = []
        try:
            agent_detail(level)  # refuses a level the enum does not define
        except RequestError as exc:
            violations += exc.violations
        try:
            converted = command(rosters)
        except RequestError as exc:  # reported with a bad level: every problem at once
            raise RequestError([*exc.violations, *violations]) from None
        except RosterNotCachedError as exc:
            if violations:  # other problems win: a resent roster would be refused for them
                raise RequestError(violations) from None
            converted = self._with_logged_roster(exc, context, command, rosters)
        if violations:
            raise RequestError(violations)
        # Invariant: the converters read the level as agent_detail does (FULL alone keeps
        # verdicts; tests/grpc_api/test_warm_servicer.py), so the command is used as built:
        # a copy with agent_detail set again cost ~5 us per call.
        sized = SizedReply(
            build,
            self._max_reply_bytes,
            self._setting,
            converted.request_id,
            ended=lambda: _call_ended(context),
        )
        return sized.reply(self._core.decide(converted, sized.check))

    def _with_logged_roster(
        self,
        missing: RosterNotCachedError,
        context: grpc.ServicerContext,
        command: Callable[[RosterStore], DecideCommand],
        rosters: RosterStore,
    ) -> DecideCommand:
        """The command, its roster (sent by hash alone, not cached) loaded from the decision log.

        Only a request with no other problem gets here (``decide_command`` raises
        ``RosterNotCachedError`` last), so the lookup is never spent on a call refused anyway.

        Raises:
            RosterNotCachedError: ``missing``, when there is no log to look in or the lookup
                found nothing usable in the time it had (``RosterLog.load``).
        """
        if self._roster_log is None:
            raise missing
        time_remaining: float | None = context.time_remaining()
        known = self._roster_log.load(missing.roster_sha256, self._limits, time_remaining)
        if known is None:
            raise missing
        return command(_Loaded(rosters, known))

    def _uncut(
        self,
        request: RosterCut[Q],
        whole: Callable[[bytes], Q | UndecodableRequest],
        *,
        read: Callable[[], bool] | None = None,
    ) -> tuple[Q | UndecodableRequest, KnownRoster | None, RosterStore]:
        """The request, the roster found by its sent bytes (or None) and the store to parse with.

        Found: the request's other fields and that roster. Not found, a first sight: read
        from its bytes (``RosterCache.parse_sent``: only the header and the new agents parsed)
        and used as found, the other fields as parsed already. When it cannot be read so (or
        the request names a ``roster_sha256`` to check it against): the whole request parsed
        now (as the lenient deserializer would have), and a store that remembers the roster's
        bytes once it is parsed, whose strict path names every bad field.

        ``read``, asked only on a miss, answering False: a call about to be refused before its
        roster is converted (its deadline passed, a batch of the wrong size) is not read
        either, so it neither costs the conversion nor caches a roster (nor counts a miss)
        that the old path would not have. A warm call never asks.
        """
        known = self.roster_cache.find_sent_at(
            request.data, request.start, request.stop, limits=self._limits
        )
        if known is not None:
            return request.message, known, self.roster_cache
        sent = request.roster
        if not request.message.roster_sha256 and (read is None or read()):
            try:
                known = self.roster_cache.parse_sent(sent, limits=self._limits)
            except Exception as exc:  # noqa: BLE001 - outside _serve: the whole parse decides
                # The type only: an exception's text may quote the caller's values.
                log.debug("roster not read from its bytes (%s): parsed whole", type(exc).__name__)
            if known is not None:
                return request.message, known, self.roster_cache
        return whole(request.data), None, self.roster_cache.sent_as(sent)

    def _batch_readable(
        self, message: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> bool:
        """Whether a batch's first-sight roster may be read before ``batch_command``'s checks.

        Not when the call will be refused first: its deadline passed, or its case count alone
        breaks the limits. Nor when the case-agent pair limit could refuse it (the agents are
        not counted until the roster is read): such batches, over 100 cases at the default
        limits, take the whole parse, whose cost is small beside deciding them.
        """
        cases = len(message.cases)
        limits = self._limits
        return (
            not _deadline_passed(context)
            and not batch_size_violations(cases, 0, limits)
            and cases * limits.max_agents <= limits.max_batch_pairs
        )

    def Decide(  # noqa: N802 - gRPC method name
        self,
        request: pb.DecideRequest | RosterCut[pb.DecideRequest] | UndecodableRequest,
        context: grpc.ServicerContext,
    ) -> pb.DecideResponse:
        """Decide one case."""
        sent_roster: KnownRoster | None = None
        rosters: RosterStore = self.roster_cache
        if isinstance(request, RosterCut):
            request, sent_roster, rosters = self._uncut(
                request, _WHOLE_DECIDE, read=lambda: not _deadline_passed(context)
            )
        if isinstance(request, UndecodableRequest):
            return _refuse_unread(context, "Decide", request, pb.DecideResponse())
        return _serve(
            context,
            "Decide",
            request.request_id,
            lambda: self._decide(
                context,
                request.explanation_level,
                lambda store: convert.decide_command(
                    request,
                    caller_identity(context),
                    limits=self._limits,
                    safeguarding_flags=self._core.registry.safeguarding_flags,
                    rosters=store,
                    sent_roster=sent_roster,
                ),
                rosters,
                convert.decide_response,
            ),
            pb.DecideResponse,
        )

    def DecideBatch(  # noqa: N802 - gRPC method name
        self,
        request: pb.DecideBatchRequest | RosterCut[pb.DecideBatchRequest] | UndecodableRequest,
        context: grpc.ServicerContext,
    ) -> pb.DecideBatchResponse:
        """Decide a batch of cases against one roster."""
        sent_roster: KnownRoster | None = None
        rosters: RosterStore = self.roster_cache
        if isinstance(request, RosterCut):
            request, sent_roster, rosters = self._uncut(
                request,
                _WHOLE_BATCH,
                read=lambda: self._batch_readable(request.message, context),
            )
        if isinstance(request, UndecodableRequest):
            return _refuse_unread(context, "DecideBatch", request, pb.DecideBatchResponse())
        return _serve(
            context,
            "DecideBatch",
            request.request_id,
            lambda: self._decide(
                context,
                request.explanation_level,
                lambda store: convert.batch_command(
                    request,
                    caller_identity(context),
                    limits=self._limits,
                    safeguarding_flags=self._core.registry.safeguarding_flags,
                    rosters=store,
                    sent_roster=sent_roster,
                ),
                rosters,
                convert.batch_response,
            ),
            pb.DecideBatchResponse,
        )


_REPEATED_OVERHEAD = 6
"""Bytes a repeated message field adds per element beyond the element (tag + length)."""
_TOKEN_ROOM = 256
"""Bytes kept free in a cut-short page for its next_page_token."""


def _too_large_to_read(
    decision_id: str, size: int, max_bytes: int, setting: str
) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"decision {decision_id} is {size} bytes, over this server's limit of {max_bytes} "
        f"bytes ({setting}); read it on the server with `caseroute audit show`, or raise your "
        f"client's receive limit and ask the operators to raise {setting}"
    )


class DecisionLogServicer(routing_pb2_grpc.DecisionLogServicer):
    """Thin servicer over ``DecisionLog``; pages are cut short to what the server may send."""

    def __init__(
        self,
        decision_log: DecisionLog,
        *,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        reply_limit_setting: str = DEFAULT_REPLY_LIMIT_SETTING,
    ) -> None:
        """Serve reads from ``decision_log``, replies at most ``max_reply_bytes`` long.

        ``reply_limit_setting`` is the server setting that sets the limit (named in refusals).
        """
        self._log = decision_log
        self._max_reply_bytes = max_reply_bytes
        self._setting = reply_limit_setting

    def _get(self, decision_id: str) -> pb.AuditedDecision:
        reply = convert.audited_to_proto(self._log.get(decision_id))
        size = reply.ByteSize()
        if size > self._max_reply_bytes:
            raise _too_large_to_read(decision_id, size, self._max_reply_bytes, self._setting)
        return reply

    def _list(self, query: DecisionQuery) -> pb.ListDecisionsResponse:
        page = self._log.list(query)
        reply = convert.list_response(page)
        if reply.ByteSize() <= self._max_reply_bytes:
            return reply
        # Keep the longest prefix that fits and continue after it: nothing is skipped.
        cut = pb.ListDecisionsResponse()
        budget, spent = self._max_reply_bytes - _TOKEN_ROOM, 0
        for item, audited in zip(reply.decisions, page.decisions, strict=True):
            cost = item.ByteSize() + _REPEATED_OVERHEAD
            if spent + cost > budget:
                if not cut.decisions:
                    raise _too_large_to_read(
                        audited.record.decision_id,
                        item.ByteSize(),
                        self._max_reply_bytes,
                        self._setting,
                    )
                break
            cut.decisions.append(item)
            spent += cost
            last_seq = audited.record.seq
        cut.next_page_token = self._log.token_after(query, last_seq)
        return cut

    def GetDecision(  # noqa: N802 - gRPC method name
        self, request: pb.GetDecisionRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> pb.AuditedDecision:
        """One decision by id."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "GetDecision", request, pb.AuditedDecision())
        return _serve(
            context,
            "GetDecision",
            request.decision_id,
            lambda: self._get(request.decision_id),
            pb.AuditedDecision,
        )

    def ListDecisions(  # noqa: N802 - gRPC method name
        self, request: pb.ListDecisionsRequest | RefusedRequest, context: grpc.ServicerContext
    ) -> pb.ListDecisionsResponse:
        """A page of decisions for a case and/or time range."""
        if isinstance(request, RefusedRequest):
            return _refuse_unread(context, "ListDecisions", request, pb.ListDecisionsResponse())
        return _serve(
            context,
            "ListDecisions",
            request.case_id or "list",
            lambda: self._list(convert.decision_query(request)),
            pb.ListDecisionsResponse,
        )
