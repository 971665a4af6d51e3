from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from caseroute.domain.case import Intent
from caseroute.domain.roster import AgentStatus, Capacity, Licence, Role
from caseroute.engine.matching import MissingDataError, build_need, check_agent, match_agents
from caseroute.rules.model import Requirements
from caseroute.testing import (
    NOW,
    make_agent,
    make_case,
    make_roster,
    reference_compiled,
    skill,
)

RULESET = reference_compiled()


def _checks(
    agent_kwargs: Mapping[str, Any], req: Requirements | None = None, **case_kwargs: object
) -> list[str]:
    need = build_need(make_case(**case_kwargs), req or Requirements(), RULESET, NOW)
    return [f.check for f in check_agent(need, make_agent(**agent_kwargs))]


def test_an_agent_failing_everything_lists_every_check() -> None:
    """Each failed check is reported, in a stable order, not just the first."""
    agent = {
        "status": AgentStatus.AWAY,
        "role": Role.AGENT,
        "licences": (),
        "territories": frozenset({"US-CA"}),
        "skills": {},
        "languages": frozenset({"fr"}),
        "capacity": Capacity(2, 2),
    }
    assert _checks(
        agent,
        Requirements(roles=(Role.SENIOR,)),
        preferred_language="en",
        required_skills=(skill("clinical-triage", 2),),
    ) == ["status", "role", "licence", "territory", "skills", "language", "capacity"]


def test_failures_state_expected_and_actual() -> None:
    """The explanation text names what was needed and what the agent had."""
    need = build_need(
        make_case(required_skills=(skill("clinical-triage", 4),)), Requirements(), RULESET, NOW
    )
    failures = check_agent(
        need,
        make_agent(
            licences=(Licence("RN", "US-CA", date(2030, 1, 1)),), skills={"clinical-triage": 2}
        ),
    )
    assert [str(f) for f in failures] == [
        "licence: needs RN valid in US-TX, has RN US-CA (single-state)",
        "skills: needs clinical-triage >= 4, has clinical-triage 2",
    ]


def test_rules_cannot_relax_the_licence_constraint() -> None:
    """A route asking for no licence (or a wider set) still needs the intent's licence type."""
    lpn = {"licences": (Licence("LPN", "US-TX", date(2030, 1, 1)),)}
    assert _checks(lpn, Requirements(licence_types=None)) == ["licence"]
    assert _checks(lpn, Requirements(licence_types=("LPN", "RN"))) == ["licence"]
    assert _checks(lpn, Requirements(), intent=Intent.BILLING) == []


def test_consent_flag_blocks_every_agent() -> None:
    """consent_missing is a hard constraint: nobody is eligible."""
    assert _checks({}, flags=frozenset({"consent_missing"})) == ["consent"]


def test_missing_location_or_region_is_a_data_problem() -> None:
    """A licence without a location (or territory without a region) cannot be checked."""
    with pytest.raises(MissingDataError) as exc:
        build_need(make_case(patient_location=None), Requirements(), RULESET, NOW)
    assert exc.value.reason == "missing_patient_location"
    with pytest.raises(MissingDataError) as exc2:
        build_need(make_case(intent=Intent.BILLING, region=None), Requirements(), RULESET, NOW)
    assert exc2.value.reason == "missing_region"


@pytest.mark.parametrize(("location", "example"), [("US", "US-TX"), ("CA", "CA-ON")])
def test_a_whole_country_that_licenses_by_state_is_too_coarse_a_location(
    location: str, example: str
) -> None:
    """L5: `US` alone names no licensing board, so a licensed intent cannot be checked there."""
    with pytest.raises(MissingDataError) as exc:
        build_need(make_case(patient_location=location), Requirements(), RULESET, NOW)
    assert (exc.value.reason, exc.value.detail) == (
        "patient_location_too_coarse",
        (
            f"case.patient_location is {location}, a whole country, and {location} licenses "
            "by state or province, so the licence this case needs (RN) cannot be checked; "
            f"send the patient's state or province at the time of service (e.g. {example})"
        ),
    )


def test_a_country_location_is_fine_where_it_licenses_or_no_licence_is_needed() -> None:
    """`GB` registers UK-wide, and a billing case needs no licence: neither is too coarse."""
    assert build_need(make_case(patient_location="GB"), Requirements(), RULESET, NOW).location == (
        "GB"
    )
    billing = make_case(intent=Intent.BILLING, patient_location="US")
    assert build_need(billing, Requirements(), RULESET, NOW).licence_types is None


def test_territory_codes_cover_sub_codes_and_language_matches_primary_tag() -> None:
    """`US` covers `US-TX`; an `en` speaker serves `en-GB`."""
    assert (
        _checks(
            {"territories": frozenset({"US"}), "languages": frozenset({"en-us"})},
            preferred_language="en-gb",
        )
        == []
    )


def test_counts_without_detail() -> None:
    """With detail off, verdicts are dropped but counts per failed check remain."""
    need = build_need(make_case(), Requirements(), RULESET, NOW)
    agents = (
        make_agent("a"),
        make_agent("b", capacity=Capacity(1, 1)),
        make_agent("c", status=AgentStatus.OFFLINE, capacity=Capacity(1, 1)),
    )
    result = match_agents(need, make_roster(*agents), detail=False)
    assert [a.agent_id for a in result.eligible] == ["a"]
    assert result.verdicts == ()
    assert result.exclusion_counts == (("status", 1), ("capacity", 2))


@pytest.mark.parametrize(
    ("location", "named"), [("PR", "US-PR"), ("GU", "US-GU"), ("VI", "US-VI"), ("UK", "GB")]
)
def test_a_code_no_licence_names_is_refused_with_the_one_they_do(location: str, named: str) -> None:
    """`PR` is Puerto Rico, but its licences are `US-PR`: the case queued for nobody (stop 38)."""
    with pytest.raises(MissingDataError) as exc:
        build_need(make_case(patient_location=location), Requirements(), RULESET, NOW)
    assert (exc.value.reason, exc.value.detail) == (
        "patient_location_not_licensing_code",
        (
            f"case.patient_location is {location}, which licences name as {named}, so the "
            f"licence this case needs (RN) cannot be checked against it; send {named}"
        ),
    )


def test_an_unlicensed_intent_located_by_such_a_code_is_routed() -> None:
    """Only a licence check needs the licensing code: a billing case in `UK` routes as before."""
    need = build_need(
        make_case(intent=Intent.BILLING, patient_location="UK"), Requirements(), RULESET, NOW
    )
    assert need.location == "UK"
