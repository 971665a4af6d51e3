"""Subprocess entry point: create and exercise durable_rules shards, print ``ok``.

Run by ``durable.validate_in_subprocess`` on the shards ``durable_codegen`` built (the same
definitions the matcher then creates), so that a definition that crashes or hangs the C
engine takes down only this throwaway process, never the server.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from caseroute.engine.durable_codegen import FACT_TYPE
from caseroute.rules.fields import CASE_FIELDS, MAX_ATTRIBUTES, FieldType, Kind


def _sample(ftype: FieldType) -> Any:
    if ftype.kind is Kind.NUMBER:
        return 1
    if ftype.kind is Kind.BOOLEAN:
        return True
    if ftype.kind is Kind.STRING_LIST:
        return []
    return ftype.values[0] if ftype.values else "x"


def fullest_fact() -> dict[str, Any]:
    """A case fact with every built-in field and the most attributes a ruleset may declare.

    Asserting it proves the engine holds the largest fact ``rules check`` lets through: the
    limit behind ``limit.attributes`` is re-checked against the engine actually installed.
    """
    fact: dict[str, Any] = {"id": "c", "t": FACT_TYPE, "sid": "v"}
    for path, ftype in CASE_FIELDS.items():
        group, name = path.split(".", 1)
        fact.setdefault(group, {})[name] = _sample(ftype)
    fact["case"]["attributes"] = {f"a{i}": "x" for i in range(MAX_ATTRIBUTES)}
    return fact


def _drain(dre: Any, handle: int, offset: int) -> None:
    result = dre.start_action_for_state(handle, offset)
    message = result[1] if result else None
    while message:
        message = dre.complete_and_start_action(handle, offset)


def _run(dre: Any, handle: int, fact: str) -> None:
    """Assert ``fact`` and drain what fired; a refused fact (code 2 or more) fails validation."""
    code, offset = dre.assert_fact(handle, fact)
    if code not in (0, 1):
        raise SystemExit(f"durable_rules refused a probe fact: result code {code}")
    _drain(dre, handle, offset)


def main() -> int:
    """Read a JSON list of shard definitions on stdin; exit 0 and print ok if all work."""
    import durable_rules_engine as dre

    shards = json.load(sys.stdin)
    probes = [
        {"id": "c", "t": FACT_TYPE, "sid": "v"},
        {"id": "c", "t": FACT_TYPE, "sid": "v", "case": {"flags": []}},
        fullest_fact(),
    ]
    for i, shard in enumerate(shards):
        handle = dre.create_ruleset(f"validate.s{i}", shard)
        # As the server drives it (engine.durable): one kept session, __init first, each case
        # fact asserted, drained and retracted, twice, so a re-assert after a retraction is
        # proven too; then deleted and made again, as after an engine failure.
        for _ in range(2):
            _run(dre, handle, json.dumps({"id": "__init", "t": "__init", "sid": "v"}))
            for probe in probes:
                for _ in range(2):
                    text = json.dumps(probe)
                    _run(dre, handle, text)
                    _, offset = dre.retract_fact(handle, text)
                    _drain(dre, handle, offset)
            dre.delete_state(handle, "v")
        dre.delete_ruleset(handle)
    sys.stdout.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
