"""Request ids derived from what a request asks for, so a retry is idempotent by default."""

from __future__ import annotations

from datetime import datetime

from caseroute.domain.case import Case
from caseroute.domain.fingerprint import case_json, request_sha256, roster_sha256
from caseroute.domain.roster import Roster

AUTO_PREFIX = "auto-"
"""Marks a derived request id: ``auto-`` and 64 lowercase hex characters."""


def derive_request_id(
    cases: tuple[Case, ...],
    roster: Roster,
    *,
    now: datetime,
    ruleset_name: str,
    ruleset_version: str,
    full: bool,
    roster_hash: str | None = None,
) -> str:
    """The request id of a request that names none: ``auto-`` + the request's fingerprint.

    The fingerprint is the one the server keeps to tell a retry from a reused id
    (``caseroute.domain.fingerprint.request_sha256``): sha256 over the canonical JSON of the
    ruleset selector as sent, the explanation level and ``now``, then of every case, then the
    roster's content hash. So the same cases, roster, ruleset, level and ``now`` always give
    the same id (and the server returns the stored decision), and anything else gives another;
    whether the roster itself or only its ``roster_sha256`` is sent does not change it.
    ``now`` is part of it: a caller without one gets the client's clock, read once per call,
    before this.

    Args:
        cases: The cases, in request order (one for Decide).
        roster: The roster snapshot.
        now: The decision instant sent.
        ruleset_name: Ruleset name as sent ("" for the server's default).
        ruleset_version: Version as sent ("" for the active one).
        full: True for EXPLANATION_LEVEL_FULL, False for SUMMARY.
        roster_hash: ``roster_sha256(roster)`` when the caller has it (computed if not).

    Returns:
        ``auto-<64 hex>``.
    """
    return AUTO_PREFIX + request_sha256(
        ruleset_name=ruleset_name,
        ruleset_version=ruleset_version,
        agent_detail=full,
        now=now,
        case_texts=[case_json(case) for case in cases],
        roster_sha256=roster_hash or roster_sha256(roster),
    )
