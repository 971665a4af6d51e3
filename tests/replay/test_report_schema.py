"""The JSON report matches docs/replay-report.schema.json.

A structural check: jsonschema is not installed (nor a dependency), so a small validator of
the keywords the schema uses stands in for it, and refuses a schema using any other keyword.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.store import SqliteAuditStore
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import ReplayOptions, SinkRecords, replay, report_data
from caseroute.testing import REPO_ROOT
from tests.replay.recorded import CANDIDATES, candidate, record_log

SCHEMA: dict[str, Any] = json.loads((REPO_ROOT / "docs" / "replay-report.schema.json").read_text())
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
    "boolean": (bool,),
}
_KNOWN = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "pattern",
    "propertyNames",
}


def _is(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return name == "boolean"
    return isinstance(value, _TYPES[name])


def problems(value: Any, schema: dict[str, Any], at: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (only the keywords in ``_KNOWN``)."""
    unknown = set(schema) - _KNOWN
    if unknown:
        return [f"{at}: schema keyword(s) {sorted(unknown)} not checked by this validator"]
    found: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is(value, n) for n in names):
            return [f"{at}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{at}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{at}: {value} > {schema['maximum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        found += [f"{at}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if "propertyNames" in schema:
                found += problems(key, schema["propertyNames"], f"{at}.<key {key}>")
            if key in properties:
                found += problems(item, properties[key], f"{at}.{key}")
            elif extra is False:
                found.append(f"{at}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                found += problems(item, extra, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{at}[{index}]")
    return found


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> SqliteAuditStore:
    """The recorded log of tests/replay/recorded.py."""
    return record_log(tmp_path_factory.mktemp("schema"))


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_report_validates_against_the_schema(log: SqliteAuditStore, name: str) -> None:
    """The JSON report of each candidate (every class, samples, reasons) fits the schema."""
    report = replay(SinkRecords(log), candidate(name), ReplayOptions(EngineKind.PYTHON))
    assert problems(report_data(report), SCHEMA) == []


def test_empty_report_validates_against_the_schema(tmp_path: Path) -> None:
    """The report of an empty log fits the schema too."""
    store = SqliteAuditStore(tmp_path / "empty.db")
    report = replay(SinkRecords(store), candidate("identity"), ReplayOptions(EngineKind.PYTHON))
    store.close()
    assert problems(report_data(report), SCHEMA) == []


def test_the_validator_rejects_what_the_schema_forbids(log: SqliteAuditStore) -> None:
    """The check can fail: a missing total, an unknown class and a bad outcome are each named."""
    data = report_data(
        replay(SinkRecords(log), candidate("agent"), ReplayOptions(EngineKind.PYTHON))
    )
    del data["total"]
    data["classes"]["surprise"] = 1
    data["samples"]["agent_changed"][0]["candidate"]["outcome"] = "MAYBE"
    assert problems(data, SCHEMA) == [
        "$: missing 'total'",
        "$.classes: unexpected key 'surprise'",
        (
            "$.samples.agent_changed[0].candidate.outcome: 'MAYBE' not in "
            "['ASSIGN', 'ESCALATE', 'QUEUE', 'EXCEPTION']"
        ),
    ]


def test_schema_lists_every_class_the_harness_reports() -> None:
    """The schema's classes are exactly CLASSES, in order (the documented, stable names)."""
    from caseroute.replay import CLASSES

    assert SCHEMA["properties"]["classes"]["required"] == list(CLASSES)
