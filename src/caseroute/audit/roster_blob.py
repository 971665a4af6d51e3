"""How the decision log stores a roster snapshot: a manifest over content-defined chunks of agents.

A snapshot used to be stored whole (its canonical JSON, ~390 bytes per agent). Callers send a
new snapshot whenever an agent's capacity or status changes, often with every case, and each
new snapshot stored the whole roster again although nearly every agent in it was stored
already. Now the log stores, under the snapshot's ``roster_sha256``, a **manifest** (the
header's canonical JSON, then one chunk key per line) and beside it **chunks**: runs of agents
in roster order, each chunk its agents' canonical JSON texts one per line (a canonical text
never holds a raw newline: JSON escapes it). A chunk is keyed by the sha256 of its agents'
digests, so a chunk already in the log is not written again.

Chunk boundaries are content-defined (as rsync's and restic's are): a chunk ends after an agent
whose digest's last byte has its low ``CHUNK_BITS`` bits clear, or at ``MAX_CHUNK`` agents. An
agent that changes changes its own chunk only, and an agent logging in or out shifts no other
chunk's boundaries, so a snapshot that differs from a stored one by a few agents costs a
manifest (~65 bytes per 16 agents) and one chunk per changed place (~16 agents' text).

Reading a snapshot assembles the same canonical JSON a whole blob holds (``assemble_roster``),
so ``roster_sha256``, ``audit verify`` and replay are unchanged, and a log keeps reading the
whole blobs it stored before this layout. Pure: no store, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from caseroute.audit.record import Blob, BlobKind

CHUNK_BITS = 4
"""A chunk ends after an agent whose digest's last byte has these low bits all clear: one agent
in 16 on average, the size at which manifest and chunk bytes balance for rosters of a few
hundred to a few thousand agents (a manifest line is 65 bytes, an agent's text ~390)."""
MAX_CHUNK = 64
"""A chunk ends after this many agents whatever their digests (bounds a changed chunk's size)."""
_CHUNK_MASK = (1 << CHUNK_BITS) - 1
_CHUNK_DOMAIN = b"caseroute roster chunk v1\n"
"""Prefixed to a chunk's digests before hashing, so a chunk key cannot equal a ruleset's or a
roster's hash of some other content."""


def chunk_ends(digests: Sequence[bytes]) -> list[int]:
    """Where each chunk of a roster with these agent digests ends (exclusive indexes, in order).

    Args:
        digests: Each agent's sha256 (``agent_digest``), in roster order.

    Returns:
        The end of each chunk; the last is ``len(digests)`` (none for an empty roster).
    """
    ends: list[int] = []
    start = 0
    for index, digest in enumerate(digests):
        if not digest[-1] & _CHUNK_MASK or index + 1 - start == MAX_CHUNK:
            start = index + 1
            ends.append(start)
    if start < len(digests):
        ends.append(len(digests))
    return ends


def chunk_key(digests: Sequence[bytes]) -> str:
    """The key of a chunk holding agents with these digests (hex sha256)."""
    return hashlib.sha256(_CHUNK_DOMAIN + b"".join(digests)).hexdigest()


def chunk_text_key(content: str) -> str:
    """The key a chunk's stored content must have (its lines are agents' canonical JSON)."""
    return chunk_key([hashlib.sha256(line.encode()).digest() for line in content.split("\n")])


def roster_blobs(
    sha256: str,
    header_json: bytes,
    digests: Sequence[bytes],
    text_of: Callable[[int], str],
    stored: Callable[[str], bool],
) -> list[Blob]:
    """The blobs that store one roster snapshot: its manifest and the chunks not yet stored.

    Args:
        sha256: The snapshot's ``roster_sha256`` (the manifest's key).
        header_json: Its header's canonical JSON (``roster_header_json``).
        digests: Each agent's digest, in roster order.
        text_of: The canonical JSON (``agent_json``) of the agent at an index; called only for
            the agents of chunks to be written.
        stored: Whether the log is known to hold a chunk already (a hint: False may be wrong,
            True never is; a chunk written twice is ignored by the store).

    Returns:
        The manifest first, then each chunk to write, in roster order.
    """
    keys: list[str] = []
    chunks: list[Blob] = []
    start = 0
    for end in chunk_ends(digests):
        key = chunk_key(digests[start:end])
        if key not in keys and not stored(key):
            text = "\n".join([text_of(index) for index in range(start, end)])
            chunks.append(Blob(key, BlobKind.ROSTER_CHUNK, text))
        keys.append(key)
        start = end
    manifest = "\n".join([header_json.decode(), *keys])
    return [Blob(sha256, BlobKind.ROSTER_PARTS, manifest), *chunks]


def manifest_keys(manifest: str) -> list[str]:
    """The chunk keys a manifest lists, in roster order (each once per place it fills)."""
    return manifest.split("\n")[1:]


def assemble_roster(manifest: str, chunks: Mapping[str, str]) -> str | None:
    """A roster snapshot's canonical JSON (``roster_json``) from its manifest and chunks.

    Args:
        manifest: The manifest's content.
        chunks: Chunk contents by key (at least every key the manifest lists).

    Returns:
        The roster's canonical JSON, or None when a chunk the manifest lists is missing.
    """
    header, *keys = manifest.split("\n")
    texts = []
    for key in keys:
        content = chunks.get(key)
        if content is None:
            return None
        texts.append(content.replace("\n", ","))
    # Invariant: the header is canonical JSON of {"snapshot_id", "taken_at"}, and "agents" sorts
    # before both, so the roster's text is the agents' list then the header's members.
    return '{"agents":[' + ",".join(texts) + "]," + header[1:]
