"""The directly built agent and roster JSON is exactly the canonical JSON of their dict forms.

``fingerprint.agent_json`` is the one encoding behind every agent digest and the stored roster
blob; old logs' blobs and digests were made from ``canonical_json(agent_to_dict(...))``, so the
two must agree byte for byte on any agent, however odd its text.
"""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from caseroute.audit.record import BlobKind
from caseroute.audit.recorder import blobs_to_store
from caseroute.domain.fingerprint import (
    agent_json,
    agent_sha256,
    agent_to_dict,
    canonical_json,
    fingerprint_roster,
    roster_dict_sha256,
    roster_json,
    roster_sha256,
    roster_to_dict,
)
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.testing import NOW, make_agent, make_roster, reference_compiled

# Any character a JSON encoder must escape or pass through: quotes, backslashes, controls,
# non-ASCII, line separators (lone surrogates cannot reach a digest: encoding them fails).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
instants = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - Hypothesis takes naive bounds
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]),
)
attribute_values = st.one_of(
    text,
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
)


# Built once: building these on every draw spent most of the tests' time in Hypothesis's own
# strategy caching and validation.
ROLES = st.sampled_from(Role)
STATUSES = st.sampled_from(AgentStatus)
LOADS = st.integers(0, 10_000)
LICENCE_COUNTS = st.integers(0, 2)
EXPIRIES = st.dates(date(1, 1, 1))
BOOLEANS = st.booleans()
TEXT_SETS = st.frozensets(text, max_size=3)
SKILL_MAPS = st.dictionaries(text, st.integers(0, 10), max_size=3)
OPTIONAL_INSTANTS = st.none() | instants
SENIORITIES = st.integers(0, 100)
ATTRIBUTE_MAPS = st.dictionaries(text, attribute_values, max_size=3)


@st.composite
def agents(draw: st.DrawFn) -> Agent:
    """An agent with arbitrary text in every string field."""
    return Agent(
        agent_id=draw(text),
        role=draw(ROLES),
        status=draw(STATUSES),
        capacity=Capacity(draw(LOADS), draw(LOADS)),
        licences=tuple(
            Licence(draw(text), draw(text), draw(EXPIRIES), draw(BOOLEANS))
            for _ in range(draw(LICENCE_COUNTS))
        ),
        territories=draw(TEXT_SETS),
        skills=draw(SKILL_MAPS),
        languages=draw(TEXT_SETS),
        last_assigned_at=draw(OPTIONAL_INSTANTS),
        teams=draw(TEXT_SETS),
        seniority=draw(SENIORITIES),
        attributes=draw(ATTRIBUTE_MAPS),
    )


@given(agents())
def test_agent_json_is_the_canonical_json_of_the_agent_dict(agent: Agent) -> None:
    """agent_json == canonical_json(agent_to_dict(...)), byte for byte, on any agent."""
    assert canonical_json(agent_to_dict(agent)) == agent_json(agent)


@given(st.lists(agents(), max_size=3), text, instants)
def test_roster_json_is_the_stored_blob_form_and_hashes_to_the_roster_digest(
    members: list[Agent], snapshot_id: str, taken_at: datetime
) -> None:
    """roster_json == canonical_json(roster_to_dict(...)); read back, it verifies as stored."""
    roster = Roster(snapshot_id, taken_at, tuple(members))
    blob = roster_json(roster)
    assert (canonical_json(roster_to_dict(roster)), roster_sha256(roster)) == (
        blob,
        roster_dict_sha256(json.loads(blob)),
    )


def test_agent_json_of_the_test_agent_is_pinned() -> None:
    """The exact canonical text of one agent (keys sorted, sets sorted, no spaces)."""
    agent = make_agent(
        "a1",
        languages=frozenset({"fr", "en"}),
        last_assigned_at=NOW,
        attributes={"b": 1.5, "a": 'x"y'},
    )
    expected = (
        '{"agent_id":"a1","attributes":{"a":"x\\"y","b":1.5},"capacity":{"active":1,"max":5},'
        '"languages":["en","fr"],"last_assigned_at":"2026-11-21T10:00:00Z","licences":'
        '[{"expires_on":"2030-01-01","jurisdiction":"US-TX","multistate":false,"type":"RN"}],'
        '"role":"agent","seniority":0,"skills":[{"level":3,"name":"clinical-triage"}],'
        '"status":"available","teams":[],"territories":["US-TX"]}'
    )
    assert expected == agent_json(agent)


def test_agent_json_takes_the_general_path_for_values_of_other_types() -> None:
    """A float seniority or an int multistate (test-built agents) encode as json.dumps would."""
    agent = make_agent(
        seniority=2.0,
        licences=(Licence("RN", "US-TX", date(2030, 1, 1), 1),),  # type: ignore[arg-type]
    )
    assert canonical_json(agent_to_dict(agent)) == agent_json(agent)
    assert agent_sha256(make_agent()) != agent_sha256(agent)


def test_roster_json_of_an_empty_roster() -> None:
    """No agents: an empty list, the header after it."""
    expected = '{"agents":[],"snapshot_id":"snap-T1","taken_at":"2026-11-21T09:59:00Z"}'
    assert expected == roster_json(make_roster())


def test_a_first_sight_fingerprint_hands_over_the_agent_texts_once() -> None:
    """keep_texts: the agent texts the digests were hashed from, taken once, then gone."""
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    kept = fingerprint_roster(roster, keep_texts=True)
    assert (kept, tuple(agent_json(a) for a in roster.agents), None, None) == (
        fingerprint_roster(roster),
        kept.take_texts(),
        kept.take_texts(),
        fingerprint_roster(roster).take_texts(),
    )


class _Sink:
    """A decision log holding the blobs named."""

    def __init__(self, *held: str) -> None:
        self.held = held

    def has_blob(self, sha256: str) -> bool:
        """Whether the blob is held."""
        return sha256 in self.held


def test_blobs_to_store_uses_the_agent_texts_it_is_given_or_encodes_the_agents() -> None:
    """A chunk holds the texts handed over (a first sight's), else each agent's agent_json."""
    roster, ruleset = make_roster(make_agent("a1")), reference_compiled()
    sha = roster_sha256(roster)
    sink: Any = _Sink(ruleset.sha256)
    full: Any = _Sink(sha, ruleset.sha256)
    given = fingerprint_roster(roster)
    given.first_texts.append(("given",))
    chunks = [
        [b.content for b in blobs if b.kind is BlobKind.ROSTER_CHUNK]
        for blobs in (
            blobs_to_store(sink, ruleset, roster, given),
            blobs_to_store(sink, ruleset, roster),
        )
    ]
    assert ([["given"], [agent_json(roster.agents[0])]], []) == (
        chunks,
        blobs_to_store(full, ruleset, roster, fingerprint_roster(roster, keep_texts=True)),
    )
