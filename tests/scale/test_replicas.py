"""Issue 14's proof: replicas sharing one decision log lose nothing when one is SIGKILLed.

Three `caseroute serve` replicas share one decision log (a SQLite file, or a PostgreSQL
database). Load threads, each with its own round_robin client over all three and its own
request ids, decide continuously. Mid-load (after 60 decisions were received), a "hold-*"
request is decided and recorded by the victim replica, whose hook then holds the reply; once
the victim logs that it holds it, the whole replica (parent and worker) is SIGKILLed. Nothing
here waits a fixed time: every step waits for an event (a count of replies, a log line).
"""

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from caseroute.client import Client, ClientError, Decided
from caseroute.domain.roster import Roster
from caseroute.testing import NOW, make_agent, make_case, make_roster
from tests.serve_process import Served

from .conftest import start_replica

LOAD_THREADS = 4
BEFORE_KILL = 60
"""Decisions received before the victim is made to hold a reply."""
AFTER_KILL = 60
"""Decisions received after the kill before the load stops (the survivors kept answering)."""
WAIT_S = 180.0
"""Longest wait for any one event (a slow, shared machine); never a sleep."""


@dataclass(frozen=True)
class Received:
    """A reply a client received."""

    request_id: str
    decision_id: str
    outcome: str
    replayed: bool


class Load:
    """Load threads deciding through round_robin clients; replies counted as they arrive."""

    def __init__(self, addresses: list[str], roster: Roster) -> None:
        """Clients over ``addresses``, each thread with its own request ids."""
        self.addresses = addresses
        self.roster = roster
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._changed = threading.Condition()

    def note(self, request_id: str, reply: Decided) -> None:
        """Count a reply."""
        got = Received(
            request_id,
            reply.decision.decision_id,
            reply.decision.outcome.name,
            reply.replayed,
        )
        with self._changed:
            self.received.append(got)
            self._changed.notify_all()

    def fail(self, what: str) -> None:
        """Note a call that raised; stops every thread (the test then fails)."""
        with self._changed:
            self.errors.append(what)
            self.stop.set()
            self._changed.notify_all()

    def wait_count(self, count: int) -> None:
        """Block until ``count`` replies arrived (or a call failed)."""
        with self._changed:
            reached = self._changed.wait_for(
                lambda: len(self.received) >= count or bool(self.errors), WAIT_S
            )
        assert reached, f"only {len(self.received)} of {count} replies within {WAIT_S} s"
        assert self.errors == []

    def run(self, thread: int) -> None:
        """Decide case after case with request ids ``t<thread>-<i>`` until told to stop."""
        with Client(self.addresses, timeout=60) as client:
            for i in range(100_000):  # bounded; ends on stop
                if self.stop.is_set():
                    return
                request_id = f"t{thread}-{i}"
                try:
                    reply = client.decide(
                        make_case(case_id=f"T{thread}-{i}"),
                        self.roster,
                        now=NOW,
                        request_id=request_id,
                    )
                except ClientError as error:
                    self.fail(f"{request_id}: {error.code.name} {error.details}")
                    return
                self.note(request_id, reply)


def _hold(load: Load, killed: threading.Event) -> None:
    """Send hold-0, hold-1, ... one at a time until the victim was killed.

    The victim holds the reply of the first one it gets; the others go to live replicas.
    """
    with Client(load.addresses, timeout=60) as client:
        for k in range(100):  # bounded; round_robin reaches the victim within three
            if killed.is_set():
                return
            request_id = f"hold-{k}"
            try:
                reply = client.decide(
                    make_case(case_id=f"H-{k}"), load.roster, now=NOW, request_id=request_id
                )
            except ClientError as error:
                load.fail(f"{request_id}: {error.code.name} {error.details}")
                return
            load.note(request_id, reply)
    load.fail("no hold-* request reached the victim in 100 calls")


def test_sigkill_of_one_replica_mid_load_loses_nothing(
    tmp_path: Path, audit_db: str, rulesets: Path, replicas: list[Served]
) -> None:
    """Every reply is in the shared log once, the chain verifies, survivors kept answering."""
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    victim = start_replica(tmp_path, audit_db, rulesets, hold=fifo)
    replicas.append(victim)
    replicas.extend(start_replica(tmp_path, audit_db, rulesets) for _ in range(2))
    addresses = [r.address for r in replicas]
    load = Load(addresses, make_roster(*(make_agent(f"a{i}") for i in range(20))))
    threads = [threading.Thread(target=load.run, args=(n,)) for n in range(LOAD_THREADS)]
    killed = threading.Event()
    holder = threading.Thread(target=_hold, args=(load, killed))
    try:
        for t in threads:
            t.start()
        load.wait_count(BEFORE_KILL)
        holder.start()
        victim.wait_for("test-hook: holding hold-")  # recorded by the victim, reply held
        os.killpg(victim.proc.pid, signal.SIGKILL)  # the replica: parent and worker
        killed.set()
        victim.proc.wait(60)
        at_kill = len(load.received)
        load.wait_count(at_kill + AFTER_KILL)  # the survivors kept answering
    finally:
        load.stop.set()
        for t in [*threads, holder]:
            if t.is_alive() or t.ident is not None:
                t.join(WAIT_S)
    assert load.errors == []
    assert victim.proc.returncode == -signal.SIGKILL

    # The held request: recorded by the victim, its reply lost with it; the client's retry
    # (same request_id) landed on a live replica, which returned the stored decision.
    [line] = [line for line in victim.seen if "test-hook: holding " in line]
    held_id = line.split()[2]
    assert [(r.request_id, r.replayed) for r in load.received if r.request_id == held_id] == [
        (held_id, True)
    ]

    survivor = [r.address for r in replicas[1:]]
    with Client(survivor[0], timeout=60) as reader:
        logged = list(reader.list_decisions(page_size=500))
    per_request = Counter(d.request_id for d in logged)
    assert [rid for rid, n in per_request.items() if n != 1] == []  # one record set each
    stored = {d.request_id: (d.decision.decision_id, d.decision.outcome.name) for d in logged}
    missing = [r for r in load.received if stored.get(r.request_id) != (r.decision_id, r.outcome)]
    assert missing == []
    assert len(load.received) >= BEFORE_KILL + AFTER_KILL

    verify = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", "audit", "verify", "--audit-db", audit_db],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert (verify.returncode, verify.stderr) == (0, "")
    assert verify.stdout.startswith("ok: "), verify.stdout
