"""A register covering only part of its country: a GB pharmacist is not licensed in GB-NIR.

A licence recorded for ``GB`` covered every UK nation, which is right for nurses (NMC) and
doctors (GMC) but not pharmacists: the GPhC registers them for Great Britain only, and Northern
Ireland's pharmacists are registered by the PSNI. A ``pharmacist GB`` agent was assigned a
prescription enquiry from ``GB-NIR``. The ruleset now names the register (``registers``), and
a PSNI registration is recorded as ``GB-NIR``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from caseroute.domain.case import ContinuityReason, Intent, PreferredAgent
from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.domain.roster import Agent, Capacity, Licence
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays
from caseroute.rules.diff import ChangeKind, Section, diff_rulesets
from caseroute.rules.model import Register
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

GPHC = Register("GPhC", frozenset({"pharmacist"}), "GB", ("GB-ENG", "GB-SCT", "GB-WLS"))
LATER = date(2030, 1, 1)
REGISTERS = """\
registers:
  - name: GPhC
    licence_types: [pharmacist]
    jurisdiction: GB
    covers: [GB-WLS, GB-ENG, GB-SCT]
"""
HEADER = (
    MINIMAL_HEADER.replace(
        "licence: {clinical: [RN]}", "licence: {clinical: [RN], prescription: [pharmacist]}"
    )
    + REGISTERS
)
ROUTE = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, territory: false}}
"""


def _valid(licence: Licence, where: str) -> tuple[bool, str]:
    days = LocalDays.single(date(2026, 11, 21))
    return licence_valid_at(licence, where, days, CompactView.on((), days, (GPHC,)))


def test_a_gb_pharmacist_is_not_licensed_in_northern_ireland() -> None:
    """The note says which register and what it covers."""
    assert _valid(Licence("pharmacist", "GB", LATER), "GB-NIR") == (
        False,
        "pharmacist GB (GPhC registers pharmacist for GB-ENG, GB-SCT, GB-WLS only, not GB-NIR)",
    )


@pytest.mark.parametrize("where", ["GB-ENG", "GB-SCT", "GB-WLS", "GB-ENG-NW"])
def test_a_gb_pharmacist_is_licensed_in_great_britain(where: str) -> None:
    """England, Scotland, Wales and the places within them."""
    assert _valid(Licence("pharmacist", "GB", LATER), where) == (True, "pharmacist GB")


def test_a_patient_located_only_as_gb_may_be_in_northern_ireland() -> None:
    """Fail safe: the whole country is not within the register's remit."""
    assert not _valid(Licence("pharmacist", "GB", LATER), "GB")[0]


def test_a_psni_registration_recorded_as_gb_nir_covers_northern_ireland() -> None:
    """Northern Ireland's pharmacists: their own register, recorded under GB-NIR."""
    assert _valid(Licence("pharmacist", "GB-NIR", LATER), "GB-NIR") == (True, "pharmacist GB-NIR")
    assert not _valid(Licence("pharmacist", "GB-NIR", LATER), "GB-ENG")[0]


def test_a_uk_wide_registration_of_another_type_still_covers_northern_ireland() -> None:
    """NMC nurses are registered UK-wide: the register names only its own types."""
    assert _valid(Licence("RN", "GB", LATER), "GB-NIR") == (True, "RN GB")


def _decide_prescription(*agents: Agent, location: str = "GB-NIR") -> Decision:
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(ROUTE, HEADER)), EngineKind.PYTHON)
    case = make_case(intent=Intent.PRESCRIPTION, patient_location=location)
    return decide(case, make_roster(*agents), ruleset, NOW)


def test_a_gb_pharmacist_is_never_assigned_a_northern_ireland_prescription() -> None:
    """The decision queues, and the excluded agent's licence check says why."""
    gphc = make_agent("gphc", licences=(Licence("pharmacist", "GB", LATER),))
    decision = _decide_prescription(gphc)
    assert decision.outcome is Outcome.QUEUE
    matching = decision.explanation.matching
    assert matching is not None
    verdicts = matching.agents
    why = (
        "licence: needs pharmacist valid in GB-NIR, has pharmacist GB (GPhC registers "
        "pharmacist for GB-ENG, GB-SCT, GB-WLS only, not GB-NIR)"
    )
    assert [str(f) for f in verdicts[0].failures] == [why]


def test_a_northern_ireland_prescription_goes_to_the_psni_pharmacist() -> None:
    """With both on the roster, the GB-NIR registration takes it; in England, the GB one."""
    gphc = make_agent("a-gphc", licences=(Licence("pharmacist", "GB", LATER),))
    psni = make_agent("b-psni", licences=(Licence("pharmacist", "GB-NIR", LATER),))
    assert _decide_prescription(gphc, psni).agent_id == "b-psni"
    england = _decide_prescription(gphc, psni, location="GB-ENG")
    assert england.agent_id == "a-gphc"


@pytest.mark.parametrize("where", ["GB-KEN", "GB-LND", "GB-MAN", "GB-EDH", "GB-CRF"])
def test_a_gb_pharmacist_is_licensed_in_a_council_area_of_great_britain(where: str) -> None:
    """Kent, London, Manchester, Edinburgh, Cardiff lie within the register's nations (ISO)."""
    assert _valid(Licence("pharmacist", "GB", LATER), where) == (True, "pharmacist GB")


@pytest.mark.parametrize("where", ["GB-BFS", "GB-ABC", "GB-DRS"])
def test_a_gb_pharmacist_is_not_licensed_in_a_council_area_of_northern_ireland(where: str) -> None:
    """Belfast and the other Northern Ireland districts lie within GB-NIR: outside the GPhC."""
    assert _valid(Licence("pharmacist", "GB", LATER), where) == (
        False,
        f"pharmacist GB (GPhC registers pharmacist for GB-ENG, GB-SCT, GB-WLS only, not {where})",
    )


def test_a_kent_prescription_goes_to_the_gb_pharmacist_and_a_belfast_one_does_not() -> None:
    """Decided end to end: GB-KEN is assigned, GB-BFS queues for nobody (fail safe)."""
    gphc = make_agent("gphc", licences=(Licence("pharmacist", "GB", LATER),))
    kent = _decide_prescription(gphc, location="GB-KEN")
    belfast = _decide_prescription(gphc, location="GB-BFS")
    assert (kent.outcome, kent.agent_id, belfast.outcome) == (
        Outcome.ASSIGN,
        "gphc",
        Outcome.QUEUE,
    )


@pytest.mark.parametrize("where", ["GB-BFS", "GB-ABC", "GB-DRS"])
def test_a_psni_registration_covers_the_districts_of_northern_ireland(where: str) -> None:
    """A licence recorded as GB-NIR covers Belfast and NI's other districts (ISO 3166-2)."""
    assert _valid(Licence("pharmacist", "GB-NIR", LATER), where) == (True, "pharmacist GB-NIR")


@pytest.mark.parametrize(
    ("jurisdiction", "where"),
    [("GB-NIR", "GB-KEN"), ("GB-SCT", "GB-CRF"), ("GB-ENG", "GB-EDH"), ("GB-WLS", "GB-BFS")],
)
def test_a_nation_s_licence_never_covers_another_nation_s_council_area(
    jurisdiction: str, where: str
) -> None:
    """ISO parents widen a licence only to what lies within its own nation (fail safe)."""
    assert not _valid(Licence("RN", jurisdiction, LATER), where)[0]


def test_a_belfast_prescription_goes_to_the_psni_pharmacist() -> None:
    """Decided end to end: GB-BFS is assigned to the GB-NIR registration, never the GB one."""
    gphc = make_agent("a-gphc", licences=(Licence("pharmacist", "GB", LATER),))
    psni = make_agent("b-psni", licences=(Licence("pharmacist", "GB-NIR", LATER),))
    belfast = _decide_prescription(gphc, psni, location="GB-BFS")
    assert (belfast.outcome, belfast.agent_id) == (Outcome.ASSIGN, "b-psni")


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_scottish_registration_covers_edinburgh_in_both_engines(kind: EngineKind) -> None:
    """An RN recorded as GB-SCT is assigned a clinical case in GB-EDH by either engine."""
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(ROUTE, HEADER)), kind)
    nurse = make_agent("scot", licences=(Licence("RN", "GB-SCT", LATER),))
    case = make_case(intent=Intent.CLINICAL, patient_location="GB-EDH")
    decision = decide(case, make_roster(nurse), ruleset, NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "scot")


def test_a_ruleset_area_never_widens_a_register() -> None:
    """`areas` placing a Belfast code within England still leaves a GB pharmacist out of it."""
    header = HEADER + "areas:\n  BFS_LOCAL: GB-ENG\n"
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(ROUTE, header)), EngineKind.PYTHON)
    gphc = make_agent("gphc", licences=(Licence("pharmacist", "GB", LATER),))
    case = make_case(intent=Intent.PRESCRIPTION, patient_location="GB-BFS", region="BFS_LOCAL")
    assert decide(case, make_roster(gphc), ruleset, NOW).outcome is Outcome.QUEUE


def _errors(error: RulesetError) -> list[Problem]:
    """The errors among a load's problems (the minimal header also draws warnings)."""
    return [p for p in error.problems if p.severity is Severity.ERROR]


@pytest.mark.parametrize(("country", "state"), [("US", "US-TX"), ("CA", "CA-ON")])
def test_a_register_of_a_country_whose_states_license_is_an_error(country: str, state: str) -> None:
    """`jurisdiction: US` can never apply (a US-wide licence is valid nowhere): one error there."""
    register = f"jurisdiction: {country}\n    covers: [{state}]"
    text = ruleset_with_rules(
        ROUTE, HEADER.replace("jurisdiction: GB\n    covers: [GB-WLS, GB-ENG, GB-SCT]", register)
    )
    assert register in text
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    errors = _errors(caught.value)
    assert [(p.code, p.line) for p in errors] == [
        ("schema.value", text.count("\n", 0, text.index(f"jurisdiction: {country}")) + 1)
    ]
    assert (
        f"register GPhC jurisdiction {country} is a whole country, and {country} licenses by "
        "state or province"
    ) in errors[0].message
    assert "remove the register" in errors[0].message


@pytest.mark.parametrize(("alias", "recorded"), [("UK", "GB"), ("PR", "US-PR")])
def test_a_register_under_a_code_no_licence_names_is_an_error(alias: str, recorded: str) -> None:
    """`jurisdiction: UK` never applied (licences name GB): one error, saying what to write."""
    register = f"jurisdiction: {alias}\n    covers: [{alias}-X]"
    text = ruleset_with_rules(
        ROUTE, HEADER.replace("jurisdiction: GB\n    covers: [GB-WLS, GB-ENG, GB-SCT]", register)
    )
    assert register in text
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    errors = _errors(caught.value)
    assert [(p.code, p.line) for p in errors] == [
        ("schema.value", text.count("\n", 0, text.index(f"jurisdiction: {alias}")) + 1)
    ]
    assert f"licences for that place name {recorded}" in errors[0].message
    assert errors[0].message.endswith(f"write {recorded}")


def test_a_register_of_a_nation_may_cover_its_iso_subdivisions() -> None:
    """`jurisdiction: GB-ENG, covers: [GB-KEN]` compiles: Kent lies within England by ISO."""
    text = ruleset_with_rules(
        ROUTE,
        HEADER.replace(
            "jurisdiction: GB\n    covers: [GB-WLS, GB-ENG, GB-SCT]",
            "jurisdiction: GB-ENG\n    covers: [GB-KEN]",
        ),
    )
    compiled = compile_text(text)
    (register,) = compiled.registers
    assert (register.jurisdiction, register.covers) == ("GB-ENG", ("GB-KEN",))
    ruleset = prepare_ruleset(compiled, EngineKind.PYTHON)
    agent = make_agent("eng", licences=(Licence("pharmacist", "GB-ENG", LATER),))
    outcomes = [
        decide(
            make_case(intent=Intent.PRESCRIPTION, patient_location=where),
            make_roster(agent),
            ruleset,
            NOW,
        ).outcome
        for where in ("GB-KEN", "GB-LND")
    ]
    assert outcomes == [Outcome.ASSIGN, Outcome.QUEUE]


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (
            "covers: [GB-ENG, US-TX]",
            "register GPhC covers US-TX, which is not a part of its jurisdiction GB",
        ),
        ("covers: [GB]", "register GPhC covers GB, which is not a part of its jurisdiction GB"),
        ("covers: []", "register GPhC covers is empty"),
    ],
)
def test_a_register_covers_only_parts_of_its_jurisdiction(register: str, message: str) -> None:
    """A part outside the jurisdiction, the jurisdiction itself, or nothing, is an error."""
    text = ruleset_with_rules(ROUTE, HEADER.replace("covers: [GB-WLS, GB-ENG, GB-SCT]", register))
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    assert [(p.code, message in p.message) for p in _errors(caught.value)] == [
        ("schema.value", True)
    ]


def test_a_licence_type_is_on_one_register_per_jurisdiction() -> None:
    """Two registers for pharmacists in GB would leave the remit to file order."""
    again = REGISTERS.replace("name: GPhC", "name: Other").replace("registers:\n", "")
    text = ruleset_with_rules(ROUTE, HEADER + again)
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    assert [p.code for p in _errors(caught.value)] == ["schema.value"]
    assert "on register GPhC" in _errors(caught.value)[0].message


def test_rules_diff_reports_a_register_change_at_its_line() -> None:
    """A register is hard-constraint data: adding or changing one is a semantic change."""
    without = compile_text(ruleset_with_rules(ROUTE, HEADER.replace(REGISTERS, "")), "old.yaml")
    with_it = compile_text(ruleset_with_rules(ROUTE, HEADER), "new.yaml")
    changes = diff_rulesets(without, with_it).changes
    line = HEADER.splitlines().index("  - name: GPhC") + 1
    assert [(c.section, c.kind, c.subject, c.location, c.semantic) for c in changes] == [
        (Section.METADATA, ChangeKind.CHANGED, "sha256", "", False),
        (Section.REGISTERS, ChangeKind.ADDED, "GPhC", f"new.yaml:{line}", True),
    ]


def test_a_register_name_is_used_once() -> None:
    """Two blocks named GPhC (in any letter case) are refused at the second's name."""
    again = (
        REGISTERS.replace("name: GPhC", "name: gphc")
        .replace("registers:\n", "")
        .replace("jurisdiction: GB", "jurisdiction: IE")
        .replace("[GB-WLS, GB-ENG, GB-SCT]", "[IE-D]")
    )
    with pytest.raises(RulesetError) as caught:
        compile_text(ruleset_with_rules(ROUTE, HEADER + again))
    assert [p.code for p in _errors(caught.value)] == ["schema.duplicate_name"]


# Both on one line: the duplicate checks compared lines, so these were never refused and the
# first register's remit (covering GB-NIR) won by file order.
TWO_ON_ONE_LINE = (
    "registers: [{name: A, licence_types: [pharmacist], jurisdiction: GB, covers: "
    "[GB-ENG, GB-NIR]}, {name: B, licence_types: [SECOND], jurisdiction: GB, covers: "
    "[GB-ENG]}]\n"
)


@pytest.mark.parametrize("second", ["pharmacist", "Pharmacist"])
def test_a_licence_type_on_two_registers_on_one_line_is_refused(second: str) -> None:
    """Flow style puts both registers on one line: still one register per type (any case)."""
    flow = TWO_ON_ONE_LINE.replace("SECOND", second)
    text = ruleset_with_rules(ROUTE, HEADER.replace(REGISTERS, flow))
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    assert [p.code for p in _errors(caught.value)] == ["schema.value"]


def test_a_register_name_used_twice_on_one_line_is_refused() -> None:
    """Flow style: two registers named GPhC on one line are still one name used twice."""
    flow = (
        "registers: [{name: GPhC, licence_types: [pharmacist], jurisdiction: GB, covers: "
        "[GB-ENG]}, {name: GPhC, licence_types: [RN], jurisdiction: IE, covers: [IE-D]}]\n"
    )
    with pytest.raises(RulesetError) as caught:
        compile_text(ruleset_with_rules(ROUTE, HEADER.replace(REGISTERS, flow)))
    assert [p.code for p in _errors(caught.value)] == ["schema.duplicate_name"]


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_hold_ends_when_the_only_licence_the_register_allows_lapses(kind: EngineKind) -> None:
    """A busy preferred pharmacist holds GB (GPhC) and GB-NIR (PSNI, ending 20 November).

    For a GB-NIR patient only the PSNI registration counts, so the hold ends when it lapses:
    at 23:00 UTC, when 20 November has ended at Belfast's greatest offset (UTC+1). Re-dating
    the need for the lapse dropped the registers whenever the ruleset had compacts, so the GB
    licence seemed to cover GB-NIR and the case stayed held for her to the ruleset's full hold.
    """
    header = (
        HEADER
        + """\
compacts:
  - name: NLC
    licence_types: [RN]
    members:
      - {jurisdiction: US-TX, since: 2018-01-19}
continuity:
  window: 365d
  hold: {routine: 15m}
"""
    )
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(ROUTE, header)), kind)
    lapses = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    now = lapses - timedelta(minutes=5)
    busy = make_agent(
        "pref",
        capacity=Capacity(5, 5),
        licences=(
            Licence("pharmacist", "GB", LATER),
            Licence("pharmacist", "GB-NIR", date(2026, 11, 20)),
        ),
    )
    other = make_agent("other", licences=(Licence("pharmacist", "GB-NIR", LATER),))
    prefs = (PreferredAgent("pref", ContinuityReason.PREVIOUS_CONTACT, now - timedelta(days=3)),)
    case = make_case(
        intent=Intent.PRESCRIPTION,
        patient_location="GB-NIR",
        created_at=now - timedelta(minutes=5),
        preferred_agents=prefs,
    )
    decision = decide(case, make_roster(busy, other), ruleset, now)
    assert (Outcome.QUEUE, lapses) == (decision.outcome, decision.held_for_preferred_until)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_register_spelt_in_another_letter_case_still_limits_the_licence(
    kind: EngineKind,
) -> None:
    """`Pharmacist` on the register, `pharmacist` in constraints: the register still applies.

    A register only ever takes coverage away, so reading its types in any letter case is the
    safe side; exact matching silently dropped the limit and assigned a GB-NIR prescription to
    a GB pharmacist.
    """
    header = HEADER.replace("licence_types: [pharmacist]", "licence_types: [Pharmacist]")
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(ROUTE, header)), kind)
    gphc = make_agent("gphc", licences=(Licence("pharmacist", "GB", LATER),))
    case = make_case(intent=Intent.PRESCRIPTION, patient_location="GB-NIR")
    decision = decide(case, make_roster(gphc), ruleset, NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.QUEUE, None)


def test_a_register_type_no_constraint_names_is_warned_about() -> None:
    """`pharmacst` limits no licence (only constraint types count): say so, at its line."""
    header = HEADER.replace("licence_types: [pharmacist]", "licence_types: [pharmacst]")
    compiled = compile_text(ruleset_with_rules(ROUTE, header))
    line = header.splitlines().index("    licence_types: [pharmacst]") + 1
    found = [
        (p.line, p.message) for p in compiled.warnings if p.code == "lint.register_type_unused"
    ]
    message = (
        "register GPhC lists licence type pharmacst, which no `constraints.licence` entry "
        "names (they name RN, pharmacist), so the register limits no licence; write the "
        "type as the constraint does"
    )
    assert found == [(line, message)]


def test_a_register_type_in_another_letter_case_is_not_warned_about() -> None:
    """`Pharmacist` limits `pharmacist` licences (types match in any case): nothing to warn."""
    header = HEADER.replace("licence_types: [pharmacist]", "licence_types: [Pharmacist]")
    compiled = compile_text(ruleset_with_rules(ROUTE, header))
    assert [p for p in compiled.warnings if p.code == "lint.register_type_unused"] == []


def test_a_register_with_a_bad_jurisdiction_is_one_error_not_one_per_part() -> None:
    """`jurisdiction: gb!` is refused once; its parts are not judged against it too."""
    text = ruleset_with_rules(ROUTE, HEADER.replace("jurisdiction: GB\n", "jurisdiction: gb!\n"))
    with pytest.raises(RulesetError) as caught:
        compile_text(text)
    errors = _errors(caught.value)
    assert [p.code for p in errors] == ["schema.format"]  # the jurisdiction's, alone
    assert "jurisdiction" in errors[0].message
