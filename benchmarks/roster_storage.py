"""Bytes the decision log writes for each new roster snapshot, and the CPU of building them.

Usage: .venv/bin/python benchmarks/roster_storage.py [--agents 1000] [--snapshots 40] [--quick]

Run it with ``PYTHONPATH=<tree>/src`` to measure another tree (one from before rosters were
stored in chunks writes each new snapshot whole).

Callers send a new snapshot whenever an agent's status or capacity changes, often with every
case. Into a real SQLite decision log (a temporary file), one record per snapshot with the blobs
``blobs_to_store`` gives it, starting from the benchmark's ranked roster (``roster_gen``):

- ``one agent busier``: each snapshot is the previous one with one agent (a different one each
  time) given one more active case;
- ``2% changed``: as ``grpc_bench.cold_body``'s known-agents case, every 50th agent (offset by
  the snapshot) one more active case;
- ``login + logout``: one agent (a new id) added in the first third and one removed in the
  last third, as ``index_reuse.py --scenario shifted``;
- ``all new``: every agent a new id (a roster never seen).

Per scenario: the median bytes of blob content written per snapshot (roster blobs only; the
ruleset is written once), that against the whole roster's canonical JSON, and the median
thread CPU of ``blobs_to_store`` (the agents' texts handed over as the server has them from its
roster cache: a tree whose fingerprints keep texts takes them, an older one its joined JSON).
Every snapshot is read back (``get_blob``) and compared with ``roster_json``. Then ``audit
verify``'s walk over the log, per snapshot: with blobs assembled (``get_blob``) and, in a tree
that has it, as stored (``stored_blob``, what the CLI passes: chunks checked once each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from caseroute.audit.recorder import blobs_to_store
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.fingerprint import fingerprint_roster, roster_json
from caseroute.domain.roster import Agent, Capacity, Roster
from caseroute.testing import make_audit_record, reference_compiled
from roster_gen import make_ranked_roster

CHANGED_EVERY = 50
"""One agent in this many is a new value in a ``2% changed`` snapshot."""


def _busier(agent: Agent) -> Agent:
    return replace(agent, capacity=Capacity(agent.capacity.active + 1, agent.capacity.max + 1))


def _one_busier(roster: Roster, n: int) -> Roster:
    agents = list(roster.agents)
    place = (n * 37) % len(agents)
    agents[place] = _busier(agents[place])
    return replace(roster, agents=tuple(agents))


def _two_percent(roster: Roster, n: int) -> Roster:
    agents = [
        _busier(a) if i % CHANGED_EVERY == n % CHANGED_EVERY else a
        for i, a in enumerate(roster.agents)
    ]
    return replace(roster, agents=tuple(agents))


def _login_logout(roster: Roster, n: int) -> Roster:
    agents = list(roster.agents)
    third = len(agents) // 3
    del agents[2 * third + n % third]
    agents.insert(n % third, replace(agents[0], agent_id=f"login-{n}"))
    return replace(roster, agents=tuple(agents))


def _all_new(roster: Roster, n: int) -> Roster:
    agents = tuple(replace(a, agent_id=f"{a.agent_id}-s{n}") for a in roster.agents)
    return replace(roster, agents=agents)


SCENARIOS: dict[str, Callable[[Roster, int], Roster]] = {
    "one agent busier": _one_busier,
    "2% changed": _two_percent,
    "login + logout": _login_logout,
    "all new": _all_new,
}


def _written(sink: SqliteAuditStore, roster: Roster, n: int) -> tuple[int, float]:
    """Append record ``n`` on ``roster``: roster bytes written, blobs_to_store's CPU (us)."""
    ruleset = reference_compiled()
    # Fingerprinted before the clock starts: the server's roster cache has done it already.
    if _KEEPS_TEXTS:
        kept = fingerprint_roster(roster, keep_texts=True)
        started = time.thread_time_ns()
        blobs = blobs_to_store(sink, ruleset, roster, kept)
    else:  # an older tree: the joined roster JSON handed over, as its server did
        kept = fingerprint_roster(roster, keep_json=True)  # type: ignore[call-arg]
        text = kept.take_json()  # type: ignore[attr-defined]
        started = time.thread_time_ns()
        blobs = blobs_to_store(  # type: ignore[call-arg]
            sink, ruleset, roster, snapshot_sha256=kept.sha256, roster_text=text
        )
    cpu = (time.thread_time_ns() - started) / 1000
    sha = kept.sha256
    record = make_audit_record(
        n, ruleset_sha256=ruleset.sha256, input={"case": {}, "roster": {"sha256": sha}}
    )
    sink.append([record], blobs)
    stored = sink.get_blob(sha)
    if stored is None or stored.content != roster_json(roster):
        sys.exit(f"snapshot {n} does not read back as its roster")
    return sum(len(b.content) for b in blobs if b.kind.value != "ruleset"), cpu


_KEEPS_TEXTS = "keep_texts" in fingerprint_roster.__kwdefaults__  # type: ignore[operator]


def _verify_ms(sink: SqliteAuditStore, get: Callable[[str], object] | None) -> float | None:
    """Milliseconds of ``audit verify``'s walk over the log with this blob getter."""
    if get is None:
        return None
    started = time.perf_counter()
    report = verify_chain(sink.records(), sink.head(), get)  # type: ignore[arg-type]
    if not report.ok:
        sys.exit(f"verify failed: {report.problem}")
    return (time.perf_counter() - started) * 1000


Row = tuple[str, float, float, float, float | None, float | None]


def measure(agents: int, snapshots: int) -> list[Row]:
    """Per scenario: bytes written, share of the roster, blobs_to_store CPU, verify's cost.

    The first three are medians per snapshot; verify's is its whole walk per snapshot, with
    blobs assembled (``get_blob``) and as stored (``stored_blob``; None in a tree without it).
    """
    rows = []
    for name, step in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as folder:
            sink = SqliteAuditStore(Path(folder) / "audit.db")
            roster = make_ranked_roster(agents)
            _written(sink, roster, 0)  # the first sight: every agent
            written, cpu = [], []
            for n in range(1, snapshots + 1):
                roster = replace(step(roster, n), snapshot_id=f"snap-{n}")
                size, used = _written(sink, roster, n)
                written.append(size)
                cpu.append(used)
            assembled = _verify_ms(sink, sink.get_blob)
            stored = _verify_ms(sink, getattr(sink, "stored_blob", None))
            sink.close()
        whole = len(roster_json(roster))
        median = statistics.median(written)
        per = snapshots + 1
        rows.append(
            (
                name,
                median,
                median / whole,
                statistics.median(cpu),
                None if assembled is None else assembled / per,
                None if stored is None else stored / per,
            )
        )
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="smoke: 100 agents, 4 snapshots")
    args = parser.parse_args()
    agents, snapshots = (100, 4) if args.quick else (args.agents, args.snapshots)
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = measure(agents, snapshots)
    print(f"\n{agents} agents, {snapshots} snapshots after the first, medians\n")
    print(
        "| new snapshot | bytes written | share of the whole roster | blobs_to_store CPU us "
        "| verify ms per snapshot, assembled | verify ms per snapshot, as stored |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, written, share, cpu, assembled, stored in rows:
        print(
            f"| {name} | {written:,.0f} | {share:.1%} | {cpu:.0f} | {_ms(assembled)} "
            f"| {_ms(stored)} |"
        )
    print(f"\nload {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
