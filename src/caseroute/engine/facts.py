"""Build the case fact both evaluators read: typed JSON values, missing fields omitted.

Normalising here is what keeps durable_rules honest: no numeric strings (it compares them as
text), no ``1`` where a boolean is meant (``1 == true`` there), and absent optional fields left
out entirely rather than sent as null or defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caseroute.domain.case import AttributeValue, Case
from caseroute.domain.decision import Signals
from caseroute.domain.territory import areas_of
from caseroute.rules.fields import FieldType, Kind

Fact = dict[str, Any]

NO_AREAS: Mapping[str, str] = {}
"""A ruleset without ``areas:`` (one object: ``areas_of`` caches by the mapping's identity)."""


def attribute_fits(value: AttributeValue, ftype: FieldType) -> bool:
    """Whether a case attribute value has the type the ruleset declared for it."""
    if ftype.kind is Kind.BOOLEAN:
        return isinstance(value, bool)
    if ftype.kind is Kind.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def build_case_fact(
    case: Case,
    signals: Signals,
    declared: dict[str, FieldType],
    areas: Mapping[str, str] | None = None,
) -> Fact:
    """The nested fact rules are evaluated against.

    Args:
        case: The case.
        signals: Its derived signals.
        declared: Attribute types the ruleset declared; only these (correctly typed) are
            included.
        areas: The ruleset's ``areas:``, for ``case.region_areas`` (the region and every
            area it lies within, sorted; absent with the region). ``None``: no areas.

    Returns:
        ``{"case": {...}, "sentiment": {...}, "sla": {...}}`` (``sla`` absent without clocks).
    """
    body: dict[str, Any] = {
        "channel": case.channel.value,
        "intent": case.intent.value,
        "urgency": case.urgency.value,
        "tier": case.tier.value,
        "classification_confidence": case.classification_confidence,
        "flags": sorted(case.flags),
        "required_skills": [s.name for s in case.required_skills],
        "age_minutes": signals.case_age_minutes,
        "attributes": {
            k: v
            for k, v in case.attributes.items()
            if k in declared and attribute_fits(v, declared[k])
        },
    }
    for key in ("patient_location", "region", "preferred_language"):
        value = getattr(case, key)
        if value is not None:
            body[key] = value
    if case.region is not None:
        within = areas_of(case.region, areas if areas is not None else NO_AREAS)
        body["region_areas"] = list(within.ordered)  # a list: facts are JSON data
    s = signals.sentiment
    sentiment: dict[str, Any] = {"count": s.count, "consecutive_negative": s.consecutive_negative}
    optional = (("latest", s.latest), ("minimum", s.minimum), ("change", s.change))
    sentiment.update((key, value) for key, value in optional if value is not None)
    fact: Fact = {"case": body, "sentiment": sentiment}
    if signals.sla is not None:
        fact["sla"] = {
            "name": signals.sla.name,
            "minutes_remaining": signals.sla.minutes_remaining,
            "risk": signals.sla.risk.value,
        }
    return fact
