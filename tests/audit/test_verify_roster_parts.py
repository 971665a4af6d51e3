"""Verify checks a roster stored in parts chunk by chunk, each chunk once, with the same verdicts.

Assembling each snapshot and hashing its text re-encodes every agent of every snapshot: ~10 ms
per 1,000-agent snapshot, so a log in which each decision saw a new snapshot verified in time
proportional to snapshots x agents. Given blobs as stored (``stored_blob``), verify reads and
checks each chunk once per run; whatever was edited, it reaches the verdict the assembled text
reaches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from caseroute.audit import verify
from caseroute.audit.record import Blob, BlobKind
from caseroute.audit.roster_blob import MAX_CHUNK, assemble_roster, manifest_keys, roster_blobs
from caseroute.audit.store import SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.fingerprint import fingerprint_roster, roster_json
from caseroute.domain.roster import Agent, Capacity, Roster
from caseroute.testing import make_audit_record, make_roster, reference_compiled
from tests.audit.commit_sinks import Sink, opener
from tests.audit.test_roster_blob import _agents, _record_on, log
from tests.pg import pg_server, pg_url
from tests.wire.test_fast_agent_json import agents, instants, text

__all__ = ["log", "opener", "pg_server", "pg_url"]  # fixtures: the sinks and the PostgreSQL case

RULESET = reference_compiled()


def _stored(roster: Roster) -> dict[str, Blob]:
    """Every blob a log holding nothing writes for ``roster`` (and the ruleset), by key."""
    fingerprint = fingerprint_roster(roster, keep_texts=True)
    texts = fingerprint.take_texts()
    assert texts is not None
    blobs = roster_blobs(
        fingerprint.sha256,
        fingerprint.header_json,
        fingerprint.agent_digests,
        lambda start, end: texts[start:end],
        lambda _: False,
    )
    ruleset = Blob(RULESET.sha256, BlobKind.RULESET, RULESET.source_text)
    return {b.sha256: b for b in [*blobs, ruleset]}


def _assembled(blobs: dict[str, Blob]) -> Callable[[str], Blob | None]:
    """get_blob over ``blobs``: a manifest comes back assembled, as the stores' get_blob."""

    def get(sha: str) -> Blob | None:
        blob = blobs.get(sha)
        if blob is None or blob.kind is not BlobKind.ROSTER_PARTS:
            return blob
        chunks = {
            k: b.content
            for k in manifest_keys(blob.content)
            if (b := blobs.get(k)) is not None and b.kind is BlobKind.ROSTER_CHUNK
        }
        text = assemble_roster(blob.content, chunks)
        return None if text is None else Blob(sha, BlobKind.ROSTER, text)

    return get


def _blob_verdict(sha: str, get: Callable[[str], Blob | None]) -> str | None:
    """What verify says of the blobs of a record on roster ``sha`` (None: they hold).

    verify's own blob check, called directly: a whole chain would stop at the record's own
    hash first, and these records are not sealed.
    """
    record = make_audit_record(
        1, seq=1, ruleset_sha256=RULESET.sha256, input={"case": {}, "roster": {"sha256": sha}}
    )
    return verify._blob_problem(record, get, set(), verify._RosterParts(get))


rosters = st.integers(0, 70).map(lambda n: make_roster(*_agents(n)))
edits = st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from(' ,:"{}[]\n0a\\'))


@settings(max_examples=150, deadline=None)
@given(rosters, edits, st.sampled_from(["replace", "delete", "insert", "drop", "kind"]))
@example(make_roster(), (0, 0, " "), "delete")  # the header's "{" once read back unchanged
def test_any_edit_gets_the_same_verdict_checked_by_parts_or_assembled(
    roster: Roster, edit: tuple[int, int, str], how: str
) -> None:
    """One edit to a manifest or chunk (a character, a row, its kind): both ways say the same.

    Except one way: by parts also reports an edit the assembled text cannot show.
    """
    blobs = _stored(roster)
    whole = roster_json(roster)
    sha = fingerprint_roster(roster).sha256
    parts = [k for k, b in blobs.items() if b.kind is not BlobKind.RULESET]
    which, where, char = edit
    key = parts[which % len(parts)]
    blob = blobs[key]
    at = where % (len(blob.content) + 1)
    if how == "drop":
        del blobs[key]
    elif how == "kind":
        blobs[key] = replace(blob, kind=BlobKind.ROSTER_CHUNK if key == sha else BlobKind.RULESET)
    else:
        cut = at + (how != "insert")
        text = blob.content[:at] + ("" if how == "delete" else char) + blob.content[cut:]
        blobs[key] = replace(blob, content=text)
    assembled, by_parts = _blob_verdict(sha, _assembled(blobs)), _blob_verdict(sha, blobs.get)
    if assembled is None and by_parts is not None:
        # Stricter by parts, only where the edit does not show in the assembled text: a ","
        # between two agents in a chunk turned into a line break reads back the same.
        read = getattr(_assembled(blobs)(sha), "content", None)
        assert (by_parts, read) == (f"the roster blob {sha} (used by record 1) was edited", whole)
    else:
        assert assembled == by_parts


def test_an_unedited_roster_in_parts_verifies_both_ways() -> None:
    """No edit: both ways pass (the differential test above would pass if both always failed)."""
    roster = make_roster(*_agents(50))
    blobs = _stored(roster)
    sha = fingerprint_roster(roster).sha256
    assert (_blob_verdict(sha, _assembled(blobs)), _blob_verdict(sha, blobs.get)) == (None, None)


def _small_sqlite_log(tmp_path: Path) -> tuple[Path, SqliteAuditStore, str, str]:
    """A SQLite log of one record on a 30-agent roster: path, store, roster hash, first chunk."""
    path = tmp_path / "audit.db"
    sink = SqliteAuditStore(path)
    roster = make_roster(*_agents(30))
    _record_on(sink, 1, roster)
    sha = fingerprint_roster(roster).sha256
    manifest = sink.stored_blob(sha)
    assert manifest is not None
    return path, sink, sha, manifest_keys(manifest.content)[0]


@pytest.mark.parametrize("which", ["manifest", "chunk"])
def test_a_blob_of_a_kind_no_caseroute_writes_is_an_edit_not_a_crash(
    tmp_path: Path, which: str
) -> None:
    """A kind rewritten to an unknown value: a manifest is edited, a chunk missing (both ways)."""
    path, sink, sha, chunk = _small_sqlite_log(tmp_path)
    key = sha if which == "manifest" else chunk
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE blobs SET kind = 'zzz' WHERE sha256 = ?", (key,))
    for get in (sink.stored_blob, sink.get_blob):
        report = verify_chain(sink.records(), sink.head(), get)
        assert {
            "manifest": f"the roster blob {sha} (used by record 1) was edited",
            "chunk": f"record 1 references a roster blob {sha} that is missing",
        }[which] == report.problem
    sink.close()


def test_each_chunk_is_read_once_however_many_snapshots_hold_it(
    opener: Callable[[], Sink],
) -> None:
    """40 snapshots, one agent changed each: verify reads each manifest and chunk once."""
    sink = opener()
    roster = make_roster(*_agents(300))
    keys: set[str] = set()
    for n in range(1, 41):
        agents = list(roster.agents)
        agents[(n * 37) % 300] = replace(agents[(n * 37) % 300], capacity=Capacity(n % 5, 5))
        roster = replace(roster, snapshot_id=f"snap-{n}", agents=tuple(agents))
        _record_on(sink, n, roster)
        keys |= {fingerprint_roster(roster).sha256}
    reads: list[str] = []

    def counted(sha: str) -> Blob | None:
        reads.append(sha)
        return sink.stored_blob(sha)

    report = verify_chain(sink.records(), sink.head(), counted)
    assert report.ok
    assert len(reads) == len(set(reads))  # nothing read twice
    manifests = [r for r in reads if r in keys]
    assert len(manifests) == 40
    chunks = len(reads) - 40 - 1  # the ruleset once
    assert chunks < 40 + 30, chunks  # the first sight's ~16 chunks, then 1-2 per snapshot


@given(st.lists(agents(), max_size=30), text, instants)
def test_honest_rosters_of_any_text_verify_by_parts(
    members: list[Agent], snapshot_id: str, taken_at: datetime
) -> None:
    """Agents holding U+0085, U+2028, quotes or controls: by parts, a stored roster holds."""
    roster = Roster(snapshot_id, taken_at, tuple(members))
    blobs = _stored(roster)
    assert _blob_verdict(fingerprint_roster(roster).sha256, blobs.get) is None


def test_a_chunk_listed_thousands_of_times_is_read_once_and_reported() -> None:
    """A tampered manifest repeating one chunk: reported edited from the manifest alone.

    No caseroute lists a chunk twice (a roster repeating one is stored whole), so the repeat
    itself is the edit: the chunk is not even read.
    """
    roster = make_roster(*_agents(40))
    blobs = _stored(roster)
    sha = fingerprint_roster(roster).sha256
    header, first, *_ = blobs[sha].content.split("\n")
    blobs[sha] = replace(blobs[sha], content="\n".join([header, *[first] * 20_000]))
    reads: list[str] = []

    def counted(key: str) -> Blob | None:
        reads.append(key)
        return blobs.get(key)

    assert (f"the roster blob {sha} (used by record 1) was edited", 1) == (
        _blob_verdict(sha, counted),
        len(reads),  # the manifest
    )


def test_a_chunk_of_more_agents_than_any_chunk_holds_is_an_edit() -> None:
    """More than MAX_CHUNK lines: reported without hashing them for each listing."""
    roster = make_roster(*_agents(40))
    blobs = _stored(roster)
    sha = fingerprint_roster(roster).sha256
    key = manifest_keys(blobs[sha].content)[0]
    line = blobs[key].content.split("\n")[0]
    blobs[key] = replace(blobs[key], content="\n".join([line] * (MAX_CHUNK + 1)))
    assert f"the roster blob {sha} (used by record 1) was edited" == _blob_verdict(sha, blobs.get)


def test_a_chunk_copied_under_a_new_key_and_relisted_is_an_edit() -> None:
    """Same agents, same roster text, but a row and a manifest line rewritten: keys bind rows."""
    roster = make_roster(*_agents(40))
    blobs = _stored(roster)
    sha = fingerprint_roster(roster).sha256
    old = manifest_keys(blobs[sha].content)[0]
    new = "f" * 64
    blobs[new] = replace(blobs.pop(old), sha256=new)
    blobs[sha] = replace(blobs[sha], content=blobs[sha].content.replace(old, new))
    assert getattr(_assembled(blobs)(sha), "content", None) == roster_json(roster)
    assert f"the roster blob {sha} (used by record 1) was edited" == _blob_verdict(sha, blobs.get)


@pytest.mark.parametrize("which", ["manifest", "chunk"])
def test_two_rows_under_one_key_are_tampering_read_alike_both_ways(
    log: tuple[Sink, Callable[[str], None]], which: str
) -> None:
    """The key's uniqueness dropped and a second row added: verify reports, get_blob reads none.

    Verify read a chunk's first row and get_blob its last: verify passed while replay read
    another roster.
    """
    sink, tamper = log
    first = make_roster(*_agents(60))
    _record_on(sink, 1, first)
    sha = fingerprint_roster(first).sha256
    manifest = sink.stored_blob(sha)
    assert manifest is not None
    key = sha if which == "manifest" else manifest_keys(manifest.content)[0]
    if isinstance(sink, SqliteAuditStore):
        tamper("CREATE TABLE loose AS SELECT * FROM blobs")
        tamper("DROP TABLE blobs")
        tamper("ALTER TABLE loose RENAME TO blobs")
    else:
        tamper("ALTER TABLE blobs DROP CONSTRAINT blobs_pkey")
    tamper(
        f"INSERT INTO blobs SELECT sha256, kind, replace(content, '\"active\":1', "
        f"'\"active\":0') FROM blobs WHERE sha256 = '{key}'"
    )
    report = verify_chain(sink.records(), sink.head(), sink.stored_blob)
    assert not report.ok
    if which == "chunk":
        assert (f"record 1 references a roster blob {sha} that is missing", None) == (
            report.problem,
            sink.get_blob(sha),
        )
    else:
        assert f"the roster blob {sha} (used by record 1) was edited" == report.problem
        with pytest.raises(ValueError, match="two blob rows"):
            sink.get_blob(sha)


@pytest.mark.parametrize("which", ["manifest", "chunk", "ruleset"])
def test_content_stored_as_bytes_is_reported_not_raised(tmp_path: Path, which: str) -> None:
    """A content value cast to a BLOB: verify reports it (it raised TypeError)."""
    path, sink, sha, chunk = _small_sqlite_log(tmp_path)
    key = {"manifest": sha, "chunk": chunk, "ruleset": RULESET.sha256}
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE blobs SET content = CAST(content AS BLOB) WHERE sha256 = ?", (key[which],)
        )
    report = verify_chain(sink.records(), sink.head(), sink.stored_blob)
    blob = {"ruleset": "ruleset", "manifest": "roster", "chunk": "roster"}[which]
    assert {
        "manifest": f"the roster blob {sha} (used by record 1) was edited",
        "chunk": f"record 1 references a roster blob {sha} that is missing",
        "ruleset": f"the {blob} blob {RULESET.sha256} (used by record 1) was edited",
    }[which] == report.problem
    sink.close()


def test_a_record_s_stored_text_turned_into_bytes_is_an_edit_not_a_crash(tmp_path: Path) -> None:
    """decisions.content cast to a BLOB: the record is reported edited (it raised TypeError)."""
    path, sink, _, _ = _small_sqlite_log(tmp_path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE decisions SET content = CAST(content AS BLOB)")
    report = verify_chain(sink.records(), sink.head(), sink.stored_blob)
    assert (report.ok, report.seq) == (False, 1)
    assert "record 1 was edited or moved" in (report.problem or "")
    sink.close()
