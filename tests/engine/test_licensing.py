from datetime import date

from caseroute.domain.roster import Licence
from caseroute.domain.territory import iso_within
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays
from caseroute.rules.model import Compact, CompactMember

NLC = Compact(
    "NLC",
    frozenset({"RN", "LPN"}),
    (
        CompactMember("US-TX", date(2018, 1, 19)),
        CompactMember("US-FL", date(2018, 1, 19)),
        CompactMember("US-PA", date(2025, 7, 7)),
        CompactMember("US-ZZ", date(2018, 1, 19), until=date(2024, 12, 31)),
    ),
)
DAY = date(2026, 11, 21)


def _valid(licence: Licence, where: str, day: date = DAY) -> tuple[bool, str]:
    days = LocalDays.single(day)
    return licence_valid_at(licence, where, days, CompactView.on((NLC,), days))


def test_jurisdiction_containment() -> None:
    """A UK-wide registration covers each nation; a state covers only itself."""
    assert iso_within("GB", "GB-ENG")
    assert iso_within("US-TX", "US-TX")
    assert not iso_within("US-T", "US-TX")
    assert _valid(Licence("RN", "GB", date(2030, 1, 1)), "GB-SCT")[0]


def test_multistate_rn_valid_in_other_member_states() -> None:
    """A multistate RN from a member state practises in another member state."""
    assert _valid(Licence("RN", "US-FL", date(2030, 1, 1), multistate=True), "US-TX") == (
        True,
        "RN US-FL multistate via NLC",
    )


def test_compact_does_not_cover_aprn_single_state_or_non_members() -> None:
    """Not APRNs, not single-state licences, not non-member patient locations."""
    assert _valid(Licence("APRN", "US-FL", date(2030, 1, 1), multistate=True), "US-TX") == (
        False,
        "APRN US-FL (APRN not covered by NLC)",
    )
    assert _valid(Licence("RN", "US-FL", date(2030, 1, 1)), "US-TX") == (
        False,
        "RN US-FL (single-state)",
    )
    assert _valid(Licence("RN", "US-FL", date(2030, 1, 1), multistate=True), "US-CA") == (
        False,
        "RN US-FL (US-CA not in NLC)",
    )


def test_membership_is_dated() -> None:
    """Pennsylvania counts only from its start date; a member that left stops counting."""
    rn = Licence("RN", "US-TX", date(2030, 1, 1), multistate=True)
    assert not _valid(rn, "US-PA", date(2025, 7, 6))[0]
    assert _valid(rn, "US-PA", date(2025, 7, 7))[0]
    assert _valid(
        Licence("RN", "US-ZZ", date(2030, 1, 1), multistate=True), "US-TX", date(2024, 12, 31)
    )[0]
    assert not _valid(Licence("RN", "US-ZZ", date(2030, 1, 1), multistate=True), "US-TX")[0]


def test_expiry_is_inclusive() -> None:
    """A licence is valid on its expiry date and not the day after."""
    rn = Licence("RN", "US-TX", DAY)
    assert _valid(rn, "US-TX")[0]
    assert _valid(rn, "US-TX", date(2026, 11, 22)) == (False, "RN US-TX expired 2026-11-21")


def test_a_country_wide_us_or_canadian_licence_is_valid_nowhere() -> None:
    """R31a F5: a "US" licence covered every state, skipping compacts and the APRN rule.

    US states and Canadian provinces license; a licence recorded against the country is data
    no board issues, so it admits no one (a GB registration still covers each nation).
    """
    for jurisdiction, where in (("US", "US-CA"), ("US", "US-TX"), ("US", "US"), ("CA", "CA-ON")):
        for multistate in (False, True):
            valid, note = _valid(
                Licence("RN", jurisdiction, date(2030, 1, 1), multistate=multistate), where
            )
            expected = (
                f"RN {jurisdiction} (no country-wide licence: {jurisdiction} licenses by state "
                "or province; record the issuing one)"
            )
            assert (valid, note) == (False, expected)
    assert _valid(Licence("RN", "GB", date(2030, 1, 1)), "GB-WLS") == (True, "RN GB")


def test_no_compact_grants_a_licence_for_a_whole_us_or_canadian_location() -> None:
    """M5: a code-built compact listing ``US`` licensed a patient located only as ``US``.

    Where states or provinces license, a location without one names no board, so no compact
    can cover it, whatever the compact's members say (the schema refuses such a member; this
    holds for rulesets built in code too).
    """
    coarse = Compact(
        "NLC",
        frozenset({"RN"}),
        (
            CompactMember("US-TX", date(2018, 1, 19)),
            CompactMember("US", date(2018, 1, 19)),
            CompactMember("CA", date(2018, 1, 19)),
        ),
    )
    days = LocalDays.single(DAY)
    view = CompactView.on((coarse,), days)
    rn = Licence("RN", "US-TX", date(2030, 1, 1), multistate=True)
    for where in ("US", "CA"):
        assert licence_valid_at(rn, where, days, view) == (
            False,
            (
                f"RN US-TX (patient location {where} is a whole country, and {where} "
                "licenses by state or province: no compact covers it)"
            ),
        )
    assert licence_valid_at(rn, "US-TX", days, view) == (True, "RN US-TX")


def test_a_national_registration_outside_the_patients_location_is_not_called_single_state() -> None:
    """Only a US state's or Canadian province's licence is "single-state"; others name the gap.

    A UK-wide registration (``GB``) checked against a patient located as ``UK`` (not the ISO
    code), or one recorded for England checked in Scotland, was explained as
    ``RN GB (single-state)``: an auditor reads that the registration is limited to one state,
    when it does not cover the patient's location as written.
    """
    assert _valid(Licence("RN", "GB", date(2030, 1, 1)), "UK") == (
        False,
        "RN GB (does not cover UK)",
    )
    assert _valid(Licence("RN", "GB-ENG", date(2030, 1, 1)), "GB-SCT") == (
        False,
        "RN GB-ENG (does not cover GB-SCT)",
    )
    assert _valid(Licence("RN", "CA-ON", date(2030, 1, 1)), "CA-QC") == (
        False,
        "RN CA-ON (single-state)",
    )
