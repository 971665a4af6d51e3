"""A roster snapshot is stored as a manifest over content-defined chunks, and read back whole.

Each new snapshot used to store the whole roster again (~390 bytes per agent): a caller sending
a fresh snapshot with every case stored ~390 kB per decision at 1,000 agents, ~90x the record.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caseroute.audit import sql_reads
from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.audit.record import Blob, BlobKind
from caseroute.audit.recorder import blobs_to_store
from caseroute.audit.roster_blob import (
    MAX_CHUNK,
    MAX_LISTINGS,
    MIN_CHUNK,
    assemble_roster,
    chunk_ends,
    chunk_key,
    chunk_text_key,
    manifest_keys,
    roster_blobs,
)
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError, IdempotencyConflictError
from caseroute.domain.fingerprint import fingerprint_roster, roster_json, roster_sha256
from caseroute.domain.roster import Agent, Capacity, Roster
from caseroute.testing import make_agent, make_audit_record, make_roster, reference_compiled
from tests.pg import pg_server, pg_url
from tests.wire.test_fast_agent_json import agents, instants, text

__all__ = ["pg_server", "pg_url"]  # fixtures: the PostgreSQL case

Sink = SqliteAuditStore | PostgresAuditSink
RULESET = reference_compiled()


def _split(roster: Roster) -> tuple[Blob, dict[str, str]]:
    """The manifest and every chunk of ``roster``, as a log that holds nothing stores them."""
    fingerprint = fingerprint_roster(roster, keep_texts=True)
    texts = fingerprint.take_texts()
    assert texts is not None
    manifest, *chunks = roster_blobs(
        fingerprint.sha256,
        fingerprint.header_json,
        fingerprint.agent_digests,
        lambda start, end: texts[start:end],
        lambda _: False,
    )
    return manifest, {c.sha256: c.content for c in chunks}


@given(st.lists(agents(), max_size=40), text, instants)
def test_a_roster_assembles_from_its_chunks_into_its_canonical_json(
    members: list[Agent], snapshot_id: str, taken_at: datetime
) -> None:
    """Manifest + chunks read back byte for byte as roster_json; each chunk hashes to its key."""
    roster = Roster(snapshot_id, taken_at, tuple(members))
    manifest, chunks = _split(roster)
    assert (manifest.sha256, manifest.kind) == (roster_sha256(roster), BlobKind.ROSTER_PARTS)
    assert roster_json(roster) == assemble_roster(manifest.content, chunks)
    assert {key: key for key in chunks} == {key: chunk_text_key(c) for key, c in chunks.items()}


def test_a_missing_chunk_assembles_nothing() -> None:
    """A manifest whose chunk is not there is no roster (None), not a shorter one."""
    manifest, chunks = _split(make_roster(*[make_agent(f"a{i}") for i in range(40)]))
    chunks.pop(manifest_keys(manifest.content)[-1])
    assert assemble_roster(manifest.content, chunks) is None


def _agents(count: int, prefix: str = "a") -> list[Agent]:
    return [make_agent(f"{prefix}{i}", seniority=i % 7) for i in range(count)]


def test_an_agent_logging_in_or_out_changes_at_most_two_chunks() -> None:
    """Boundaries follow content: a login or logout anywhere makes at most 2 new chunks."""
    before = _agents(400)
    old = set(manifest_keys(_split(make_roster(*before))[0].content))
    for place in range(0, 400, 7):
        logged_in = [*before[:place], make_agent("new"), *before[place:]]
        logged_out = before[:place] + before[place + 1 :]
        for after in (logged_in, logged_out):
            new = manifest_keys(_split(make_roster(*after))[0].content)
            assert len(set(new) - old) <= 2, place


def test_a_chunk_key_is_not_the_plain_hash_of_its_digests() -> None:
    """Keys are domain-separated: never the hash another blob would have of the same bytes."""
    digests = bytes(range(32)) * 3
    assert hashlib.sha256(digests).hexdigest() != chunk_key(digests)


def _digests(*last: int) -> bytes:
    """Concatenated digests whose last bytes are ``last`` (the rest is never read)."""
    return b"".join(bytes(31) + bytes([byte]) for byte in last)


def _reference_ends(last: list[int]) -> list[int]:
    """chunk_ends written as the rule reads, agent by agent."""
    ends, start = [], 0
    for index, byte in enumerate(last):
        size = index + 1 - start
        if (not byte & 15 and size >= MIN_CHUNK) or size == MAX_CHUNK:
            start = index + 1
            ends.append(start)
    return [*ends, len(last)] if start < len(last) else ends


def test_chunk_ends_bound_every_chunk() -> None:
    """No chunk is under MIN_CHUNK (but the last) or over MAX_CHUNK; the last ends the roster."""
    assert chunk_ends(_digests(*[1] * 150)) == [64, 128, 150]
    assert chunk_ends(_digests(*[0x10] * 10)) == [4, 8, 10]
    assert chunk_ends(_digests(*[1] * 63, 0x20, *[1] * 64)) == [64, 128]
    assert chunk_ends(_digests(1, 1, 0, 1, 0)) == [5]
    assert chunk_ends(b"") == []


# Mostly agents that do not end a chunk, so runs past MAX_CHUNK are common.
last_bytes = st.lists(st.one_of(st.integers(1, 15), st.integers(0, 255)), max_size=400)


@given(last_bytes | st.lists(st.sampled_from([1, 0x40]), max_size=300))
def test_chunk_ends_follow_the_rule_on_any_digests(last: list[int]) -> None:
    """The bytes-level scan gives the ends the agent-by-agent rule gives."""
    assert _reference_ends(last) == chunk_ends(_digests(*last))


@pytest.fixture(params=["sqlite", "postgres"])
def log(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Sink, Callable[[str], None]]]:
    """A decision log on each store, and a way to run SQL on it behind its back (tampering)."""
    sink: Sink
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        sink = SqliteAuditStore(path)

        def tamper(sql: str) -> None:
            with closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(sql)

    else:
        import psycopg

        url = request.getfixturevalue("pg_url")
        sink = PostgresAuditSink(PostgresLocation(url))

        def tamper(sql: str) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)

    yield sink, tamper
    sink.close()


def _append_on(sink: Sink, n: int, roster: Roster, blobs: list[Blob]) -> None:
    """Append record ``n`` on ``roster`` with ``blobs``."""
    record = make_audit_record(
        n,
        ruleset_sha256=RULESET.sha256,
        input={"case": {"case_id": f"C{n}"}, "roster": {"sha256": roster_sha256(roster)}},
    )
    sink.append([record], blobs)


def _record_on(sink: Sink, n: int, roster: Roster) -> int:
    """Append record ``n`` on ``roster`` with the blobs it needs; the roster bytes it wrote."""
    blobs = blobs_to_store(sink, RULESET, roster, fingerprint_roster(roster, keep_texts=True))
    _append_on(sink, n, roster, blobs)
    return sum(len(b.content) for b in blobs if b.kind is not BlobKind.RULESET)


def _busier(roster: Roster, place: int, snapshot_id: str) -> Roster:
    """The next snapshot: the agent at ``place`` has one more active case."""
    agents = list(roster.agents)
    agents[place] = replace(agents[place], capacity=Capacity(2, 5))
    return replace(roster, snapshot_id=snapshot_id, agents=tuple(agents))


def test_a_new_snapshot_with_one_agent_changed_writes_a_twentieth_of_the_roster(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """1,000 agents: the next snapshot writes a manifest and one chunk; both read back whole."""
    sink, _ = log
    first = make_roster(*_agents(1000))
    second = _busier(first, 500, "snap-T2")
    whole = len(roster_json(second))
    written = [_record_on(sink, 1, first), _record_on(sink, 2, second)]
    assert written[0] > whole  # the first: every chunk and the manifest
    assert written[1] < whole / 20, (written, whole)
    assert [Blob(roster_sha256(r), BlobKind.ROSTER, roster_json(r)) for r in (first, second)] == [
        sink.get_blob(roster_sha256(r)) for r in (first, second)
    ]
    assert verify_chain(sink.records(), sink.head(), sink.get_blob).ok


def test_an_edited_or_missing_chunk_is_named_by_verify(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """Verify names the roster (and the first record using it) whose chunk was edited, then lost."""
    sink, tamper = log
    roster = make_roster(*_agents(100))
    _record_on(sink, 1, roster)
    sha = roster_sha256(roster)
    chunk = manifest_keys(_manifest(sink, sha))[1]
    tamper(f"UPDATE blobs SET content = replace(content, 'a1', 'zz') WHERE sha256 = '{chunk}'")
    for get in (sink.get_blob, sink.stored_blob):  # assembled, and by parts (the CLI's)
        report = verify_chain(sink.records(), sink.head(), get)
        assert (False, f"the roster blob {sha} (used by record 1) was edited") == (
            report.ok,
            report.problem,
        )
    tamper(f"DELETE FROM blobs WHERE sha256 = '{chunk}'")
    for get in (sink.get_blob, sink.stored_blob):
        report = verify_chain(sink.records(), sink.head(), get)
        assert f"record 1 references a roster blob {sha} that is missing" == report.problem


def test_a_roster_of_more_chunks_than_one_read_takes_reads_back_whole(
    log: tuple[Sink, Callable[[str], None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are read CHUNKS_PER_READ at a time: a roster of many more still assembles."""
    sink, _ = log
    monkeypatch.setattr(sql_reads, "CHUNKS_PER_READ", 2)
    roster = make_roster(*_agents(200))
    _record_on(sink, 1, roster)
    assert Blob(roster_sha256(roster), BlobKind.ROSTER, roster_json(roster)) == sink.get_blob(
        roster_sha256(roster)
    )


def test_a_roster_stored_whole_by_an_older_log_still_reads_and_wins(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """A whole roster blob (the layout before chunks) reads as itself after a manifest is sent."""
    sink, _ = log
    roster = make_roster(*_agents(30))
    whole = Blob(roster_sha256(roster), BlobKind.ROSTER, roster_json(roster))
    sink.append([], [whole])
    sink._known.clear()  # a restarted server: no hint
    _record_on(sink, 1, roster)
    assert whole == sink.get_blob(whole.sha256)
    assert verify_chain(sink.records(), sink.head(), sink.get_blob).ok


def _manifest(sink: Sink, sha: str) -> str:
    """The stored manifest of a snapshot (read behind get_blob's back)."""
    rows = sink._fetch(f"SELECT content FROM blobs WHERE sha256 = {sink._P}", (sha,))
    return str(rows[0][0])


def _sql_text(value: str) -> str:
    """A SQL string literal (test data: no injection concern, quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize(
    "edit",
    ["extra key in the header", "agents repeated in the header", "spaces in a chunk"],
)
def test_an_edit_that_keeps_the_roster_s_meaning_is_still_an_edit(
    log: tuple[Sink, Callable[[str], None]], edit: str
) -> None:
    """Verify compares bytes: a reworded roster (same hash of its meaning) is reported edited."""
    sink, tamper = log
    roster = make_roster(*_agents(40))
    _record_on(sink, 1, roster)
    sha = roster_sha256(roster)
    manifest = _manifest(sink, sha)
    header, *keys = manifest.split("\n")
    if edit == "extra key in the header":
        new = '{"zz":1,' + header[1:]
        tamper(
            f"UPDATE blobs SET content = {_sql_text(new + manifest[len(header) :])} "
            f"WHERE sha256 = '{sha}'"
        )
    elif edit == "agents repeated in the header":
        whole = roster_json(roster)
        agents_part = whole[len('{"agents":') : whole.index('],"snapshot_id"') + 1]
        new = header[:-1] + ',"agents":' + agents_part + "}"
        tamper(f"UPDATE blobs SET content = {_sql_text(new)} WHERE sha256 = '{sha}'")
    else:
        tamper(
            f"UPDATE blobs SET content = replace(content, ',\"', ', \"') WHERE sha256 = '{keys[0]}'"
        )
    for get in (sink.get_blob, sink.stored_blob):  # assembled, and by parts (the CLI's)
        report = verify_chain(sink.records(), sink.head(), get)
        assert (False, f"the roster blob {sha} (used by record 1) was edited") == (
            report.ok,
            report.problem,
        )


def test_a_whole_roster_blob_with_a_key_added_is_an_edit(tmp_path: Path) -> None:
    """The layout before chunks too: a key no roster has, added to a whole blob, is an edit."""
    sink = SqliteAuditStore(tmp_path / "audit.db")
    roster = make_roster(*_agents(3))
    text = roster_json(roster)
    whole = Blob(roster_sha256(roster), BlobKind.ROSTER, text[:-1] + ',"zz_extra":1}')
    sink.append([], [whole, Blob(RULESET.sha256, BlobKind.RULESET, RULESET.source_text)])
    record = make_audit_record(
        1, ruleset_sha256=RULESET.sha256, input={"case": {}, "roster": {"sha256": whole.sha256}}
    )
    sink.append([record])
    report = verify_chain(sink.records(), sink.head(), sink.get_blob)
    assert f"the roster blob {whole.sha256} (used by record 1) was edited" == report.problem
    sink.close()


def test_a_chunk_stored_under_another_kind_is_not_read_as_a_chunk(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """Only roster_chunk rows assemble a roster: a relabelled chunk leaves the roster missing."""
    sink, tamper = log
    roster = make_roster(*_agents(40))
    _record_on(sink, 1, roster)
    sha = roster_sha256(roster)
    chunk = manifest_keys(_manifest(sink, sha))[0]
    tamper(f"UPDATE blobs SET kind = 'ruleset' WHERE sha256 = '{chunk}'")
    assert sink.get_blob(sha) is None


def test_chunks_are_encoded_from_the_roster_when_no_texts_are_kept(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """A fingerprint whose texts were taken (a refused first append): each agent encoded anew."""
    sink, _ = log
    first = make_roster(*_agents(200))
    _record_on(sink, 1, first)
    second = _busier(first, 120, "snap-T2")
    taken = fingerprint_roster(second)  # holds no texts
    _append_on(sink, 2, second, blobs_to_store(sink, RULESET, second, taken))
    assert roster_json(second) == getattr(sink.get_blob(taken.sha256), "content", None)
    assert verify_chain(sink.records(), sink.head(), sink.get_blob).ok


def test_chunks_of_a_refused_append_are_not_remembered_as_stored(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """A refused append (idempotency conflict) leaves no chunk in the hint: the next writes all."""
    sink, _ = log
    _record_on(sink, 1, make_roster(*_agents(100)))
    roster = make_roster(*_agents(100, "b"))
    blobs = blobs_to_store(sink, RULESET, roster, fingerprint_roster(roster, keep_texts=True))
    clash = make_audit_record(  # decision dec_1 again, for another request
        1,
        request_sha256="1" * 64,
        ruleset_sha256=RULESET.sha256,
        input={"case": {}, "roster": {"sha256": roster_sha256(roster)}},
    )
    with pytest.raises(IdempotencyConflictError):
        sink.append([clash], blobs)
    assert not any(sink.has_blob(b.sha256) for b in blobs)
    assert blobs == blobs_to_store(
        sink, RULESET, roster, fingerprint_roster(roster, keep_texts=True)
    )


def test_chunks_of_a_failed_transaction_are_not_remembered_as_stored(tmp_path: Path) -> None:
    """A commit that fails after the chunks were inserted leaves none in the hint."""
    path = tmp_path / "audit.db"
    sink = SqliteAuditStore(path)
    _record_on(sink, 1, make_roster(*_agents(10)))
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON chain_head "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    roster = make_roster(*_agents(100, "b"))
    blobs = blobs_to_store(sink, RULESET, roster, fingerprint_roster(roster, keep_texts=True))
    with pytest.raises(AuditUnavailableError):
        _append_on(sink, 2, roster, blobs)
    assert not any(sink.has_blob(b.sha256) for b in blobs)
    sink.close()


def test_a_manifest_listing_a_chunk_too_often_or_a_huge_chunk_assembles_no_roster() -> None:
    """A key listed over MAX_LISTINGS times, or a chunk over MAX_CHUNK agents: no roster ("").

    No caseroute writes either. Assembled as listed, a few edited bytes of manifest made a
    reader (replay, ``audit show``) build a text as many times a chunk's size as the key was
    listed. A key listed up to MAX_LISTINGS times still assembles: versions before stop 28
    wrote such manifests for a Roster built in code that repeats a run of agents.
    """
    manifest, chunks = _split(make_roster(*_agents(40)))
    first = manifest_keys(manifest.content)[0]
    again = "".join(["\n" + first] * (MAX_LISTINGS - 1))
    listed = assemble_roster(manifest.content + again, chunks) or ""
    assert listed.count(chunks[first].split("\n")[0]) == MAX_LISTINGS
    assert assemble_roster(manifest.content + again + "\n" + first, chunks) == ""
    agent = chunks[first].split("\n")[0]
    grown = {**chunks, first: "\n".join([agent] * (MAX_CHUNK + 1))}
    assert assemble_roster(manifest.content, grown) == ""
    grown[first] = "\n".join([agent] * MAX_CHUNK)  # the most a chunk holds
    assert (assemble_roster(manifest.content, grown) or "").startswith('{"agents":[')
    chunks.pop(first)  # a missing chunk stays "missing", whatever else is wrong
    assert assemble_roster(manifest.content + again * 2, chunks) is None


def test_a_manifest_an_older_version_wrote_for_a_repeating_roster_still_verifies(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """The same 100 agents twice, stored as versions before stop 28 did: chunks listed twice.

    Both verify modes and get_blob read it as the roster (review R28b: refusing every repeat
    called such unedited logs TAMPERED).
    """
    sink, _ = log
    team = _agents(100)
    roster = make_roster(*team, *team)
    fingerprint = fingerprint_roster(roster, keep_texts=True)
    texts = fingerprint.take_texts()
    assert texts is not None
    joined = b"".join(fingerprint.agent_digests)
    keys, chunks, start = [], {}, 0
    for end in chunk_ends(joined):  # as roster_blobs wrote it then
        key = chunk_key(joined[start * 32 : end * 32])
        keys.append(key)
        chunks[key] = Blob(key, BlobKind.ROSTER_CHUNK, "\n".join(texts[start:end]))
        start = end
    assert len(set(keys)) < len(keys)  # the premise: some chunk is listed twice
    sha = roster_sha256(roster)
    manifest = Blob(
        sha, BlobKind.ROSTER_PARTS, "\n".join([fingerprint.header_json.decode(), *keys])
    )
    ruleset = Blob(RULESET.sha256, BlobKind.RULESET, RULESET.source_text)
    _append_on(sink, 1, roster, [manifest, *chunks.values(), ruleset])
    assert Blob(sha, BlobKind.ROSTER, roster_json(roster)) == sink.get_blob(sha)
    for get in (sink.get_blob, sink.stored_blob):
        assert verify_chain(sink.records(), sink.head(), get).ok


def test_get_blob_does_not_amplify_a_manifest_listing_one_chunk_many_times(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """A manifest edited to list its first chunk 2,000 times reads as no roster, and is edited.

    Before, ``get_blob`` assembled every listing: ~2,000 times the chunk's bytes for 130 kB of
    manifest, and replay or ``audit show`` then parsed it.
    """
    sink, tamper = log
    roster = make_roster(*_agents(40))
    _record_on(sink, 1, roster)
    sha = roster_sha256(roster)
    manifest = _manifest(sink, sha)
    edited = manifest + ("\n" + manifest_keys(manifest)[0]) * 2000
    tamper(f"UPDATE blobs SET content = {_sql_text(edited)} WHERE sha256 = '{sha}'")
    assert Blob(sha, BlobKind.ROSTER, "") == sink.get_blob(sha)
    for get in (sink.get_blob, sink.stored_blob):  # assembled, and by parts (the CLI's)
        report = verify_chain(sink.records(), sink.head(), get)
        assert (False, f"the roster blob {sha} (used by record 1) was edited") == (
            report.ok,
            report.problem,
        )


def test_a_roster_repeating_a_run_of_agents_is_stored_whole_and_reads_back(
    log: tuple[Sink, Callable[[str], None]],
) -> None:
    """The same 100 agents twice (a Roster built in code may hold that): one whole blob.

    Its chunks would repeat, and a manifest listing a chunk twice is refused as edited
    (``assemble_roster``): before the roster was stored whole, such an unedited log read as
    TAMPERED through ``get_blob`` and ``audit show`` called the snapshot EDITED (review R28).
    """
    sink, _ = log
    team = _agents(100)
    roster = make_roster(*team, *team)
    blobs = blobs_to_store(sink, RULESET, roster, fingerprint_roster(roster, keep_texts=True))
    sha = roster_sha256(roster)
    assert [(b.sha256, b.kind) for b in blobs if b.kind is not BlobKind.RULESET] == [
        (sha, BlobKind.ROSTER)
    ]
    _append_on(sink, 1, roster, blobs)
    assert Blob(sha, BlobKind.ROSTER, roster_json(roster)) == sink.get_blob(sha)
    for get in (sink.get_blob, sink.stored_blob):
        assert verify_chain(sink.records(), sink.head(), get).ok
