"""JSON-shaped data -> domain values: strict parsing that names every bad field path.

Parsing collects every violation before raising one ``RequestError``, so a caller fixes a
request in one round trip. Sizes are checked against ``InputLimits`` before any per-item work,
violations per list are capped, and a value is never quoted back beyond a short prefix, so a
hostile request costs little and yields a short error. The canonical forms and digests of what
is parsed live in ``caseroute.domain.fingerprint``; decisions as JSON data in
``decision_codec``; stored case data in the dialect in ``dialect``; the notice a refused case
that says safeguarding gets, however its flags were sent, in ``safeguarding_notice``. Each
object is read by ``field_reader.FieldReader`` (field paths, list caps), whose words and
identifier shapes come from ``reader``, the core shared with the ruleset schema: one mistake,
one wording.

Normalisation on input (documented in docs/rulesets.md, "Request input"): flags are NFKC
normalised, trimmed and lower-cased, then must be a flag token, and duplicates collapse;
jurisdictions are trimmed and upper-cased; language tags trimmed, lower-cased, ``_`` -> ``-``.
Only ASCII is case-folded in a jurisdiction or language tag (``normalise_jurisdiction``): a
letter outside ASCII is refused, never folded into an ASCII one.
Every other code is taken exactly as sent. Every pattern must match the *whole* string
(``fullmatch``: ``$`` would also match before a final newline).

The JSON dialect (docs/json.md): input is the protobuf JSON mapping of the ``caseroute.v1``
messages, plus today's short spellings. Field names are the proto names or their lowerCamelCase
JSON names (one field given under both is refused, never resolved); enums are read through
``caseroute.domain.enums`` (proto name, number or short value; ``*_UNSPECIFIED``/``0`` means
not set); an attribute value is a plain scalar or ``{"string_value": ...}`` (and the other two
kinds).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from caseroute.domain.case import (
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.enums import UNSET, ExplanationLevel
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fast_dict import Doubt, case_from_dict, roster_from_dict
from caseroute.domain.field_reader import (
    FieldReader,
    ListCap,
    lower_camel,
    parse_timestamp,
)
from caseroute.domain.fields import AGENT_FIELDS, CASE_FIELDS
from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.flag_spelling import normalise_flag
from caseroute.domain.limits import (
    DEFAULT_LIMITS,
    InputLimits,
    quote_value,
)
from caseroute.domain.reader import (
    ATTRIBUTE_NAME,
    FLAG,
    IDENTIFIER,
    JURISDICTION,
    LANGUAGE,
    MAX_ABS_NUMBER,
    one_character_flag,
    roster_sha256_problem,
)
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE, flag_texts, says_safeguarding

# The table's shapes under the names ``wire/fast.py`` imports (it checks the same shapes);
# new code imports ``caseroute.domain.reader``.
CODE_RE = IDENTIFIER.regex
FLAG_RE = FLAG.regex
JURISDICTION_RE = JURISDICTION.regex
LANGUAGE_RE = LANGUAGE.regex
ATTRIBUTE_KEY_RE = ATTRIBUTE_NAME.regex
__all__ = [  # re-exported: the wire's fast path, and callers of the former codec
    "ATTRIBUTE_KEY_RE",
    "CODE_RE",
    "FLAG_RE",
    "JURISDICTION_RE",
    "LANGUAGE_RE",
    "MAX_ABS_NUMBER",
    "lower_camel",
    "parse_timestamp",
]

SPLIT_ROSTER = "split the roster by team or territory"
"""What to do about a roster over ``max_agents`` (the parsers and the code-built check)."""


def normalise_jurisdiction(text: str) -> str:
    """The one spelling of a jurisdiction: trimmed, then upper-cased only if it is ASCII.

    ``str.upper`` folds some letters that are not ASCII into ASCII ones (the long s U+017F ->
    S, the dotless i U+0131 -> I, U+00DF sharp s -> SS, ligatures such as U+FB00 -> FF), so
    ``us-tx`` spelt with a long s read as ``US-TX`` and a licence could be taken for another
    state's (review L4). Text holding any
    other character is returned trimmed but not folded: ``reader.JURISDICTION`` (ASCII) then
    refuses it, and ``jurisdiction_problem`` says why. The strict reader and ``wire.fast`` both
    call this, so neither folds what the other would not.

    Args:
        text: The jurisdiction as sent.

    Returns:
        The normalised jurisdiction (not yet validated).
    """
    text = text.strip()
    return text.upper() if text.isascii() else text


def jurisdiction_problem(value: object) -> str | None:
    """The words for a jurisdiction holding a character that is not ASCII (None: it holds none).

    Checked before the pattern, so the caller learns which character was wrong and what to
    send, not only that the code is not valid. Surrounding whitespace is trimmed first, as
    ``normalise_jurisdiction`` trims it.

    Args:
        value: The jurisdiction as sent (anything else is left to the usual checks).

    Returns:
        The problem, or None.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isascii():
        return None
    bad = next(c for c in text if not c.isascii())
    return (
        f"{quote_value(value)} holds {bad!r} (U+{ord(bad):04X}), which is not ASCII; write the "
        "jurisdiction as an ISO 3166 code in ASCII letters and digits, such as US-TX or GB-ENG "
        "(letters outside ASCII are refused, never folded into ASCII ones)"
    )


def normalise_language(text: str) -> str:
    """The one spelling of a language tag: trimmed, then lower-cased and ``_`` -> ``-`` if ASCII.

    As ``normalise_jurisdiction``: ``str.lower`` folds the Kelvin sign (U+212A) into
    ``k``, so a tag holding it is returned unfolded and ``reader.LANGUAGE`` refuses it.

    Args:
        text: The language tag as sent.

    Returns:
        The normalised tag (not yet validated).
    """
    text = text.strip()
    return text.lower().replace("_", "-") if text.isascii() else text


def _jurisdiction_at(r: FieldReader, key: str, *, required: bool) -> str | None:
    """A jurisdiction field of ``r``'s object: non-ASCII refused with its own words, then read."""
    problem = jurisdiction_problem(r.raw(key, required=False))
    if problem is not None:
        r.fail(key, problem)
        return None
    return r.string(key, required=required, pattern=JURISDICTION, normalise=normalise_jurisdiction)


def parse_case(
    data: object,
    path: str = "case",
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> Case:
    """Build a ``Case`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.
        limits: Size limits to enforce (``DEFAULT_LIMITS`` unless the server sets others).
        safeguarding_flags: The safeguarding flags the rulesets in use configure (normalised,
            as ``constraints.safeguarding.flag`` is); ``safeguarding`` is always one.

    Returns:
        The case.

    Raises:
        RequestError: Listing every invalid field (capped per list). When the case carries
            a safeguarding flag, the first violation (at ``<path>.flags``) says plainly that
            the case was not routed.
    """
    try:  # a plainly valid case in one pass; anything else is read below, with every error
        return case_from_dict(data, limits)
    except Doubt:
        pass
    violations: list[FieldViolation] = []
    r = FieldReader(data, path, violations, CASE_FIELDS, limits)
    case_id = r.string("case_id")
    created_at = r.timestamp("created_at")
    channel = r.enum("channel", Channel)
    intent = r.enum("intent", Intent)
    urgency = r.enum("urgency", Urgency)
    confidence = r.number("classification_confidence", required=False, low=0.0, high=1.0)
    location = _jurisdiction_at(r, "patient_location", required=False)
    region = r.string("region", required=False, pattern=IDENTIFIER)
    tier = r.enum("tier", Tier, required=False)
    language = r.string(
        "preferred_language",
        required=False,
        pattern=LANGUAGE,
        normalise=normalise_language,
    )

    skills: list[RequiredSkill] = []
    cap = ListCap(violations, r.at("required_skills"))
    for item_path, item in r.items("required_skills", limits.max_list_items, "max_list_items"):
        s = FieldReader(item, item_path, violations, ("name", "min_level"), limits)
        name = s.string("name", pattern=IDENTIFIER)
        level = s.integer("min_level", low=0, high=10, default=0)
        if name is not None and level is not None:
            skills.append(RequiredSkill(name, level))
        cap.trim()
    cap.close()

    readings: list[SentimentReading] = []
    cap = ListCap(violations, r.at("sentiment"))
    for item_path, item in r.items(
        "sentiment",
        limits.max_sentiment_readings,
        "max_sentiment_readings",
        "send the most recent readings",
    ):
        s = FieldReader(item, item_path, violations, ("score", "at"), limits)
        score = s.number("score", low=-1.0, high=1.0, default=0.0)
        at = s.timestamp("at")
        if score is not None and at is not None:
            readings.append(SentimentReading(score, at))
        cap.trim()
    cap.close()
    # Oldest first, whatever order they were sent in (at one instant the lowest score last).
    readings.sort(key=SentimentReading.order_key)

    clocks: list[SlaClock] = []
    seen_clocks: set[str] = set()
    cap = ListCap(violations, r.at("sla_clocks"))
    for item_path, item in r.items("sla_clocks", limits.max_sla_clocks, "max_sla_clocks"):
        s = FieldReader(item, item_path, violations, ("name", "started_at", "deadline"), limits)
        name = s.string("name", pattern=IDENTIFIER)
        started = s.timestamp("started_at")
        deadline = s.timestamp("deadline")
        if name is not None and name in seen_clocks:
            s.fail(
                "name",
                f"duplicate SLA clock name {name!r}; each clock needs its own name",
            )
        if name is not None and started is not None and deadline is not None:
            seen_clocks.add(name)
            clocks.append(SlaClock(name, started, deadline))
        cap.trim()
    cap.close()

    # Normalised so no spelling of a hard-constraint flag is missed; a set, so duplicates
    # collapse (the canonical form lists them sorted). One character is refused: it is a
    # string taken one letter at a time, whose flag would be lost.
    flags = frozenset(
        r.strings(
            "flags",
            pattern=FLAG,
            normalise=normalise_flag,
            what="flag",
            check=one_character_flag,
        )
    )
    attributes = r.attributes("attributes")
    waiting_since = r.timestamp("waiting_since", required=False)
    declined = frozenset(r.strings("declined_agents", pattern=IDENTIFIER, what="agent id"))
    preferred = _preferred_agents(r, violations, limits)
    if violations:
        # A ruleset may name its own safeguarding flag: the notice follows it.
        # Read from the value as sent too: a malformed one (a string, an invisible character)
        # left nothing in ``flags`` to find the flag in. A list over its limit is refused on
        # its size alone, and no item of it is read.
        raw = r.raw("flags", required=False)
        if isinstance(raw, list | tuple) and len(raw) > limits.max_list_items:
            raw = None
        sent = flags | flag_texts(raw, limits.max_list_items) | flag_texts(r.shadowed.get("flags"))
        if says_safeguarding(sent, safeguarding_flags):
            violations.insert(0, FieldViolation(r.at("flags"), SAFEGUARDING_NOTICE))
        raise RequestError(violations)
    # Each is None only if a violation was recorded, and then we raised above.
    assert case_id is not None  # noqa: S101
    assert created_at is not None  # noqa: S101
    assert channel is not None  # noqa: S101
    assert intent is not None  # noqa: S101
    assert urgency is not None  # noqa: S101
    return Case(
        case_id=case_id,
        created_at=created_at,
        channel=channel,
        intent=intent,
        urgency=urgency,
        classification_confidence=1.0 if confidence is None else confidence,
        patient_location=location,
        region=region,
        tier=tier or Tier.STANDARD,
        required_skills=tuple(skills),
        preferred_language=language,
        sentiment=tuple(readings),
        sla_clocks=tuple(clocks),
        flags=flags,
        attributes=attributes,
        waiting_since=waiting_since,
        declined_agents=declined,
        preferred_agents=preferred,
    )


def _preferred_agents(
    r: FieldReader, violations: list[FieldViolation], limits: InputLimits
) -> tuple[PreferredAgent, ...]:
    out: list[PreferredAgent] = []
    seen: set[str] = set()
    cap = ListCap(violations, r.at("preferred_agents"))
    for item_path, item in r.items("preferred_agents", limits.max_list_items, "max_list_items"):
        s = FieldReader(
            item,
            item_path,
            violations,
            ("agent_id", "reason", "last_contact_at"),
            limits,
        )
        agent_id = s.string("agent_id", pattern=IDENTIFIER)
        reason = s.enum("reason", ContinuityReason)
        last = s.timestamp("last_contact_at", required=False)
        if agent_id is not None and agent_id in seen:
            s.fail(
                "agent_id",
                f"{agent_id!r} is listed twice; name each preferred agent once",
            )
        elif agent_id is not None:
            seen.add(agent_id)
            if reason is not None:
                out.append(PreferredAgent(agent_id, reason, last))
        cap.trim()
    cap.close()
    return tuple(out)


def _parse_agent(
    data: object, path: str, violations: list[FieldViolation], limits: InputLimits
) -> Agent | None:
    before = len(violations)
    r = FieldReader(data, path, violations, AGENT_FIELDS, limits)
    agent_id = r.string("agent_id", pattern=IDENTIFIER)
    role = r.enum("role", Role, required=False)
    status = r.enum("status", AgentStatus)
    licences: list[Licence] = []
    cap = ListCap(violations, r.at("licences"))
    for item_path, item in r.items("licences", limits.max_list_items, "max_list_items"):
        s = FieldReader(
            item,
            item_path,
            violations,
            ("type", "jurisdiction", "expires_on", "multistate"),
            limits,
        )
        kind = s.string("type", pattern=IDENTIFIER)
        where = _jurisdiction_at(s, "jurisdiction", required=True)
        expires = s.day("expires_on")
        multistate = s.boolean("multistate", default=False)
        if kind is not None and where is not None and expires is not None:
            licences.append(Licence(kind, where, expires, multistate))
        cap.trim()
    cap.close()
    territories = r.strings("territories", pattern=IDENTIFIER)
    skills: dict[str, int] = {}
    cap = ListCap(violations, r.at("skills"))
    for item_path, item in r.items("skills", limits.max_list_items, "max_list_items"):
        s = FieldReader(item, item_path, violations, ("name", "level"), limits)
        name = s.string("name", pattern=IDENTIFIER)
        level = s.integer("level", low=0, high=10, default=0)
        if name is not None and name in skills:
            s.fail(
                "name",
                f"skill {name!r} listed twice; give each skill once with its level",
            )
        elif name is not None and level is not None:
            skills[name] = level
        cap.trim()
    cap.close()
    languages = r.strings("languages", pattern=LANGUAGE, normalise=normalise_language)
    capacity: Capacity | None = None
    cap_raw = r.raw("capacity", required=True)
    if cap_raw is not UNSET:
        c = FieldReader(cap_raw, r.at("capacity"), violations, ("max", "active"), limits)
        # Omitted numbers are 0, as protobuf's JSON mapping writes and reads them (and gRPC
        # sees them): `{"max": 3}` is three free places, `{}` none.
        cap_max = c.integer("max", low=0, high=10_000, default=0)
        active = c.integer("active", low=0, high=10_000, default=0)
        if cap_max is not None and active is not None:
            capacity = Capacity(cap_max, active)
    last = r.timestamp("last_assigned_at", required=False)
    teams = r.strings("teams", pattern=IDENTIFIER)
    seniority = r.integer("seniority", required=False, low=0, high=100)
    attributes = r.attributes("attributes")
    if len(violations) > before or agent_id is None or status is None or capacity is None:
        return None
    return Agent(
        agent_id=agent_id,
        role=role or Role.AGENT,
        status=status,
        capacity=capacity,
        licences=tuple(licences),
        territories=frozenset(territories),
        skills=skills,
        languages=frozenset(languages),
        last_assigned_at=last,
        teams=frozenset(teams),
        seniority=seniority or 0,
        attributes=attributes,
    )


def parse_roster(
    data: object, path: str = "roster", *, limits: InputLimits = DEFAULT_LIMITS
) -> Roster:
    """Build a ``Roster`` from its JSON form.

    Args:
        data: The decoded JSON object.
        path: Field path prefix used in error messages.
        limits: Size limits to enforce (``DEFAULT_LIMITS`` unless the server sets others).

    Returns:
        The roster.

    Raises:
        RequestError: Listing every invalid field (including duplicate agent ids), capped
            per list.
    """
    try:  # a plainly valid roster in one pass; anything else is read below, with every error
        return roster_from_dict(data, limits)
    except Doubt:
        pass
    violations: list[FieldViolation] = []
    r = FieldReader(data, path, violations, ("snapshot_id", "taken_at", "agents"), limits)
    snapshot_id = r.string("snapshot_id")
    taken_at = r.timestamp("taken_at")
    entries = r.items(
        "agents",
        limits.max_agents,
        "max_agents",
        SPLIT_ROSTER,
        noun="agents",
    )
    agents: list[Agent] = []
    # Casefolded id -> (its path, the id as sent). Declined ids match agents ignoring letter
    # case (engine/matching.py), so two agents whose ids differ only in case were both
    # excluded by one agent's refusal (review R34a F6): an id must be unique ignoring case.
    first_seen: dict[str, tuple[str, str]] = {}
    cap = ListCap(violations, r.at("agents"))
    for item_path, item in entries:
        agent = _parse_agent(item, item_path, violations, limits)
        seen = None if agent is None else first_seen.get(agent.agent_id.casefold())
        if agent is not None and seen is not None:
            first_path, first_id = seen
            violations.append(
                FieldViolation(
                    f"{item_path}.agent_id",
                    f"duplicate agent_id {agent.agent_id!r} (first at {first_path}); each agent "
                    "must appear once"
                    if first_id == agent.agent_id
                    else f"agent_id {agent.agent_id!r} differs from {first_path}.agent_id "
                    f"{first_id!r} only in letter case; agent ids are compared ignoring case "
                    "(declined_agents), so give each agent an id of its own",
                )
            )
        elif agent is not None:
            first_seen[agent.agent_id.casefold()] = (item_path, agent.agent_id)
            agents.append(agent)
        cap.trim()
    cap.close()
    if violations:
        raise RequestError(violations)
    assert snapshot_id is not None  # noqa: S101 - else a violation was raised above
    assert taken_at is not None  # noqa: S101
    return Roster(snapshot_id=snapshot_id, taken_at=taken_at, agents=tuple(agents))


@dataclasses.dataclass(frozen=True, slots=True)
class RequestData:
    """A DecideRequest or DecideBatchRequest read from its JSON form (``parse_request``).

    Attributes:
        request_id: The idempotency key ("" when not given).
        ruleset_name: ``ruleset.name`` ("" : the default ruleset).
        ruleset_version: ``ruleset.version`` ("" : the active version).
        cases: The case (one) or the batch's cases, in order.
        batch: True for a DecideBatchRequest (``cases``), False for ``case``.
        roster: The roster snapshot.
        now: The decision instant, or None when not given.
        explanation_level: The level asked for, or None when not given.
    """

    request_id: str
    ruleset_name: str
    ruleset_version: str
    cases: tuple[Case, ...]
    batch: bool
    roster: Roster
    now: datetime | None
    explanation_level: ExplanationLevel | None


_REQUEST_FIELDS = (
    "request_id",
    "ruleset",
    "case",
    "cases",
    "roster",
    "now",
    "explanation_level",
    "roster_sha256",
)


def _envelope_string(r: FieldReader, key: str) -> str:
    """An envelope string without presence (request_id, ruleset name and version, roster_sha256).

    ``""`` is proto3's default, what a printer that writes defaults (Java's
    ``includingDefaultValueFields``, Go's ``EmitUnpopulated``) sends for an unset one, and what
    gRPC reads as unset: read so here too, or a file grpcurl sends was refused (R34a F4).
    """
    return "" if r.raw(key, required=False) == "" else r.string(key, required=False) or ""


def parse_request(
    data: object,
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    safeguarding_flags: frozenset[str] = frozenset(),
) -> RequestData:
    """Read a DecideRequest (``case``) or DecideBatchRequest (``cases``) in the JSON dialect.

    Field paths are those gRPC reports: ``case.intent``, ``cases[2].urgency``, ``roster...``.

    Args:
        data: The decoded JSON object.
        limits: Size limits to enforce.
        safeguarding_flags: As for ``parse_case``.

    Returns:
        The request's parts.

    Raises:
        RequestError: Naming every invalid field of the cases, roster and envelope.
    """
    violations: list[FieldViolation] = []
    r = FieldReader(data, "", violations, _REQUEST_FIELDS, limits)
    request_id = _envelope_string(r, "request_id")
    name = version = ""
    selector = r.raw("ruleset", required=False)
    if selector is not UNSET:
        s = FieldReader(selector, "ruleset", violations, ("name", "version"), limits)
        name = _envelope_string(s, "name")
        version = _envelope_string(s, "version")
    now = r.timestamp("now", required=False)
    level = r.enum("explanation_level", ExplanationLevel, required=False)
    batch = "cases" in r.data
    cases: list[Case] = []
    if batch and "case" in r.data:
        r.fail("case", "a request has `case` (Decide) or `cases` (DecideBatch), not both")
    elif batch:
        for item_path, item in r.items("cases", limits.max_batch_cases, "max_batch_cases"):
            try:
                cases.append(
                    parse_case(
                        item,
                        item_path,
                        limits=limits,
                        safeguarding_flags=safeguarding_flags,
                    )
                )
            except RequestError as exc:
                violations += exc.violations
        if not cases and not violations:
            r.fail("cases", "is empty: send at least one case")
    else:
        case_data = r.raw("case", required=True)
        if case_data is not UNSET:
            try:
                cases.append(
                    parse_case(
                        case_data,
                        "case",
                        limits=limits,
                        safeguarding_flags=safeguarding_flags,
                    )
                )
            except RequestError as exc:
                violations += exc.violations
    roster: Roster | None = None
    roster_data = r.raw("roster", required=False)
    # A request file carries its roster: a roster_sha256 alone names a roster only a server
    # may hold (DecideRequest.roster_sha256); beside the roster it must be the roster's own.
    sha = _envelope_string(r, "roster_sha256")
    fault = roster_sha256_problem(sha) if sha else None
    if fault is not None:
        r.fail("roster_sha256", fault)
        sha = ""  # not also "is <it>, but the roster has ..."
    if roster_data is UNSET:
        r.fail("roster", "is required (it may have no agents)")
    else:
        try:
            roster = parse_roster(roster_data, "roster", limits=limits)
        except RequestError as exc:
            violations += exc.violations
    if sha and roster is not None and sha != roster_sha256(roster):
        r.fail(
            "roster_sha256",
            f"is {sha}, but the roster has roster_sha256 {roster_sha256(roster)}; send the "
            "roster's own hash, or leave roster_sha256 out",
        )
    if violations or roster is None:
        raise RequestError(violations)
    return RequestData(request_id, name, version, tuple(cases), batch, roster, now, level)
