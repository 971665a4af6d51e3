"""Decision-log settings at their edges: what may be masked, and the files the log creates."""

import stat
from pathlib import Path

import pytest

from caseroute.audit.config import check_masked_fields
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


def test_every_file_the_log_creates_is_private(core: RoutingCore, tmp_path: Path) -> None:
    """The database, its WAL, its lock file and its key are readable by the owner only."""
    core.decide(DecideCommand("r1", "", "", (make_case(),), make_roster(), NOW))
    made = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert made, "the decision log created no file"
    loose = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in made if p.stat().st_mode & 0o077}
    assert loose == {}
