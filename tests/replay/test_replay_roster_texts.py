"""Replay keeps the last few roster snapshots' texts, not every snapshot's for the whole run.

A log in which each decision saw a new snapshot (callers send one whenever capacity changes)
held every snapshot's text in the parent until the run ended: ~315 kB each at 1,000 agents.
"""

from __future__ import annotations

from collections.abc import Iterator

from caseroute.audit.record import AuditRecord, Blob, BlobKind
from caseroute.replay.evaluate import ROSTER_CACHE
from caseroute.replay.feeds import _chunks
from caseroute.testing import make_audit_record


class _CountingSource:
    """Every snapshot exists; counts each one's reads."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}

    def records(self) -> Iterator[AuditRecord]:
        return iter(())

    def get_blob(self, sha256: str) -> Blob | None:
        self.reads[sha256] = self.reads.get(sha256, 0) + 1
        return Blob(sha256, BlobKind.ROSTER, f"text of {sha256}")


def _on(n: int, sha: str) -> AuditRecord:
    return make_audit_record(n, input={"case": {}, "roster": {"sha256": sha}})


def test_a_snapshot_used_again_after_many_others_is_read_again_not_kept() -> None:
    """Recent snapshots are read once; one not used for ROSTER_CACHE others is read anew."""
    others = [f"s{i}" for i in range(ROSTER_CACHE)]
    shas = ["first", "first", *others, others[-1], "first"]
    source = _CountingSource()
    items = [
        item
        for chunk in _chunks([(_on(i, s), None) for i, s in enumerate(shas)], source)
        for item in chunk
    ]
    assert [f"text of {sha}" for sha in shas] == [text for _, text, _ in items]
    assert {"first": 2, **dict.fromkeys(others, 1)} == source.reads
