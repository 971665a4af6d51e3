"""The replay report read back from its JSON form: the exact inverse; other documents refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caseroute.domain.fingerprint import canonical_json
from caseroute.engine.case_rules import EngineKind
from caseroute.replay import ReplayOptions, SinkRecords, replay, report_data
from caseroute.replay.document import ReportDocumentError, report_from_data
from caseroute.replay.render import render_markdown, render_plain
from tests.replay.recorded import candidate, record_log


def test_report_from_sorted_json_is_the_same_report(tmp_path: Path) -> None:
    """Keys sorted or not, the rebuilt report equals the original (renderers print the same)."""
    store = record_log(tmp_path)
    try:
        report = replay(
            SinkRecords(store), candidate("masked_read"), ReplayOptions(EngineKind.PYTHON)
        )
    finally:
        store.close()
    rebuilt = report_from_data(json.loads(canonical_json(report_data(report))))
    assert (rebuilt, render_plain(rebuilt), render_markdown(rebuilt)) == (
        report,
        render_plain(report),
        render_markdown(report),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"schema_version": 2},
            "not a replay report of schema_version 1; upgrade caseroute to read it",
        ),
        ([], "not a replay report of schema_version 1; upgrade caseroute to read it"),
        (
            {"schema_version": 1},
            "the replay report lacks or misshapes 'candidate'; upgrade caseroute to read it",
        ),
    ],
)
def test_other_documents_are_refused(data: object, message: str) -> None:
    """A document of another schema version or shape is ReportDocumentError naming why."""
    with pytest.raises(ReportDocumentError) as exc:
        report_from_data(data)
    assert str(exc.value) == message
