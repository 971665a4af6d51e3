"""Protobuf <-> domain conversion, one function per message.

Incoming messages become JSON-shaped data and go through the same strict parsers as the CLI's
JSON files (``domain.codec``), so validation and field paths are identical on every transport.
Case and Roster messages first try ``wire.fast``, which converts plainly valid ones in one pass
applying the same checks, and hands anything else back to the strict path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from caseroute.domain.case import AttributeValue, Case, PreferredAgent
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.decision import (
    AgentVerdict,
    CheckFailure,
    ClauseTrace,
    ContinuityOutcome,
    ContinuityTrace,
    Decision,
    Explanation,
    LadderStepTrace,
    MatchingTrace,
    Outcome,
    PreferredAgentTrace,
    Priority,
    RankedCandidate,
    RelaxationTrace,
    RuleTrace,
    SentimentSummary,
    Signals,
    SlaRisk,
    SlaStatus,
    StepStatus,
)
from caseroute.domain.dialect import record_input_to_wire
from caseroute.domain.errors import FieldViolation, RequestError, RosterNotCachedError
from caseroute.domain.fingerprint import RosterFingerprint, canonical_json, fingerprint_roster
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.reader import INSTANT_RANGE, roster_sha256_problem
from caseroute.domain.roster import Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_FLAG, SAFEGUARDING_NOTICE
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import fast
from caseroute.wire.unknown_fields import (
    own_unknown_field_violations,
    unknown_field_violations,
)

if TYPE_CHECKING:
    # The service (and through it the engine) is imported where a server-side converter runs,
    # never here: the Python client imports this module for its message converters.
    from caseroute.audit.record import AuditRecord
    from caseroute.service import (
        AuditedDecision,
        DecideCommand,
        DecideResult,
        DecisionPage,
        DecisionQuery,
    )

_CASE_ENUMS = (
    ("channel", pb.Channel, "CHANNEL_"),
    ("intent", pb.Intent, "INTENT_"),
    ("urgency", pb.Urgency, "URGENCY_"),
    ("tier", pb.Tier, "TIER_"),
)
OptionalCaseField = Literal[
    "classification_confidence", "patient_location", "region", "preferred_language"
]
_OPTIONAL_CASE: tuple[OptionalCaseField, ...] = (
    "classification_confidence",
    "patient_location",
    "region",
    "preferred_language",
)


def timestamp_to_datetime(ts: Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return ts.ToDatetime(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _seconds_nanos(value: datetime) -> tuple[int, int]:
    """``Timestamp.FromDatetime``'s seconds and nanos, by datetime arithmetic.

    The same integers (whole days and seconds since the epoch, microseconds as nanos) for a
    fifth of the CPU: FromDatetime builds a time tuple and calls ``calendar.timegm``, and a
    reply holds about six instants. No range check is needed: every datetime is within the
    Timestamp range (years 1-9999). A naive value is read as local time, as
    ``astimezone`` always did here.
    """
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    delta = value - _EPOCH
    return delta.days * 86400 + delta.seconds, delta.microseconds * 1000


def datetime_to_timestamp(value: datetime) -> Timestamp:
    """An aware datetime as a protobuf Timestamp."""
    seconds, nanos = _seconds_nanos(value)
    return Timestamp(seconds=seconds, nanos=nanos)


def _enum_in(value: int, enum: Any, prefix: str) -> str | int | None:
    """Enum number -> the domain's lower-case value; unset -> None; unknown -> the number."""
    if value == 0:
        return None
    try:
        name: str = enum.Name(value)
    except ValueError:
        return value  # the parser reports it with the allowed values
    return name.removeprefix(prefix).lower()


def _enum_out(value: str, enum: Any, prefix: str) -> Any:
    # Any: each mypy-protobuf enum has its own ValueType; the constructors check the kind.
    return enum.Value(prefix + value.upper())


def _attribute_in(value: pb.AttributeValue) -> AttributeValue | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    result: AttributeValue = getattr(value, kind)
    return result


def _attribute_out(value: AttributeValue | None) -> pb.AttributeValue:
    if value is None:
        return pb.AttributeValue()
    if isinstance(value, bool):
        return pb.AttributeValue(bool_value=value)
    if isinstance(value, str):
        return pb.AttributeValue(string_value=value)
    return pb.AttributeValue(number_value=float(value))


def _attribute_into(msg: pb.AttributeValue, value: AttributeValue | None) -> None:
    """Fill ``msg`` (a parent's field) as ``_attribute_out(value)`` would build it.

    In place: building the message and copying it into the parent cost ~0.5 us more per value.
    None leaves it empty but present, as the built empty message does.
    """
    if value is None:
        msg.SetInParent()
    elif isinstance(value, bool):
        msg.bool_value = value
    elif isinstance(value, str):
        msg.string_value = value
    else:
        msg.number_value = float(value)


def _number_back(value: float) -> int | float:
    # Numbers cross the wire as doubles; whole ones come back as ints (1 == 1.0 either way).
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


MIN_TIMESTAMP_SECONDS = -62135596800
"""0001-01-01T00:00:00Z, the earliest instant a protobuf Timestamp may hold."""
MAX_TIMESTAMP_SECONDS = 253402300799
"""9999-12-31T23:59:59Z, the latest second a protobuf Timestamp may hold."""


def timestamp_problem(ts: Timestamp) -> str | None:
    """Why a Timestamp is outside what protobuf (and Python's datetime) can represent, or None."""
    if MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS and 0 <= ts.nanos < 10**9:
        return None
    return (
        f"must be a Timestamp {INSTANT_RANGE} with nanos in [0, 999999999]; got "
        f"seconds={ts.seconds}, nanos={ts.nanos}"
    )


class _Instants:
    """Reads a message's Timestamps, keeping a violation for each one out of range.

    An out-of-range Timestamp is left out of the data handed to the parser (which would then
    call it missing); ``merge`` drops those "missing" complaints in favour of the real reason.
    """

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def read(self, msg: Any, field: str, path: str) -> dict[str, datetime]:
        """``{field: datetime}`` when set and valid; ``{}`` when unset or out of range."""
        if not msg.HasField(field):
            return {}
        ts = getattr(msg, field)
        problem = timestamp_problem(ts)
        if problem is not None:
            self.violations.append(FieldViolation(f"{path}.{field}" if path else field, problem))
            return {}
        return {field: timestamp_to_datetime(ts)}

    def merge(
        self, parsed: list[FieldViolation] | tuple[FieldViolation, ...]
    ) -> list[FieldViolation]:
        """These Timestamp violations and the parser's other ones."""
        bad = {v.field for v in self.violations}
        return self.violations + [v for v in parsed if v.field not in bad]


def case_from_proto(
    msg: pb.Case,
    path: str = "case",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> Case:
    """Validate and convert a Case message against ``limits``.

    ``safeguarding_flags``: the loaded rulesets' safeguarding flags (see ``parse_case``).

    Raises:
        RequestError: Naming each invalid field under ``path``.
    """
    try:
        return fast.case_from_proto(msg, limits)
    except fast.Doubt:
        pass  # not plainly valid: the strict parser decides, and names each bad field
    instants = _Instants()
    data: dict[str, Any] = {**instants.read(msg, "created_at", path)}
    if msg.case_id:
        data["case_id"] = msg.case_id
    for key, enum, prefix in _CASE_ENUMS:
        value = _enum_in(getattr(msg, key), enum, prefix)
        if value is not None:
            data[key] = value
    for optional in _OPTIONAL_CASE:
        if msg.HasField(optional):
            data[optional] = getattr(msg, optional)
    data["required_skills"] = [
        {"name": s.name, "min_level": s.min_level} for s in msg.required_skills
    ]
    data["sentiment"] = [
        {"score": r.score, **instants.read(r, "at", f"{path}.sentiment[{i}]")}
        for i, r in enumerate(msg.sentiment)
    ]
    data["sla_clocks"] = [
        {
            "name": c.name,
            **instants.read(c, "started_at", f"{path}.sla_clocks[{i}]"),
            **instants.read(c, "deadline", f"{path}.sla_clocks[{i}]"),
        }
        for i, c in enumerate(msg.sla_clocks)
    ]
    data["flags"] = list(msg.flags)
    data["attributes"] = {k: _attribute_in(v) for k, v in msg.attributes.items()}
    data.update(instants.read(msg, "waiting_since", path))
    data["declined_agents"] = list(msg.declined_agents)
    data["preferred_agents"] = [
        _preferred_agent_data(p, f"{path}.preferred_agents[{i}]", instants)
        for i, p in enumerate(msg.preferred_agents)
    ]
    unknown = unknown_field_violations(msg, path, limits)
    try:
        case = parse_case(data, path, limits=limits, safeguarding_flags=safeguarding_flags)
    except RequestError as exc:
        raise _case_refusal(unknown + instants.merge(exc.violations)) from None
    if instants.violations or unknown:
        violations = unknown + instants.merge([])
        if SAFEGUARDING_FLAG in case.flags or not case.flags.isdisjoint(safeguarding_flags):
            violations.insert(0, FieldViolation(f"{path}.flags", SAFEGUARDING_NOTICE))
        raise _case_refusal(violations)
    return case


def _case_refusal(violations: list[FieldViolation]) -> RequestError:
    """The case's violations with the safeguarding notice, when there is one, first.

    The parser puts the notice first among its own; Timestamp and unknown-field violations
    found beside it must not push it down (the notice is the first thing a caller reads).
    """
    notice = [v for v in violations if v.message == SAFEGUARDING_NOTICE]
    rest = [v for v in violations if v.message != SAFEGUARDING_NOTICE]
    return RequestError(notice[:1] + rest)


def _preferred_agent_data(msg: pb.PreferredAgent, path: str, instants: _Instants) -> dict[str, Any]:
    # Unset id or reason is left out, so the parser says "is required" at the field path, as
    # it does for the case's own enums; an unknown reason number reaches it as a number.
    data: dict[str, Any] = {**instants.read(msg, "last_contact_at", path)}
    if msg.agent_id:
        data["agent_id"] = msg.agent_id
    reason = _enum_in(msg.reason, pb.ContinuityReason, "CONTINUITY_REASON_")
    if reason is not None:
        data["reason"] = reason
    return data


def _agent_data(msg: pb.Agent, path: str, instants: _Instants) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agent_id": msg.agent_id,
        "licences": [
            {
                "type": lic.type,
                "jurisdiction": lic.jurisdiction,
                "expires_on": lic.expires_on,
                "multistate": lic.multistate,
            }
            for lic in msg.licences
        ],
        "territories": list(msg.territories),
        "skills": [{"name": s.name, "level": s.level} for s in msg.skills],
        "languages": list(msg.languages),
        "teams": list(msg.teams),
        "seniority": msg.seniority,
        "attributes": {k: _attribute_in(v) for k, v in msg.attributes.items()},
        **instants.read(msg, "last_assigned_at", path),
    }
    for key, enum, prefix in (
        ("role", pb.Role, "ROLE_"),
        ("status", pb.AgentStatus, "AGENT_STATUS_"),
    ):
        value = _enum_in(getattr(msg, key), enum, prefix)
        if value is not None:
            data[key] = value
    if msg.HasField("capacity"):
        data["capacity"] = {"max": msg.capacity.max, "active": msg.capacity.active}
    return data


def roster_from_proto(
    msg: pb.Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
) -> Roster:
    """Validate and convert a Roster message against ``limits``.

    Raises:
        RequestError: Naming each invalid field under ``path``.
    """
    try:
        return fast.roster_from_proto(msg, limits)
    except fast.Doubt:
        pass  # not plainly valid: the strict parser decides, and names each bad field
    instants = _Instants()
    agents: list[dict[str, Any] | None]
    if len(msg.agents) > limits.max_agents:
        # The parser refuses the count before looking at any agent: skip converting them.
        agents = [None] * len(msg.agents)
    else:
        agents = [_agent_data(a, f"{path}.agents[{i}]", instants) for i, a in enumerate(msg.agents)]
    data: dict[str, Any] = {"agents": agents, **instants.read(msg, "taken_at", path)}
    if msg.snapshot_id:
        data["snapshot_id"] = msg.snapshot_id
    unknown = unknown_field_violations(msg, path, limits)
    try:
        roster = parse_roster(data, path, limits=limits)
    except RequestError as exc:
        raise RequestError(unknown + instants.merge(exc.violations)) from None
    if instants.violations or unknown:
        raise RequestError(unknown + instants.merge([]))
    return roster


def case_to_proto(case: Case) -> pb.Case:
    """A domain case as a Case message (for clients and tests)."""
    msg = pb.Case(
        case_id=case.case_id,
        created_at=datetime_to_timestamp(case.created_at),
        channel=_enum_out(case.channel.value, pb.Channel, "CHANNEL_"),
        intent=_enum_out(case.intent.value, pb.Intent, "INTENT_"),
        urgency=_enum_out(case.urgency.value, pb.Urgency, "URGENCY_"),
        classification_confidence=case.classification_confidence,
        tier=_enum_out(case.tier.value, pb.Tier, "TIER_"),
        required_skills=[
            pb.RequiredSkill(name=s.name, min_level=s.min_level) for s in case.required_skills
        ],
        sentiment=[
            pb.SentimentReading(score=r.score, at=datetime_to_timestamp(r.at))
            for r in case.sentiment
        ],
        sla_clocks=[
            pb.SlaClock(
                name=c.name,
                started_at=datetime_to_timestamp(c.started_at),
                deadline=datetime_to_timestamp(c.deadline),
            )
            for c in case.sla_clocks
        ],
        flags=sorted(case.flags),
    )
    for key in ("patient_location", "region", "preferred_language"):
        value = getattr(case, key)
        if value is not None:
            setattr(msg, key, value)
    for key, value in case.attributes.items():
        msg.attributes[key].CopyFrom(_attribute_out(value))
    if case.waiting_since is not None:
        msg.waiting_since.CopyFrom(datetime_to_timestamp(case.waiting_since))
    msg.declined_agents.extend(sorted(case.declined_agents))
    msg.preferred_agents.extend(_preferred_agent_out(p) for p in case.preferred_agents)
    return msg


def _preferred_agent_out(p: PreferredAgent) -> pb.PreferredAgent:
    msg = pb.PreferredAgent(
        agent_id=p.agent_id,
        reason=_enum_out(p.reason.value, pb.ContinuityReason, "CONTINUITY_REASON_"),
    )
    if p.last_contact_at is not None:
        msg.last_contact_at.CopyFrom(datetime_to_timestamp(p.last_contact_at))
    return msg


def roster_to_proto(roster: Roster) -> pb.Roster:
    """A domain roster as a Roster message (for clients and tests)."""
    agents = []
    for a in roster.agents:
        agent = pb.Agent(
            agent_id=a.agent_id,
            role=_enum_out(a.role.value, pb.Role, "ROLE_"),
            status=_enum_out(a.status.value, pb.AgentStatus, "AGENT_STATUS_"),
            licences=[
                pb.Licence(
                    type=lic.type,
                    jurisdiction=lic.jurisdiction,
                    expires_on=lic.expires_on.isoformat(),
                    multistate=lic.multistate,
                )
                for lic in a.licences
            ],
            territories=sorted(a.territories),
            skills=[pb.Skill(name=n, level=lvl) for n, lvl in sorted(a.skills.items())],
            languages=sorted(a.languages),
            capacity=pb.Capacity(max=a.capacity.max, active=a.capacity.active),
            teams=sorted(a.teams),
            seniority=a.seniority,
        )
        if a.last_assigned_at is not None:
            agent.last_assigned_at.CopyFrom(datetime_to_timestamp(a.last_assigned_at))
        for key, value in a.attributes.items():
            agent.attributes[key].CopyFrom(_attribute_out(value))
        agents.append(agent)
    return pb.Roster(
        snapshot_id=roster.snapshot_id,
        taken_at=datetime_to_timestamp(roster.taken_at),
        agents=agents,
    )


@dataclass(frozen=True, slots=True)
class KnownRoster:
    """A validated roster and its digests (computed once, kept together by a ``RosterStore``)."""

    roster: Roster
    fingerprint: RosterFingerprint


class RosterStore(Protocol):
    """Where the command builders get a request's roster: the server's roster cache, or none.

    ``grpc_api.roster_cache.RosterCache`` is the server's; ``NO_ROSTER_CACHE`` parses every
    roster afresh and knows no roster by its hash.
    """

    def parse(self, msg: pb.Roster, path: str = "roster", *, limits: InputLimits) -> KnownRoster:
        """The validated roster of a Roster message and its fingerprint.

        Raises:
            RequestError: Naming each invalid field under ``path``.
        """
        ...  # pragma: no cover - a protocol

    def find(self, roster_sha256: str, *, limits: InputLimits) -> KnownRoster | None:
        """The roster with this content hash, validated under ``limits``, if kept."""
        ...  # pragma: no cover - a protocol


class _NoRosterCache:
    """A ``RosterStore`` that keeps nothing: each roster is parsed and hashed when it comes."""

    def parse(
        self, msg: pb.Roster, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
    ) -> KnownRoster:
        """Validate and convert ``msg``, and fingerprint it."""
        roster = roster_from_proto(msg, path, limits=limits)
        return KnownRoster(roster, fingerprint_roster(roster, keep_texts=True))

    def find(self, roster_sha256: str, *, limits: InputLimits) -> KnownRoster | None:
        """None: nothing is kept."""
        del roster_sha256, limits  # the protocol's signature; nothing to look in
        return None


NO_ROSTER_CACHE: RosterStore = _NoRosterCache()
"""The command builders' default store (tests, tools): parses every roster, finds none by hash."""


def _now_in(
    msg: pb.DecideRequest | pb.DecideBatchRequest, violations: list[FieldViolation]
) -> datetime | None:
    instants = _Instants()
    now = instants.read(msg, "now", "").get("now")
    violations += instants.violations
    return now


def _roster_in(
    msg: pb.DecideRequest | pb.DecideBatchRequest,
    limits: InputLimits,
    rosters: RosterStore,
    sent_roster: KnownRoster | None,
) -> KnownRoster:
    """The request's roster: the one sent, else the one its roster_sha256 names.

    ``sent_roster`` is the roster sent, already found by the bytes it came in (``msg`` then
    lacks its roster field): it is checked against ``roster_sha256`` like a parsed one.

    Raises:
        RequestError: No roster and no hash; a malformed hash; a roster whose hash is not the
            roster_sha256 sent with it; or an invalid roster.
        RosterNotCachedError: Only a hash was sent, and ``rosters`` keeps no such roster.
    """
    sha = msg.roster_sha256
    fault = roster_sha256_problem(sha) if sha else None
    if fault is not None:
        raise RequestError([FieldViolation("roster_sha256", fault)])
    if sent_roster is not None:
        known = sent_roster
    elif msg.HasField("roster"):
        known = rosters.parse(msg.roster, limits=limits)
    else:
        if not sha:
            raise RequestError([FieldViolation("roster", "is required (it may have no agents)")])
        found = rosters.find(sha, limits=limits)
        if found is None:
            raise RosterNotCachedError(sha)
        return found
    if sha and sha != known.fingerprint.sha256:
        raise RequestError(
            [
                FieldViolation(
                    "roster_sha256",
                    f"is {sha}, but the roster sent has roster_sha256 "
                    f"{known.fingerprint.sha256}; send the roster's own hash, or leave "
                    "roster_sha256 empty",
                )
            ]
        )
    return known


def _with_roster(
    msg: pb.DecideRequest | pb.DecideBatchRequest,
    limits: InputLimits,
    rosters: RosterStore,
    violations: list[FieldViolation],
    sent_roster: KnownRoster | None,
) -> KnownRoster | RosterNotCachedError | None:
    """The request's roster; else None with its violations added, or the not-cached error.

    The not-cached error is returned, not raised: the builder raises it only when the request
    has no other problem, so a caller that resends the roster is not refused again for a
    problem it could have been told of at once.
    """
    try:
        return _roster_in(msg, limits, rosters, sent_roster)
    except RequestError as exc:
        violations += exc.violations
    except RosterNotCachedError as exc:
        return exc
    return None


def _envelope_unknowns(msg: pb.DecideRequest | pb.DecideBatchRequest) -> list[FieldViolation]:
    """Unknown fields of the request message itself, its ``ruleset`` and its ``now``.

    Its cases and roster are checked where they are converted (``case_from_proto``,
    ``roster_from_proto``; a roster found by its bytes or hash was checked when first sent).
    Every call comes here, so ``ruleset`` and ``now`` are asked for their own unknown fields
    only (~0.1 us each, where walking them costs ~1 us): neither holds a message field
    (``tests/wire/test_unknown_fields.py`` pins that).
    """
    violations = own_unknown_field_violations(msg, "")
    if msg.HasField("ruleset"):
        violations += own_unknown_field_violations(msg.ruleset, "ruleset")
    if msg.HasField("now"):
        violations += own_unknown_field_violations(msg.now, "now")
    return violations


def _detail(level: int) -> bool:
    # Unset is SUMMARY (docs/api.md); the servicer refuses a level the enum does not define.
    return level == pb.EXPLANATION_LEVEL_FULL


def decide_command(
    msg: pb.DecideRequest,
    caller: str = "",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
    rosters: RosterStore = NO_ROSTER_CACHE,
    sent_roster: KnownRoster | None = None,
) -> DecideCommand:
    """A DecideRequest as a command; ``caller`` is the authenticated peer ("" when none).

    The roster is the one sent (through ``rosters``, which may know it already), else the
    one ``rosters`` keeps under the request's ``roster_sha256``. ``sent_roster`` is the roster
    sent when the server already found it by its bytes and cut it from ``msg`` unparsed (the
    servicer's ``RosterCut``): it stands for ``msg.roster``.

    Raises:
        RequestError: Naming every invalid field (case and roster problems together).
        RosterNotCachedError: Only ``roster_sha256`` was sent, ``rosters`` does not know it,
            and nothing else is wrong.
    """
    from caseroute.service.command_check import request_id_violations  # server side only
    from caseroute.service.routing import DecideCommand  # server side only: see the imports

    violations = request_id_violations(msg.request_id, limits) + _envelope_unknowns(msg)
    case = None
    if not msg.HasField("case"):
        violations.append(FieldViolation("case", "is required"))
    else:
        try:
            case = case_from_proto(msg.case, limits=limits, safeguarding_flags=safeguarding_flags)
        except RequestError as exc:
            violations += exc.violations
    known = _with_roster(msg, limits, rosters, violations, sent_roster)
    now = _now_in(msg, violations)
    if violations or case is None or known is None:
        raise RequestError(violations)
    if isinstance(known, RosterNotCachedError):
        raise known
    return DecideCommand(
        msg.request_id,
        msg.ruleset.name,
        msg.ruleset.version,
        (case,),
        known.roster,
        now,
        _detail(msg.explanation_level),
        caller,
        roster_fingerprint=known.fingerprint,
        parsed=True,
    )


def batch_command(
    msg: pb.DecideBatchRequest,
    caller: str = "",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
    rosters: RosterStore = NO_ROSTER_CACHE,
    sent_roster: KnownRoster | None = None,
) -> DecideCommand:
    """A DecideBatchRequest as a command; ``caller`` is the authenticated peer ("" when none).

    The roster comes as in ``decide_command`` (``sent_roster`` too).

    Raises:
        RequestError: Naming every invalid field, e.g. ``cases[3].intent``; a batch over the
            size limits is refused before any case is converted.
        RosterNotCachedError: As in ``decide_command``.
    """
    from caseroute.service.command_check import (  # server side only: see the imports
        batch_size_violations,
        duplicate_case_violations,
        request_id_violations,
    )
    from caseroute.service.routing import DecideCommand

    agents = len(msg.roster.agents) if sent_roster is None else len(sent_roster.roster.agents)
    oversized = batch_size_violations(len(msg.cases), agents, limits)
    if oversized:
        raise RequestError(oversized)
    violations = request_id_violations(msg.request_id, limits) + _envelope_unknowns(msg)
    cases = []
    ids = []  # (position, case_id) of each case read
    for i, item in enumerate(msg.cases):
        try:
            case = case_from_proto(
                item, f"cases[{i}]", limits=limits, safeguarding_flags=safeguarding_flags
            )
        except RequestError as exc:
            violations += exc.violations
            continue
        cases.append(case)
        ids.append((i, case.case_id))
    violations += duplicate_case_violations(ids)
    known = _with_roster(msg, limits, rosters, violations, sent_roster)
    now = _now_in(msg, violations)
    if violations or known is None:
        raise RequestError(violations)
    if isinstance(known, RosterNotCachedError):
        raise known
    return DecideCommand(
        msg.request_id,
        msg.ruleset.name,
        msg.ruleset.version,
        tuple(cases),
        known.roster,
        now,
        _detail(msg.explanation_level),
        caller,
        batch=True,
        roster_fingerprint=known.fingerprint,
        parsed=True,
    )


def _enum_table(members: Any, enum: Any, prefix: str) -> dict[Any, Any]:
    """Domain enum member -> proto enum number, looked up once instead of per message."""
    # Any: each mypy-protobuf enum has its own ValueType (as in _enum_out).
    return {member: enum.Value(prefix + member.value.upper()) for member in members}


_OUTCOMES = _enum_table(Outcome, pb.Outcome, "OUTCOME_")
_PRIORITIES = _enum_table(Priority, pb.Priority, "PRIORITY_")
_RISKS = _enum_table(SlaRisk, pb.SlaRisk, "SLA_RISK_")
_STEP_STATUSES = _enum_table(StepStatus, pb.StepStatus, "STEP_STATUS_")
_CONTINUITY_OUTCOMES = _enum_table(ContinuityOutcome, pb.ContinuityOutcome, "CONTINUITY_OUTCOME_")

# The *_into helpers fill a message in place (``field.add(...)`` on repeated fields, scalars
# set on the parent's own sub-message): with upb that is about half the cost of building each
# sub-message and copying it in, and a reply converts every rule and agent trace.


def _instant_into(msg: Timestamp, value: datetime) -> None:
    msg.seconds, msg.nanos = _seconds_nanos(value)


def _signals_into(msg: pb.Signals, s: Signals) -> None:
    msg.case_age_minutes = s.case_age_minutes
    add_clock = msg.sla_clocks.add
    for c in s.sla_clocks:
        add_clock(name=c.name, minutes_remaining=c.minutes_remaining, risk=_RISKS[c.risk])
    if s.sla is not None:
        sla = msg.sla
        sla.name = s.sla.name
        sla.minutes_remaining = s.sla.minutes_remaining
        sla.risk = _RISKS[s.sla.risk]
    t, sentiment = s.sentiment, msg.sentiment
    sentiment.count = t.count
    sentiment.consecutive_negative = t.consecutive_negative
    # Unset stays unset: proto3 optional says "no replies" by absence.
    if t.latest is not None:
        sentiment.latest = t.latest
    if t.minimum is not None:
        sentiment.minimum = t.minimum
    if t.change is not None:
        sentiment.change = t.change
    msg.sla_at_risk_minutes = s.sla_at_risk_minutes
    msg.negative_sentiment = s.negative_sentiment
    msg.sentiment_window = s.sentiment_window


def _matching_into(msg: pb.MatchingTrace, m: MatchingTrace) -> None:
    msg.requirements.extend(m.requirements)
    msg.considered = m.considered
    msg.eligible = m.eligible
    add_count = msg.exclusion_counts.add
    for check, agents in m.exclusion_counts:
        add_count(check=check, agents=agents)
    add_verdict = msg.agents.add
    for v in m.agents:
        verdict = add_verdict(agent_id=v.agent_id, eligible=v.eligible)
        add_failure = verdict.failures.add
        for f in v.failures:
            add_failure(check=f.check, expected=f.expected, actual=f.actual)
    msg.ranking_criteria.extend(m.ranking_criteria)
    add_ranked = msg.ranking.add
    for c in m.ranking:
        add_value = add_ranked(rank=c.rank, agent_id=c.agent_id).criteria.add
        for name, value in c.criteria:
            _attribute_into(add_value(name=name).value, value)


def _relaxation_into(msg: pb.RelaxationTrace, r: RelaxationTrace) -> None:
    msg.ladder = r.ladder
    msg.anchor = r.anchor
    _instant_into(msg.anchor_at, r.anchor_at)
    msg.waiting_minutes = r.waiting_minutes
    msg.hard.extend(r.hard)
    msg.soft.extend(r.soft)
    msg.relaxed.extend(r.relaxed)
    msg.preferences.extend(r.preferences)
    msg.eligible_as_written = r.eligible_as_written
    add_step = msg.steps.add
    for s in r.steps:
        step = add_step(
            name=s.name,
            status=_STEP_STATUSES[s.status],
            relaxes=s.relaxes,
            prefers=s.prefers,
            why=s.why,
            eligible=s.eligible,
        )
        # Unset stays unset: an absent Timestamp (or optional) is how the proto says "none".
        if s.at is not None:
            _instant_into(step.at, s.at)
        if s.after_minutes is not None:
            step.after_minutes = s.after_minutes
    if r.next_relaxation_at is not None:
        _instant_into(msg.next_relaxation_at, r.next_relaxation_at)
    msg.summary = r.summary


def _continuity_into(msg: pb.ContinuityTrace, c: ContinuityTrace) -> None:
    msg.outcome = _CONTINUITY_OUTCOMES[c.outcome]
    msg.window_days = c.window_days
    msg.hold_minutes = c.hold_minutes
    if c.hold_until is not None:
        _instant_into(msg.hold_until, c.hold_until)
    add_preferred = msg.preferred.add
    for p in c.preferred:
        item = add_preferred(
            agent_id=p.agent_id,
            reason=_enum_out(p.reason, pb.ContinuityReason, "CONTINUITY_REASON_"),
            status=p.status,
            detail=p.detail,
        )
        if p.last_contact_at is not None:
            _instant_into(item.last_contact_at, p.last_contact_at)


def decision_to_proto(d: Decision) -> pb.Decision:
    """A domain decision (with its explanation) as a Decision message."""
    msg = pb.Decision()
    _decision_into(msg, d)
    return msg


def _decision_into(msg: pb.Decision, d: Decision) -> None:
    """Fill ``msg`` (empty; often a reply's own field) as ``decision_to_proto(d)`` builds it.

    In place: a built Decision handed to a reply's constructor (``decision=``) is copied
    field by field, ~10 us for a warm 100-agent SUMMARY decision, a quarter of building it.
    """
    e = d.explanation
    msg.decision_id = d.decision_id
    msg.case_id = d.case_id
    msg.outcome = _OUTCOMES[d.outcome]
    msg.queue = d.queue
    msg.agent_id = d.agent_id or ""
    msg.escalation_level = d.escalation_level or 0
    msg.priority = _PRIORITIES[d.priority]
    msg.reason_codes.extend(d.reason_codes)
    msg.rule_id = d.rule_id
    ruleset = msg.ruleset
    ruleset.name = e.ruleset_name
    ruleset.version = e.ruleset_version
    ruleset.sha256 = e.ruleset_sha256
    x = msg.explanation
    x.caseroute_version = e.caseroute_version
    x.engine = e.engine
    _instant_into(x.now, e.now)
    x.input_sha256 = e.input_sha256
    _signals_into(x.signals, e.signals)
    x.data_problems.extend(e.data_problems)
    add_rule = x.rules.add
    for t in e.rules:
        add_clause = add_rule(
            rule_id=t.rule_id, description=t.description, fired=t.fired, decided=t.decided
        ).clauses.add
        for c in t.clauses:
            add_clause(text=c.text, value=c.value, actual=c.actual)
    x.deciding_rule_id = e.deciding_rule_id
    if e.matching is not None:
        _matching_into(x.matching, e.matching)
    if e.relaxation is not None:
        _relaxation_into(x.relaxation, e.relaxation)
    if e.continuity is not None:
        _continuity_into(x.continuity, e.continuity)
    if d.next_relaxation_at is not None:
        _instant_into(msg.next_relaxation_at, d.next_relaxation_at)
    if d.held_for_preferred_until is not None:
        _instant_into(msg.held_for_preferred_until, d.held_for_preferred_until)


def _signals_in(msg: pb.Signals) -> Signals:
    def clock(c: pb.SlaStatus) -> SlaStatus:
        return SlaStatus(
            c.name,
            c.minutes_remaining,
            SlaRisk(pb.SlaRisk.Name(c.risk).removeprefix("SLA_RISK_").lower()),
        )

    t = msg.sentiment
    return Signals(
        case_age_minutes=msg.case_age_minutes,
        sla_clocks=tuple(clock(c) for c in msg.sla_clocks),
        sla=clock(msg.sla) if msg.HasField("sla") else None,
        sentiment=SentimentSummary(
            t.count,
            t.latest if t.HasField("latest") else None,
            t.minimum if t.HasField("minimum") else None,
            t.change if t.HasField("change") else None,
            t.consecutive_negative,
        ),
        sla_at_risk_minutes=msg.sla_at_risk_minutes,
        negative_sentiment=msg.negative_sentiment,
        sentiment_window=msg.sentiment_window,
    )


def _criterion_in(value: pb.AttributeValue) -> AttributeValue | None:
    raw = _attribute_in(value)
    return _number_back(raw) if isinstance(raw, float) else raw


def _matching_in(m: pb.MatchingTrace) -> MatchingTrace:
    return MatchingTrace(
        requirements=tuple(m.requirements),
        considered=m.considered,
        eligible=m.eligible,
        exclusion_counts=tuple((c.check, c.agents) for c in m.exclusion_counts),
        agents=tuple(
            AgentVerdict(
                v.agent_id,
                v.eligible,
                tuple(CheckFailure(f.check, f.expected, f.actual) for f in v.failures),
            )
            for v in m.agents
        ),
        ranking_criteria=tuple(m.ranking_criteria),
        ranking=tuple(
            RankedCandidate(
                c.rank, c.agent_id, tuple((cv.name, _criterion_in(cv.value)) for cv in c.criteria)
            )
            for c in m.ranking
        ),
    )


def _instant_in(msg: Any, field: str) -> datetime | None:
    return timestamp_to_datetime(getattr(msg, field)) if msg.HasField(field) else None


def _enum_back(value: int, enum: Any, prefix: str) -> str:
    # Decisions come from a server: an unknown number is a newer server's value, and fails
    # here (ValueError) rather than turning into a wrong one.
    name: str = enum.Name(value)
    return name.removeprefix(prefix).lower()


def _relaxation_in(r: pb.RelaxationTrace) -> RelaxationTrace:
    return RelaxationTrace(
        ladder=r.ladder,
        anchor=r.anchor,
        anchor_at=timestamp_to_datetime(r.anchor_at),
        waiting_minutes=r.waiting_minutes,
        hard=tuple(r.hard),
        soft=tuple(r.soft),
        relaxed=tuple(r.relaxed),
        preferences=tuple(r.preferences),
        eligible_as_written=r.eligible_as_written,
        steps=tuple(
            LadderStepTrace(
                name=s.name,
                status=StepStatus(_enum_back(s.status, pb.StepStatus, "STEP_STATUS_")),
                at=_instant_in(s, "at"),
                after_minutes=s.after_minutes if s.HasField("after_minutes") else None,
                relaxes=tuple(s.relaxes),
                prefers=tuple(s.prefers),
                why=s.why,
                eligible=s.eligible,
            )
            for s in r.steps
        ),
        next_relaxation_at=_instant_in(r, "next_relaxation_at"),
        summary=r.summary,
    )


def _continuity_in(c: pb.ContinuityTrace) -> ContinuityTrace:
    return ContinuityTrace(
        outcome=ContinuityOutcome(
            _enum_back(c.outcome, pb.ContinuityOutcome, "CONTINUITY_OUTCOME_")
        ),
        window_days=c.window_days,
        hold_minutes=c.hold_minutes,
        hold_until=_instant_in(c, "hold_until"),
        preferred=tuple(
            PreferredAgentTrace(
                agent_id=p.agent_id,
                reason=_enum_back(p.reason, pb.ContinuityReason, "CONTINUITY_REASON_"),
                last_contact_at=_instant_in(p, "last_contact_at"),
                status=p.status,
                detail=p.detail,
            )
            for p in c.preferred
        ),
    )


def decision_from_proto(msg: pb.Decision) -> Decision:
    """A Decision message as a domain decision (for clients rendering explanations)."""
    e = msg.explanation
    explanation = Explanation(
        decision_id=msg.decision_id,
        ruleset_name=msg.ruleset.name,
        ruleset_version=msg.ruleset.version,
        ruleset_sha256=msg.ruleset.sha256,
        caseroute_version=e.caseroute_version,
        engine=e.engine,
        now=timestamp_to_datetime(e.now),
        input_sha256=e.input_sha256,
        signals=_signals_in(e.signals),
        data_problems=tuple(e.data_problems),
        rules=tuple(
            RuleTrace(
                t.rule_id,
                t.description,
                t.fired,
                t.decided,
                tuple(ClauseTrace(c.text, c.value, c.actual) for c in t.clauses),
            )
            for t in e.rules
        ),
        deciding_rule_id=e.deciding_rule_id,
        matching=_matching_in(e.matching) if e.HasField("matching") else None,
        reason_codes=tuple(msg.reason_codes),
        relaxation=_relaxation_in(e.relaxation) if e.HasField("relaxation") else None,
        continuity=_continuity_in(e.continuity) if e.HasField("continuity") else None,
    )
    return Decision(
        decision_id=msg.decision_id,
        case_id=msg.case_id,
        outcome=Outcome(pb.Outcome.Name(msg.outcome).removeprefix("OUTCOME_")),
        queue=msg.queue,
        agent_id=msg.agent_id or None,
        escalation_level=msg.escalation_level or None,
        priority=Priority(pb.Priority.Name(msg.priority).removeprefix("PRIORITY_").lower()),
        reason_codes=tuple(msg.reason_codes),
        rule_id=msg.rule_id,
        explanation=explanation,
        next_relaxation_at=_instant_in(msg, "next_relaxation_at"),
        held_for_preferred_until=_instant_in(msg, "held_for_preferred_until"),
    )


def decide_response(result: DecideResult) -> pb.DecideResponse:
    """The response to Decide."""
    # Filled in place, field order as the constructor sets it: the same message and bytes.
    msg = pb.DecideResponse()
    _decision_into(msg.decision, result.decisions[0])
    _instant_into(msg.now, result.now)
    msg.replayed = result.replayed
    return msg


def batch_response(result: DecideResult) -> pb.DecideBatchResponse:
    """The response to DecideBatch."""
    msg = pb.DecideBatchResponse()
    add_decision = msg.decisions.add
    for d in result.decisions:
        _decision_into(add_decision(), d)
    _instant_into(msg.now, result.now)
    msg.replayed = result.replayed
    return msg


def audited_to_proto(audited: AuditedDecision) -> pb.AuditedDecision:
    """A stored decision as the DecisionLog returns it."""
    return record_to_proto(audited.record, audited.decision)


def record_to_proto(r: AuditRecord, decision: Decision | None) -> pb.AuditedDecision:
    """A stored record as ``AuditedDecision``.

    Without ``decision`` (a damaged record's cannot be rebuilt) the message has the chain
    fields and the input only.
    """
    try:
        recorded_at = datetime_to_timestamp(datetime.fromisoformat(r.recorded_at))
    except (TypeError, ValueError):  # an edited row: the chain fields still name it
        recorded_at = None
    return pb.AuditedDecision(
        seq=r.seq,
        decision=None if decision is None else decision_to_proto(decision),
        request_id=_as_read(r.request_id),
        recorded_at=recorded_at,
        caller=_as_read(r.caller),
        # The dialect (docs/json.md), like every other JSON caseroute writes; the record itself
        # keeps the canonical form it hashed.
        input_json=canonical_json(record_input_to_wire(r.input)),
        request_sha256=_as_read(r.request_sha256),
        prev_hash=_as_read(r.prev_hash),
        record_hash=_as_read(r.record_hash),
    )


def _as_read(value: str | bytes) -> str:
    """A stored text field as a ``str``, even from a row edited into bytes.

    An auditor's SQLite read already returns such values as ``EditedText``; the server's own
    reads (GetDecision) and PostgreSQL's return a value edited into a BLOB or bytea as bytes.
    Those are shown with U+FFFD where they fail (``audit verify`` names the record edited).
    """
    return value if isinstance(value, str) else value.decode(errors="replace")


def decision_query(msg: pb.ListDecisionsRequest) -> DecisionQuery:
    """A ListDecisionsRequest as a query.

    Raises:
        RequestError: If ``since`` or ``until`` is not a representable instant.
    """
    from caseroute.service.decision_log import DecisionQuery  # server side: see the imports

    instants = _Instants()
    since = instants.read(msg, "since", "").get("since")
    until = instants.read(msg, "until", "").get("until")
    if instants.violations:
        raise RequestError(instants.violations)
    return DecisionQuery(
        case_id=msg.case_id,
        since=since,
        until=until,
        page_size=msg.page_size,
        page_token=msg.page_token,
    )


def list_response(page: DecisionPage) -> pb.ListDecisionsResponse:
    """A page of the decision log."""
    return pb.ListDecisionsResponse(
        decisions=[audited_to_proto(a) for a in page.decisions],
        next_page_token=page.next_page_token,
    )
