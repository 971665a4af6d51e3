"""A roster dict changed by another thread while keyed never puts one content under another."""

import marshal
from typing import Any

import pytest

from caseroute.client import Client

from .conftest import NOW_TEXT, agent_dict, case_dict, roster_dict


def test_a_dict_changed_after_it_is_keyed_is_kept_as_the_content_that_was_keyed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roster kept under a content's key is that content, even if the dict changed after."""
    roster = roster_dict(agent_dict("r1"))
    real_dumps = marshal.dumps

    def dumps_then_changed(value: Any, version: int = marshal.version) -> bytes:
        blob = real_dumps(value, version)
        if value is roster:  # another thread changes the dict right after it was keyed
            roster["agents"][0]["agent_id"] = "r2"
        return blob

    monkeypatch.setattr(marshal, "dumps", dumps_then_changed)
    client.decide(case_dict("R-1"), roster, now=NOW_TEXT)
    monkeypatch.setattr(marshal, "dumps", real_dumps)
    again = client.decide(case_dict("R-2"), roster_dict(agent_dict("r1")), now=NOW_TEXT)
    assert again.decision.agent_id == "r1"
