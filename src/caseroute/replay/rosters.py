"""The roster snapshot a recorded input references, and that snapshot's text as a source gives it.

Every record carries its snapshot's text to whoever replays it; the texts are read from the
source (a decision log's blobs) here, and the last ROSTER_CACHE of them kept.
"""

from __future__ import annotations

from collections import OrderedDict

from caseroute.audit.record import BlobKind
from caseroute.replay.evaluate import (
    ABSENT_FROM_EXPORT,
    ABSENT_FROM_LOG,
    ABSENT_FROM_SOURCE,
    ROSTER_CACHE,
)
from caseroute.replay.source import ExportedRecords, RecordSource, SinkRecords


def roster_sha(data: object) -> str | None:
    """The roster snapshot an input references (None: none, or no input to read)."""
    ref = data.get("roster") if isinstance(data, dict) else None
    sha = ref.get("sha256") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) else None


def roster_absent(source: RecordSource) -> str:
    """Why a roster snapshot ``source`` does not give is absent (review R32b F10)."""
    if isinstance(source, ExportedRecords):
        return ABSENT_FROM_EXPORT if source.blobs is None else ABSENT_FROM_LOG
    return ABSENT_FROM_LOG if isinstance(source, SinkRecords) else ABSENT_FROM_SOURCE


class RosterTexts:
    """Roster snapshots' texts by sha256, the last ROSTER_CACHE of them kept.

    Every record carries its snapshot's text: the same str object, which pickle sends once
    per chunk; workers parse each snapshot once and keep it. Records in chain order reuse
    recent snapshots: a log where each decision saw a new snapshot held every snapshot's text
    for the whole run (~315 kB each at 1,000 agents: 96 MB at 300 snapshots).
    """

    def __init__(self, source: RecordSource) -> None:
        self._source = source
        self._texts: OrderedDict[str, str | None] = OrderedDict()

    def text(self, sha: str | None) -> str | None:
        """The content of snapshot ``sha`` (None: no reference, or the source lacks it)."""
        if sha is None:
            return None
        texts = self._texts
        if sha in texts:
            texts.move_to_end(sha)
            return texts[sha]
        try:
            blob = self._source.get_blob(sha)
        except ValueError:  # a row no caseroute writes: edited, so no roster ("")
            text: str | None = ""
        else:
            text = blob.content if blob and blob.kind is BlobKind.ROSTER else None
        texts[sha] = text
        if len(texts) > ROSTER_CACHE:
            texts.popitem(last=False)
        return text
