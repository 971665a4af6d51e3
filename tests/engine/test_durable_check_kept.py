"""The validation subprocess drives each shard as the server does: one kept session, retracts."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import durable_rules_engine
import pytest

from caseroute.engine import durable_check
from caseroute.engine.durable_codegen import durable_shards
from caseroute.testing import CATCH_ALL_RULE, compile_text, ruleset_with_rules


class _Recorder:
    """durable_rules_engine, recording (name, sid-or-fact id) of each call; codes overridable."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.asserts = 0
        self.refuse_after = refuse_after

    def __getattr__(self, name: str) -> Any:
        function = getattr(durable_rules_engine, name)

        def call(*args: Any) -> Any:
            self.calls.append(name)
            result = function(*args)
            if name == "assert_fact":
                self.asserts += 1
                if self.refuse_after is not None and self.asserts > self.refuse_after:
                    return (2, result[1])
            return result

        return call


def _main(monkeypatch: pytest.MonkeyPatch, engine: _Recorder) -> int:
    shards = durable_shards(compile_text(ruleset_with_rules(CATCH_ALL_RULE)))
    monkeypatch.setitem(sys.modules, "durable_rules_engine", engine)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(list(shards))))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    return durable_check.main()


def test_each_probe_is_asserted_and_retracted_twice_in_one_session_then_renewed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per shard: 2 sessions x (init + 3 probes x 2 asserts) asserts, 12 retracts, 2 deletes."""
    engine = _Recorder()
    assert _main(monkeypatch, engine) == 0
    assert engine.calls.count("assert_fact") == 2 * (1 + 3 * 2)
    assert engine.calls.count("retract_fact") == 2 * 3 * 2
    assert engine.calls.count("delete_state") == 2
    first_retract = engine.calls.index("retract_fact")
    assert "assert_fact" in engine.calls[first_retract : engine.calls.index("delete_state")]


def test_a_probe_the_engine_refuses_fails_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A result code 2 on a probe (a fact still held) exits with the code named."""
    with pytest.raises(SystemExit, match="result code 2"):
        _main(monkeypatch, _Recorder(refuse_after=1))
