"""The field names each input object accepts (proto names), in one place for both readers.

The strict parser (``domain/codec.py``) refuses any other key with a field error; the one-pass
dict reader (``domain/fast_dict.py``) hands anything else over to it.
"""

CASE_FIELDS = (
    "case_id",
    "created_at",
    "channel",
    "intent",
    "urgency",
    "classification_confidence",
    "patient_location",
    "region",
    "tier",
    "required_skills",
    "preferred_language",
    "sentiment",
    "sla_clocks",
    "flags",
    "attributes",
    "waiting_since",
    "declined_agents",
    "preferred_agents",
)
"""A Case's fields."""

CASE_LIST_FIELDS = (
    "required_skills",
    "sentiment",
    "sla_clocks",
    "flags",
    "declined_agents",
    "preferred_agents",
)
"""A Case's fields that hold a list (of objects or of strings)."""

CASE_MAP_FIELDS = ("attributes",)
"""A Case's fields that hold an object (name -> a single value). Every other field of
``CASE_FIELDS`` holds a single value (a string, a number or an instant)."""

AGENT_FIELDS = (
    "agent_id",
    "role",
    "status",
    "licences",
    "territories",
    "skills",
    "languages",
    "capacity",
    "last_assigned_at",
    "teams",
    "seniority",
    "attributes",
)
"""An Agent's fields."""
