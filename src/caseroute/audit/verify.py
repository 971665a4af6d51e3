"""Walk the hash chain and name the first record that was edited, deleted or reordered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from caseroute.audit.record import GENESIS, AuditRecord, chain_hash


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of verifying a chain.

    Attributes:
        ok: Whether every record and the head check out.
        records: Records examined.
        problem: The first problem, in words (``None`` when ok).
        seq: Chain position of the first bad record (0 when ok or for the head).
        decision_id: Its decision id ("" when unknown).
    """

    ok: bool
    records: int
    problem: str | None = None
    seq: int = 0
    decision_id: str = ""


def _bad(count: int, problem: str, record: AuditRecord | None = None) -> ChainReport:
    return ChainReport(
        ok=False,
        records=count,
        problem=problem,
        seq=record.seq if record else 0,
        decision_id=record.decision_id if record else "",
    )


def verify_chain(records: Iterable[AuditRecord], head: tuple[int, str]) -> ChainReport:
    """Check every link of the chain, then that it ends where the store says it ends.

    Args:
        records: Records in ``seq`` order.
        head: The (seq, record_hash) the store committed last.

    Returns:
        The report.
    """
    expected_seq, prev, count = 1, GENESIS, 0
    for record in records:
        count += 1
        if record.seq != expected_seq:
            return _bad(
                count,
                f"record {expected_seq} is missing (deleted?): the next stored "
                f"record is {record.seq}",
                record,
            )
        if chain_hash(record.prev_hash, record.content()) != record.record_hash:
            return _bad(
                count,
                f"record {record.seq} was edited or moved: its content no longer matches its hash",
                record,
            )
        if record.prev_hash != prev:
            return _bad(
                count,
                f"record {record.seq} does not follow record {record.seq - 1} "
                "(deleted, replaced or reordered records)",
                record,
            )
        prev, expected_seq = record.record_hash, expected_seq + 1
    if (expected_seq - 1, prev) != head:
        return _bad(
            count,
            f"the chain ends at record {expected_seq - 1} but the store's head "
            f"is record {head[0]} (records truncated or the head edited)",
        )
    return ChainReport(ok=True, records=count)
