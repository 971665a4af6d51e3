"""Issue 13 target 4: what 200 rules cost a decision and its record, beside the 7-rule reference.

Usage: .venv/bin/python benchmarks/big_ruleset_issue13.py [--quick] [--rules 200] [--calls N]

In one process, two cores (``RoutingCore``, what the server's Decide handler calls) each with
its own real SQLite decision log in a temporary directory: one serving the reference ruleset
(7 rules), one the same ruleset grown to ``--rules`` rules by ``ruleset_gen`` (regional rules
tried before the deciding ``clinical`` rule, none matching the case). Each call decides the
benchmark case against a warm 100-agent roster (a ranked ASSIGN, checked first) at summary
level (no per-agent verdicts, as EXPLANATION_LEVEL_SUMMARY), with a new request_id, and
returns after its record is committed (fsync): "decide() plus record". Beside it, ``decide()``
alone (the engine, no masking or record; given the input hash, as the server gives it from the
cached roster fingerprint) and the reply: ``decision_to_proto`` of the decision, which every
gRPC Decide pays on top (the rule traces are rendered by then, the message built from them).
Rounds alternate the two rulesets; each figure is the median over rounds of the per-round
median. The record size is the bytes of its row in the log (every column; the roster itself is
stored once per snapshot, apart); the decision's own bytes are its canonical JSON.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.fingerprint import canonical_json, input_sha256
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.registry import RulesetRegistry
from caseroute.rules.compiler import load_ruleset
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, REFERENCE_RULESET, audited_core
from caseroute.wire.convert import decision_to_proto
from roster_gen import make_bench_case, make_ranked_roster
from ruleset_gen import write_big_ruleset

AGENTS = 100
RATIO_TARGET = 3.0


@dataclass
class Side:
    """One ruleset under test: its core, its loaded ruleset and its log file."""

    label: str
    core: RoutingCore
    loaded: LoadedRuleset
    db: Path
    calls: int = 0
    last: Decision | None = None

    def record(self) -> float:
        """Seconds for one ``core.decide`` (evaluate, mask, record, commit), new request_id."""
        self.calls += 1
        cmd = DecideCommand(
            f"{self.label}-{self.calls}",
            "",
            "",
            (make_bench_case(),),
            ROSTER,
            NOW,
            agent_detail=False,
            parsed=True,  # as a transport's command: the code-built check is not what is measured
        )
        start = time.perf_counter()
        self.last = self.core.decide(cmd).decisions[0]
        return time.perf_counter() - start

    def record_bytes(self) -> tuple[int, int]:
        """Bytes of the last stored row (every column), and of its decision's canonical JSON.

        The columns are read from the table, so a log that keeps the hashed text in its own
        column (``content``, with ``decision`` then empty) is measured whole.
        """
        with closing(sqlite3.connect(self.db)) as conn:
            columns = [row[1] for row in conn.execute("PRAGMA table_info(decisions)")]
            total = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in columns)
            row = conn.execute(
                f"SELECT {total}, decision_id FROM decisions "  # noqa: S608 - column names
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        stored = self.core.audit.get(row[1])
        assert stored is not None  # noqa: S101 - the row was just read
        return int(row[0]), len(canonical_json(stored.decision).encode())


ROSTER = make_ranked_roster(AGENTS)


def _side(label: str, source: Path, directory: Path, engine: EngineKind) -> Side:
    loaded = prepare_ruleset(load_ruleset(source), engine)
    registry = RulesetRegistry()
    registry.add(loaded)
    directory.mkdir()
    return Side(label, audited_core(registry, directory), loaded, directory / "audit.db")


def _median_of(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    """Print a markdown table per measure and the target with met / not met."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 5 calls")
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 2)")
    parser.add_argument("--calls", type=int, help="calls per round and side (default 200; 5)")
    parser.add_argument("--engine", choices=[k.value for k in EngineKind], default="durable")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 7)
    calls = args.calls or (5 if args.quick else 200)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = EngineKind(args.engine)
        big = write_big_ruleset(root / "big", args.rules)
        sides = [
            _side("reference", REFERENCE_RULESET, root / "log-small", engine),
            _side("big", big, root / "log-big", engine),
        ]
        print(
            f"engine {engine.value}; {AGENTS}-agent warm roster; summary level; {rounds} rounds "
            f"of {calls} calls per side"
        )
        for side in sides:
            compiled = side.loaded.compiled
            ids = {rule.rule_id for rule in compiled.rules}
            print(
                f"ruleset: {len(compiled.rules)} rules ({len(ids)} distinct ids), "
                f"{len(compiled.leaves)} distinct conditions, {len(compiled.warnings)} warnings"
            )
        checks = {}
        for side in sides:
            decision = decide(make_bench_case(), ROSTER, side.loaded, NOW, agent_detail=False)
            matching = decision.explanation.matching
            eligible = matching.eligible if matching else 0
            line = (
                f"{len(side.loaded.compiled.rules)} rules: {decision.outcome.value} "
                f"{decision.agent_id} by rule {decision.explanation.deciding_rule_id}, "
                f"{eligible} eligible"
            )
            if decision.outcome is not Outcome.ASSIGN or eligible < 3:
                raise SystemExit(f"not a ranked ASSIGN with >= 3 eligible agents: {line}")
            checks[side.label] = line
            print(f"check: {line}")
        timed: dict[str, dict[str, list[float]]] = {
            s.label: {"all": [], "decide": [], "reply": []} for s in sides
        }
        case = make_bench_case()
        hashed = input_sha256(case, ROSTER)
        for _ in range(rounds):
            for side in sides:
                timed[side.label]["all"].append(
                    statistics.median(side.record() for _ in range(calls))
                )
                timed[side.label]["decide"].append(
                    _median_of(
                        partial(
                            decide,
                            case,
                            ROSTER,
                            side.loaded,
                            NOW,
                            agent_detail=False,
                            input_hash=hashed,
                        ),
                        calls,
                    )
                )
                last = side.last
                assert last is not None  # noqa: S101 - set by the calls just timed
                timed[side.label]["reply"].append(
                    _median_of(partial(decision_to_proto, last), calls)
                )
        sizes = {side.label: side.record_bytes() for side in sides}
        for side in sides:
            side.core.registry.close()
            side.core.audit.close()
    small, large = timed["reference"], timed["big"]
    ratio = statistics.median(b / s for b, s in zip(large["all"], small["all"], strict=True))
    decide_ratio = statistics.median(
        b / s for b, s in zip(large["decide"], small["decide"], strict=True)
    )
    print()
    print(
        "| rules | decide() + record median ms | decide() alone median ms "
        "| reply message median ms | record bytes | decision JSON bytes |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for side in sides:
        row = timed[side.label]
        total, decision_bytes = sizes[side.label]
        print(
            f"| {len(side.loaded.compiled.rules)} | {statistics.median(row['all']) * 1e3:.3f} "
            f"| {statistics.median(row['decide']) * 1e3:.3f} "
            f"| {statistics.median(row['reply']) * 1e3:.3f} | {total} | {decision_bytes} |"
        )
    growth = sizes["big"][0] - sizes["reference"][0]
    print()
    print(
        f"ratio {args.rules} / 7 rules: decide() + record {ratio:.2f}x, "
        f"decide() alone {decide_ratio:.2f}x"
    )
    print(f"record growth: {growth} bytes ({growth / 1024:.1f} kB)")
    print()
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    met = "met" if ratio <= RATIO_TARGET else "**not met**"
    print(
        f"| decide() + record at {args.rules} rules <= {RATIO_TARGET:g}x at 7 "
        f"| {ratio:.2f}x | {met} |"
    )
    print(
        f"| the record grows far less than 102 kB | +{growth / 1024:.1f} kB "
        "| judged by the reader |"
    )
    print()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
