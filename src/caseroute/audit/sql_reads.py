"""Every read of both SQL decision logs (SQLite, PostgreSQL), written once over a dialect hook.

``SqlLogReads`` reads a log the same way from either store over a small per-dialect hook:
``_fetch`` (one read), ``_P`` (the placeholder, ``?`` or ``%s``), ``_has_table``,
``_has_column`` and the shadow summary's SQL (``shadow_summary_sql``: each store keeps its own
aggregates, where its dialect differs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from caseroute.audit.record import (
    GENESIS,
    SHADOW_DIFFERENCES,
    AuditRecord,
    Blob,
    BlobKind,
    RulesetEvent,
    ShadowResult,
    ShadowSummary,
)
from caseroute.audit.roster_blob import assemble_roster, manifest_keys
from caseroute.audit.sql_rows import (
    EVENT_COLUMNS,
    RECORD_COLUMNS,
    SHADOW_COLUMNS,
    KeyEra,
    RecordRow,
    distinct_values,
    last_event_sql,
    micros,
    record_from_row,
    shadow_from_row,
    stored_int,
)

READ_UNAVAILABLE = (
    "the decision log cannot be read; nothing was decided or changed; retry later or with "
    "another replica"
)
"""What a caller is told when the log cannot be read (the cause goes to the log only)."""
PAGE = 1000
"""Rows read per page by the iterating reads (``records``, ``record_rows``, ``iter_events``)."""
MAX_NAMES = 1000
"""Ruleset names ``ruleset_names`` reads per table at most (a message lists a few of them)."""
_NAMED_TABLES = ("decisions", "ruleset_events", "shadow_results", "shadow_dropped")
"""The tables whose rows name a ruleset, each indexed on ``ruleset_name`` first."""
CHUNKS_PER_READ = 500
"""Most roster chunks one read asks for (a statement's placeholders stay well under SQLite's
limit whatever the roster's size)."""


class SqlLogReads(ABC):
    """Every read of a decision log, written once over a per-dialect hook.

    A store provides ``_fetch`` (one read; a failure raises AuditUnavailableError with
    READ_UNAVAILABLE), ``_has_table``, and the class attributes ``_P`` (the placeholder) and
    ``_SHADOW_SUMMARY`` (the summary's SQL: its aggregates differ per dialect).
    """

    _P: ClassVar[str]
    _SHADOW_SUMMARY: ClassVar[str]
    _select = ", ".join(RECORD_COLUMNS)
    """The record columns a read selects (a store of an older layout may override it)."""

    @abstractmethod
    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Run one read and return its rows."""

    @abstractmethod
    def _has_table(self, name: str) -> bool:
        """Whether a table exists (a log written by an older caseroute may lack newer ones)."""

    @abstractmethod
    def _has_column(self, table: str, column: str) -> bool:
        """Whether a table has a column (a log written by an older caseroute may lack it)."""

    def key_history(self) -> list[KeyEra]:
        """Every masking key era, oldest first (empty for a log written before fingerprints)."""
        if not self._has_table("key_history"):
            return []  # a log written before key history (opened read-only)
        sealed = self._has_column("key_history", "record_hash")
        rows = self._fetch(
            "SELECT era, at, old_fingerprint, new_fingerprint, first_seq"
            + (", seq, prev_hash, record_hash" if sealed else ", NULL, NULL, NULL")
            + " FROM key_history ORDER BY era",
            (),
        )
        return [
            KeyEra(
                stored_int(era, "a masking key era's number"),
                at,
                old,
                new,
                stored_int(first, f"the first record of masking key era {era!r}"),
                None if seq is None else stored_int(seq, f"the position of key rotation {era!r}"),
                "" if prev is None else prev,
                "" if record_hash is None else record_hash,
            )
            for era, at, old, new, first, seq, prev, record_hash in rows
        ]

    def has_records(self) -> bool:
        """Whether any record or key fingerprint is stored (a key is then already bound)."""
        return self.head()[0] > 0 or bool(self.key_history())

    @cached_property
    def _by_id_sql(self) -> str:
        """``get``'s statement, built once (a store sets ``_select`` before its first read)."""
        return f"SELECT {self._select} FROM decisions WHERE decision_id = {self._P}"

    @cached_property
    def _by_request_sql(self) -> str:
        """``by_request``'s statement, built once: the idempotency read runs per Decide."""
        return f"SELECT {self._select} FROM decisions WHERE request_id = {self._P} ORDER BY seq"

    def get(self, decision_id: str) -> AuditRecord | None:
        """One record by decision id."""
        rows = self._fetch(self._by_id_sql, (decision_id,))
        return record_from_row(rows[0]) if rows else None

    def by_request(self, request_id: str) -> list[AuditRecord]:
        """Records of one request, in chain order (most requests have none: a list only then)."""
        rows = self._fetch(self._by_request_sql, (request_id,))
        return [record_from_row(r) for r in rows] if rows else []

    def records(
        self,
        after_seq: int = 0,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """Every matching record in chain order after ``after_seq``, read a page at a time."""
        while True:
            page = self.query(
                case_id=case_id, since=since, until=until, after_seq=after_seq, limit=PAGE
            )
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1].seq

    def query(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records in chain order after ``after_seq`` for one case and/or a range of ``now``.

        Args:
            case_id: Only this case ("" = any).
            since: Only decisions with ``now >= since`` (None = unbounded).
            until: Only decisions with ``now < until`` (None = unbounded).
            after_seq: Resume after this chain position (pagination).
            limit: At most this many records.

        Returns:
            The records.
        """
        return [
            record_from_row(r) for r in self._query_rows(case_id, since, until, after_seq, limit)
        ]

    def record_rows(
        self,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[RecordRow]:
        """``records`` undecoded, a page at a time, so JSON is decoded where it is used.

        Replay sends these to its worker processes: decoding a record with per-agent verdicts
        costs more than deciding it, and a decoded record costs more to send than its text.
        """
        after_seq = 0
        while True:
            page = self._query_rows(case_id, since, until, after_seq, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1][0]

    def last_record_seq(self) -> int:
        """The chain position of the last decision stored (0: none), read from the rows.

        Not ``head``: an edited head must not hide records from a reader bounded by it.
        """
        rows = self._fetch("SELECT MAX(seq) FROM decisions", ())
        last = rows[0][0] if rows else None
        return 0 if last is None else stored_int(last, "the last decision's seq")

    def count_record_rows(
        self,
        ruleset_name: str,
        *,
        case_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        through_seq: int,
        limit: int | None = None,
    ) -> int:
        """How many of the first ``limit`` matching rows up to ``through_seq`` are of a ruleset.

        Replay's progress total, counted in the log without reading any row's text.

        Args:
            ruleset_name: The ruleset name counted (its column, as replay selects by).
            case_id: Only this case ("" = any).
            since: Only decisions with ``now >= since`` (None = unbounded).
            until: Only decisions with ``now < until`` (None = unbounded).
            through_seq: Only rows at or before this chain position.
            limit: Only the first this many matching rows, of any ruleset (None: all).

        Returns:
            The count.
        """
        p = self._P
        where, params = self._row_filter(case_id, since, until, 0)
        where.append(f"seq <= {p}")
        params.append(through_seq)
        chosen = f"SELECT ruleset_name FROM decisions WHERE {' AND '.join(where)} ORDER BY seq"
        if limit is not None:
            chosen += f" LIMIT {p}"
            params.append(limit)
        sql = f"SELECT COUNT(*) FROM ({chosen}) AS chosen WHERE ruleset_name = {p}"
        rows = self._fetch(sql, (*params, ruleset_name))
        return int(rows[0][0])

    def _row_filter(
        self, case_id: str, since: datetime | None, until: datetime | None, after_seq: int
    ) -> tuple[list[str], list[object]]:
        """The WHERE clauses and parameters of the record reads' filters."""
        p = self._P
        where: list[str] = [f"seq > {p}"]
        params: list[object] = [after_seq]
        for clause, value in (
            (f"case_id = {p}", case_id or None),
            (f"now_us >= {p}", micros(since) if since else None),
            (f"now_us < {p}", micros(until) if until else None),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return where, params

    def _query_rows(
        self,
        case_id: str,
        since: datetime | None,
        until: datetime | None,
        after_seq: int,
        limit: int,
    ) -> list[RecordRow]:
        p = self._P
        where, params = self._row_filter(case_id, since, until, after_seq)
        sql = (
            f"SELECT {self._select} FROM decisions WHERE {' AND '.join(where)} "
            f"ORDER BY seq LIMIT {p}"
        )
        rows: list[RecordRow] = self._fetch(sql, (*params, limit))
        return rows

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob by hash; a roster stored as a manifest comes back whole, as ``ROSTER``.

        Returns:
            The blob, or None when it is not stored (or a chunk its manifest lists is not).
        """
        blob = self.stored_blob(sha256)
        if blob is None or blob.kind is not BlobKind.ROSTER_PARTS:
            return blob
        content: object = blob.content  # as read: an edited row may hold bytes
        if type(content) is not str:  # bytes or EditedText: an edited manifest, no roster
            return Blob(blob.sha256, BlobKind.ROSTER, "")  # (verify: edited, as by parts)
        text = assemble_roster(blob.content, self._chunks(manifest_keys(blob.content)))
        return None if text is None else Blob(blob.sha256, BlobKind.ROSTER, text)

    def stored_blob(self, sha256: str) -> Blob | None:
        """One blob by hash, as stored: a roster stored in parts is its manifest (for verify).

        Raises:
            ValueError: If the row's kind is none this caseroute knows (an edited row, or a
                log written by a newer caseroute), or two rows hold the key (the table's
                uniqueness removed: which one is the blob?).
        """
        rows = self._fetch(
            f"SELECT sha256, kind, content FROM blobs WHERE sha256 = {self._P} LIMIT 2", (sha256,)
        )
        if len(rows) > 1:
            raise ValueError(f"two blob rows hold {sha256}")
        if rows and type(rows[0][1]) is not str:  # bytes or EditedText: an edited kind
            raise ValueError(f"the blob row {sha256} holds a kind no caseroute writes")
        return Blob(rows[0][0], BlobKind(rows[0][1]), rows[0][2]) if rows else None

    def _chunks(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored roster chunks among ``keys``, by key (read CHUNKS_PER_READ at a time)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        refused: set[str] = set()
        for start in range(0, len(wanted), CHUNKS_PER_READ):
            part = wanted[start : start + CHUNKS_PER_READ]
            marks = ", ".join([self._P] * len(part))
            rows = self._fetch(
                f"SELECT sha256, content FROM blobs WHERE kind = {self._P} AND sha256 IN ({marks})",
                (BlobKind.ROSTER_CHUNK.value, *part),
            )
            for key, content in rows:
                # Two rows under one key, or a value no caseroute writes (bytes, EditedText): no
                # chunk (verify, which reads chunks one by one, finds the same).
                if key in found or key in refused or type(content) is not str:
                    refused.add(key)
                    found.pop(key, None)
                else:
                    found[key] = content
        return found

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the last record committed (by any writer)."""
        rows = self._fetch("SELECT seq, record_hash FROM chain_head WHERE id = 1", ())
        if not rows:
            return 0, GENESIS
        return stored_int(rows[0][0], "the chain head's seq"), str(rows[0][1])

    def events(
        self, ruleset_name: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[RulesetEvent]:
        """Ruleset lifecycle events in chain order after ``after_seq``.

        Args:
            ruleset_name: Only this ruleset's events (None = every ruleset).
            after_seq: Resume after this chain position (pagination).
            limit: At most this many events.

        Returns:
            The events (empty for a log written before events existed).

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("ruleset_events"):
            return []
        p = self._P
        where = f"seq > {p}"
        params: list[object] = [after_seq]
        if ruleset_name is not None:
            where += f" AND ruleset_name = {p}"
            params.append(ruleset_name)
        rows = self._fetch(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM ruleset_events WHERE {where} "
            f"ORDER BY seq LIMIT {p}",
            (*params, limit),
        )
        return [RulesetEvent(*row) for row in rows]

    def last_event(self, ruleset_name: str, role: str) -> RulesetEvent | None:
        """The most recent event of one role (active / shadow) of a ruleset, if any.

        Args:
            ruleset_name: The ruleset.
            role: ``active`` or ``shadow``.

        Returns:
            The event the chain last recorded for it (None: none yet).

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("ruleset_events"):
            return None
        rows = self._fetch(last_event_sql(self._P), (ruleset_name, role))
        return RulesetEvent(*rows[0]) if rows else None

    def time_index(self) -> Iterator[tuple[int, str, int]]:
        """``(seq, now, now_us)`` of every decision in chain order, a page at a time.

        ``now_us`` is what ``--since`` / ``--until`` reads select on and is not in the hashed
        text: ``audit verify`` checks it against ``now`` (``verify.time_index_problem``).
        """
        after_seq = 0
        while True:
            page = self._fetch(
                f"SELECT seq, now, now_us FROM decisions WHERE seq > {self._P} "
                f"ORDER BY seq LIMIT {self._P}",
                (after_seq, PAGE),
            )
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1][0]

    def iter_events(
        self, ruleset_name: str | None = None, after_seq: int = 0
    ) -> Iterator[RulesetEvent]:
        """Every ruleset event in chain order after ``after_seq``, read a page at a time.

        Args:
            ruleset_name: Only this ruleset's events (None = every ruleset).
            after_seq: Start after this chain position.

        Yields:
            The events (verify merges them with ``records()`` by seq).
        """
        while True:
            page = self.events(ruleset_name, after_seq, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after_seq = page[-1].seq

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The distinct ruleset_sha256 of decisions made by ``ruleset_name@ruleset_version``.

        Answers "has this version decided, and with which content?" (an index on
        (ruleset_name, ruleset_version) keeps it cheap on a large log).

        Args:
            ruleset_name: The ruleset.
            ruleset_version: Its version.

        Returns:
            The sha256s (empty when that version never decided).

        Raises:
            AuditUnavailableError: If the log cannot be read (READ_UNAVAILABLE).
        """
        p = self._P
        rows = self._fetch(
            "SELECT DISTINCT ruleset_sha256 FROM decisions "
            f"WHERE ruleset_name = {p} AND ruleset_version = {p}",
            (ruleset_name, ruleset_version),
        )
        return frozenset(str(row[0]) for row in rows)

    def holds_ruleset(self, ruleset_name: str) -> bool:
        """Whether any decision, ruleset event or shadow result names ``ruleset_name``.

        One index seek per table (each is indexed on ``ruleset_name`` first).

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        p = self._P
        return any(
            self._fetch(f"SELECT 1 FROM {table} WHERE ruleset_name = {p} LIMIT 1", (ruleset_name,))
            for table in self._named_tables()
        )

    def ruleset_names(self, limit: int = MAX_NAMES) -> tuple[str, ...]:
        """The ruleset names the log holds (on decisions, ruleset events, shadow results), sorted.

        Read as a loose index scan: each table's next name after the last, by one index seek
        (``WITH RECURSIVE`` does it in SQLite and PostgreSQL alike), so a log of millions of
        decisions of a few rulesets costs a few seeks, where ``DISTINCT`` reads every index
        entry (neither store skips through an index for it).

        Args:
            limit: Names read per table at most (the log may hold many).

        Returns:
            The names, at most ``limit`` from each table.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        p = self._P
        found: set[str] = set()
        for table in self._named_tables():
            rows = self._fetch(
                "WITH RECURSIVE names (name) AS ("
                f"SELECT MIN(ruleset_name) FROM {table} UNION ALL SELECT (SELECT "
                f"MIN(ruleset_name) FROM {table} WHERE ruleset_name > names.name) FROM names "
                f"WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL "
                f"LIMIT {p}",
                (limit,),
            )
            found.update(str(name) for (name,) in rows)
        return tuple(sorted(found))

    def _named_tables(self) -> list[str]:
        """The tables whose rows name a ruleset (a log from an older build may lack some)."""
        return [t for t in _NAMED_TABLES if t == "decisions" or self._has_table(t)]

    def shadow_results(
        self,
        ruleset_name: str,
        shadow_version: str | None = None,
        disagreements_only: bool = False,
        limit: int = 1000,
    ) -> list[ShadowResult]:
        """Shadow comparisons of a ruleset in the order stored (review data, not chained).

        Args:
            ruleset_name: The ruleset.
            shadow_version: Only this shadow version (None = every one).
            disagreements_only: Only comparisons with at least one difference.
            limit: At most this many.

        Returns:
            The results, oldest first.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("shadow_results"):
            return []
        p = self._P
        where, params = [f"ruleset_name = {p}"], [ruleset_name]
        if shadow_version is not None:
            where.append(f"shadow_version = {p}")
            params.append(shadow_version)
        if disagreements_only:
            where.append("agreed = 0")
        rows = self._fetch(
            f"SELECT {', '.join(SHADOW_COLUMNS)} FROM shadow_results "
            f"WHERE {' AND '.join(where)} ORDER BY id LIMIT {p}",
            (*params, limit),
        )
        return [shadow_from_row(row) for row in rows]

    def shadow_summary(self, ruleset_name: str) -> list[ShadowSummary]:
        """Per shadow version of a ruleset: evaluated, agreed, counts per difference, dropped.

        Args:
            ruleset_name: The ruleset.

        Returns:
            One summary per shadow version with results or drops, sorted by version.

        Raises:
            AuditUnavailableError: If the log cannot be read.
        """
        if not self._has_table("shadow_results"):
            return []
        rows = self._fetch(self._SHADOW_SUMMARY, (ruleset_name,))
        dropped = {
            str(v): stored_int(n, f"the dropped count of shadow version {str(v)[:40]!r}")
            for v, n in self._fetch(
                "SELECT shadow_version, dropped FROM shadow_dropped "
                f"WHERE ruleset_name = {self._P}",
                (ruleset_name,),
            )
        }
        found: dict[str, ShadowSummary] = {}
        for version, evaluated, agreed, first, last, lives, shas, *counts in rows:
            found[version] = ShadowSummary(
                ruleset_name=ruleset_name,
                shadow_version=version,
                shadow_sha256s=distinct_values(shas),
                live_versions=distinct_values(lives),
                evaluated=int(evaluated),
                agreed=int(agreed),
                differences=tuple(
                    (k, int(n)) for k, n in zip(SHADOW_DIFFERENCES, counts, strict=True) if n
                ),
                dropped=dropped.get(version, 0),
                first_recorded_at=first,
                last_recorded_at=last,
            )
        for version, count in dropped.items():
            if version not in found:
                found[version] = ShadowSummary(
                    ruleset_name, version, (), (), 0, 0, (), count, "", ""
                )
        return [found[v] for v in sorted(found)]


def shadow_summary_sql(placeholder: str, contains: str, concat_distinct: str) -> str:
    """The shadow summary's SQL of one dialect.

    Args:
        placeholder: ``?`` or ``%s``.
        contains: How the dialect counts a difference kind: a format with ``{kind}``.
        concat_distinct: How it joins distinct values with commas: a format with ``{column}``.

    Returns:
        One row per shadow version: version, evaluated, agreed, first and last recorded_at,
        live versions, shadow sha256s, then one count per ``SHADOW_DIFFERENCES`` kind.
    """
    kinds = ", ".join(contains.format(kind=f"'\"{k}\"'") for k in SHADOW_DIFFERENCES)
    lives = concat_distinct.format(column="live_version")
    shas = concat_distinct.format(column="shadow_sha256")
    return (
        "SELECT shadow_version, COUNT(*), SUM(agreed), MIN(recorded_at), MAX(recorded_at), "
        f"{lives}, {shas}, "
        f"{kinds} FROM shadow_results WHERE ruleset_name = {placeholder} GROUP BY shadow_version"
    )
