"""Request-thread levers change no byte: served replies and stored records equal golden outputs.

The golden file (``served_bytes_golden.json`` beside this module) was written by this module's
``write_golden`` at 615f27c, before the request-thread levers of issue 13's third pass. Each
scenario goes through ``RoutingServicer`` (Decide or DecideBatch, request bytes parsed by the
server's deserializer) into a real SQLite decision log with a fixed clock, and pins the reply's
serialized bytes and every stored record's hashed text, input text, request hash and chain hash,
and the roster blob. Regenerate only for a change meant to alter replies or records (run
``python tests/service/test_served_bytes_golden.py``, and say why in the commit).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.case import AttributeValue, ContinuityReason, PreferredAgent, Urgency
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.servicer import RoutingServicer, request_deserializer
from caseroute.registry import RulesetRegistry
from caseroute.testing import (
    NOW,
    audited_core,
    clock,
    make_agent,
    make_case,
    make_roster,
    reading,
    reference_ruleset,
    skill,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from tests.grpc_api.fake_context import FakeContext

GOLDEN = Path(__file__).with_name("served_bytes_golden.json")
# Beside tests/, not under REPO_ROOT: the wheel-only CI stage copies both, outside the tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from roster_gen import make_bench_case, make_ranked_roster  # noqa: E402

_RANKED = convert.roster_to_proto(make_ranked_roster(100))
_SMALL = convert.roster_to_proto(
    make_roster(
        make_agent("a1", capacity=Capacity(5, 3)),
        make_agent("a2", capacity=Capacity(5, 1), languages=frozenset({"es"})),
        make_agent("a3", capacity=Capacity(5, 4)),
    )
)
_PHI: dict[str, AttributeValue] = {
    "patient_name": "Ada Lovelace",
    "mrn": "MRN-0000042",
    "date_of_birth": "1952-03-14",
}
_FULL = pb.EXPLANATION_LEVEL_FULL
_SUMMARY = pb.EXPLANATION_LEVEL_SUMMARY


def _decide(
    request_id: str, case: Any, roster: pb.Roster, level: Any, *, now: bool = True
) -> bytes:
    msg = pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(case),
        roster=roster,
        explanation_level=level,
    )
    if now:
        msg.now.CopyFrom(convert.datetime_to_timestamp(NOW))
    return msg.SerializeToString()


def _batch(request_id: str, cases: list[Any], roster: pb.Roster, level: Any) -> bytes:
    return pb.DecideBatchRequest(
        request_id=request_id,
        cases=[convert.case_to_proto(c) for c in cases],
        roster=roster,
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=level,
    ).SerializeToString()


_HELD = (
    PreferredAgent("a3", ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=3)),
    PreferredAgent("a1", ContinuityReason.NAMED_CLINICIAN),
)

Call = tuple[str, str, bytes]
"""Scenario name, method (Decide or DecideBatch), request bytes."""

CALLS: tuple[Call, ...] = (
    ("bench-summary", "Decide", _decide("g-1", make_bench_case(), _RANKED, _SUMMARY)),
    ("bench-summary-again", "Decide", _decide("g-2", make_bench_case(1), _RANKED, _SUMMARY)),
    ("bench-full", "Decide", _decide("g-3", make_bench_case(2), _RANKED, _FULL)),
    (
        "bench-phi",
        "Decide",
        _decide("g-4", replace(make_bench_case(3), attributes=_PHI), _RANKED, _SUMMARY),
    ),
    (
        "bench-server-now",
        "Decide",
        _decide("g-5", make_bench_case(4), _RANKED, _SUMMARY, now=False),
    ),
    (
        "small-everything",
        "Decide",
        _decide(
            "g-6",
            make_case(
                case_id="EVERY",
                sentiment=(reading(-0.2, 30), reading(-0.7, 2)),
                sla_clocks=(clock("first-response", 10), clock("resolution", 600)),
                required_skills=(skill("clinical-triage", 2),),
                declined_agents=frozenset({"a2"}),
                preferred_agents=_HELD,
                # Created before it started waiting: a waiting_since before created_at is an
                # EXCEPTION since review R33a L3, and this scenario pins a decided case.
                created_at=NOW - timedelta(hours=1),
                waiting_since=NOW - timedelta(minutes=12, microseconds=250),
                attributes={**_PHI, "member_since_years": 4, "vip": True},
                flags=frozenset({"vip"}),
                classification_confidence=0.42,
            ),
            _SMALL,
            _FULL,
        ),
    ),
    (
        "small-relaxed",
        "Decide",
        _decide(
            "g-7",
            make_case(
                case_id="WAITED", created_at=NOW - timedelta(minutes=40), preferred_agents=_HELD
            ),
            _SMALL,
            _SUMMARY,
        ),
    ),
    (
        "safeguarding",
        "Decide",
        _decide("g-8", make_case(case_id="SAFE", flags=frozenset({"safeguarding"})), _SMALL, _FULL),
    ),
    (
        "batch",
        "DecideBatch",
        _batch(
            "g-9",
            [
                make_case(case_id="B0", attributes=_PHI),
                make_case(case_id="B1", urgency=Urgency.CRITICAL),
                make_case(case_id="B2", patient_location=None),
            ],
            _SMALL,
            _FULL,
        ),
    ),
    ("bench-retry", "Decide", _decide("g-1", make_bench_case(), _RANKED, _SUMMARY)),
    ("bench-conflict", "Decide", _decide("g-1", make_bench_case(9), _RANKED, _SUMMARY)),
    (
        "batch-retry",
        "DecideBatch",
        _batch(
            "g-9",
            [
                make_case(case_id="B0", attributes=_PHI),
                make_case(case_id="B1", urgency=Urgency.CRITICAL),
                make_case(case_id="B2", patient_location=None),
            ],
            _SMALL,
            _FULL,
        ),
    ),
)


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _served(engine: EngineKind) -> Iterator[tuple[str, dict[str, Any]]]:
    registry = RulesetRegistry()
    registry.add(reference_ruleset(engine))
    with tempfile.TemporaryDirectory() as tmp:
        core = audited_core(registry, Path(tmp), clock=lambda: NOW + timedelta(seconds=3))
        servicer = RoutingServicer(core)
        methods: dict[str, tuple[Callable[[bytes], Any], Callable[[Any, Any], Any]]] = {
            "Decide": (request_deserializer(pb.DecideRequest), servicer.Decide),
            "DecideBatch": (request_deserializer(pb.DecideBatchRequest), servicer.DecideBatch),
        }
        for name, method, body in CALLS:
            parse, call = methods[method]
            context = FakeContext()
            reply = call(parse(body), context)
            request_id = pb.DecideRequest.FromString(body).request_id
            store = core.audit
            assert isinstance(store, SqliteAuditStore)
            records = store.by_request(request_id)
            blob = store.get_blob(records[0].input["roster"]["sha256"]) if records else None
            yield (
                name,
                {
                    "code": None if context.code is None else context.code.name,
                    "reply_sha256": _sha(reply.SerializeToString()),
                    "reply_bytes": len(reply.SerializeToString()),
                    "records": [
                        {
                            "seq": r.seq,
                            "decision_id": r.decision_id,
                            "request_sha256": r.request_sha256,
                            "hashed_text_sha256": _sha(r.hashed_text or ""),
                            "input_sha256": _sha(json.dumps(r.input, sort_keys=True)),
                            "record_hash": r.record_hash,
                        }
                        for r in records
                    ],
                    "roster_blob_sha256": None if blob is None else _sha(blob.content),
                },
            )
        core.audit.close()
    registry.close()


def write_golden() -> None:
    """Write the golden file from the code on ``sys.path`` (run it at the base commit)."""
    golden = {engine.value: dict(_served(engine)) for engine in EngineKind}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


def test_served_replies_and_records_equal_the_golden() -> None:
    """Every scenario's reply bytes and stored records are those of the commit before the levers."""
    golden = json.loads(GOLDEN.read_text())
    assert golden == {engine.value: dict(_served(engine)) for engine in EngineKind}


if __name__ == "__main__":
    write_golden()
