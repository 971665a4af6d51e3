from datetime import timedelta
from pathlib import Path

import pytest

from caseroute.domain.errors import NoRulesetLoadedError, RequestError, RulesetNotFoundError
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, RoutingCore, load_registry, request_decision_id
from caseroute.testing import NOW, REFERENCE_RULESET, make_agent, make_case, make_roster

REGISTRY = load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON)


def _command(**overrides: object) -> DecideCommand:
    values: dict[str, object] = {
        "request_id": "r1",
        "ruleset_name": "",
        "ruleset_version": "",
        "cases": (make_case(),),
        "roster": make_roster(make_agent("a1")),
        "now": NOW,
    }
    values.update(overrides)
    return DecideCommand(**values)  # type: ignore[arg-type]


def test_default_ruleset_and_server_clock() -> None:
    """No name selects the default ruleset; no now uses the injected clock."""
    later = NOW + timedelta(hours=1)
    result = RoutingCore(REGISTRY, clock=lambda: later).decide(_command(now=None))
    assert result.now == later
    assert result.decisions[0].explanation.ruleset_name == "patient-enquiries"


def test_retries_get_the_same_decision_id() -> None:
    """Decision ids come from request id and position, so a retry reproduces them."""
    core = RoutingCore(REGISTRY)
    first = core.decide(_command()).decisions[0]
    again = core.decide(_command()).decisions[0]
    assert first.decision_id == again.decision_id == request_decision_id("r1", 0)
    assert core.decide(_command(request_id="r2")).decisions[0].decision_id != first.decision_id


def test_command_validation_names_fields() -> None:
    """Empty request ids and oversized batches are request errors."""
    core = RoutingCore(REGISTRY)
    with pytest.raises(RequestError) as exc:
        core.decide(_command(request_id="", cases=()))
    assert [v.field for v in exc.value.violations] == ["request_id", "cases"]


def test_batch_consumes_capacity() -> None:
    """The second case of a batch cannot take the slot the first one used."""
    roster = make_roster(make_agent("a1", capacity=Capacity(1, 0)))
    result = RoutingCore(REGISTRY).decide(_command(cases=(make_case(), make_case()), roster=roster))
    assert [d.outcome.value for d in result.decisions] == ["ASSIGN", "QUEUE"]


def test_unknown_and_missing_rulesets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unknown names/versions are NOT_FOUND-type errors; a broken ruleset is logged, skipped."""
    with pytest.raises(RulesetNotFoundError, match="unknown ruleset 'x'"):
        REGISTRY.resolve("x", "")
    with pytest.raises(RulesetNotFoundError, match="no version '9'"):
        REGISTRY.resolve("patient-enquiries", "9")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ruleset.yaml").write_text("ruleset: broken\nrules: []\n")
    empty = load_registry(tmp_path, EngineKind.PYTHON)
    assert empty.names() == []
    with pytest.raises(NoRulesetLoadedError, match="problem"):
        empty.resolve("", "")
    assert "ruleset" in caplog.text
    assert "schema.missing_key" in caplog.text
