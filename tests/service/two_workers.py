"""Two routing cores over one SQLite decision log, standing for two worker processes.

Each core has its own registry and store, so a retry reaching the other one (which never saw
the request) is found by the log alone. The store's request_id reads are counted, and its writes
can be switched off while its reads still work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from caseroute.audit.record import Appended, AuditRecord, Blob
from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import AuditUnavailableError
from caseroute.engine.case_rules import EngineKind
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import (
    NOW,
    audit_config,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)

ROSTER = make_roster(make_agent("a1"), make_agent("a2"))


def command(request_id: str = "r1", case_id: str = "C1") -> DecideCommand:
    """A one-case command over ``ROSTER`` at ``NOW``."""
    return DecideCommand(request_id, "", "", (make_case(case_id=case_id),), ROSTER, NOW)


class CountingSink:
    """A worker's store: the real SQLite log, its request_id reads counted, writes switchable."""

    def __init__(self, store: SqliteAuditStore) -> None:
        """Wrap ``store``, writable."""
        self.store = store
        self.reads: list[str] = []
        self.writable = True

    def append(self, records: Sequence[AuditRecord], blobs: Sequence[Blob] = ()) -> list[Appended]:
        """Append to the log; raise as an unwritable log does when writes are off."""
        if not self.writable:
            raise AuditUnavailableError("the decision log cannot be written")
        return self.store.append(records, blobs)

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """The log's records of ``request_id``; the read counted."""
        self.reads.append(request_id)
        return self.store.by_request(request_id)

    def has_blob(self, sha256: str) -> bool:
        """Whether the log holds the blob."""
        return self.store.has_blob(sha256)

    def get_blob(self, sha256: str) -> Blob | None:
        """The log's blob, or None."""
        return self.store.get_blob(sha256)


@contextmanager
def two_workers(tmp_path: Path) -> Iterator[tuple[RoutingCore, RoutingCore]]:
    """Two cores (workers), each with its own registry and store, over one decision log."""
    config = audit_config(tmp_path)
    cores = []
    for _ in range(2):
        registry = RulesetRegistry()
        registry.add(reference_ruleset(EngineKind.PYTHON))
        store = CountingSink(config.open_store())
        cores.append(RoutingCore(registry, store, config.masker()))  # type: ignore[arg-type]
    try:
        yield cores[0], cores[1]
    finally:
        for core in cores:
            sink(core).store.close()
            core.registry.close()


def sink(core: RoutingCore) -> CountingSink:
    """The core's store."""
    found = core.audit
    assert isinstance(found, CountingSink)
    return found
