"""Operations report: KPIs of the decisions in a period, read from the decision log.

``build_report(records, since=, until=, ruleset=) -> OpsReport``, then ``render_*`` or
``report_data`` for the stable JSON document; see docs/operations.md.
"""

from caseroute.report.kpis import (
    PERCENTILE_METHOD,
    OpsReport,
    ReportBuilder,
    TriageStats,
    build_report,
    nearest_rank,
    report_data,
)

__all__ = [
    "PERCENTILE_METHOD",
    "OpsReport",
    "ReportBuilder",
    "TriageStats",
    "build_report",
    "nearest_rank",
    "report_data",
]
