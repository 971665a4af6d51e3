"""How the decision log stores a roster snapshot: a manifest over content-defined chunks of agents.

A snapshot used to be stored whole (its canonical JSON, ~315 bytes per agent of the benchmark's
roster). Callers send a new snapshot whenever an agent's capacity or status changes, often with
every case, and each new snapshot stored the whole roster again although nearly every agent in
it was stored already. Now the log stores, under the snapshot's ``roster_sha256``, a
**manifest** (the header's canonical JSON, then one chunk key per line) and beside it
**chunks**: runs of agents in roster order, each chunk its agents' canonical JSON texts one per
line (a canonical text never holds a raw newline: JSON escapes it). A chunk is keyed by the
sha256 of a fixed prefix and its agents' digests, so a chunk already in the log is not written
again.

Chunk boundaries are content-defined (as rsync's and restic's are): a chunk ends after an agent
whose digest's last byte has its low ``CHUNK_BITS`` bits clear, once it holds ``MIN_CHUNK``
agents, or at ``MAX_CHUNK`` agents. An agent that changes changes its own chunk, and an agent
logging in or out moves the boundaries of its own chunk and rarely the next one's, so a
snapshot that differs from a stored one by a few agents costs a manifest (65 bytes per chunk,
~19 agents) and one or two chunks per changed place.

Reading a snapshot assembles the same canonical JSON a whole blob holds (``assemble_roster``),
so ``roster_sha256``, ``audit verify`` and replay are unchanged, and a log keeps reading the
whole blobs it stored before this layout. Pure: no store, no I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from caseroute.audit.record import Blob, BlobKind

CHUNK_BITS = 4
"""A chunk ends after an agent whose digest's last byte has these low bits all clear: one agent
in 16 on average (past ``MIN_CHUNK``), near where manifest and chunk bytes balance for rosters
of a few hundred to a few thousand agents (a manifest line is 65 bytes, an agent's text
~300-400)."""
MIN_CHUNK = 4
"""No chunk ends before this many agents (the last may be shorter): bounds a roster's chunks to
a quarter of its agents, however its digests fall (agent ids chosen so that every digest ends a
chunk would otherwise make one chunk per agent: a manifest line per agent and a hint entry each)."""
MAX_CHUNK = 64
"""A chunk ends after this many agents whatever their digests (bounds a changed chunk's size)."""
MAX_LISTINGS = 16
"""Most places one manifest may list the same chunk. Since stop 28 a roster that repeats a chunk
is stored whole, but versions before it wrote such manifests for a ``Roster`` built in code
that repeats a run of agents; a tampered manifest listing one chunk thousands of times would
make a reader assemble a text thousands of times the chunk's size."""
DIGEST_BYTES = 32
"""Bytes of one agent digest (sha256)."""
_ENDS_CHUNK = bytes.maketrans(
    bytes(range(256)), bytes(0 if byte & ((1 << CHUNK_BITS) - 1) else 1 for byte in range(256))
)
"""Maps a digest's last byte to 1 when the agent ends a chunk, else 0."""
_CHUNK_DOMAIN = b"caseroute roster chunk v1\n"
"""Prefixed to a chunk's digests before hashing, so a chunk key cannot equal a ruleset's or a
roster's hash of some other content."""


def chunk_ends(joined: bytes) -> list[int]:
    """Where each chunk of a roster ends (exclusive agent indexes, in order).

    Args:
        joined: The agents' digests (``agent_digest``, ``DIGEST_BYTES`` each) concatenated in
            roster order.

    Returns:
        The end of each chunk; the last is the number of agents (none for an empty roster).
    """
    # The marks are found by C-level bytes operations: a loop over 1,000 digests in Python
    # cost ~100 us per new snapshot, more than the rest of the roster's blobs together.
    marks = joined[DIGEST_BYTES - 1 :: DIGEST_BYTES].translate(_ENDS_CHUNK)
    count, ends, start = len(marks), [], 0
    # Invariant: a mark is looked for from the MIN_CHUNK-th agent of the chunk on.
    mark = marks.find(1, MIN_CHUNK - 1)
    while True:
        stop = count if mark < 0 else mark + 1
        while stop - start > MAX_CHUNK:
            start += MAX_CHUNK
            ends.append(start)
        if mark < 0:
            break
        ends.append(stop)
        start = stop
        mark = marks.find(1, stop + MIN_CHUNK - 1)
    if start < count:
        ends.append(count)
    return ends


def chunk_key(joined: bytes) -> str:
    """The key of a chunk holding agents with these concatenated digests (hex sha256)."""
    return hashlib.sha256(_CHUNK_DOMAIN + joined).hexdigest()


def chunk_digests(lines: Sequence[str]) -> bytes:
    """The digests of a chunk's lines (agents' canonical JSON), concatenated.

    Raises:
        UnicodeEncodeError: If a line holds a lone surrogate (no agent's text does).
    """
    return b"".join([hashlib.sha256(line.encode()).digest() for line in lines])


def chunk_text_key(content: str) -> str:
    """The key a chunk's stored content must have (its lines are agents' canonical JSON)."""
    return chunk_key(chunk_digests(content.split("\n")))


def roster_blobs(
    sha256: str,
    header_json: bytes,
    digests: Sequence[bytes],
    texts_of: Callable[[int, int], Sequence[str]],
    stored: Callable[[str], bool],
) -> list[Blob]:
    """The blobs that store one roster snapshot: its manifest and the chunks not yet stored.

    Args:
        sha256: The snapshot's ``roster_sha256`` (the manifest's key).
        header_json: Its header's canonical JSON (``roster_header_json``).
        digests: Each agent's digest, in roster order.
        texts_of: The canonical JSON (``agent_json``) of the agents from one index up to
            another; called only for the chunks to be written.
        stored: Whether the log is known to hold a chunk already (a hint: False may be wrong,
            True never is; a chunk written twice is ignored by the store).

    Returns:
        The manifest first, then each chunk to write, in roster order; or, for a roster in
        which one chunk's agents appear twice, the roster whole (a ``ROSTER`` blob).
    """
    joined = b"".join(digests)
    spans: dict[str, tuple[int, int]] = {}
    keys: list[str] = []
    start = 0
    for end in chunk_ends(joined):
        key = chunk_key(joined[start * DIGEST_BYTES : end * DIGEST_BYTES])
        keys.append(key)
        spans.setdefault(key, (start, end))
        start = end
    header = header_json.decode()
    if len(spans) != len(keys):
        # The same agents twice in a row (the parsers refuse repeated agent ids; a Roster built
        # in code may hold them): stored whole, so no manifest written from now on lists a
        # chunk twice (older ones may, up to MAX_LISTINGS times: ``assemble_roster``).
        text = '{"agents":[' + ",".join(texts_of(0, start)) + "]," + header[1:]
        return [Blob(sha256, BlobKind.ROSTER, text)]
    chunks = [
        Blob(key, BlobKind.ROSTER_CHUNK, "\n".join(texts_of(*span)))
        for key, span in spans.items()
        if not stored(key)
    ]
    return [Blob(sha256, BlobKind.ROSTER_PARTS, "\n".join([header, *keys])), *chunks]


def manifest_keys(manifest: str) -> list[str]:
    """The chunk keys a manifest lists, in roster order (each once per place it fills)."""
    return manifest.split("\n")[1:]


def too_often_listed(keys: Sequence[str]) -> bool:
    """Whether a manifest lists some chunk more than ``MAX_LISTINGS`` times."""
    return len(keys) > len(set(keys)) and max(Counter(keys).values()) > MAX_LISTINGS


def assemble_roster(manifest: str, chunks: Mapping[str, str]) -> str | None:
    """A roster snapshot's canonical JSON (``roster_json``) from its manifest and chunks.

    Args:
        manifest: The manifest's content.
        chunks: Chunk contents by key (at least every key the manifest lists).

    Returns:
        The roster's canonical JSON; None when a chunk the manifest lists is missing; text
        that is no roster's JSON ("") when the manifest lists a chunk more than
        ``MAX_LISTINGS`` times or a chunk holds more than ``MAX_CHUNK`` agents. No caseroute
        writes either, and assembling them would let a few edited bytes of manifest (a huge
        chunk listed many times) make a reader build a text many times the log's size.
    """
    header, *keys = manifest.split("\n")
    contents = []
    for key in keys:
        content = chunks.get(key)
        if content is None:
            return None
        contents.append(content)
    if too_often_listed(keys) or any(c.count("\n") >= MAX_CHUNK for c in contents):
        return ""  # an edited manifest or chunk (verify reports the same: "edited")
    texts = [content.replace("\n", ",") for content in contents]
    if not header.startswith("{"):
        return header  # an edited manifest: a roster's JSON opens with "{", so this is none
    # Invariant: the header is canonical JSON of {"snapshot_id", "taken_at"}, and "agents" sorts
    # before both, so the roster's text is the agents' list then the header's members.
    return '{"agents":[' + ",".join(texts) + "]," + header[1:]


class RosterTooLargeError(Exception):
    """A roster snapshot in the log is larger than a bounded read would take (says by how much).

    Its message carries sizes only, never content: rosters are staff data, and it is logged.
    """


@dataclass(frozen=True, slots=True)
class StoredRoster:
    """What a snapshot's blob row says is left to read (``bounded_roster``).

    Attributes:
        whole: The roster's text, stored whole (nothing left to read); None for a manifest.
        manifest: The manifest's text, whose chunks are to be read; None when stored whole.
        chunks: The manifest's distinct chunk keys, sorted (empty when stored whole).
    """

    whole: str | None
    manifest: str | None
    chunks: tuple[str, ...]


def bounded_roster(
    row: Sequence[object] | None, *, max_agents: int, max_bytes: int
) -> StoredRoster | None:
    """A snapshot's blob row read for a caller within bounds, before any chunk is fetched.

    For ``roster_text`` of both stores: their query gives ``row`` as (kind, size of the content
    in bytes, the content or None when larger than ``max_bytes``), or None when no row holds
    the key.

    Returns:
        What is left to read, or None when the row is no roster (another kind of blob, or an
        edited value where text should be).

    Raises:
        RosterTooLargeError: If the content is larger than ``max_bytes``, or the manifest
            lists more chunks than ``max_agents`` (a chunk holds at least one agent) or one
            chunk too often (a manifest caseroute never writes).
    """
    if row is None or row[0] not in (BlobKind.ROSTER.value, BlobKind.ROSTER_PARTS.value):
        return None
    kind, size, content = row
    if content is None:
        raise RosterTooLargeError(f"{size} bytes, over {max_bytes}")
    if type(content) is not str:  # bytes: an edited value, no roster (verify says so)
        return None
    if kind == BlobKind.ROSTER.value:
        return StoredRoster(content, None, ())
    keys = manifest_keys(content)
    wanted = tuple(sorted(set(keys)))
    if len(wanted) > max_agents or too_often_listed(keys):
        raise RosterTooLargeError(f"its manifest lists {len(keys)} chunks")
    return StoredRoster(None, content, wanted)
