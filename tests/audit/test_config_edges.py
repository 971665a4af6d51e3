"""Decision-log settings at their edges: what may be masked, and the files the log creates."""

import stat
from pathlib import Path

import pytest

from caseroute.audit.config import AuditConfig, check_masked_fields
from caseroute.cli import main
from caseroute.domain.errors import ConfigError
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, make_case, make_roster


def test_masking_the_case_id_is_refused_with_what_to_do() -> None:
    """case.case_id cannot be masked: the log keeps it in clear to find decisions by case."""
    with pytest.raises(ConfigError) as exc:
        check_masked_fields(("case.attributes.notes", "case.case_id"))
    assert str(exc.value) == (
        "case.case_id cannot be masked: the decision log keeps case ids in clear so that "
        "decisions can be found by case (ListDecisions, audit export --case-id); send a "
        "pseudonymous case id instead of one that identifies the patient"
    )


@pytest.mark.parametrize(
    ("path", "field", "derived"),
    [
        ("case.created_at", "case.created_at", "the case's age (signals.case_age_minutes)"),
        ("case.waiting_since", "case.waiting_since", "the relaxation ladder's anchor"),
        ("case.sla_clocks", "case.sla_clocks.started_at", "each clock's minutes remaining"),
        ("case.sla_clocks.*", "case.sla_clocks.started_at", "each clock's minutes remaining"),
        ("case.sla_clocks.deadline", "case.sla_clocks.deadline", "each clock's minutes"),
        ("case.sentiment.*", "case.sentiment.score", "the sentiment summary"),
        ("case.sentiment.at", "case.sentiment.at", "the sentiment summary's order"),
    ],
)
def test_a_field_decisions_show_values_of_cannot_be_masked(
    path: str, field: str, derived: str
) -> None:
    """R31b F2: a masked created_at came back in clear as the relaxation trace's anchor_at.

    Decisions derive ages, step times, SLA minutes and sentiment summaries from these fields
    and return them (next_relaxation_at is what a caller acts on), so masking them is refused.
    """
    with pytest.raises(ConfigError) as exc:
        check_masked_fields(("case.attributes.notes", path))
    message = str(exc.value)
    assert message.startswith(f"{path} cannot be masked: decisions derive {derived}"), message
    assert f"from {field}, and return and record them in clear" in message
    assert message.endswith(
        "keep dates and values the log must not hold in masked attributes "
        "(case.attributes.NAME), which routing reads only where a rule names them"
    )


def test_fields_decisions_do_not_derive_values_from_can_be_masked() -> None:
    """Clock names, attributes and other routing fields stay maskable."""
    paths = (
        "case.attributes.*",
        "case.attributes.date_of_birth",
        "case.patient_location",
        "case.preferred_language",
    )
    assert check_masked_fields(paths) == paths


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("case.preferred_agents", "decisions derive the continuity trace"),
        ("case.declined_agents", "decisions derive each agent's declined check"),
        ("case.sla_clocks.name", "case.sla_clocks is a list, and a path into its items masks"),
        (
            "case.preferred_agents.last_contact_at",
            "case.preferred_agents is a list, and a path into its items masks nothing",
        ),
        ("case.required_skills.name", "case.required_skills is a list"),
        # Review R34c: accepted before, while the queue name and the ladder told them.
        ("case.intent", "decisions derive the queue of a rule routing by_intent"),
        ("case.urgency", "decisions derive the relaxation ladder's step times"),
    ],
)
def test_staff_lists_and_paths_into_lists_cannot_be_masked(path: str, expected: str) -> None:
    """R31d 3, 4: preferred agents came back in clear; a path into list items masked nothing."""
    with pytest.raises(ConfigError) as exc:
        check_masked_fields((path,))
    assert str(exc.value).startswith(f"{path} cannot be masked: ")
    assert expected in str(exc.value)


def test_settings_refuse_a_derived_field_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AuditConfig refuses it before any decision is masked; the CLI names the flag."""
    config = AuditConfig(db=tmp_path / "audit.db", masked_fields=("case.created_at",))
    with pytest.raises(ConfigError, match=r"^case\.created_at cannot be masked"):
        config.open_recording()
    ruleset = Path(__file__).parents[2] / "rulesets" / "patient-enquiries"
    argv = ["rules", "check", str(ruleset), "--audit-masked-fields", "case.waiting_since"]
    assert main(argv) == 2
    assert "--audit-masked-fields: case.waiting_since cannot be masked" in capsys.readouterr().err


def test_every_file_the_log_creates_is_private(core: RoutingCore, tmp_path: Path) -> None:
    """The database, its WAL, its lock file and its key are readable by the owner only."""
    core.decide(DecideCommand("r1", "", "", (make_case(),), make_roster(), NOW))
    made = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert made, "the decision log created no file"
    loose = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in made if p.stat().st_mode & 0o077}
    assert loose == {}


@pytest.mark.parametrize("path", ["case.region_areas", "case.region_areas.*"])
def test_a_derived_rule_field_cannot_be_masked_on_its_own(path: str) -> None:
    """case.region_areas is no case field: masking it hid nothing, while lint called it masked.

    The clause showed the list in clear, and `audit.masked_field` told the author it was shown
    only as a digest. It is masked with case.region; the message says so.
    """
    with pytest.raises(ConfigError) as exc:
        check_masked_fields(("case.attributes.notes", path))
    assert str(exc.value) == (
        f"{path} cannot be masked on its own: case.region_areas is derived from case.region "
        "(the region and every area it lies within), not sent, so no record holds it to "
        "mask; it is masked whenever case.region is: mask case.region"
    )
