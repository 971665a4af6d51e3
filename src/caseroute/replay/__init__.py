"""Replay harness: re-decide recorded decisions under a candidate ruleset and report the changes.

One entry point, ``replay(source, candidate, options) -> ReplayReport``, for the CLI and the
admin API alike; see docs/replay.md.
"""

from caseroute.replay.candidate import CandidateSource, resolve_candidate
from caseroute.replay.classify import CLASSES, DIFFERENCE_CLASSES
from caseroute.replay.report import Gate, ReplayReport, exceeded, report_data
from caseroute.replay.run import ReplayOptions, default_workers, replay
from caseroute.replay.source import ExportedRecords, RecordFilter, RecordSource, SinkRecords

__all__ = [
    "CLASSES",
    "DIFFERENCE_CLASSES",
    "CandidateSource",
    "ExportedRecords",
    "Gate",
    "RecordFilter",
    "RecordSource",
    "ReplayOptions",
    "ReplayReport",
    "SinkRecords",
    "default_workers",
    "exceeded",
    "replay",
    "report_data",
    "resolve_candidate",
]
