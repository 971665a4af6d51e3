"""The status codes callers read of (docs/api.md's table, the Decide comment) are those served.

Review R34a F9: docs/api.md's "one table" and the Decide comment in routing.proto (what a Java
or Go caller reads in generated code) left out FAILED_PRECONDITION ROSTER_NOT_CACHED, which
Decide answers to a roster sent by hash the server does not hold, and CANCELLED; the comment
also left out RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED.
"""

import re

from google.rpc import code_pb2

from caseroute.grpc_api import status
from caseroute.testing import REPO_ROOT

DECIDE_CODES = (
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "FAILED_PRECONDITION",
    "RESOURCE_EXHAUSTED",
    "DEADLINE_EXCEEDED",
    "CANCELLED",
    "UNAVAILABLE",
    "INTERNAL",
)
"""Every status Decide and DecideBatch answer with (status.py's table, less the admin and
decision-log rows, plus INTERNAL)."""


def _status_table() -> list[tuple[str, str, str]]:
    """The rows (situation, status, details) of docs/api.md's hand-written "Status codes"."""
    text = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Status codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # no header
    return [
        (cells[0], cells[1], cells[2])
        for cells in ([c.strip() for c in row.strip("|").split(" | ")] for row in rows)
    ]


def _decide_comment() -> str:
    """The comment above ``rpc Decide`` in routing.proto, as one line."""
    proto = (REPO_ROOT / "protos" / "caseroute" / "v1" / "routing.proto").read_text()
    found = re.search(r"((?:\n  //[^\n]*)+)\n  rpc Decide\(", proto)
    assert found is not None
    return " ".join(line.strip().removeprefix("//").strip() for line in found[1].splitlines())


def test_every_status_of_the_status_table_has_a_row_in_the_docs() -> None:
    """Each gRPC code status.py maps an error to appears in docs/api.md's table."""
    served = {code_pb2.Code.Name(code) for _, code in status._TABLE}
    documented = {
        code for _, cell, _ in _status_table() for code in re.findall(r"`([A-Z_]+)`", cell)
    }
    assert served - documented == set()


def test_the_docs_table_tells_roster_not_cached_apart_with_its_error_info() -> None:
    """A FAILED_PRECONDITION row names ROSTER_NOT_CACHED and the ErrorInfo a caller reads."""
    rows = [
        row
        for row in _status_table()
        if "FAILED_PRECONDITION" in row[1] and status.ROSTER_NOT_CACHED in " ".join(row)
    ]
    assert len(rows) == 1, rows
    assert "google.rpc.ErrorInfo" in rows[0][2]
    assert "roster_sha256" in rows[0][2]


def test_the_decide_comment_names_every_status_decide_answers_with() -> None:
    """routing.proto's Decide comment (generated code's doc) lists each code, and the reason."""
    comment = _decide_comment()
    assert [code for code in DECIDE_CODES if code not in comment] == []
    assert status.ROSTER_NOT_CACHED in comment
