"""Shadow runs of a candidate that changes only a relaxation ladder or a continuity hold.

Routing 1 serves with a ladder whose ``any-language`` step takes effect after 10 minutes and a
15-minute continuity hold for routine cases (as tests/replay/test_replay_adaptive.py records
them); routing 2 shadows it with one of those changed. The same decisions differ only in the
ladder step (or the hold), so the shadow report must name ``relaxation`` (or ``continuity``),
as replay names ``relaxation_changed`` (``continuity_changed``), not count them as agreed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseroute.audit.record import ShadowResult
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.case import Case, ContinuityReason, PreferredAgent
from caseroute.domain.decision import Decision
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetLifecycle
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.shadow import ShadowRunner
from caseroute.testing import (
    NOW,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)
from tests.replay.test_replay_adaptive import BASE

WAIT_S = 30.0  # an upper bound for an event that should come at once; never a sleep
STEP_AFTER = "{routine: 10m, urgent: 10m}"
HOLD = "hold: {routine: 15m}"


def _ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def _write(root: Path, version: str, text: str) -> None:
    path = root / "routing" / version / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        text.replace("ruleset: test\n", "ruleset: routing\n").replace(
            'version: "1"\n', f'version: "{version}"\n'
        )
    )


def _shadowed(
    tmp_path: Path,
    old: str,
    new: str,
    cases: tuple[Case, ...],
    collector: CollectorRegistry | None = None,
) -> list[Decision]:
    """Decide ``cases`` under routing 1 with routing 2 (``old`` -> ``new``) in shadow.

    With ``collector``, the core, its log and the shadow runner are metered into it.
    """
    root = tmp_path / "rulesets"
    _write(root, "1", BASE)
    _write(root, "2", BASE.replace(old, new))
    (root / "routing" / "serving.yaml").write_text("active: '1'\nshadow: '2'\n")
    config = audit_config(tmp_path / "audit")
    store = config.open_store()
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=store)
    life.load()
    core = RoutingCore(life.registry, store, config.masker(), lambda: NOW)
    core.shadow = ShadowRunner(life.registry, store)
    if collector is not None:
        MetricsRecorder(define_metrics(collector)).observe(core, life)
    roster = make_roster(
        make_agent("a1"),
        make_agent("a2", languages=frozenset({"en", "es"})),
        make_agent("a3", capacity=Capacity(max=5, active=5)),
    )
    decisions = [
        core.decide(DecideCommand(f"r{i}", "", "", (case,), roster, NOW)).decisions[0]
        for i, case in enumerate(cases)
    ]
    assert core.shadow.wait_idle(WAIT_S)
    core.shadow.close()
    life.registry.close()
    store.close()
    return decisions


def _report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str = "text"
) -> tuple[int, str, str]:
    db = str(tmp_path / "audit" / "audit.db")
    code = main(["rules", "shadow-report", "routing", "--audit-db", db, "--format", fmt])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_ladder_step_delay_alone_shows_as_relaxation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step after 5m, not 10m: the case waiting 7 min relaxes (same agent): ``relaxation``."""
    collector = CollectorRegistry()
    waited_7, waited_3 = _shadowed(
        tmp_path,
        STEP_AFTER,
        "{routine: 5m}",
        (
            make_case(case_id="W7-es", created_at=_ago(7), preferred_language="es"),
            make_case(case_id="W3-es", created_at=_ago(3), preferred_language="es"),
        ),
        collector,
    )
    assert (waited_7.agent_id, waited_3.agent_id) == ("a2", "a2")
    counted = {
        (name, value): collector.get_sample_value(
            f"caseroute_shadow_{name}_total", {"ruleset": "routing", "version": "2", **label}
        )
        for name, label in (
            ("comparisons", {"result": "agree"}),
            ("comparisons", {"result": "disagree"}),
            ("differences", {"kind": "relaxation"}),
            ("differences", {"kind": "continuity"}),
        )
        for value in label.values()
    }
    assert counted == {
        ("comparisons", "agree"): 1.0,
        ("comparisons", "disagree"): 1.0,
        ("differences", "relaxation"): 1.0,
        ("differences", "continuity"): None,
    }
    code, out, err = _report(tmp_path, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[2:4] == [
        "  evaluated 2, agreed 1, disagreed 1 (50.0%), dropped 0",
        "  differences: relaxation 1",
    ]
    assert out.splitlines()[-1] == (
        f"    {waited_7.decision_id} (live 1): relaxation ladder step (none in force), relaxed "
        "nothing -> ladder step any-language, relaxed language"
    )
    code, out, _ = _report(tmp_path, capsys, "json")
    (version,) = json.loads(out)["versions"]
    (disagreement,) = version["disagreements"]
    assert (version["differences"], disagreement["differences"]) == (
        {"relaxation": 1},
        ["relaxation"],
    )
    assert (disagreement["live"]["ladder_step"], disagreement["live"].get("relaxed")) == ("", None)
    assert (disagreement["shadow"]["ladder_step"], disagreement["shadow"]["relaxed"]) == (
        "any-language",
        ["language"],
    )


def test_a_continuity_hold_alone_shows_as_continuity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hold 17.5m, not 15m: the held case is held longer (still QUEUE): ``continuity`` alone."""
    prefer_a3 = (PreferredAgent("a3", ContinuityReason.PREVIOUS_CONTACT, _ago(60 * 24)),)
    (held,) = _shadowed(
        tmp_path,
        HOLD,
        "hold: {routine: 17.5m}",
        (make_case(case_id="W12-held", created_at=_ago(12), preferred_agents=prefer_a3),),
    )
    assert (held.outcome.value, held.agent_id) == ("QUEUE", None)
    code, out, err = _report(tmp_path, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[2:4] == [
        "  evaluated 1, agreed 0, disagreed 1 (100.0%), dropped 0",
        "  differences: continuity 1",
    ]
    assert out.splitlines()[-1] == (
        f"    {held.decision_id} (live 1): continuity held_for_preferred (hold 15 min) -> "
        "held_for_preferred (hold 17.5 min)"
    )


def test_the_same_ladder_and_hold_in_shadow_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A candidate with the same ladder and hold: every comparison agrees (no false kind)."""
    prefer_a3 = (PreferredAgent("a3", ContinuityReason.PREVIOUS_CONTACT, _ago(60 * 24)),)
    _shadowed(
        tmp_path,
        "description: test ruleset",
        "description: the same, reworded",
        (
            make_case(case_id="W12-es", created_at=_ago(12), preferred_language="es"),
            make_case(case_id="W12-held", created_at=_ago(12), preferred_agents=prefer_a3),
        ),
    )
    code, out, _ = _report(tmp_path, capsys)
    assert (code, out.splitlines()[2]) == (
        0,
        "  evaluated 2, agreed 2, disagreed 0 (0.0%), dropped 0",
    )


def test_results_stored_before_the_new_kinds_report_as_before_and_the_log_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comparison stored by an older build (no adaptive keys) reads beside new ones."""
    (waited_7,) = _shadowed(
        tmp_path,
        STEP_AFTER,
        "{routine: 5m}",
        (make_case(case_id="W7-es", created_at=_ago(7), preferred_language="es"),),
    )
    db = tmp_path / "audit" / "audit.db"
    old = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "priority": "normal"}
    store = SqliteAuditStore(db)
    (new,) = store.shadow_results("routing")
    store.append_shadow(
        [
            ShadowResult(
                decision_id="dec_old",
                recorded_at="2026-11-20T10:00:00Z",
                ruleset_name="routing",
                live_version="1",
                live_sha256=new.live_sha256,
                shadow_version="2",
                shadow_sha256=new.shadow_sha256,
                differences=("agent",),
                live={**old, "rule_id": "rest", "escalation": None},
                shadow={**old, "agent_id": "a2", "rule_id": "rest", "escalation": None},
            )
        ]
    )
    store.close()
    code, out, err = _report(tmp_path, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[2:4] == [
        "  evaluated 2, agreed 0, disagreed 2 (100.0%), dropped 0",
        "  differences: agent 1, relaxation 1",
    ]
    assert out.splitlines()[-2:] == [
        (
            f"    {waited_7.decision_id} (live 1): relaxation ladder step (none in force), "
            "relaxed nothing -> ladder step any-language, relaxed language"
        ),
        "    dec_old (live 1): agent a1 -> a2",
    ]
    code = main(["audit", "verify", "--audit-db", str(db)])
    out = capsys.readouterr().out
    assert (code, out.split(",")[0]) == (0, "ok: 3 record(s) (2 of them ruleset event(s))")
