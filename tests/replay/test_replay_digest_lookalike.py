"""A caller's value that merely looks like a masking digest is replayed, not taken as masked.

A case id ``hmac-sha256:CASE-1001`` is valid input, and the log never masks case ids; an
unmasked attribute may hold such text too. Only a digest's exact form, at a path the log may
mask, makes a record ``not_replayable`` (``masked_field``); review R32b F11.
"""

from __future__ import annotations

from pathlib import Path

from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import ReplayOptions, SinkRecords, replay
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import NOW, audited_core, compile_text, make_case
from tests.replay.recorded import BASE, candidate, roster_of_two

PY = ReplayOptions(EngineKind.PYTHON)
LOOKALIKE = "hmac-sha256:" + "a" * 64


def test_digest_lookalike_values_are_replayed(tmp_path: Path) -> None:
    """A prefixed case id, a digest-shaped case id and a prefixed attribute all replay."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(BASE), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    cases = (
        make_case(case_id="hmac-sha256:CASE-1001"),
        make_case(case_id=LOOKALIKE),
        make_case(case_id="C3", attributes={"note": "hmac-sha256:not-a-digest"}),
    )
    for i, case in enumerate(cases):
        core.decide(DecideCommand(f"r{i}", "", "", (case,), roster_of_two(), NOW))
    registry.close()
    report = replay(SinkRecords(core.audit), candidate("identity"), PY)
    core.audit.close()
    assert (report.total, report.not_replayable, report.count("unchanged")) == (3, 0, 3)
