"""Fixtures of the client tests: a real server with the reference ruleset, and request data."""

from collections.abc import Iterator
from typing import Any

import pytest

from caseroute.client import Client
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import NOW
from tests.grpc_api.conftest import serving_reference

NOW_TEXT = NOW.isoformat().replace("+00:00", "Z")
"""``caseroute.testing.NOW`` as text: 2026-11-21T10:00:00Z."""


def case_dict(case_id: str = "CASE-1", **fields: Any) -> dict[str, Any]:
    """A routine clinical case in Texas as a JSON-dialect dict; override any field."""
    data: dict[str, Any] = {
        "case_id": case_id,
        "created_at": "2026-11-21T09:55:00Z",
        "channel": "phone",
        "intent": "clinical",
        "urgency": "routine",
        "patient_location": "US-TX",
        "region": "US-TX",
    }
    data.update(fields)
    return data


def agent_dict(agent_id: str, **fields: Any) -> dict[str, Any]:
    """An available Texas RN with free capacity as a JSON-dialect dict; override any field."""
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "status": "available",
        "capacity": {"max": 5, "active": 1},
        "licences": [{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2030-01-01"}],
        "territories": ["US-TX"],
        "skills": [{"name": "clinical-triage", "level": 3}],
        "languages": ["en"],
    }
    data.update(fields)
    return data


def roster_dict(*agents: dict[str, Any]) -> dict[str, Any]:
    """A roster snapshot of ``agents`` (default: a1 and a California agent) as a dict."""
    chosen = agents or (agent_dict("a1"), agent_dict("ca", territories=["US-CA"]))
    return {"snapshot_id": "snap-1", "taken_at": "2026-11-21T09:59:00Z", "agents": list(chosen)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server (python engine) for the test module."""
    with serving_reference(
        tmp_path_factory.mktemp("client-audit"), engine=EngineKind.PYTHON, threads=4
    ) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[Client]:
    """A client of the module's server."""
    with Client(f"127.0.0.1:{server.port}", timeout=30) as opened:
        yield opened
