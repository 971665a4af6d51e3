"""JSON-shaped dicts -> domain values in one pass, for cases and rosters that are plainly valid.

``codec.parse_case`` and ``codec.parse_roster`` try this first: the strict parser reads every
field through a ``FieldReader`` with full error reporting (~40 us per agent of a cold roster,
issue 13 target 5, "from dicts"); a valid roster needs none of that. Every check here is the
strict parser's for the same field, with the same limits, whole-string patterns (``fullmatch``),
enum spellings, number ranges and types, duplicates and unsafe characters.

Invariant: this module never refuses anything itself. Any value that is not plainly valid
raises ``Doubt`` and the caller parses the data again through the strict parser, so every
error (field paths, wording, the safeguarding notice) is exactly the strict parser's, and the
fast path only accepts what the strict parser accepts, as an equal value. Also left to the
strict parser, though valid: anything it would *normalise* (a flag not already lower-case
``_`` form, a jurisdiction not upper-case, a language tag not lower-case ``-`` form: a value
already in normal form matches the pattern and normalising leaves it unchanged), a number for
an enum, a ``*_UNSPECIFIED`` enum, an attribute in its ``{"string_value": ...}`` form, a tuple
for a list, a non-ASCII case or snapshot id, a ``datetime`` object for a timestamp. It is never
wrong to doubt. ``tests/domain/test_fast_dict_agreement.py`` checks both parsers agree on
generated valid and near-valid dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from caseroute.domain.case import (
    AttributeValue,
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
from caseroute.domain.enums import UNSET, enum_table
from caseroute.domain.field_reader import lower_camel, parse_timestamp
from caseroute.domain.fields import AGENT_FIELDS, CASE_FIELDS
from caseroute.domain.limits import InputLimits
from caseroute.domain.reader import (
    ATTRIBUTE_NAME,
    FLAG,
    IDENTIFIER,
    JURISDICTION,
    LANGUAGE,
    MAX_ABS_NUMBER,
    MIN_FLAG_CHARS,
    read_day,
)
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.domain.slots import new_agent

E = TypeVar("E", bound=StrEnum)

_code = IDENTIFIER.fullmatch
_flag = FLAG.fullmatch
_jurisdiction = JURISDICTION.fullmatch
_language = LANGUAGE.fullmatch
_attribute_name = ATTRIBUTE_NAME.fullmatch


class Doubt(Exception):  # noqa: N818 - not an error: "let the strict parser decide"
    """A value the fast path does not vouch for: parse the data with the strict parser."""


def _spellings(kind: type[E]) -> dict[str, E]:
    """The strings naming a member (short value, proto name); "not set" is left out."""
    table, _ = enum_table(kind)
    return {text: member for text, member in table.items() if member is not UNSET}  # type: ignore[misc]


_CHANNELS = _spellings(Channel)
_INTENTS = _spellings(Intent)
_URGENCIES = _spellings(Urgency)
_TIERS = _spellings(Tier)
_REASONS = _spellings(ContinuityReason)
_ROLES = _spellings(Role)
_STATUSES = _spellings(AgentStatus)


class _Fields:
    """An object's accepted field names: proto names, and their lowerCamelCase JSON names."""

    __slots__ = ("names", "spelt")

    def __init__(self, *names: str) -> None:
        self.names = frozenset(names)
        self.spelt = {n: n for n in names} | {lower_camel(n): n for n in names}

    def read(self, data: object) -> dict[str, Any]:
        """``data`` keyed by proto names, or ``Doubt`` (not a dict, an unknown or doubled key)."""
        if type(data) is not dict:
            raise Doubt
        if self.names.issuperset(data):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = self.spelt.get(key) if type(key) is str else None
            if name is None or name in out:  # unknown, or one field under both spellings
                raise Doubt
            out[name] = value
        return out


_ROSTER = _Fields("snapshot_id", "taken_at", "agents")
_AGENT = _Fields(*AGENT_FIELDS)
_LICENCE = _Fields("type", "jurisdiction", "expires_on", "multistate")
_SKILL = _Fields("name", "level")
_CAPACITY = _Fields("max", "active")
_CASE = _Fields(*CASE_FIELDS)
_REQUIRED_SKILL = _Fields("name", "min_level")
_SENTIMENT = _Fields("score", "at")
_SLA_CLOCK = _Fields("name", "started_at", "deadline")
_PREFERRED = _Fields("agent_id", "reason", "last_contact_at")


def _member(table: dict[str, E], value: object) -> E:
    member = table.get(value) if type(value) is str else None
    if member is None:  # absent, "not set", a number or unknown: the strict parser says which
        raise Doubt
    return member


def _integer(value: object, low: int, high: int) -> int:
    """A whole number within [low, high] (``None``: absent, the proto3 zero)."""
    if value is None:
        value = 0
    if type(value) is not int or not low <= value <= high:
        raise Doubt
    return value


def _number(value: object, low: float, high: float) -> float:
    """A number within [low, high], as a float (NaN fails every comparison)."""
    if (type(value) is not float and type(value) is not int) or not low <= value <= high:
        raise Doubt
    return float(value)


def _instant(value: object) -> datetime:
    """A required timestamp: RFC 3339 text with a UTC offset, in UTC."""
    parsed = parse_timestamp(value) if type(value) is str else None
    if parsed is None:
        raise Doubt
    return parsed


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else _instant(value)


def _list(value: object, limit: int) -> list[Any]:
    """A list field (``None``: absent, empty) of at most ``limit`` items."""
    if value is None:
        return []
    if type(value) is not list or len(value) > limit:
        raise Doubt
    return value


class _Checked:
    """The values one parse has found valid: a roster's agents repeat their codes.

    A roster of 1,000 agents has a handful of territories, skills, licence types, languages,
    jurisdictions and expiry dates; each distinct one is checked once, then found. Each is
    also built once and shared (strings, sets of them, dates, licences and capacities: all
    immutable), so the agents of a parsed roster hold no more memory than a converted one's
    (a 300-agent roster parsed from its stored JSON held ~1.7x as much when each agent had
    its own). Made per call (the limits are that call's), so nothing outlives the data it
    came from.
    """

    __slots__ = (
        "capacities",
        "codes",
        "days",
        "jurisdictions",
        "languages",
        "licences",
        "limits",
        "max_chars",
        "max_items",
        "sets",
    )

    def __init__(self, limits: InputLimits) -> None:
        """Nothing checked yet, under ``limits``."""
        self.limits = limits
        self.max_chars = limits.max_id_chars
        self.max_items = limits.max_list_items
        self.codes: dict[str, str] = {}
        self.jurisdictions: dict[str, str] = {}
        self.languages: dict[str, str] = {}
        self.days: dict[str, date] = {}
        self.sets: dict[frozenset[str], frozenset[str]] = {}
        self.licences: dict[tuple[str, str, date, bool], Licence] = {}
        self.capacities: dict[tuple[int, int], Capacity] = {}

    def _shape(self, value: object, known: dict[str, str], fullmatch: Callable[[str], Any]) -> str:
        if type(value) is not str:
            raise Doubt
        seen = known.get(value)
        if seen is None:
            if len(value) > self.max_chars or not fullmatch(value):
                raise Doubt
            seen = known[value] = value
        return seen

    def code(self, value: object) -> str:
        """An identifier (agent id, skill, territory, team, licence type)."""
        return self._shape(value, self.codes, _code)

    def jurisdiction(self, value: object) -> str:
        """A jurisdiction already in its normal form (trimmed, upper-case)."""
        return self._shape(value, self.jurisdictions, _jurisdiction)

    def language(self, value: object) -> str:
        """A language tag already in its normal form (trimmed, lower-case, ``-``)."""
        return self._shape(value, self.languages, _language)

    def set_of(self, value: object, one: Callable[[object], str]) -> frozenset[str]:
        """A list of strings, each checked by ``one``, as a set (duplicates collapse)."""
        if value is None:
            return frozenset()
        items = frozenset([one(item) for item in _list(value, self.max_items)])
        return self.sets.setdefault(items, items)

    def day(self, value: object) -> date:
        """A date written YYYY-MM-DD."""
        if type(value) is not str:
            raise Doubt
        day = self.days.get(value)
        if day is None:
            day = read_day(value)
            if day is None:
                raise Doubt
            self.days[value] = day
        return day

    def licence(self, kind: str, jurisdiction: str, expires: date, multistate: bool) -> Licence:
        """The licence of these (checked) fields, built once per parse."""
        key = (kind, jurisdiction, expires, multistate)
        licence = self.licences.get(key)
        if licence is None:
            licence = self.licences[key] = Licence(kind, jurisdiction, expires, multistate)
        return licence

    def capacity(self, most: int, active: int) -> Capacity:
        """The capacity of these (checked) numbers, built once per parse."""
        key = (most, active)
        capacity = self.capacities.get(key)
        if capacity is None:
            capacity = self.capacities[key] = Capacity(most, active)
        return capacity


def _free_identifier(value: object, limits: InputLimits) -> str:
    """A case or snapshot id: non-blank, short, printable ASCII here (else the strict check)."""
    if (
        type(value) is not str
        or len(value) > limits.max_id_chars
        or not value.isascii()
        or not value.isprintable()  # printable ASCII holds no control or format character
        or not value.strip()
        or value[0] == " "  # printable ASCII's only whitespace
        or value[-1] == " "
    ):
        raise Doubt
    return value


def _text_ok(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (no unpaired surrogate) without a NUL."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _attributes(value: object, limits: InputLimits) -> dict[str, AttributeValue]:
    """An attribute map of plain values (the ``{"string_value": ...}`` form: ``Doubt``)."""
    if value is None:
        return {}
    if type(value) is not dict or len(value) > limits.max_attributes:
        raise Doubt
    if not value:
        return {}
    max_chars, max_text = limits.max_id_chars, limits.max_text_chars
    out: dict[str, AttributeValue] = {}
    for key, item in value.items():
        if type(key) is not str or len(key) > max_chars or not _attribute_name(key):
            raise Doubt
        kind = type(item)
        if kind is str:
            if len(item) > max_text or not _text_ok(item):
                raise Doubt
        elif kind is int or kind is float:
            if not -MAX_ABS_NUMBER <= item <= MAX_ABS_NUMBER:
                raise Doubt
        elif kind is not bool:
            raise Doubt
        out[key] = item
    return out


def _licence(data: object, checked: _Checked) -> Licence:
    fields = _LICENCE.read(data)
    get = fields.get
    multistate = get("multistate")
    if multistate is None:
        multistate = False
    elif type(multistate) is not bool:
        raise Doubt
    return checked.licence(
        checked.code(get("type")),
        checked.jurisdiction(get("jurisdiction")),
        checked.day(get("expires_on")),
        multistate,
    )


def _skills(value: object, checked: _Checked) -> dict[str, int]:
    skills: dict[str, int] = {}
    for item in _list(value, checked.max_items):
        fields = _SKILL.read(item)
        name = checked.code(fields.get("name"))
        if name in skills:
            raise Doubt
        skills[name] = _integer(fields.get("level"), 0, 10)
    return skills


def _agent(data: object, checked: _Checked) -> Agent:
    """One roster agent, or ``Doubt``."""
    get = _AGENT.read(data).get
    role = get("role")
    capacity = _CAPACITY.read(get("capacity"))  # required: None is not a dict
    licences = _list(get("licences"), checked.max_items)
    seniority = get("seniority")
    # Positional, in Agent's field order (keywords cost more, 1,000 times a roster).
    return new_agent(
        checked.code(get("agent_id")),
        Role.AGENT if role is None else _member(_ROLES, role),
        _member(_STATUSES, get("status")),
        checked.capacity(
            _integer(capacity.get("max"), 0, 10_000), _integer(capacity.get("active"), 0, 10_000)
        ),
        tuple([_licence(lic, checked) for lic in licences]) if licences else (),
        checked.set_of(get("territories"), checked.code),
        _skills(get("skills"), checked),
        checked.set_of(get("languages"), checked.language),
        _optional_instant(get("last_assigned_at")),
        checked.set_of(get("teams"), checked.code),
        0 if seniority is None else _integer(seniority, 0, 100),
        _attributes(get("attributes"), checked.limits),
    )


def roster_from_dict(data: object, limits: InputLimits) -> Roster:
    """A roster's JSON form as a domain roster, or ``Doubt``.

    Args:
        data: The decoded JSON object.
        limits: The limits the strict parser would enforce.

    Returns:
        The roster ``codec.parse_roster`` builds from the same data.

    Raises:
        Doubt: If any value is not plainly valid (or two agents share an id).
    """
    get = _ROSTER.read(data).get
    entries = _list(get("agents"), limits.max_agents)  # counted before any agent is read
    checked = _Checked(limits)
    agents = tuple([_agent(item, checked) for item in entries])
    if len({a.agent_id.casefold() for a in agents}) != len(agents):  # as parse_roster
        raise Doubt
    return Roster(_free_identifier(get("snapshot_id"), limits), _instant(get("taken_at")), agents)


def _flags(value: object, limits: InputLimits) -> frozenset[str]:
    """Flags already in their one spelling (what ``normalise_flag`` would leave alone).

    Too short (``reader.one_character_flag``) is a doubt: the strict parser refuses it.
    """
    items = _list(value, limits.max_list_items)
    for item in items:
        if (
            type(item) is not str
            or not MIN_FLAG_CHARS <= len(item) <= limits.max_id_chars
            or not _flag(item)
        ):
            raise Doubt
    return frozenset(items)


def _required_skills(value: object, checked: _Checked) -> tuple[RequiredSkill, ...]:
    out = []
    for item in _list(value, checked.max_items):
        fields = _REQUIRED_SKILL.read(item)
        out.append(
            RequiredSkill(
                checked.code(fields.get("name")), _integer(fields.get("min_level"), 0, 10)
            )
        )
    return tuple(out)


def _sentiment(value: object, limits: InputLimits) -> tuple[SentimentReading, ...]:
    readings = []
    for item in _list(value, limits.max_sentiment_readings):
        fields = _SENTIMENT.read(item)
        score = fields.get("score")
        readings.append(
            SentimentReading(
                0.0 if score is None else _number(score, -1.0, 1.0), _instant(fields.get("at"))
            )
        )
    # As the strict parser sorts them: oldest first, at one instant the lowest score last.
    readings.sort(key=SentimentReading.order_key)
    return tuple(readings)


def _sla_clocks(value: object, checked: _Checked) -> tuple[SlaClock, ...]:
    clocks = []
    for item in _list(value, checked.limits.max_sla_clocks):
        fields = _SLA_CLOCK.read(item)
        clocks.append(
            SlaClock(
                checked.code(fields.get("name")),
                _instant(fields.get("started_at")),
                _instant(fields.get("deadline")),
            )
        )
    if len({c.name for c in clocks}) != len(clocks):
        raise Doubt
    return tuple(clocks)


def _preferred_agents(value: object, checked: _Checked) -> tuple[PreferredAgent, ...]:
    preferred = []
    for item in _list(value, checked.max_items):
        fields = _PREFERRED.read(item)
        preferred.append(
            PreferredAgent(
                checked.code(fields.get("agent_id")),
                _member(_REASONS, fields.get("reason")),
                _optional_instant(fields.get("last_contact_at")),
            )
        )
    if len({p.agent_id for p in preferred}) != len(preferred):
        raise Doubt
    return tuple(preferred)


def case_from_dict(data: object, limits: InputLimits) -> Case:
    """A case's JSON form as a domain case, or ``Doubt``.

    Args:
        data: The decoded JSON object.
        limits: The limits the strict parser would enforce.

    Returns:
        The case ``codec.parse_case`` builds from the same data.

    Raises:
        Doubt: If any value is not plainly valid.
    """
    get = _CASE.read(data).get
    checked = _Checked(limits)
    confidence = get("classification_confidence")
    location = get("patient_location")
    region = get("region")
    tier = get("tier")
    language = get("preferred_language")
    return Case(
        case_id=_free_identifier(get("case_id"), limits),
        created_at=_instant(get("created_at")),
        channel=_member(_CHANNELS, get("channel")),
        intent=_member(_INTENTS, get("intent")),
        urgency=_member(_URGENCIES, get("urgency")),
        classification_confidence=1.0 if confidence is None else _number(confidence, 0.0, 1.0),
        patient_location=None if location is None else checked.jurisdiction(location),
        region=None if region is None else checked.code(region),
        tier=Tier.STANDARD if tier is None else _member(_TIERS, tier),
        required_skills=_required_skills(get("required_skills"), checked),
        preferred_language=None if language is None else checked.language(language),
        sentiment=_sentiment(get("sentiment"), limits),
        sla_clocks=_sla_clocks(get("sla_clocks"), checked),
        flags=_flags(get("flags"), limits),
        attributes=_attributes(get("attributes"), limits),
        waiting_since=_optional_instant(get("waiting_since")),
        declined_agents=checked.set_of(get("declined_agents"), checked.code),
        preferred_agents=_preferred_agents(get("preferred_agents"), checked),
    )
