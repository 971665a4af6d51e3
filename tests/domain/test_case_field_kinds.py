"""The case's field names and kinds have one home (domain/fields.py), which the case agrees with."""

import dataclasses
from datetime import timedelta

from caseroute.domain.case import Case, ContinuityReason, PreferredAgent
from caseroute.domain.fields import CASE_FIELDS, CASE_LIST_FIELDS, CASE_MAP_FIELDS
from caseroute.domain.fingerprint import case_to_dict
from caseroute.testing import NOW, clock, make_case, reading, skill


def _every_field_set() -> Case:
    """A case with every optional field given, so its canonical form holds every key."""
    return make_case(
        preferred_language="en",
        required_skills=(skill("triage", 2),),
        sentiment=(reading(-0.5, 3),),
        sla_clocks=(clock("rtt", 60),),
        flags=frozenset({"vip"}),
        attributes={"mrn": "M1"},
        waiting_since=NOW - timedelta(minutes=1),
        declined_agents=frozenset({"a9"}),
        preferred_agents=(PreferredAgent("a1", ContinuityReason.CARE_TEAM),),
    )


def test_the_field_names_are_the_case_dataclass_fields() -> None:
    """CASE_FIELDS names exactly the Case's fields, and its list and map fields are among them."""
    names = tuple(f.name for f in dataclasses.fields(Case))
    assert (CASE_FIELDS, set(CASE_LIST_FIELDS) | set(CASE_MAP_FIELDS) <= set(CASE_FIELDS)) == (
        names,
        True,
    )


def test_each_field_kind_is_the_kind_its_canonical_form_holds() -> None:
    """List fields hold lists, map fields objects, every other field a single value."""
    data = case_to_dict(_every_field_set())
    kinds = {
        name: "list" if isinstance(v, list) else "map" if isinstance(v, dict) else "single"
        for name, v in data.items()
    }
    expected = {
        name: "list" if name in CASE_LIST_FIELDS else "map" if name in CASE_MAP_FIELDS else "single"
        for name in CASE_FIELDS
    }
    assert expected == kinds
