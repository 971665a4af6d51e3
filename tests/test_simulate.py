"""Synthetic traffic (`caseroute.simulate`): seeded, realistic, valid, and the same every time."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import canonical_json
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.service import RulesetRegistry
from caseroute.service.routing import DecideCommand
from caseroute.simulate import (
    _NOTES,
    COMPACT_STATES,
    DEFAULT_START,
    GB_NATIONS,
    MAX_BATCH,
    MAX_SEED,
    NEGATIVE_SENTIMENT,
    NON_COMPACT_STATES,
    SimulatedRequest,
    request_from_json,
    simulate,
)
from caseroute.testing import audited_core
from caseroute.wire.json_dialect import simulated_request_to_json

# Computed once per module: 2,000 cases over 40 agents, the size the tests below pin.
TRAFFIC = tuple(simulate(2000, 40, 7))


def _bytes(requests: tuple[SimulatedRequest, ...] | list[SimulatedRequest]) -> bytes:
    return b"".join(canonical_json(simulated_request_to_json(r)).encode() + b"\n" for r in requests)


def _location_kind(location: str | None) -> str:
    if location is None:
        return "missing"
    if location in COMPACT_STATES:
        return "compact"
    if location in NON_COMPACT_STATES:
        return "non_compact"
    return "gb" if location in GB_NATIONS else "other"


def _case_features(requests: tuple[SimulatedRequest, ...]) -> Counter[str]:
    c: Counter[str] = Counter()
    for request in requests:
        c["requests"] += 1
        c["batches"] += len(request.cases) > 1
        for case in request.cases:
            c[f"intent:{case.intent.value}"] += 1
            c[f"urgency:{case.urgency.value}"] += 1
            c[f"location:{_location_kind(case.patient_location)}"] += 1
            latest = case.sentiment[-1].score if case.sentiment else 0.0
            c["negative_sentiment"] += latest <= NEGATIVE_SENTIMENT
            for clock in case.sla_clocks:
                minutes_left = (clock.deadline - request.now) / timedelta(minutes=1)
                c["sla_breached"] += minutes_left < 0
                c["sla_at_risk"] += 0 <= minutes_left <= 60
            for flag in case.flags:
                c[f"flag:{flag}"] += 1
            c["language_not_en"] += case.preferred_language not in (None, "en")
            for key in case.attributes:
                c[f"attribute:{key}"] += 1
            c["waiting_since"] += case.waiting_since is not None
            c["waited_over_10_min"] += request.now - case.wait_anchor > timedelta(minutes=10)
            c["waited_over_30_min"] += request.now - case.wait_anchor > timedelta(minutes=30)
            for pref in case.preferred_agents:
                c[f"preferred:{pref.reason.value}"] += 1
                c["preferred_contact_over_365_days"] += (
                    pref.last_contact_at is not None
                    and request.now - pref.last_contact_at > timedelta(days=365)
                )
            c["declined_agents"] += len(case.declined_agents)
    return +c  # drop zero counts


def _agent_features(requests: tuple[SimulatedRequest, ...]) -> Counter[str]:
    rosters = {r.roster.snapshot_id: r.roster for r in requests}
    c: Counter[str] = Counter({"rosters": len(rosters)})
    for roster in rosters.values():
        today = roster.taken_at.date()
        for agent in roster.agents:
            c[f"status:{agent.status.value}"] += 1
            c["full_capacity"] += agent.capacity.active >= agent.capacity.max
            for licence in agent.licences:
                c[f"licence:{licence.type}"] += 1
                c["licence_multistate"] += licence.multistate
                c["licence_expired"] += licence.expires_on < today
                c["licence_expires_within_30_days"] += (
                    today <= licence.expires_on <= today + timedelta(days=30)
                )
            c["speaks_not_only_en"] += agent.languages != frozenset({"en"})
            c[f"role:{agent.role.value}"] += 1
    return +c


def test_same_arguments_give_the_same_bytes_and_another_seed_others() -> None:
    """Determinism: the same arguments twice give identical JSON lines; seed 8 differs."""
    first = _bytes(list(simulate(300, 20, 7)))
    again = _bytes(list(simulate(300, 20, 7)))
    other = _bytes(list(simulate(300, 20, 8)))
    assert first == again
    assert first != other


def test_every_realism_feature_is_present_in_counts_pinned_for_seed_7() -> None:
    """Seed 7, 2,000 cases: every realism feature, adaptive inputs included, in pinned counts."""
    assert dict(_case_features(TRAFFIC)) == {
        "requests": 1161,
        "batches": 171,
        "intent:clinical": 622,
        "intent:prescription": 334,
        "intent:appointment": 415,
        "intent:billing": 211,
        "intent:complaint": 162,
        "intent:general": 256,
        "urgency:routine": 1361,
        "urgency:urgent": 451,
        "urgency:critical": 188,
        "location:compact": 1000,
        "location:non_compact": 518,
        "location:gb": 350,
        "location:missing": 132,
        "negative_sentiment": 255,
        "sla_at_risk": 394,
        "sla_breached": 317,
        "flag:safeguarding": 36,
        "flag:consent_missing": 47,
        "flag:vip": 165,
        "language_not_en": 398,
        "attribute:patient_id": 2000,
        "attribute:member_id": 1209,
        "attribute:notes": 830,
        "waiting_since": 1215,
        "waited_over_10_min": 1715,
        "waited_over_30_min": 1127,
        "preferred:previous_contact": 432,
        "preferred:care_team": 126,
        "preferred:named_clinician": 56,
        "preferred_contact_over_365_days": 138,
        "declined_agents": 80,
    }


def test_rosters_mix_statuses_full_agents_and_licences_near_or_past_expiry() -> None:
    """Seed 7, 40 agents: six snapshots with away/offline, full capacity, lapsing licences."""
    assert dict(_agent_features(TRAFFIC)) == {
        "rosters": 6,
        "status:available": 162,
        "status:busy": 26,
        "status:away": 34,
        "status:offline": 18,
        "full_capacity": 41,
        "licence:RN": 162,
        "licence:LPN": 12,
        "licence:APRN": 18,
        "licence:pharmacist": 54,
        "licence_multistate": 36,
        "licence_expired": 24,
        "licence_expires_within_30_days": 24,
        "speaks_not_only_en": 72,
        "role:agent": 180,
        "role:senior": 54,
        "role:manager": 6,
    }


def test_now_advances_through_the_day_against_the_snapshot_taken_before_it() -> None:
    """`now` never goes back, spans 12 hours from the start, and each roster predates it."""
    nows = [r.now for r in TRAFFIC]
    assert nows == sorted(nows)
    assert (nows[0], nows[-1] - nows[0] < timedelta(hours=12)) == (DEFAULT_START, True)
    assert all(r.now - timedelta(hours=2) < r.roster.taken_at <= r.now for r in TRAFFIC)
    assert [r.request_id for r in TRAFFIC[:2]] == ["sim-7-000000", "sim-7-000001"]
    assert [c.case_id for r in TRAFFIC for c in r.cases][:2] == ["SIM-7-000000", "SIM-7-000001"]


def test_every_request_is_within_the_input_limits_and_round_trips_through_json() -> None:
    """Every line parses back to the same request; batch sizes and pairs are within limits."""
    sizes = Counter(len(r.cases) for r in TRAFFIC)
    assert sum(size * n for size, n in sizes.items()) == 2000
    assert max(sizes) == MAX_BATCH
    assert all(
        len(r.cases) * len(r.roster.agents) <= DEFAULT_LIMITS.max_batch_pairs for r in TRAFFIC
    )
    for request in TRAFFIC:
        line = canonical_json(simulated_request_to_json(request))
        assert request == request_from_json(json.loads(line))


def test_all_requests_decide_without_a_request_error_with_all_four_outcomes(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Seed 7, reference ruleset: every request decides, outcomes mixed, nothing stored in clear."""
    core = audited_core(registry, tmp_path)
    outcomes: Counter[str] = Counter()
    for request in TRAFFIC:
        command = DecideCommand(
            request.request_id, "", "", request.cases, request.roster, request.now
        )
        for decision in core.decide(command).decisions:
            outcomes[decision.outcome.value] += 1
    assert dict(outcomes) == {"ASSIGN": 1190, "QUEUE": 565, "ESCALATE": 116, "EXCEPTION": 129}
    stored = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("audit.db*")))
    # The synthetic identifiers and notes sit under masked names: none is stored in clear.
    clear = [b"PT-7-", *(n.encode() for n in _NOTES)]
    assert (b"SIM-7-000000" in stored, [text for text in clear if text in stored]) == (True, [])


def test_a_start_instant_moves_the_day_and_keeps_the_mix() -> None:
    """`start` moves the day: instants shift by the same amount, ids and kinds stay."""
    start = DEFAULT_START + timedelta(days=100)
    moved = list(simulate(50, 5, 7, start=start))
    usual = list(simulate(50, 5, 7))
    assert [r.now - timedelta(days=100) for r in moved] == [r.now for r in usual]
    assert [c.intent for r in moved for c in r.cases] == [c.intent for r in usual for c in r.cases]
    assert (moved[0].now, moved[0].roster.taken_at) == (start, start)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 5, 1), "--cases must be at least 1, got 0"),
        ((5, 0, 1), "--agents must be between 1 and 20000, got 0"),
        ((5, 20001, 1), "--agents must be between 1 and 20000, got 20001"),
        ((5, 5, -1), f"--seed must be a whole number from 0 to {MAX_SEED}, got -1"),
        (
            (5, 5, 2**64),
            f"--seed must be a whole number from 0 to {MAX_SEED}, got {MAX_SEED + 1}",
        ),
    ],
)
def test_out_of_range_arguments_are_refused_at_once(
    args: tuple[int, int, int], message: str
) -> None:
    """Bad counts raise before any request is made, naming the flag and its range."""
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        simulate(*args)
    assert str(raised.value) == message


def test_the_largest_seed_keeps_every_id_within_the_id_limit() -> None:
    """Ids embed the seed; at the largest seed every id still parses under DEFAULT_LIMITS."""
    (request,) = list(simulate(1, 1, MAX_SEED))
    assert (
        request_from_json(json.loads(canonical_json(simulated_request_to_json(request)))) == request
    )
    assert request.cases[0].case_id == "SIM-18446744073709551615-000000"


def test_a_start_without_offset_is_refused() -> None:
    """A naive `start` is refused: instants in caseroute always carry a UTC offset."""
    with pytest.raises(ValueError, match="UTC offset") as raised:
        simulate(1, 1, 1, start=datetime(2026, 11, 21, 7, 0))  # noqa: DTZ001 - the point
    assert str(raised.value) == "start must carry a UTC offset, e.g. 2026-11-21T07:00:00Z"


def test_a_bad_line_names_each_field_path() -> None:
    """request_from_json collects every problem with its path: unknown key, now, a case field."""
    data = simulated_request_to_json(TRAFFIC[0])
    data["now"] = "yesterday"
    data["case"]["intent"] = "clinicl"
    data["extra"] = 1
    with pytest.raises(RequestError) as raised:
        request_from_json(data)
    assert [v.field for v in raised.value.violations] == ["extra", "now", "case.intent"]
    assert raised.value.violations[0] == FieldViolation(
        "extra",
        "unknown field (allowed: request_id, ruleset, case, cases, roster, now, explanation_level, "
        "roster_sha256)",
    )
