"""Protobuf -> domain values in one pass, for Case and Roster messages that are plainly valid.

``wire.convert.case_from_proto`` and ``roster_from_proto`` try this first: a cold 1,000-agent
roster converted message -> JSON-shaped dicts -> strict parser cost ~55 us per agent, most of
it building and re-reading dicts (issue 13, "Cold rosters"). Every check here is the strict
parser's (``domain.codec``) for the same field, with the same limits, whole-string patterns
(``fullmatch``), enum tables, finiteness, duplicates, unsafe characters and normalisation
(flags NFKC, case-folded, trimmed, ``-`` -> ``_``; jurisdictions trimmed and upper-cased;
language tags trimmed, lower-cased, ``_`` -> ``-``; both by ``domain.codec``'s own normalisers,
which fold ASCII only).

Invariant: this module never refuses anything itself. Any value that is not plainly valid
raises ``Doubt``, and the caller converts the message again through the strict path, so the
field-level errors (and the safeguarding notice) are always exactly the strict parser's, and
the fast path can only accept what the strict path accepts, as the same value.
``tests/wire/test_fast_agreement.py`` checks both on generated valid and near-valid messages.
Some valid but unusual input is also left to the strict path (a case or snapshot id that is
not ASCII): it is never wrong to doubt. So is every message holding unknown fields (a field
number this server's caseroute.v1 does not define, ``wire.unknown_fields``): the case, each
of its skills, readings, clocks, preferred agents, attribute values and Timestamps; the
roster, each agent, licence, skill, capacity, attribute value and Timestamp. The strict path
refuses them, naming each.

``known_agents_from_proto`` converts agents the same way and writes each one's canonical JSON
(``fingerprint.agent_json``) and digest in the same pass: what the server's roster cache needs
for agents it has never seen (issue 13 target 3), for ~1 us per agent beyond the conversion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from hashlib import sha256 as _sha256
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

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
from caseroute.domain.codec import (
    ATTRIBUTE_KEY_RE,
    CODE_RE,
    FLAG_RE,
    JURISDICTION_RE,
    LANGUAGE_RE,
    MAX_ABS_NUMBER,
    normalise_jurisdiction,
    normalise_language,
)
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.flag_spelling import normalise_flag
from caseroute.domain.limits import InputLimits
from caseroute.domain.reader import ISO_DAY, MIN_FLAG_CHARS
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.domain.slots import new as _new
from caseroute.domain.slots import (
    new_agent,
    new_case,
    set_expires_on,
    set_jurisdiction,
    set_multistate,
    set_type,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.unknown_fields import unknown_fields as _unknown

E = TypeVar("E", bound=StrEnum)

MIN_TIMESTAMP_SECONDS = -62135596800
"""0001-01-01T00:00:00Z (as ``wire.convert``: what a protobuf Timestamp may hold)."""
MAX_TIMESTAMP_SECONDS = 253402300799
"""9999-12-31T23:59:59Z."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_code = CODE_RE.fullmatch
_flag = FLAG_RE.fullmatch
_jurisdiction = JURISDICTION_RE.fullmatch
_language = LANGUAGE_RE.fullmatch
_attribute_key = ATTRIBUTE_KEY_RE.fullmatch


class Doubt(Exception):  # noqa: N818 - not an error: "let the strict path decide"
    """A value the fast path does not vouch for: convert the message through the strict path."""


def _enum_table(enum: Any, prefix: str, kind: type[E]) -> dict[int, E]:
    """Proto number -> domain member, read as the strict path reads it (name -> short value).

    Numbers without a member (a newer proto) are left out: the strict path refuses them.
    """
    table: dict[int, E] = {}
    for value in enum.DESCRIPTOR.values:
        short = value.name.removeprefix(prefix).lower()
        if value.number != 0 and short in kind._value2member_map_:
            table[value.number] = kind(short)
    return table


_CHANNELS = _enum_table(pb.Channel, "CHANNEL_", Channel)
_INTENTS = _enum_table(pb.Intent, "INTENT_", Intent)
_URGENCIES = _enum_table(pb.Urgency, "URGENCY_", Urgency)
_TIERS = _enum_table(pb.Tier, "TIER_", Tier)
_REASONS = _enum_table(pb.ContinuityReason, "CONTINUITY_REASON_", ContinuityReason)
_ROLES = _enum_table(pb.Role, "ROLE_", Role)
_STATUSES = _enum_table(pb.AgentStatus, "AGENT_STATUS_", AgentStatus)


def _member(table: Mapping[int, E], number: int) -> E:
    member = table.get(number)
    if member is None:  # unset (0) or unknown: the strict path says which
        raise Doubt
    return member


def _instant(ts: Timestamp) -> datetime:
    """As ``Timestamp.ToDatetime(tzinfo=UTC)`` (nanos truncated to microseconds)."""
    seconds, nanos = ts.seconds, ts.nanos
    if not (MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS and 0 <= nanos < 10**9):
        raise Doubt
    if _unknown(ts):
        raise Doubt
    if nanos == 0 and seconds >= 0:  # the same instant, built in half the time
        return datetime.fromtimestamp(seconds, UTC)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def _required_instant(msg: Any, field: str) -> datetime:
    if not msg.HasField(field):
        raise Doubt
    return _instant(getattr(msg, field))


def _optional_instant(msg: Any, field: str) -> datetime | None:
    return _instant(getattr(msg, field)) if msg.HasField(field) else None


def _identifier(value: str, limits: InputLimits) -> str:
    """A free identifier (case_id, snapshot_id): non-blank, short, printable ASCII here."""
    # Printable ASCII holds no control or formatting character; anything else (including
    # valid non-ASCII ids) is left to the strict path's per-character check.
    if not value.strip() or len(value) > limits.max_id_chars or not value.isascii():
        raise Doubt
    if not value.isprintable() or value[0] == " " or value[-1] == " ":
        raise Doubt  # printable ASCII's only whitespace is the space
    return value


def _one_code(value: str, limits: InputLimits) -> str:
    if len(value) > limits.max_id_chars or not _code(value):
        raise Doubt
    return value


def _codes(values: Iterable[str], count: int, limits: InputLimits) -> frozenset[str]:
    """A list of codes (territories, teams, declined agents) as a set (duplicates collapse)."""
    if count > limits.max_list_items:
        raise Doubt
    max_chars = limits.max_id_chars
    for value in values:
        if len(value) > max_chars or not _code(value):
            raise Doubt
    return frozenset(values)


def _one_jurisdiction(value: str, limits: InputLimits) -> str:
    if len(value) > limits.max_id_chars:
        raise Doubt
    # Not ASCII: left unfolded, so the pattern doubts it (the strict path says why).
    text = normalise_jurisdiction(value)
    if len(text) > limits.max_id_chars or not _jurisdiction(text):
        raise Doubt
    return text


def _one_language(value: str, limits: InputLimits) -> str:
    if len(value) > limits.max_id_chars:
        raise Doubt
    text = normalise_language(value)
    if len(text) > limits.max_id_chars or not _language(text):
        raise Doubt
    return text


def _flags(values: Iterable[str], count: int, limits: InputLimits) -> frozenset[str]:
    if count > limits.max_list_items:
        raise Doubt
    out = []
    max_chars = limits.max_id_chars
    for value in values:
        if not value.strip() or len(value) > max_chars:
            raise Doubt
        text = normalise_flag(value)
        # Too short is a doubt: the strict parser refuses it (reader.one_character_flag).
        if not MIN_FLAG_CHARS <= len(text) <= max_chars or not _flag(text):
            raise Doubt
        out.append(text)
    return frozenset(out)


def _number(value: float, low: float, high: float) -> float:
    if not (math.isfinite(value) and abs(value) <= MAX_ABS_NUMBER and low <= value <= high):
        raise Doubt
    return value


def _integer(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise Doubt
    return value


def _attributes(attributes: Any, limits: InputLimits) -> dict[str, AttributeValue]:
    """A case's or agent's attribute map (a protobuf map of AttributeValue)."""
    if not attributes:
        return {}
    if len(attributes) > limits.max_attributes:
        raise Doubt
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if len(key) > limits.max_id_chars or not _attribute_key(key) or _unknown(value):
            raise Doubt
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            text: str = value.string_value
            # Invariant: protobuf strings are valid UTF-8 (upb refuses a lone surrogate both
            # when parsing and when a field is set), so the strict parser's check holds.
            if len(text) > limits.max_text_chars or "\x00" in text:
                raise Doubt
            out[key] = text
        elif kind == "number_value":
            out[key] = _number(value.number_value, -MAX_ABS_NUMBER, MAX_ABS_NUMBER)
        elif kind == "bool_value":
            out[key] = value.bool_value
        else:  # an AttributeValue with no kind set
            raise Doubt
    return out


class _Checked:
    """The strings one roster's conversion has found valid: its agents repeat their codes.

    A roster of 1,000 agents has a handful of territories, skills, licence types, languages
    and jurisdictions; each distinct one is checked once, then found in a set. Made per call
    (the limits are that call's), so nothing outlives the message it came from.
    """

    __slots__ = ("codes", "jurisdictions", "languages", "limits")

    def __init__(self, limits: InputLimits) -> None:
        """Nothing checked yet, under ``limits``."""
        self.limits = limits
        self.codes: set[str] = set()
        self.jurisdictions: dict[str, str] = {}
        self.languages: dict[str, str] = {}

    def code(self, value: str) -> str:
        """A code (``_one_code``)."""
        if value not in self.codes:
            self.codes.add(_one_code(value, self.limits))
        return value

    def code_set(self, values: Any) -> frozenset[str]:
        """A list of codes as a set (``_codes``)."""
        if len(values) > self.limits.max_list_items:
            raise Doubt
        if not self.codes.issuperset(values):
            for value in values:
                self.code(value)
        return frozenset(values)

    def jurisdiction(self, value: str) -> str:
        """A jurisdiction, normalised (``_one_jurisdiction``)."""
        text = self.jurisdictions.get(value)
        if text is None:
            text = self.jurisdictions[value] = _one_jurisdiction(value, self.limits)
        return text

    def language_set(self, values: Any) -> frozenset[str]:
        """A list of language tags, each normalised (``_one_language``), as a set."""
        if len(values) > self.limits.max_list_items:
            raise Doubt
        known = self.languages
        out = []
        for value in values:
            text = known.get(value)
            if text is None:
                text = known[value] = _one_language(value, self.limits)
            out.append(text)
        return frozenset(out)


def _expiry_date(expires_on: str) -> date:
    """A licence's ``expires_on`` as a date (``Doubt`` unless plainly an ISO date)."""
    if ISO_DAY.fullmatch(expires_on) is None:
        raise Doubt
    try:
        return date.fromisoformat(expires_on)
    except ValueError:
        raise Doubt from None


def _licence(msg: pb.Licence, checked: _Checked) -> Licence:
    if _unknown(msg):
        raise Doubt
    return Licence(
        checked.code(msg.type),
        checked.jurisdiction(msg.jurisdiction),
        _expiry_date(msg.expires_on),
        msg.multistate,
    )


def _agent(msg: pb.Agent, checked: _Checked) -> Agent:
    """One roster agent, or ``Doubt``."""
    # Repeated fields read as lists by slicing (see known_agents_from_proto).
    licences = msg.licences[:]
    skill_msgs = msg.skills[:]
    max_items = checked.limits.max_list_items
    if len(licences) > max_items or len(skill_msgs) > max_items or not msg.HasField("capacity"):
        raise Doubt
    capacity = msg.capacity
    if _unknown(msg) or _unknown(capacity) or any(map(_unknown, skill_msgs)):
        raise Doubt
    skills: dict[str, int] = {}
    for skill in skill_msgs:
        name, level = checked.code(skill.name), skill.level
        if name in skills or not 0 <= level <= 10:
            raise Doubt
        skills[name] = level
    teams = msg.teams[:]
    # Positional, in Agent's field order (keywords cost more, 1,000 times a roster).
    return Agent(
        _one_code(msg.agent_id, checked.limits),
        _member(_ROLES, msg.role) if msg.role else Role.AGENT,
        _member(_STATUSES, msg.status),
        Capacity(_integer(capacity.max, 0, 10_000), _integer(capacity.active, 0, 10_000)),
        tuple([_licence(lic, checked) for lic in licences]) if licences else (),
        checked.code_set(msg.territories[:]),
        skills,
        checked.language_set(msg.languages[:]),
        _optional_instant(msg, "last_assigned_at"),
        checked.code_set(teams) if teams else frozenset(),
        _integer(msg.seniority, 0, 100),
        _attributes(msg.attributes, checked.limits),
    )


def agents_from_proto(agent_msgs: Iterable[pb.Agent], limits: InputLimits) -> list[Agent]:
    """Agent messages as domain agents, each converted on its own, or ``Doubt``.

    An agent's value depends only on its message and ``limits`` (never on the other agents:
    ``_Checked`` only remembers which strings were valid), which is what lets the server's
    roster cache keep converted agents by their message bytes. Roster-level checks (the
    count, duplicate ids) are ``roster_with_agents``'s.

    Raises:
        Doubt: If any value is not plainly valid.
    """
    checked = _Checked(limits)
    return [_agent(a, checked) for a in agent_msgs]


KnownAgent = tuple[Agent, str, bytes]
"""One converted agent with its canonical JSON (``fingerprint.agent_json``) and that text's
sha256 (``fingerprint.agent_digest``): what the server's roster cache keeps per agent message."""


_TWO = [f"{n:02d}" for n in range(60)]
"""Two-digit texts of 0-59 (hours, minutes, seconds)."""


def _quoted(values: Iterable[str]) -> str:
    """Checked codes or tags, sorted, as a JSON list (their patterns hold nothing to escape)."""
    return '["' + '","'.join(sorted(values)) + '"]' if values else "[]"


_NO_CODES: frozenset[str] = frozenset()
"""The empty code set agents without teams share (``frozenset()`` makes a new object per call,
each one more object for the cyclic GC to walk: ~1,000 per all-new 1,000-agent roster)."""
_ROLE_TEXTS: dict[int, tuple[Role, str]] = {
    0: (Role.AGENT, Role.AGENT.value),  # unset: the default role, as the strict path reads it
    **{number: (role, role.value) for number, role in _ROLES.items()},
}
"""Role number -> member and its value (``Enum.value`` is a property: ~0.1 us a read)."""
_STATUS_TEXTS: dict[int, tuple[AgentStatus, str]] = {
    number: (status, status.value) for number, status in _STATUSES.items()
}
"""Status number -> member and its value; unset (0) and unknown numbers are absent (doubted)."""


class _Encoded(_Checked):
    """``_Checked`` that also remembers the values and JSON texts of one roster's repeats.

    Agents of one roster share territory and team sets, language sets, capacities, skill
    maps and licence expiry days; each distinct one is checked, built and encoded once, then
    found by its message values. Only immutable values are shared (frozensets, ``Capacity``,
    dates, texts); a skill map is a dict, so each agent gets its own copy of the one
    remembered. Made per conversion, so bounded by its roster. These methods are the misses;
    ``known_agents_from_proto`` looks the hits up itself.
    """

    __slots__ = ("capacities", "code_sets", "days", "expiries", "language_sets", "skill_maps")

    def __init__(self, limits: InputLimits) -> None:
        """Nothing checked or encoded yet, under ``limits``."""
        super().__init__(limits)
        self.code_sets: dict[frozenset[str], tuple[frozenset[str], str]] = {}
        self.language_sets: dict[frozenset[str], tuple[frozenset[str], str]] = {}
        self.capacities: dict[tuple[int, int], tuple[Capacity, str]] = {}
        self.skill_maps: dict[tuple[tuple[str, int], ...], tuple[dict[str, int], str]] = {}
        self.expiries: dict[str, tuple[date, str]] = {}
        self.days: dict[int, str] = {}

    def new_codes(self, raw: frozenset[str]) -> tuple[frozenset[str], str]:
        """A set of codes not seen yet: checked (``code_set``), with its JSON list."""
        value = self.code_set(raw)
        found = self.code_sets[raw] = (value, _quoted(value))
        return found

    def new_languages(self, raw: frozenset[str]) -> tuple[frozenset[str], str]:
        """A set of language tags not seen yet: normalised (``language_set``), with its JSON."""
        value = self.language_set(raw)
        found = self.language_sets[raw] = (value, _quoted(value))
        return found

    def new_skills(self, pairs: tuple[tuple[str, int], ...]) -> tuple[dict[str, int], str]:
        """A skill list ``(name, level)`` not seen yet: checked, as a map, with its JSON list.

        The map is the one remembered: callers hand each agent a copy.
        """
        skills: dict[str, int] = {}
        codes = self.codes
        for name, level in pairs:
            if name not in codes:
                self.code(name)
            if name in skills or not 0 <= level <= 10:
                raise Doubt
            skills[name] = level
        text = ",".join([f'{{"level":{skills[n]},"name":"{n}"}}' for n in sorted(skills)])
        found = self.skill_maps[pairs] = (skills, text)
        return found

    def expiry(self, expires_on: str) -> tuple[date, str]:
        """A licence's ``expires_on`` as a date and its ISO text (remembered per text sent)."""
        found = self.expiries.get(expires_on)
        if found is None:
            expires = _expiry_date(expires_on)
            found = self.expiries[expires_on] = (expires, expires.isoformat())
        return found

    def licence(self, msg: pb.Licence) -> tuple[Licence, str]:
        """A licence (``_licence``) and its canonical JSON object (nothing in it to escape)."""
        if _unknown(msg):
            raise Doubt
        kind, jurisdiction, expires_on = msg.type, msg.jurisdiction, msg.expires_on
        if kind not in self.codes:
            self.code(kind)
        jurisdiction = self.jurisdictions.get(jurisdiction) or self.jurisdiction(jurisdiction)
        expires, expires_text = self.expiry(expires_on)
        multistate = msg.multistate
        lic = _new(Licence)  # Licence(kind, jurisdiction, expires, multistate), as Agent below
        set_type(lic, kind)
        set_jurisdiction(lic, jurisdiction)
        set_expires_on(lic, expires)
        set_multistate(lic, multistate)
        return lic, (
            f'{{"expires_on":"{expires_text}","jurisdiction":"{jurisdiction}",'
            f'"multistate":{"true" if multistate else "false"},"type":"{kind}"}}'
        )

    def other_instant(self, ts: Timestamp) -> tuple[datetime, str]:
        """An instant (``_instant``) not a whole second since 1970, and its canonical text.

        Whole seconds since 1970 (what rosters send) are read in ``known_agents_from_proto``'s
        loop and written by ``second_text``; these by ``isoformat``.
        """
        value = _instant(ts)
        # Every _instant is UTC: its isoformat() ends in "+00:00", written "Z".
        return value, value.isoformat()[:-6] + "Z"

    def second_text(self, seconds: int) -> str:
        """The canonical text (``format_timestamp``) of a whole second since 1970.

        Written from its day's text, remembered, and the time of day.
        """
        day = seconds // 86400
        rest = seconds - day * 86400
        prefix = self.days.get(day)
        if prefix is None:  # "YYYY-MM-DDT"
            prefix = self.days[day] = datetime.fromtimestamp(day * 86400, UTC).isoformat()[:11]
        return f"{prefix}{_TWO[rest // 3600]}:{_TWO[rest // 60 % 60]}:{_TWO[rest % 60]}Z"

    def new_capacity(self, key: tuple[int, int]) -> tuple[Capacity, str]:
        """A capacity ``(max, active)`` not seen yet: both bounds checked, with its JSON."""
        most, active = _integer(key[0], 0, 10_000), _integer(key[1], 0, 10_000)
        found = self.capacities[key] = (
            Capacity(most, active),
            f'{{"active":{active},"max":{most}}}',
        )
        return found


def known_agents_from_proto(
    agent_msgs: Iterable[pb.Agent], limits: InputLimits
) -> list[KnownAgent]:
    """Agent messages as ``(agent, agent_json, agent_digest)``, each on its own, or ``Doubt``.

    ``agents_from_proto``, ``fingerprint.agent_json`` and ``fingerprint.agent_digest`` in one
    pass, for a roster whose agents are new to the server (issue 13 target 3): the same
    checks as ``_agent``, and the text written from the checked values in the canonical
    form's key order. Codes, jurisdictions and language tags match patterns of letters,
    digits and ``_ . : / -``, which JSON writes as they are; attribute values go through the
    JSON encoder. ``tests/wire/test_fast_known_agents.py`` pins values, texts and digests.

    Raises:
        Doubt: If any value is not plainly valid.
    """
    encoded = _Encoded(limits)
    max_items, max_chars = limits.max_list_items, limits.max_id_chars
    code_sets, language_sets = encoded.code_sets.get, encoded.language_sets.get
    capacities, skill_maps = encoded.capacities.get, encoded.skill_maps.get
    licence, second_text = encoded.licence, encoded.second_text
    roles, statuses = _ROLE_TEXTS.get, _STATUS_TEXTS.get
    out: list[KnownAgent] = []
    for msg in agent_msgs:
        # Repeated fields read as lists by slicing (in C): iterating a protobuf container from
        # Python costs about twice as much.
        licence_msgs = msg.licences[:]
        skill_msgs = msg.skills[:]
        territory_msgs = msg.territories[:]
        language_msgs = msg.languages[:]
        if (
            len(licence_msgs) > max_items
            or len(skill_msgs) > max_items
            or len(territory_msgs) > max_items
            or len(language_msgs) > max_items
            or not msg.HasField("capacity")
        ):
            raise Doubt
        capacity_msg = msg.capacity
        # Unknown fields (a newer or other .proto's field) are the strict path's to name:
        # each message of the agent is asked (~0.12 us each); licences in ``licence``,
        # attribute values in ``_attributes``, ``last_assigned_at`` below.
        if _unknown(msg) or _unknown(capacity_msg) or any(map(_unknown, skill_msgs)):
            raise Doubt
        # A roster repeats its skill lists: each distinct one is checked and written once.
        pairs = tuple([(skill.name, skill.level) for skill in skill_msgs])
        skill_map, skills_text = skill_maps(pairs) or encoded.new_skills(pairs)
        if licence_msgs:
            licences_list, texts = [], []
            for lic_msg in licence_msgs:
                lic, lic_text = licence(lic_msg)
                licences_list.append(lic)
                texts.append(lic_text)
            licences, licences_text = tuple(licences_list), ",".join(texts)
        else:
            licences, licences_text = (), ""
        agent_id = msg.agent_id
        if len(agent_id) > max_chars or not _code(agent_id):
            raise Doubt
        role_found, status_found = roles(msg.role), statuses(msg.status)
        if role_found is None or status_found is None:
            raise Doubt
        key = (capacity_msg.max, capacity_msg.active)
        capacity, capacity_text = capacities(key) or encoded.new_capacity(key)
        raw = frozenset(territory_msgs)
        territories, territories_text = code_sets(raw) or encoded.new_codes(raw)
        raw = frozenset(language_msgs)
        languages, languages_text = language_sets(raw) or encoded.new_languages(raw)
        team_msgs = msg.teams[:]
        if team_msgs:
            if len(team_msgs) > max_items:
                raise Doubt
            raw = frozenset(team_msgs)
            teams, teams_text = code_sets(raw) or encoded.new_codes(raw)
        else:
            teams, teams_text = _NO_CODES, "[]"
        seniority = msg.seniority
        if not 0 <= seniority <= 100:
            raise Doubt
        attribute_msgs = msg.attributes
        attributes = _attributes(attribute_msgs, limits) if attribute_msgs else {}
        if msg.HasField("last_assigned_at"):
            stamp = msg.last_assigned_at
            seconds = stamp.seconds
            if stamp.nanos or not 0 <= seconds <= MAX_TIMESTAMP_SECONDS:
                last, last_text = encoded.other_instant(stamp)
            elif _unknown(stamp):
                raise Doubt
            else:  # a whole second since 1970, what rosters send (as _Encoded.instant)
                last, last_text = datetime.fromtimestamp(seconds, UTC), second_text(seconds)
            last_text = f'"last_assigned_at":"{last_text}",'
        else:
            last, last_text = None, ""
        text = (
            f'{{"agent_id":"{agent_id}",'
            f'"attributes":{canonical_json(attributes) if attributes else "{}"},'
            f'"capacity":{capacity_text},"languages":{languages_text},{last_text}'
            f'"licences":[{licences_text}],"role":"{role_found[1]}","seniority":{seniority},'
            f'"skills":[{skills_text}],"status":"{status_found[1]}","teams":{teams_text},'
            f'"territories":{territories_text}}}'
        )
        agent = new_agent(
            agent_id,
            role_found[0],
            status_found[0],
            capacity,
            licences,
            territories,
            skill_map.copy(),  # a dict: each agent its own
            languages,
            last,
            teams,
            seniority,
            attributes,
        )
        out.append((agent, text, _sha256(text.encode()).digest()))
    return out


def known_agents(
    agent_msgs: Sequence[pb.Agent], found: list[KnownAgent | None], limits: InputLimits
) -> list[KnownAgent]:
    """Each agent of a roster: kept (``found``) or converted, encoded and hashed now.

    The server's roster cache passes what it keeps for each agent's message bytes (None for
    one it has not seen); the others go through ``known_agents_from_proto``.

    Raises:
        Doubt: If an agent to convert is not plainly valid.
    """
    missing = [i for i, known in enumerate(found) if known is None]
    if len(missing) == len(found):
        return known_agents_from_proto(agent_msgs, limits)
    made = iter(known_agents_from_proto([agent_msgs[i] for i in missing], limits))
    return [next(made) if known is None else known for known in found]


def roster_with_agents(msg: pb.Roster, agents: tuple[Agent, ...], limits: InputLimits) -> Roster:
    """A Roster message's header with its agents already converted, or ``Doubt``.

    Args:
        msg: The Roster message.
        agents: ``msg.agents`` converted (``agents_from_proto``, or kept from an earlier one),
            in message order.
        limits: The limits the agents were converted under.

    Raises:
        Doubt: If the roster has too many agents, two share an id, or its header is not
            plainly valid.
    """
    # Ids equal ignoring letter case are refused by the strict path (parse_roster).
    if len(agents) > limits.max_agents or len({a.agent_id.casefold() for a in agents}) != len(
        agents
    ):
        raise Doubt
    if _unknown(msg):
        raise Doubt
    return Roster(
        _identifier(msg.snapshot_id, limits),
        _required_instant(msg, "taken_at"),
        agents,
    )


def roster_from_proto(msg: pb.Roster, limits: InputLimits) -> Roster:
    """A Roster message as a domain roster, or ``Doubt``.

    Raises:
        Doubt: If any value is not plainly valid (or two agents share an id).
    """
    agent_msgs = msg.agents
    if len(agent_msgs) > limits.max_agents:
        raise Doubt  # before converting any agent, as the strict parser counts first
    return roster_with_agents(msg, tuple(agents_from_proto(agent_msgs, limits)), limits)


def _required_skills(msg: pb.Case, limits: InputLimits) -> tuple[RequiredSkill, ...]:
    items = msg.required_skills
    if len(items) > limits.max_list_items or any(map(_unknown, items)):
        raise Doubt
    return tuple(
        [RequiredSkill(_one_code(s.name, limits), _integer(s.min_level, 0, 10)) for s in items]
    )


def _sentiment(msg: pb.Case, limits: InputLimits) -> tuple[SentimentReading, ...]:
    items = msg.sentiment
    if len(items) > limits.max_sentiment_readings or any(map(_unknown, items)):
        raise Doubt
    readings = [
        SentimentReading(_number(r.score, -1.0, 1.0), _required_instant(r, "at")) for r in items
    ]
    # As the strict parser sorts them: oldest first, at one instant the lowest score last.
    readings.sort(key=SentimentReading.order_key)
    return tuple(readings)


def _sla_clocks(msg: pb.Case, limits: InputLimits) -> tuple[SlaClock, ...]:
    items = msg.sla_clocks
    if len(items) > limits.max_sla_clocks or any(map(_unknown, items)):
        raise Doubt
    clocks = [
        SlaClock(
            _one_code(c.name, limits),
            _required_instant(c, "started_at"),
            _required_instant(c, "deadline"),
        )
        for c in items
    ]
    if len({c.name for c in clocks}) != len(clocks):
        raise Doubt
    return tuple(clocks)


def _preferred_agents(msg: pb.Case, limits: InputLimits) -> tuple[PreferredAgent, ...]:
    items = msg.preferred_agents
    if not items:
        return ()
    if len(items) > limits.max_list_items or any(map(_unknown, items)):
        raise Doubt
    preferred = tuple(
        [
            PreferredAgent(
                _one_code(p.agent_id, limits),
                _member(_REASONS, p.reason),
                _optional_instant(p, "last_contact_at"),
            )
            for p in items
        ]
    )
    if len({p.agent_id for p in preferred}) != len(preferred):
        raise Doubt
    return preferred


def case_from_proto(msg: pb.Case, limits: InputLimits) -> Case:
    """A Case message as a domain case, or ``Doubt``.

    Raises:
        Doubt: If any value is not plainly valid.
    """
    if _unknown(msg):
        raise Doubt
    flags = msg.flags
    declined = msg.declined_agents
    # Case's fields in order, through its slot setters (~1 us less than the frozen __init__).
    return new_case(
        _identifier(msg.case_id, limits),
        _required_instant(msg, "created_at"),
        _member(_CHANNELS, msg.channel),
        _member(_INTENTS, msg.intent),
        _member(_URGENCIES, msg.urgency),
        (
            _number(msg.classification_confidence, 0.0, 1.0)
            if msg.HasField("classification_confidence")
            else 1.0
        ),
        (
            _one_jurisdiction(msg.patient_location, limits)
            if msg.HasField("patient_location")
            else None
        ),
        _one_code(msg.region, limits) if msg.HasField("region") else None,
        _member(_TIERS, msg.tier) if msg.tier else Tier.STANDARD,
        _required_skills(msg, limits),
        (
            _one_language(msg.preferred_language, limits)
            if msg.HasField("preferred_language")
            else None
        ),
        _sentiment(msg, limits),
        _sla_clocks(msg, limits),
        _flags(flags, len(flags), limits) if flags else frozenset(),
        _attributes(msg.attributes, limits),
        _optional_instant(msg, "waiting_since"),
        _codes(declined, len(declined), limits) if declined else frozenset(),
        _preferred_agents(msg, limits),
    )
