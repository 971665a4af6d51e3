"""A Case built through its slot setters is the constructor's value."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from caseroute.domain.case import (
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.slots import new_case

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
WAITING = datetime(2026, 11, 21, 8, 15, tzinfo=UTC)


def test_a_case_built_by_its_setters_equals_the_constructors() -> None:
    """Every field set, in order (each value distinct): equal, same type, still frozen."""
    values: tuple[Any, ...] = (
        "C-1",
        AT,
        Channel.PHONE,
        Intent.CLINICAL,
        Urgency.URGENT,
        0.75,
        "US-TX",
        "US-NM",
        Tier.STANDARD,
        (RequiredSkill("clinical-triage", 2),),
        "en",
        (SentimentReading(-0.2, AT),),
        (SlaClock("first-response", AT, AT),),
        frozenset({"vip"}),
        {"plan": "gold"},
        WAITING,
        frozenset({"agent-1"}),
        (PreferredAgent("agent-2", ContinuityReason.NAMED_CLINICIAN, AT),),
    )
    built = new_case(*values)
    expected = Case(*values)
    assert (expected, Case, values) == (
        built,
        type(built),
        tuple(getattr(built, f.name) for f in dataclasses.fields(Case)),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.case_id = "C-2"  # type: ignore[misc]
