"""Replay throughput (issue 10): N recorded decisions with 100-agent rosters, 1 vs 2 workers.

Records ``--decisions`` decisions (default 10,000) of ``caseroute.simulate`` traffic
(``--agents`` per roster snapshot, default 100) into a fresh decision log through
``RoutingCore`` in-process, with the reference ruleset on durable_rules and every decision
committed before the next, as a server would. Recording is timed and printed separately: it is
not part of the target. The outcome mix is printed so the reader sees replay did ranked
ASSIGNs, not only QUEUEs.

Then it times ``replay`` (the same call ``caseroute replay`` makes) of the whole log under the
SAME version (identity: nothing should change) and under a changed candidate (the ranking order
reversed on its first two keys, so ranked ASSIGNs move to other agents), each with 1 and 2
workers, in interleaved rounds (1, 2, 1, 2, ...), and the time to load the records alone:
the undecoded rows replay reads (``SinkRecords.record_rows()``) and, for comparison, every
record decoded in one process (``SinkRecords.records()``, what replay did before). The table
gives per round the wall time and decisions/s, and the medians with the 2-vs-1 ratio.

Target (issue 10): 10,000 decisions in under 20 s (>= 500 decisions/s) with 2 workers.

Usage: .venv/bin/python benchmarks/replay_bench.py [--decisions N] [--agents A] [--rounds R]
       [--seed S] [--only identity|changed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import CandidateSource, ReplayOptions, SinkRecords, replay
from caseroute.replay.report import ReplayReport
from caseroute.rules.compiler import RULESET_FILE
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.simulate import DEFAULT_START, simulate
from caseroute.testing import REFERENCE_RULESET, audit_config

RANKING = "ranking: [lowest_utilisation, highest_skill_level, longest_idle]"
CHANGED_RANKING = "ranking: [highest_skill_level, lowest_utilisation, longest_idle]"
CHANGED_VERSION = "2099.1.0"


def _candidates() -> dict[str, CandidateSource]:
    path = REFERENCE_RULESET / RULESET_FILE
    text = path.read_text(encoding="utf-8")
    if RANKING not in text:
        raise SystemExit(f"the reference ruleset no longer reads `{RANKING}`: update the bench")
    version = next(line for line in text.splitlines() if line.startswith("version:"))
    changed = text.replace(RANKING, CHANGED_RANKING).replace(
        version, f'version: "{CHANGED_VERSION}"'
    )
    return {
        "identity": CandidateSource(str(path), text),
        "changed": CandidateSource(f"{path} (ranking reordered)", changed),
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _record(directory: Path, decisions: int, agents: int, seed: int) -> RoutingCore:
    """Record simulated traffic into a new log in ``directory``; return the core."""
    source = _candidates()["identity"]
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(source.compile(), EngineKind.DURABLE))
    config = audit_config(directory)
    # Every request carries its own `now`; the clock is never read.
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: DEFAULT_START)
    outcomes: Counter[str] = Counter()
    requests = list(simulate(decisions, agents, seed))
    start = time.perf_counter()
    for request in requests:
        cmd = DecideCommand(
            *(request.request_id, "", "", request.cases, request.roster, request.now),
            parsed=True,  # simulated values, as a transport's command
        )
        for decision in core.decide(cmd).decisions:
            outcomes[decision.outcome.value] += 1
    elapsed = time.perf_counter() - start
    mix = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
    print(f"recorded {sum(outcomes.values())} decisions in {len(requests)} requests: {mix}")
    print(f"recording: {elapsed:.1f} s ({sum(outcomes.values()) / elapsed:.0f} decisions/s)")
    core.audit.close()
    return core


def _time_replay(
    source: SinkRecords, candidate: CandidateSource, workers: int
) -> tuple[float, ReplayReport]:
    start = time.perf_counter()
    report = replay(source, candidate, ReplayOptions(EngineKind.DURABLE, workers))
    return time.perf_counter() - start, report


def _summary(report: ReplayReport) -> str:
    classes = ", ".join(f"{name} {count}" for name, count in report.classes if count)
    return (
        f"total {report.total}, changed {report.changed}, not_replayable "
        f"{report.not_replayable}; {classes}"
    )


def main() -> None:
    """Print the recording, the load time, and a markdown table of replay rounds."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--only", choices=("identity", "changed"), default=None)
    parser.add_argument(
        "--log", type=Path, default=None, help="reuse (or first record) the log in this directory"
    )
    args = parser.parse_args()
    candidates = _candidates()
    names = [args.only] if args.only else list(candidates)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.log or Path(tmp)
        store = audit_config(directory).open_store()
        if store.head()[0] == 0:  # no record yet (opening binds the key, so has_records)
            store.close()
            print(f"load average before recording: {_load()}")
            core = _record(directory, args.decisions, args.agents, args.seed)
            core.registry.close()
            store = audit_config(directory).open_store()
        source = SinkRecords(store)
        print(f"load average before replay: {_load()}")
        # What replay reads (undecoded rows), and what decoding every record here would cost.
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            rows = source.record_rows()
            count = len(list(rows or ()))
            loads.append(time.perf_counter() - start)
        if count == 0:
            raise SystemExit(f"no records to replay in {directory}")
        print(
            f"reading {count} rows (as replay does): median {statistics.median(loads):.2f} s of 3"
        )
        start = time.perf_counter()
        decoded = len(list(source.records()))
        print(f"decoding {decoded} records in one process: {time.perf_counter() - start:.2f} s")
        times: dict[tuple[str, int], list[float]] = {}
        print("| round | candidate | workers | wall s | decisions/s |")
        print("| --- | --- | --- | --- | --- |")
        reports: dict[str, str] = {}
        for r in range(args.rounds):
            for name in names:
                for workers in (1, 2):
                    elapsed, report = _time_replay(source, candidates[name], workers)
                    times.setdefault((name, workers), []).append(elapsed)
                    summary = _summary(report)
                    if reports.setdefault(name, summary) != summary:
                        raise SystemExit(f"{name}: reports differ between runs: {summary}")
                    print(
                        f"| {r + 1} | {name} | {workers} | {elapsed:.2f} | "
                        f"{report.total / elapsed:.0f} |"
                    )
        print()
        print("| candidate | workers | median wall s | decisions/s | 2 vs 1 speed-up |")
        print("| --- | --- | --- | --- | --- |")
        for name in names:
            one = statistics.median(times[(name, 1)])
            two = statistics.median(times[(name, 2)])
            print(f"| {name} | 1 | {one:.2f} | {count / one:.0f} | |")
            print(f"| {name} | 2 | {two:.2f} | {count / two:.0f} | {one / two:.2f}x |")
        for name, summary in reports.items():
            print(f"{name}: {summary}")
        print(f"load average after: {_load()}")
        store.close()


if __name__ == "__main__":
    main()
