"""A served Decide encodes each piece of canonical JSON once and formats each instant once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caseroute.domain import decision_codec, fingerprint
from caseroute.domain.case import AttributeValue
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.servicer import RoutingServicer, request_deserializer
from caseroute.registry import RulesetRegistry
from caseroute.service import routing
from caseroute.testing import NOW, audited_core, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert

# Beside tests/, not under REPO_ROOT: the wheel-only CI stage copies both, outside the tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from roster_gen import make_bench_case, make_ranked_roster
from tests.grpc_api.fake_context import FakeContext

_ROSTER = convert.roster_to_proto(make_ranked_roster(100))
_PHI: dict[str, AttributeValue] = {
    "patient_name": "Ada Lovelace",
    "mrn": "MRN-0000042",
    "date_of_birth": "1952-03-14",
}


@pytest.fixture
def servicer(tmp_path: Path) -> Iterator[RoutingServicer]:
    """A servicer over the reference ruleset (durable_rules), warm: its roster already seen."""
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.DURABLE))
    # Recorded a few seconds after the decision instant, as a served call is.
    served = RoutingServicer(audited_core(registry, tmp_path, lambda: NOW + timedelta(seconds=3)))
    _call(served, "warm-1", make_bench_case())
    yield served
    served._core.audit.close()
    registry.close()


def _call(servicer: RoutingServicer, request_id: str, case: Any) -> pb.DecideResponse:
    body = pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(case),
        roster=_ROSTER,
        now=convert.datetime_to_timestamp(NOW),
    ).SerializeToString()
    reply: pb.DecideResponse = servicer.Decide(
        request_deserializer(pb.DecideRequest)(body),
        FakeContext(),  # type: ignore[arg-type]
    )
    assert reply.decision.outcome == pb.OUTCOME_ASSIGN
    return reply


def _count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every value canonical_json encodes from now on (its one C encoder, wrapped)."""
    seen: list[object] = []
    encode = fingerprint._ENCODE

    def counted(value: object, level: int) -> Any:
        seen.append(value)
        return encode(value, level)

    monkeypatch.setattr(fingerprint, "_ENCODE", counted)
    return seen


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [({}, ["decision"]), (_PHI, ["attributes", "masked attributes", "decision"])],
    ids=["bare", "phi"],
)
def test_a_warm_decide_encodes_only_what_no_one_encoded_before(
    servicer: RoutingServicer,
    monkeypatch: pytest.MonkeyPatch,
    attributes: dict[str, AttributeValue],
    expected: list[str],
) -> None:
    """Only the decision (and a case's attributes, clear and masked) go through the encoder."""
    seen = _count_encodes(monkeypatch)
    _call(servicer, "once-1", replace(make_bench_case(1), attributes=attributes))
    named = [
        "decision"
        if isinstance(v, dict) and "explanation" in v
        else "masked attributes"
        if isinstance(v, dict) and v.get("mrn", "").startswith("hmac-sha256:")
        else "attributes"
        if v == attributes
        else repr(v)[:60]
        for v in seen
    ]
    assert expected == named


def test_each_instant_is_formatted_once(
    servicer: RoutingServicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's now and a relaxation's anchor (the case's created_at) are formatted once."""
    formatted: list[datetime] = []
    original = fingerprint.format_timestamp

    def counted(value: datetime) -> str:
        formatted.append(value)
        return original(value)

    for module in (fingerprint, decision_codec, routing):
        monkeypatch.setattr(module, "format_timestamp", counted)
    _call(servicer, "once-2", make_bench_case(2))
    assert len(formatted) == len(set(formatted))


def test_a_now_the_case_also_names_is_formatted_once(
    servicer: RoutingServicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case created at the request's now: one text serves the case, the hash and the record."""
    formatted: list[datetime] = []
    original = fingerprint.format_timestamp

    def counted(value: datetime) -> str:
        formatted.append(value)
        return original(value)

    for module in (fingerprint, decision_codec, routing):
        monkeypatch.setattr(module, "format_timestamp", counted)
    _call(servicer, "once-3", replace(make_bench_case(3), created_at=NOW))
    assert (formatted.count(NOW), len(formatted)) == (1, len(set(formatted)))
