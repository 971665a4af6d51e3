"""The fields a rule may read, with their types: the compiler checks every path against this."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from caseroute.domain.case import Channel, Intent, Tier, Urgency
from caseroute.domain.decision import SlaRisk


class Kind(StrEnum):
    """Value kinds the expression language distinguishes."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    ENUM = "enum"
    STRING_LIST = "list of strings"


@dataclass(frozen=True, slots=True)
class FieldType:
    """Type of one readable field.

    Attributes:
        kind: Value kind.
        values: Allowed values for enums (empty otherwise).
        optional: Whether the field can be missing on a case (then conditions on it are false).
        doc: One line for ``caseroute rules fields`` and error hints.
    """

    kind: Kind
    values: tuple[str, ...] = ()
    optional: bool = False
    doc: str = ""

    def describe(self) -> str:
        """Human name of the type, e.g. ``one of routine, urgent, critical``."""
        if self.kind is Kind.ENUM:
            return "one of " + ", ".join(self.values)
        return self.kind.value


def _enum(kind: type[StrEnum], doc: str, *, optional: bool = False) -> FieldType:
    return FieldType(Kind.ENUM, tuple(m.value for m in kind), optional, doc)


CASE_FIELDS: dict[str, FieldType] = {
    "case.channel": _enum(Channel, "how the enquiry arrived"),
    "case.intent": _enum(Intent, "what the enquiry is about"),
    "case.urgency": _enum(Urgency, "classified urgency"),
    "case.tier": _enum(Tier, "member tier"),
    "case.classification_confidence": FieldType(Kind.NUMBER, doc="classifier confidence, 0-1"),
    "case.patient_location": FieldType(
        Kind.STRING, optional=True, doc="jurisdiction of the patient at time of service, US-TX"
    ),
    "case.region": FieldType(Kind.STRING, optional=True, doc="territory / commissioning area"),
    "case.region_areas": FieldType(
        Kind.STRING_LIST,
        doc="case.region and every area it lies within (sub-codes, ISO 3166-2, areas:)",
    ),
    "case.preferred_language": FieldType(Kind.STRING, optional=True, doc="BCP 47 tag, e.g. en"),
    "case.flags": FieldType(Kind.STRING_LIST, doc="flags such as safeguarding, vip"),
    "case.required_skills": FieldType(Kind.STRING_LIST, doc="names of the skills required"),
    "case.age_minutes": FieldType(Kind.NUMBER, doc="minutes since the enquiry was received"),
    "sentiment.latest": FieldType(Kind.NUMBER, optional=True, doc="score of the latest reply"),
    "sentiment.minimum": FieldType(Kind.NUMBER, optional=True, doc="lowest score of any reply"),
    "sentiment.change": FieldType(
        Kind.NUMBER, optional=True, doc="latest minus the score sentiment_window replies back"
    ),
    "sentiment.consecutive_negative": FieldType(
        Kind.NUMBER, doc="latest replies in a row at or below signals.negative_sentiment"
    ),
    "sentiment.count": FieldType(Kind.NUMBER, doc="number of replies scored"),
    "sla.name": FieldType(Kind.STRING, optional=True, doc="name of the most urgent SLA clock"),
    "sla.minutes_remaining": FieldType(
        Kind.NUMBER, optional=True, doc="minutes to the most urgent deadline (negative: late)"
    ),
    "sla.risk": _enum(SlaRisk, "risk of the most urgent clock", optional=True),
}
"""Built-in readable fields. ``case.attributes.<key>`` fields come from the ruleset's
``attributes:`` declarations; ``params.<name>`` are constants inlined at compile time."""

ATTRIBUTE_PREFIX = "case.attributes."
ATTRIBUTE_KINDS = {"string": Kind.STRING, "number": Kind.NUMBER, "boolean": Kind.BOOLEAN}

ENGINE_MAX_FACT_PROPERTIES = 254
"""Properties durable_rules holds per fact (``MAX_OBJECT_PROPERTIES`` 255, the last slot
unusable; error 302 past it, measured). Every nested object, list and scalar counts once."""
FACT_ENVELOPE = ("id", "sid", "t")
"""Properties the engine adapter adds to every fact."""
FACT_OBJECTS = ("case", "case.attributes", "sentiment", "sla")
"""Nested objects of the fact; each counts as a property of its own."""
MAX_ATTRIBUTES = (
    ENGINE_MAX_FACT_PROPERTIES - len(FACT_ENVELOPE) - len(FACT_OBJECTS) - len(CASE_FIELDS)
)
"""Most attributes a ruleset may declare so that the fullest case fact still fits the engine:
254 - 3 - 4 - 20 = 227 (228 before ``case.region_areas``). A ruleset declaring more is refused
at check time (``limit.attributes``)."""
