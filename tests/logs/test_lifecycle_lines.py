"""Each ruleset load, reload, activation and rollback writes one structured line."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetLifecycle
from caseroute.logs import configure_logging
from caseroute.registry import RulesetRegistry
from caseroute.testing import audit_config
from tests.test_lifecycle import RefusingEventLog
from tests.test_lifecycle_edges import _serving, _version


def _lifecycle_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [
        {k: v for k, v in line.items() if k not in {"timestamp", "pid"}}
        for line in lines
        if "lifecycle" in line
    ]


def _change(role: str, before: str, after: str) -> dict[str, str]:
    return {"ruleset": "routing", "role": role, "from_version": before, "to_version": after}


def test_load_activate_rollback_and_reload_each_log_versions_actor_and_result(
    tmp_path: Path,
) -> None:
    """The line names the action, who asked, the result and every version change."""
    root = tmp_path / "rulesets"
    _version(root, "routing", "1")
    _version(root, "routing", "2")
    _serving(root, "routing", "active: '1'\n")
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=None)
    life.load()
    life.activate("routing", "2", actor="admin:ops")
    life.rollback("routing", actor="admin:ops")
    life.reload(actor="signal:SIGHUP")
    common = {"logger": "caseroute.lifecycle", "not_loaded": 0, "result": "ok", "level": "info"}
    assert _lifecycle_lines(stream) == [
        {
            **common,
            "event": "ruleset load: ok",
            "lifecycle": "load",
            "actor": "startup",
            "changes": [_change("active", "", "1")],
        },
        {
            **common,
            "event": "ruleset activate: ok",
            "lifecycle": "activate",
            "actor": "admin:ops",
            "changes": [_change("active", "1", "2")],
        },
        {
            **common,
            "event": "ruleset rollback: ok",
            "lifecycle": "rollback",
            "actor": "admin:ops",
            "changes": [_change("active", "2", "1")],
        },
        {
            **common,
            "event": "ruleset reload: ok",
            "lifecycle": "reload",
            "actor": "signal:SIGHUP",
            "changes": [],
        },
    ]


def test_a_partial_and_a_failed_reload_are_logged_as_such(tmp_path: Path) -> None:
    """A source that did not load: ``errors``; an unrecordable change: ``failed``; both warn."""
    root = tmp_path / "rulesets"
    _version(root, "routing", "1")
    _version(root, "routing", "2")
    _serving(root, "routing", "active: '1'\n")
    store = audit_config(tmp_path / "audit").open_store()
    events = RefusingEventLog(store)
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    life = RulesetLifecycle(RulesetRegistry(), root, EngineKind.PYTHON, audit=events)  # type: ignore[arg-type]
    life.load()
    (root / "broken").mkdir()
    (root / "broken" / "ruleset.yaml").write_text("ruleset: [\n")
    life.reload(actor="poll")
    events.refuse = True
    with pytest.raises(AuditUnavailableError):
        life.activate("routing", "2", actor="admin:ops")
    store.close()
    assert [
        (line["level"], line["lifecycle"], line["result"], line["not_loaded"], line.get("error"))
        for line in _lifecycle_lines(stream)
    ] == [
        ("info", "load", "ok", 0, None),
        ("warning", "reload", "errors", 1, None),
        ("warning", "activate", "failed", 0, "AuditUnavailableError"),
    ]
