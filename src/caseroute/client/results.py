"""What the client's calls return: domain decisions with the facts of the reply around them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caseroute.domain.decision import Decision


@dataclass(frozen=True, slots=True)
class Decided:
    """The reply to ``Client.decide``.

    Attributes:
        decision: The decision, with its explanation and provenance.
        now: The decision instant used (the one sent, or the client's clock when none was).
        replayed: True when the server returned the stored decision of an earlier identical
            request (same request_id, same input): a retry, not a new evaluation.
        request_id: The idempotency key sent (given, or derived from the request content).
    """

    decision: Decision
    now: datetime
    replayed: bool
    request_id: str


@dataclass(frozen=True, slots=True)
class BatchDecided:
    """The reply to ``Client.decide_batch``.

    Attributes:
        decisions: One decision per case, in request order.
        now: The decision instant used for every case.
        replayed: True when these are the stored decisions of an earlier identical request.
        request_id: The idempotency key sent (given, or derived from the request content).
    """

    decisions: tuple[Decision, ...]
    now: datetime
    replayed: bool
    request_id: str


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """One decision as the server's decision log holds it (PHI masked).

    Attributes:
        seq: Position in the hash chain, from 1.
        decision: The decision with the explanation recorded when it was made.
        request_id: The idempotency key it was decided under.
        recorded_at: When the record was committed (server wall clock).
        caller: The authenticated caller identity ("" when not authenticated).
        input_json: The recorded input as JSON text (configured PHI fields hold
            ``hmac-sha256:<hex>`` digests).
        request_sha256: Fingerprint of the request's input.
        prev_hash: The previous record's ``record_hash``.
        record_hash: This record's hash in the chain.
    """

    seq: int
    decision: Decision
    request_id: str
    recorded_at: datetime
    caller: str
    input_json: str
    request_sha256: str
    prev_hash: str
    record_hash: str

    @property
    def input(self) -> Any:
        """``input_json`` decoded."""
        return json.loads(self.input_json)


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """One page of ``Client.decision_pages``.

    Attributes:
        decisions: Decisions in log order (oldest first).
        next_page_token: Pass as ``page_token`` to continue; "" on the last page.
    """

    decisions: tuple[LoggedDecision, ...]
    next_page_token: str
