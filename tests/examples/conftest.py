"""Shared fixtures for the tests of examples/: repository paths and a real server on port 0."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.grpc_api.server import RunningServer
from tests.grpc_api.conftest import serving_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
CLINICAL_REQUEST = REPO_ROOT / "examples" / "requests" / "decide-clinical-tx.json"
"""The ready DecideRequest both the Node example and the grpcurl walkthrough send first."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A plaintext server with the reference ruleset and no credentials, shared by a module."""
    with serving_reference(tmp_path_factory.mktemp("audit")) as running:
        yield running
