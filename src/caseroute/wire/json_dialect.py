"""The JSON caseroute writes: protobuf's JSON mapping of the v1 messages (docs/json.md).

One home for output JSON: a decision, a batch and a stored decision go through the same
conversion gRPC uses (``wire.convert``) and then ``json_format.MessageToDict`` with the proto
field names, so what ``decide --json`` prints and ``audit export`` writes parses with
``json_format.Parse`` (and grpcurl, and any gateway) as ``caseroute.v1`` messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from caseroute.audit.explain import StoredExplainer
from caseroute.audit.record import AuditRecord, Blob
from caseroute.domain.decision import Decision
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.dialect import record_input_from_wire
from caseroute.domain.enums import ExplanationLevel
from caseroute.domain.fingerprint import format_timestamp
from caseroute.replay.source import (
    ExportFormatError,
    record_from_dict,
    record_without_decision,
    stored_input,
)
from caseroute.simulate import SimulatedRequest
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.convert import (
    case_to_proto,
    datetime_to_timestamp,
    decision_from_proto,
    decision_to_proto,
    record_to_proto,
    roster_to_proto,
    timestamp_to_datetime,
)


def message_to_json(msg: Message) -> dict[str, Any]:
    """A message as the dialect writes it: proto field names, enum names, unset fields left out.

    Args:
        msg: Any protobuf message.

    Returns:
        JSON data (``int64`` fields are strings, as protobuf's JSON mapping says).
    """
    data: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return data


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """A decision with its explanation as ``caseroute.v1.Decision`` JSON."""
    return message_to_json(decision_to_proto(decision))


def batch_to_json(decisions: tuple[Decision, ...], now: datetime) -> dict[str, Any]:
    """Decisions of a batch as ``caseroute.v1.DecideBatchResponse`` JSON (``replayed`` unset)."""
    return message_to_json(
        pb.DecideBatchResponse(
            decisions=[decision_to_proto(d) for d in decisions], now=datetime_to_timestamp(now)
        )
    )


def simulated_request_to_json(
    request: SimulatedRequest,
    *,
    level: ExplanationLevel = ExplanationLevel.FULL,
    ruleset: str = "",
    version: str = "",
) -> dict[str, Any]:
    """One line of ``caseroute simulate --out``: exactly the request ``--server`` sends for it.

    A ``caseroute.v1.DecideRequest`` (``case``) for one case, a ``DecideBatchRequest``
    (``cases``) for several, with the same ``request_id``, ``now``, ruleset selector and
    explanation level, so sending a line with grpcurl (``Decide`` or ``DecideBatch`` by its
    shape) or ``caseroute decide --request`` after ``simulate --server`` with the same seed is
    the same request (a retry), never ``ALREADY_EXISTS``. Serialise it with ``canonical_json``
    for the same bytes from the same seed.
    """
    selector = pb.RulesetSelector(name=ruleset, version=version)
    level_msg = (
        pb.EXPLANATION_LEVEL_FULL
        if level is ExplanationLevel.FULL
        else pb.EXPLANATION_LEVEL_SUMMARY
    )
    roster = roster_to_proto(request.roster)
    now = datetime_to_timestamp(request.now)
    if len(request.cases) == 1:
        return message_to_json(
            pb.DecideRequest(
                request_id=request.request_id,
                ruleset=selector,
                case=case_to_proto(request.cases[0]),
                roster=roster,
                now=now,
                explanation_level=level_msg,
            )
        )
    return message_to_json(
        pb.DecideBatchRequest(
            request_id=request.request_id,
            ruleset=selector,
            cases=[case_to_proto(case) for case in request.cases],
            roster=roster,
            now=now,
            explanation_level=level_msg,
        )
    )


def record_to_json(
    record: AuditRecord, get_blob: Callable[[str], Blob | None] | None = None
) -> dict[str, Any]:
    """A stored record as ``caseroute.v1.AuditedDecision`` JSON (what GetDecision returns).

    Its ``input_json`` holds the recorded (masked) input with the case in the dialect. A
    record whose decision cannot be rebuilt (damaged, or written by a test fake) is written
    without ``decision``: the chain fields still let ``audit verify`` and a reader find it.
    ``get_blob`` (the decision log's) gives the ruleset source its rule traces are rendered
    from; without it only rulesets this process has prepared can be.
    """
    try:
        decision = StoredExplainer(get_blob or _no_blob).decision(record)
    except (KeyError, TypeError, ValueError):
        return message_to_json(record_to_proto(record, None))
    return message_to_json(record_to_proto(record, decision))


def _no_blob(_sha256: str) -> Blob | None:
    return None


def _both_spellings(data: dict[str, Any], descriptor: Descriptor, at: str) -> str | None:
    """The first field ``data`` names in both its proto and JSON spelling (None: none does)."""
    for field in descriptor.fields:
        names = (field.name, field.json_name)
        if names[0] != names[1] and names[0] in data and names[1] in data:
            return f"`{at}{names[0]}` twice (as `{names[0]}` and `{names[1]}`)"
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        value = data.get(names[0], data.get(names[1]))
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                where = f"{at}{names[0]}{f'[{index}]' if isinstance(value, list) else ''}."
                found = _both_spellings(item, field.message_type, where)
                if found is not None:
                    return found
    return None


def input_from_export_line(data: Any) -> object:
    """The input of a line's record as ``record_from_export_line`` reads it, and nothing else.

    Replay reads a line's roster reference with it in the calling process and leaves decoding
    the record (the costly part) to the worker that replays it (review R32b F5). The input
    is the stored text's as sent (``input_json``): the conversion to the stored form changes
    its ``case`` only, never its ``roster``.

    Returns:
        The input, or None when the line has none to read (decoding it then says why).
    """
    if not isinstance(data, dict) or ("input_json" not in data and "inputJson" not in data):
        return stored_input(data)
    text = data.get("input_json", data.get("inputJson"))
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def record_from_export_line(data: Any) -> AuditRecord:
    """An audit record from one line of ``caseroute audit export``.

    Reads the ``AuditedDecision`` JSON written today (with proto field names, or the camelCase
    JSON names grpcurl prints) and the internal record form written by earlier versions (which
    has ``input`` and ``decision`` objects and no ``input_json``).

    Args:
        data: The decoded JSON line.

    Returns:
        The record, with its input and decision in the form the decision log stores.

    A line without ``decision`` is what ``audit export`` writes for a record it could not
    rebuild (``record_to_json``): its record holds no decision (``record_without_decision``),
    and replay reports it ``not_replayable``.

    Raises:
        ExportFormatError: If the line is neither form, or its ``decision`` does not decode
            (the message names the problem).
    """
    # grpcurl and protobuf's MessageToJson write camelCase names (``inputJson``), which
    # ParseDict reads as well; an object holding both spellings of a field is refused, as
    # ParseDict would keep one silently (review R32b F7).
    if not isinstance(data, dict) or ("input_json" not in data and "inputJson" not in data):
        return record_from_dict(data)
    doubled = _both_spellings(data, pb.AuditedDecision.DESCRIPTOR, "")
    if doubled is not None:
        raise ExportFormatError(f"names {doubled}; write each field once, in one spelling")
    msg = pb.AuditedDecision()
    try:
        json_format.ParseDict(data, msg)
        stored_input = json.loads(msg.input_json)
    except (json_format.ParseError, ValueError) as exc:
        text = str(exc).splitlines()[0][:200]
        raise ExportFormatError(f"is not a caseroute.v1.AuditedDecision: {text}") from None
    if not isinstance(stored_input, dict):
        raise ExportFormatError("has an input_json that is not a JSON object")
    if not msg.HasField("decision"):
        return record_without_decision(
            seq=msg.seq,
            request_id=msg.request_id,
            request_sha256=msg.request_sha256,
            recorded_at=format_timestamp(timestamp_to_datetime(msg.recorded_at)),
            caller=msg.caller,
            stored_input=record_input_from_wire(stored_input),
            prev_hash=msg.prev_hash,
            record_hash=msg.record_hash,
        )
    try:
        decision = decision_from_proto(msg.decision)
        decision_data = decision_to_dict(decision)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        # An outcome or priority unset or unknown (`'UNSPECIFIED' is not a valid Outcome`):
        # no decision caseroute made, so a usage error naming the line (review R34c F2).
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExportFormatError(f"has a `decision` caseroute cannot read ({text})") from None
    e = decision.explanation
    return AuditRecord(
        seq=msg.seq,
        decision_id=decision.decision_id,
        request_id=msg.request_id,
        request_sha256=msg.request_sha256,
        case_id=decision.case_id,
        recorded_at=format_timestamp(timestamp_to_datetime(msg.recorded_at)),
        now=format_timestamp(e.now),
        ruleset_name=e.ruleset_name,
        ruleset_version=e.ruleset_version,
        ruleset_sha256=e.ruleset_sha256,
        caseroute_version=e.caseroute_version,
        caller=msg.caller,
        input=record_input_from_wire(stored_input),
        decision=decision_data,
        prev_hash=msg.prev_hash,
        record_hash=msg.record_hash,
    )
