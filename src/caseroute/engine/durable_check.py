"""Subprocess entry point: create and exercise durable_rules shards, print ``ok``.

Run by ``durable.validate_in_subprocess`` so that a definition that crashes or hangs the C
engine takes down only this throwaway process, never the server.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    """Read a JSON list of shard definitions on stdin; exit 0 and print ok if all work."""
    import durable_rules_engine as dre

    shards = json.load(sys.stdin)
    probes = [
        {"id": "c", "t": "case", "sid": "v"},
        {"id": "c", "t": "case", "sid": "v", "case": {"flags": []}},
    ]
    for i, shard in enumerate(shards):
        handle = dre.create_ruleset(f"validate.s{i}", shard)
        for probe in probes:
            _, offset = dre.assert_fact(
                handle, json.dumps({"id": "__init", "t": "__init", "sid": "v"})
            )
            result = dre.start_action_for_state(handle, offset)
            message = result[1] if result else None
            while message:
                message = dre.complete_and_start_action(handle, offset)
            _, offset = dre.assert_fact(handle, json.dumps(probe))
            result = dre.start_action_for_state(handle, offset)
            message = result[1] if result else None
            while message:
                message = dre.complete_and_start_action(handle, offset)
            dre.delete_state(handle, "v")
        dre.delete_ruleset(handle)
    sys.stdout.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
