"""CPU of a new snapshot's roster index when most agents are the same values (issue 13 target 3).

Usage: .venv/bin/python benchmarks/index_reuse.py [--quick] [--agents 1000] [--calls 40]
[--rounds 5] [--scenario replaced|shifted] [--ab TREE_A TREE_B [--runs 3]]

In one process, as a server worker sees "new snapshot, known agents (2% changed)": a first
roster of ``--agents`` agents (the benchmark's ranked roster) is indexed and decided once (so
its index holds a licence mask, as a served roster's does). Each call then makes a new snapshot
of it in which 2% of the agents (every 50th, offset by the call) are new values (one more
active case, assigned a second earlier) and the others the very same ``Agent`` objects, as the
server's roster cache hands them over; the last 8 snapshots stay alive, as the roster cache
keeps them. Per snapshot, thread CPU of: ``index`` (``index_for``), ``first decide``
(``decide()`` right after it: the first decision on the roster, licence mask included),
``warm decide`` (a second one) and, for reference, ``fresh build`` (``RosterIndex.build`` of
the same agents). Decisions take their id and input hash given (as served), no agent detail.

``--scenario shifted`` (agents logging in and out): each snapshot is instead the previous one
with 2% of its agents (every 50th, offset by the call) new values, one agent (a new id) added
at a place in the first third and one removed at a place in the last third: every agent
between the two sits one place further on than in the previous snapshot.

``--ab TREE_A TREE_B`` runs this script under each tree's ``src`` in child processes,
alternating A, B, A, B (``--runs`` each), and prints each column's median of the runs' medians
and B/A, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from caseroute.domain.roster import Capacity, Roster
from caseroute.engine.decide import decide
from caseroute.engine.roster_index import RosterIndex, index_for
from caseroute.testing import NOW, reference_ruleset
from roster_gen import make_bench_case, make_ranked_roster

try:
    from caseroute.domain.roster import with_kept_agents
except ImportError:  # a tree from before the mark, where every roster could be patched

    def with_kept_agents(roster: Roster) -> Roster:
        """The roster as it is (nothing to mark in that tree)."""
        return roster


CHANGED_EVERY = 50
"""One agent in this many (2%) is a new value in each snapshot (as ``grpc_bench.cold_body``)."""
KEPT_SNAPSHOTS = 8
"""Snapshots kept alive behind the newest, as a server's roster cache keeps recent rosters."""
COLUMNS = ("index", "first decide", "warm decide", "fresh build")
SCENARIOS = ("replaced", "shifted")


def _snapshot(first: Roster, n: int) -> Roster:
    """``first`` with every 50th agent (offset by ``n``) a new value, the rest the same objects."""
    agents = list(first.agents)
    for i in range(n % CHANGED_EVERY, len(agents), CHANGED_EVERY):
        agent = agents[i]
        held = agent.capacity
        assigned = agent.last_assigned_at or NOW
        agents[i] = replace(
            agent,
            capacity=Capacity(held.max, (held.active + 1) % (held.max + 1)),
            last_assigned_at=assigned - timedelta(seconds=n + 1),
        )
    # Marked as the server's roster cache marks the rosters it builds from kept agents.
    return with_kept_agents(Roster(f"cold-{n}", first.taken_at, tuple(agents)))


def _shifted(previous: Roster, n: int) -> Roster:
    """``previous`` with 2% new values, one agent added in the first third, one removed."""
    agents = list(_snapshot(previous, n).agents)
    third = len(agents) // 3
    removed = 2 * third + (n * 53) % third
    added = replace(agents[(n * 7) % len(agents)], agent_id=f"login-{n}")
    del agents[removed]
    agents.insert((n * 37) % third, added)
    return with_kept_agents(Roster(f"shifted-{n}", previous.taken_at, tuple(agents)))


def _cpu_us(work: Any) -> float:
    start = time.thread_time()
    work()
    return (time.thread_time() - start) * 1e6


def measure(agents: int, calls: int, rounds: int, scenario: str = "replaced") -> dict[str, Any]:
    """Each round's median per column (us of thread CPU), and the last decision's outcome."""
    ruleset = reference_ruleset()
    case = make_bench_case()
    first = with_kept_agents(make_ranked_roster(agents))

    def decided(roster: Roster) -> Any:
        return decide(
            case, roster, ruleset, NOW, agent_detail=False, decision_id="d", input_hash="h"
        )

    decided(first)
    kept: list[Roster] = []
    serial = 0
    out = []
    last = None
    for _ in range(rounds):
        times: dict[str, list[float]] = {name: [] for name in COLUMNS}
        for _ in range(calls):
            serial += 1
            if scenario == "shifted":
                roster = _shifted(kept[-1] if kept else first, serial)
            else:
                roster = _snapshot(first, serial)
            kept = [*kept, roster][-KEPT_SNAPSHOTS:]
            times["index"].append(_cpu_us(lambda r=roster: index_for(r)))
            times["first decide"].append(_cpu_us(lambda r=roster: decided(r)))
            times["warm decide"].append(_cpu_us(lambda r=roster: decided(r)))
            agents_now = roster.agents
            times["fresh build"].append(_cpu_us(lambda a=agents_now: RosterIndex.build(a)))
            last = decided(roster)
        out.append({name: statistics.median(v) for name, v in times.items()})
    assert last is not None  # noqa: S101 - rounds >= 1
    return {"rounds": out, "check": f"{last.outcome.value} {last.agent_id}"}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(rows: list[dict[str, float]], name: str) -> float:
    return statistics.median(row[name] for row in rows)


def _print_one(result: dict[str, Any]) -> None:
    rows = result["rounds"]
    print(f"check: {result['check']}")
    print()
    print("| round | " + " | ".join(COLUMNS) + " |")
    print("| --- |" + " --- |" * len(COLUMNS))
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row[n]:.1f}" for n in COLUMNS) + " |")
    print("| median | " + " | ".join(f"{_median(rows, n):.1f}" for n in COLUMNS) + " |")
    print()


def _child(tree: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run of this script under ``tree/src``."""
    env = dict(os.environ, PYTHONPATH=str(Path(tree) / "src"))
    argv = [sys.executable, __file__, "--json", "--agents", str(args.agents)]
    argv += ["--calls", str(args.calls), "--rounds", str(args.rounds)]
    argv += ["--scenario", args.scenario]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"run under {tree} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _ab(args: argparse.Namespace) -> None:
    trees = {"A": args.ab[0], "B": args.ab[1]}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    checks = set()
    print(f"load average at start: {_load()}; scenario {args.scenario}")
    for side, path in trees.items():
        print(f"{side}: {path}")
    for _ in range(args.runs):
        for side in ("A", "B"):
            result = _child(trees[side], args)
            checks.add(result["check"])
            row = {name: _median(result["rounds"], name) for name in COLUMNS}
            runs[side].append(row)
            print(
                f"run {side}{len(runs[side])}: index {row['index']:.1f} us, first decide "
                f"{row['first decide']:.1f} us (load {_load()})",
                flush=True,
            )
    if len(checks) != 1:
        sys.exit(f"the two trees decide differently: {sorted(checks)}")
    print(f"check: {checks.pop()}")
    print()
    print("| us of CPU per snapshot | A median | A runs | B median | B runs | B/A |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in COLUMNS:
        a, b = _median(runs["A"], name), _median(runs["B"], name)
        spread = {
            side: "-".join(f"{f(r[name] for r in rows):.0f}" for f in (min, max))
            for side, rows in runs.items()
        }
        print(f"| {name} | {a:.1f} | {spread['A']} | {b:.1f} | {spread['B']} | {b / a:.3f} |")
    print()
    print(f"load average at end: {_load()} ({os.cpu_count()} cores)")


def main(argv: list[str] | None = None) -> None:
    """Print one tree's table per round, or the A/B table of two trees."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke: 100 agents, 3 calls, 1 round")
    parser.add_argument("--agents", type=int, help="agents per roster (default 1000)")
    parser.add_argument("--calls", type=int, help="snapshots per round (default 40)")
    parser.add_argument("--rounds", type=int, help="rounds per run (default 5)")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="replaced",
        help="replaced: 2%% new values; shifted: also one agent added, one removed",
    )
    parser.add_argument("--ab", nargs=2, metavar="TREE", help="compare two source trees")
    parser.add_argument("--runs", type=int, default=3, help="--ab: runs per tree, alternating")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.agents = args.agents or (100 if args.quick else 1000)
    args.calls = args.calls or (3 if args.quick else 40)
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.ab:
        _ab(args)
        return
    result = measure(args.agents, args.calls, args.rounds, args.scenario)
    if args.json:
        print(json.dumps(result))
        return
    print(f"load average at start: {_load()}; scenario {args.scenario}")
    _print_one(result)
    print(f"load average at end: {_load()} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
