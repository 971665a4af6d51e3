"""Walk the hash chain and name the first record that was edited, deleted or reordered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from caseroute.audit.record import GENESIS, AuditRecord, Blob, BlobKind, blob_sha256, chain_hash


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


def _blob_problem(
    record: AuditRecord,
    get_blob: Callable[[str], Blob | None],
    checked: set[str],
) -> str | None:
    refs = (
        (BlobKind.ROSTER, str(record.input.get("roster", {}).get("sha256", ""))),
        (BlobKind.RULESET, record.ruleset_sha256),
    )
    for kind, sha in refs:
        if sha in checked:
            continue
        blob = get_blob(sha)
        if blob is None:
            return f"record {record.seq} references a {kind.value} blob {sha} that is missing"
        try:
            actual = blob_sha256(kind, blob.content)
        except ValueError:
            actual = ""
        if blob.kind is not kind or actual != sha:
            return f"the {kind.value} blob {sha} (used by record {record.seq}) was edited"
        checked.add(sha)
    return None


def verify_chain(
    records: Iterable[AuditRecord],
    head: tuple[int, str],
    get_blob: Callable[[str], Blob | None] | None = None,
) -> ChainReport:
    """Check every link of the chain, then that it ends where the store says it ends.

    Args:
        records: Records in ``seq`` order.
        head: The (seq, record_hash) the store committed last.
        get_blob: Looks up blobs; when given, every roster snapshot and ruleset source a
            record references must exist and hash to its key.

    Returns:
        The report.
    """
    checked: set[str] = set()
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
        if get_blob is not None:
            problem = _blob_problem(record, get_blob, checked)
            if problem is not None:
                return _bad(count, problem, record)
        prev, expected_seq = record.record_hash, expected_seq + 1
    if (expected_seq - 1, prev) != head:
        return _bad(
            count,
            f"the chain ends at record {expected_seq - 1} but the store's head "
            f"is record {head[0]} (records truncated or the head edited)",
        )
    return ChainReport(ok=True, records=count)
