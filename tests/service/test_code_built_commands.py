"""A command built in Python code means what the same case sent over a transport means.

The transports build cases with the strict parsers, which normalise flags (``" Safeguarding"``
is the safeguarding flag) and refuse what the engine must never see. RoutingCore took a
code-built ``Case`` as it came: a flag spelt ``"Safeguarding"`` was not the safeguarding flag,
and the case was ASSIGNED where every transport escalates (the non-negotiable "no spelling or
whitespace turns a flagged case into an assignment"); a lone surrogate raised
UnicodeEncodeError out of ``decide`` (review R28b, N2).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseroute.domain.case import (
    Case,
    Intent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Urgency,
)
from caseroute.domain.code_built import checked_roster
from caseroute.domain.codec import parse_case
from caseroute.domain.decision import Outcome
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import case_to_dict, fingerprint_roster
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import Capacity, Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.engine.case_rules import EngineKind
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import (
    NOW,
    audit_config,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)

_T = TypeVar("_T")

_TIGHT = InputLimits(max_batch_cases=3)

ROSTER = make_roster(*(make_agent(f"a{i}", capacity=Capacity(max=5, active=0)) for i in range(3)))

SPELLINGS = [
    "Safeguarding",
    " safeguarding",
    "safeguarding\n",
    "SAFEGUARDING",
    "\uff53\uff41\uff46\uff45\uff47\uff55\uff41\uff52\uff44\uff49\uff4e\uff47",  # fullwidth
]


@pytest.fixture
def core(tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the reference ruleset and a fresh SQLite decision log."""
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    routing = audited_core(registry, tmp_path)
    yield routing
    routing.audit.close()
    registry.close()


def _with(value: _T, **fields: Any) -> _T:
    """``value`` with fields of any type: what a caller's code can build (mypy would refuse)."""
    return dataclasses.replace(value, **fields)  # type: ignore[type-var]


def _decide(core: RoutingCore, *cases: Case, roster: Roster = ROSTER, request: str = "r1") -> Any:
    return core.decide(DecideCommand(request, "", "", cases, roster, NOW, batch=len(cases) > 1))


def _violations(core: RoutingCore, *cases: Case, roster: Roster = ROSTER) -> list[FieldViolation]:
    with pytest.raises(RequestError) as caught:
        _decide(core, *cases, roster=roster)
    return list(caught.value.violations)


@pytest.mark.parametrize("flag", SPELLINGS)
def test_a_safeguarding_flag_spelt_otherwise_escalates(core: RoutingCore, flag: str) -> None:
    """Every spelling the parser normalises escalates to the safeguarding queue (was ASSIGN)."""
    (decision,) = _decide(core, make_case(flags=frozenset({flag}))).decisions
    assert (decision.outcome, decision.queue, decision.agent_id) == (
        Outcome.ESCALATE,
        "safeguarding",
        None,
    )


@pytest.mark.parametrize("flag", ["Consent_Missing", " consent-missing", "CONSENT_MISSING"])
def test_a_consent_flag_spelt_otherwise_is_never_assigned(core: RoutingCore, flag: str) -> None:
    """The consent flag forbids any assignment however it is spelt (was ASSIGN)."""
    (decision,) = _decide(core, make_case(flags=frozenset({flag}))).decisions
    assert (decision.outcome != Outcome.ASSIGN, decision.agent_id) == (True, None)


def test_the_log_records_the_flag_as_the_parser_reads_it(core: RoutingCore) -> None:
    """The recorded input holds ``safeguarding``: replay parses it to the same decision."""
    _decide(core, make_case(flags=frozenset({" Safeguarding ", "VIP"})))
    (record,) = list(core.audit.records())
    assert record.input["case"]["flags"] == ["safeguarding", "vip"]


_FLAG_TEXT = st.text(alphabet=st.sampled_from("safeguardingSAFEGUARDING _-\t"), max_size=16)


def _parsed_or_refusal(case: Case) -> Case | list[FieldViolation]:
    """The case a transport would build from the JSON form of ``case``, or its refusal."""
    try:
        return parse_case(json.loads(json.dumps(case_to_dict(case))))
    except RequestError as refused:
        return list(refused.violations)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flag=_FLAG_TEXT)
def test_a_code_built_case_decides_as_its_json_form_does(core: RoutingCore, flag: str) -> None:
    """Whatever the flag's spelling: the JSON form's outcome, or the parser's refusal."""
    case = make_case(flags=frozenset({flag}))
    sent = _parsed_or_refusal(case)
    if isinstance(sent, list):
        assert _violations(core, case) == sent
        return
    request = f"r-{flag.encode().hex()}"
    (built,) = _decide(core, case, request=request).decisions
    wire = DecideCommand(request + "-wire", "", "", (sent,), ROSTER, NOW, parsed=True)
    (parsed,) = core.decide(wire).decisions
    assert (built.outcome, built.queue, built.agent_id) == (
        parsed.outcome,
        parsed.queue,
        parsed.agent_id,
    )


def test_a_lone_surrogate_is_a_request_error_naming_the_field(core: RoutingCore) -> None:
    """It raised UnicodeEncodeError out of decide (nothing was recorded, but the call crashed)."""
    violations = _violations(core, make_case(attributes={"note": "\ud800"}))
    assert [v.field for v in violations] == ["case.attributes.note"]
    assert "unpaired surrogate" in violations[0].message
    assert list(core.audit.records()) == []


def test_int_attribute_keys_are_refused_naming_each(core: RoutingCore) -> None:
    """``AttributeValue`` maps names (str) to scalars; the parser refuses other names."""
    case = make_case(attributes={10: "x", 9: "y"})  # ints: not the declared str
    assert sorted(v.field for v in _violations(core, case)) == [
        "case.attributes.10",
        "case.attributes.9",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("flags", "safeguarding"),  # ("safeguarding") without its comma
        ("flags", b"safeguarding"),
        ("declined_agents", "a0"),
        ("required_skills", RequiredSkill("triage", 1)),
    ],
)
def test_a_str_or_item_where_a_collection_goes_is_refused(
    core: RoutingCore, field: str, value: object
) -> None:
    """Not read one character at a time (review R29 F1).

    ``flags="safeguarding"`` was ASSIGNED: the encoding made it the flags ``a, d, e, f, ...``
    (before the parser was used, the engine's ``in`` found the substring), and
    ``declined_agents="a0"`` offered the case to a0.
    """
    case = _with(make_case(), **{field: value})
    *notice, violation = _violations(core, case)
    assert violation.field == f"case.{field}"
    assert violation.message.startswith("must be a ")
    assert list(core.audit.records()) == []
    # the plain safeguarding notice first when the refused case carries the flag (R29b F5)
    assert [(v.field, v.message) for v in notice] == (
        [("case.flags", SAFEGUARDING_NOTICE)] if value == "safeguarding" else []
    )


def test_a_one_element_set_is_still_a_set(core: RoutingCore) -> None:
    """The control: a set, a frozenset or a tuple of one flag all escalate."""
    for n, flags in enumerate(({"safeguarding"}, frozenset({"safeguarding"}), ("safeguarding",))):
        case = _with(make_case(), flags=flags)
        (decision,) = _decide(core, case, request=f"r{n}").decisions
        assert decision.outcome == Outcome.ESCALATE


def test_a_frozenset_of_a_string_is_refused_not_assigned(core: RoutingCore) -> None:
    """``frozenset("safeguarding")`` is letters, no flag: refused at case.flags[i] (was ASSIGN)."""
    violations = _violations(core, make_case(flags=frozenset("safeguarding")))
    assert (violations[0].field, violations[0].message.split(";")[0]) == (
        "case.flags[0]",
        "'a' is a one-character flag",
    )
    assert 'not frozenset("safeguarding")' in violations[0].message
    assert list(core.audit.records()) == []


NAIVE = datetime(2026, 11, 21, 9, 50)  # noqa: DTZ001 - the point


@pytest.mark.parametrize(
    ("path", "build"),
    [
        ("case.created_at", lambda: make_case(created_at=NAIVE)),
        ("case.waiting_since", lambda: make_case(waiting_since=NAIVE)),
        ("case.sentiment[0].at", lambda: make_case(sentiment=(SentimentReading(-0.5, NAIVE),))),
        (
            "case.sla_clocks[0].deadline",
            lambda: make_case(sla_clocks=(SlaClock("rtt", NOW - timedelta(days=1), NAIVE),)),
        ),
    ],
)
def test_a_naive_instant_anywhere_in_a_case_is_refused(
    core: RoutingCore, path: str, build: Callable[[], Case]
) -> None:
    """Refused naming the field, not read in the host's local zone (review R29 F2).

    A breached SLA was recorded 8 hours later under TZ=America/Los_Angeles, and the first
    version's own test passed only because the local reading put ``created_at`` after ``now``.
    """
    violations = _violations(core, build())
    assert [(v.field, v.message) for v in violations] == [
        (path, "must carry a UTC offset (it is a naive datetime)")
    ]


def test_a_naive_instant_in_a_roster_is_refused(core: RoutingCore) -> None:
    """The snapshot's instant and an agent's last assignment alike."""
    agent = make_agent("a1", last_assigned_at=NAIVE)
    roster = Roster("snap", NAIVE, (agent,))
    assert [v.field for v in _violations(core, make_case(), roster=roster)] == [
        "roster.taken_at",
        "roster.agents[0].last_assigned_at",
    ]


def test_a_plain_string_where_an_enum_goes_is_refused_naming_the_member(
    core: RoutingCore,
) -> None:
    """``channel="phone"`` crashed with AttributeError before; now it names the enum."""
    case = _with(make_case(), channel="phone")
    agent = _with(make_agent("a1"), status="available")
    (first, second) = _violations(core, case, roster=make_roster(agent))
    assert (first.field, second.field) == ("case.channel", "roster.agents[0].status")
    assert first.message.startswith("must be a Channel member (e.g. Channel.")
    assert "got str" in first.message


class _Refusing(str):
    """A flag whose comparison raises: the caller's own object, refused, never raised."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("comparison refused")


def test_a_value_whose_own_method_raises_is_a_request_error(core: RoutingCore) -> None:
    """Any exception of the caller's objects is a RequestError (a RuntimeError escaped)."""
    case = _with(make_case(), flags=frozenset({_Refusing("a"), _Refusing("b")}))
    (violation,) = _violations(core, case)
    assert (violation.field, "RuntimeError" in violation.message) == ("case", True)


def test_a_field_of_the_wrong_type_is_refused_without_quoting_it(core: RoutingCore) -> None:
    """``attributes=None``: one violation naming the field and the type, not the value."""
    case = _with(make_case(), attributes=None)
    (violation,) = _violations(core, case)
    assert violation.field == "case.attributes"
    assert violation.message.startswith("must be a dict, got NoneType; build it")


def test_a_batch_names_each_case_and_the_roster_together(core: RoutingCore) -> None:
    """``cases[1]`` and a repeated agent id in one RequestError, as the converters word them."""
    roster = make_roster(make_agent("a1"), make_agent("a2"), make_agent("a1"))
    good = make_case(case_id="C1")
    bad = make_case(case_id="C2", intent=Intent.GENERAL, urgency=Urgency.ROUTINE, region=" ")
    paths = [v.field for v in _violations(core, good, bad, roster=roster)]
    assert paths == ["cases[1].region", "roster.agents[2].agent_id"]


def test_a_parsed_command_is_not_parsed_again(
    core: RoutingCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the transports build (``parsed=True``) pays nothing: the check is never called."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a parsed command was parsed again")

    monkeypatch.setattr("caseroute.service.command_check.checked_case", refuse)
    monkeypatch.setattr("caseroute.service.command_check.checked_roster", refuse)
    monkeypatch.setattr("caseroute.service.routing.parsed_command", refuse)
    command = DecideCommand("r1", "", "", (make_case(),), ROSTER, NOW, parsed=True)
    (decision,) = core.decide(command).decisions
    assert decision.outcome == Outcome.ASSIGN


def test_a_retry_of_a_code_built_command_is_answered_from_the_log(core: RoutingCore) -> None:
    """The request hash is taken over the parsed values, so the retry matches its record."""
    case = make_case(flags=frozenset({"Vip"}))
    first = _decide(core, case)
    again = _decide(core, case)
    assert (again.replayed, again.decisions) == (True, first.decisions)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("request_id", None, "must be a str, got NoneType"),
        ("request_id", b"r1", "must be a str, got bytes"),
        ("request_id", "r\ud800", "must be valid Unicode text (it holds an unpaired surrogate)"),
        ("ruleset_name", "\ud800", "must be valid Unicode text (it holds an unpaired surrogate)"),
        ("ruleset_version", None, "must be a str, got NoneType"),
        ("caller", None, "must be a str, got NoneType"),
        ("caller", 7, "must be a str, got int"),
        ("agent_detail", "no", "must be a bool, got str"),
        ("now", "2026-11-21T10:00:00Z", "must be a datetime or None, got str"),
        ("cases", make_case(), "must be a tuple of Case, got Case"),
        ("roster", {"agents": []}, "must be a Roster, got dict"),
    ],
)
def test_a_command_field_of_the_wrong_type_is_a_request_error(
    core: RoutingCore, field: str, value: object, message: str
) -> None:
    """One violation naming the field; nothing recorded, health unchanged (review R29 F3).

    These raised TypeError, AttributeError or UnicodeEncodeError; a ``caller`` of None failed
    the log's write (health NOT_SERVING), one of 7 was recorded and then failed ``audit verify``.
    """
    command = _with(DecideCommand("r1", "", "", (make_case(),), ROSTER, NOW), **{field: value})
    with pytest.raises(RequestError) as caught:
        core.decide(command)
    assert [(v.field, v.message) for v in caught.value.violations] == [(field, message)]
    assert (list(core.audit.records()), core.audit_writable) == ([], True)


def test_a_naive_now_is_refused_as_a_transports_is(core: RoutingCore) -> None:
    """The command's ``now`` without an offset: the same words as any transport's."""
    command = DecideCommand("r1", "", "", (make_case(),), ROSTER, NAIVE)
    assert [(v.field, v.message) for v in _command_violations(core, command)] == [
        ("now", "must carry a UTC offset")
    ]


def _command_violations(core: RoutingCore, command: DecideCommand) -> list[FieldViolation]:
    with pytest.raises(RequestError) as caught:
        core.decide(command)
    return list(caught.value.violations)


def test_a_stale_roster_fingerprint_is_not_trusted(core: RoutingCore) -> None:
    """A code-built command's ``roster_fingerprint`` is derived data it may have got wrong.

    The core takes the parsed roster's own: the record names the roster decided on, and a
    retry without the stale fingerprint still matches it (review R29 F8).
    """
    other = make_roster(make_agent("zz"))
    stale = fingerprint_roster(other)
    command = DecideCommand("r1", "", "", (make_case(),), ROSTER, NOW, roster_fingerprint=stale)
    first = core.decide(command)
    (record,) = list(core.audit.records())
    assert record.input["roster"]["sha256"] == fingerprint_roster(ROSTER).sha256
    again = core.decide(DecideCommand("r1", "", "", (make_case(),), ROSTER, NOW))
    assert (again.replayed, again.decisions) == (True, first.decisions)


def _refuse_walking(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a case or agent was walked before the sizes were checked")

    monkeypatch.setattr("caseroute.domain.code_built.shape_violations", refuse)
    monkeypatch.setattr("caseroute.service.command_check.checked_case", refuse)


def test_a_batch_over_the_limits_is_refused_before_any_case_is_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizes first, as the transports do.

    Review R29b: 5,000 code-built cases x 10,000 agents were each walked and parsed (0.5 s)
    before the batch limit refused them.
    """
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    config = audit_config(tmp_path)
    core = RoutingCore(registry, config.open_store(), config.masker(), limits=_TIGHT)
    _refuse_walking(monkeypatch)
    cases = tuple(make_case(case_id=f"C{i}") for i in range(4))
    try:
        command = DecideCommand("r1", "", "", cases, ROSTER, NOW, batch=True)
        assert [v.field for v in _command_violations(core, command)] == ["cases"]
    finally:
        core.audit.close()
        registry.close()


def test_a_roster_over_max_agents_is_refused_before_any_agent_is_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parser's words, naming ``roster.agents``, before the shape walk."""
    _refuse_walking(monkeypatch)
    with pytest.raises(RequestError) as caught:
        checked_roster(ROSTER, limits=InputLimits(max_agents=2))
    assert [(v.field, v.message) for v in caught.value.violations] == [
        (
            "roster.agents",
            (
                "has 3 agents; the limit is 2 (configurable: --max-agents): split the roster by "
                "team or territory"
            ),
        )
    ]


@pytest.mark.parametrize(
    "flags",
    [
        frozenset({"Safeguarding", 1}),  # unsortable: refused by the encoding
        ("safeguarding",),
    ],
)
def test_a_flagged_case_refused_before_parsing_gets_the_notice_first(
    core: RoutingCore, flags: object
) -> None:
    """The plain notice an orchestrator alerts a human on, as the parser gives (R29b F5).

    A flagged case with a plain-string channel or a naive instant was refused without it.
    """
    case = _with(make_case(), flags=flags, channel="phone", created_at=NAIVE)
    first, *rest = _violations(core, case)
    assert (first.field, first.message) == ("case.flags", SAFEGUARDING_NOTICE)
    assert rest


def test_a_set_view_of_flags_is_a_set(core: RoutingCore) -> None:
    """``flags=active.keys()`` (a ``collections.abc.Set``): read as the set it is (R29b F4)."""
    active = {"safeguarding": True}
    (decision,) = _decide(core, _with(make_case(), flags=active.keys())).decisions
    assert decision.outcome == Outcome.ESCALATE


class _Text(str):
    """A caller's own ``str`` subclass."""

    __slots__ = ()


def test_a_str_subclass_in_the_envelope_is_taken_as_its_text(core: RoutingCore) -> None:
    """Accepted as a case's strings are, and recorded as plain text (R29b F4)."""
    command = DecideCommand(_Text("r1"), "", "", (make_case(),), ROSTER, NOW, caller=_Text("svc"))
    core.decide(command)
    (record,) = list(core.audit.records())
    assert (record.request_id, type(record.caller)) == ("r1", str)


@pytest.mark.parametrize(
    ("field", "value", "path", "message"),
    [
        (
            "created_at",
            "2026-11-21T09:55:00Z",
            "case.created_at",
            "must be a datetime with a UTC offset, got str",
        ),
        (
            "required_skills",
            ("clinical-triage",),
            "case.required_skills[0]",
            "must be a RequiredSkill, got str",
        ),
    ],
)
def test_a_value_of_another_kind_is_named_at_its_path(
    core: RoutingCore, field: str, value: object, path: str, message: str
) -> None:
    """Text for an instant, a name for a skill: named where they are (mutants R29b F8 kept)."""
    (violation,) = _violations(core, _with(make_case(), **{field: value}))
    assert (violation.field, violation.message.split(";")[0]) == (path, message)


class _Exploding(tuple[object, ...]):
    """A tuple whose iteration raises: the caller's own code."""

    __slots__ = ()

    def __iter__(self) -> Iterator[object]:
        raise RuntimeError("not today")


def test_a_case_whose_field_raises_when_read_is_a_request_error(core: RoutingCore) -> None:
    """The walk's catch-all: one violation naming the case, not the exception's text."""
    case = _with(make_case(), required_skills=_Exploding())
    (violation,) = _violations(core, case)
    assert violation.field == "case"
    assert violation.message.startswith("could not be read (one of its values raised)")
    assert "not today" not in violation.message


@pytest.mark.parametrize("expires_on", ["2030-01-01", NOW])
def test_a_licence_expiry_that_is_no_date_is_named(core: RoutingCore, expires_on: object) -> None:
    """Text, or a datetime where a date goes: named at the licence (it was ``roster``)."""
    (licence,) = make_agent("a1").licences
    agent = make_agent("a1", licences=(_with(licence, expires_on=expires_on),))
    (violation,) = _violations(core, make_case(), roster=make_roster(agent))
    assert violation.field == "roster.agents[0].licences[0].expires_on"
    assert violation.message.startswith("must be a date, got ")


class _FlagsRaise(Case):
    """A case whose ``flags`` attribute raises when read: the caller's own code."""

    @property
    def flags(self) -> frozenset[str]:
        raise RuntimeError("not today")


def _flags_raise() -> Case:
    """A ``_FlagsRaise`` holding ``make_case()``'s other fields (its __init__ would set flags)."""
    base = make_case()
    case = object.__new__(_FlagsRaise)
    for f in dataclasses.fields(Case):
        if f.name != "flags":
            object.__setattr__(case, f.name, getattr(base, f.name))
    return case


def test_flags_that_raise_when_read_give_no_notice_and_no_exception(core: RoutingCore) -> None:
    """The notice's own read of ``flags`` is guarded too (review R29c F1).

    Before 07d5e2f the caller's exception (and its text) escaped ``RoutingCore.decide``.
    """
    violations = _violations(core, _flags_raise())
    assert [v.field for v in violations] == ["case"]
    assert violations[0].message.startswith("could not be read (one of its values raised)")
    assert "not today" not in violations[0].message
