"""The Prometheus metrics caseroute exports: names, types, labels and buckets, in one place.

Every label has a bounded set of values: ruleset names and versions the server loaded, rule
ids, reason codes, ladder and step names and requirement names written in those rulesets,
outcome, intent and urgency enums, check names and gRPC status codes of the code. Never a case
id, agent id, request id, decision id or any text a caller wrote.

prometheus_client's multiprocess mode (``caseroute serve --workers N``) supports counters and
histograms as here; a metric added later must respect its limits (no ``Info``/``Enum``, gauges
need a ``multiprocess_mode``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "caseroute_"

DECISION_SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds: a Decide is milliseconds, a 1,000-case DecideBatch seconds."""

TIME_TO_TRIAGE_BUCKETS = (
    60.0,  # 1 min
    300.0,  # 5 min
    900.0,  # 15 min
    1800.0,  # 30 min
    3600.0,  # 1 h
    7200.0,  # 2 h
    14400.0,  # 4 h
    28800.0,  # 8 h
    86400.0,  # 1 day
    172800.0,  # 2 days
    259200.0,  # 3 days
    604800.0,  # 7 days
)
"""Seconds from a case's ``created_at`` to its decision: minutes for a call, days for a letter."""

AUDIT_COMMIT_SECONDS_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
"""Seconds of one decision-log transaction: an fsync is a millisecond, a contended lock more."""

AUDIT_COMMIT_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
"""Appends per transaction (group commit): 1 when idle, up to the store's 512 under load."""

NONE_LABEL = "(none)"
"""Label value for 'no ladder' / 'no step in force yet' (an empty value reads as no label)."""


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metric objects, created together in one registry (or none: multiprocess workers).

    Attributes:
        decisions: ``caseroute_decisions_total{ruleset,version,outcome}``.
        decision_seconds: ``caseroute_decision_seconds{method}``.
        time_to_triage: ``caseroute_time_to_triage_seconds{intent,urgency}``.
        escalations: ``caseroute_escalations_total{ruleset,reason}``.
        exceptions: ``caseroute_exceptions_total{ruleset,reason}``.
        rule_hits: ``caseroute_rule_hits_total{ruleset,rule_id}``.
        agents_excluded: ``caseroute_agents_excluded_total{check}``.
        relaxations: ``caseroute_relaxations_total{ruleset,ladder,step}``.
        relaxed_requirements: ``caseroute_relaxed_requirements_total{ruleset,requirement}``.
        continuity: ``caseroute_continuity_total{ruleset,outcome}``.
        replays: ``caseroute_decision_replays_total{ruleset}``.
        requests_refused: ``caseroute_requests_refused_total{code}``.
        audit_commit_seconds: ``caseroute_audit_commit_seconds``.
        audit_commit_size: ``caseroute_audit_commit_size``.
        audit_failures: ``caseroute_audit_write_failures_total``.
        reloads: ``caseroute_reloads_total{action,result}``.
        ruleset_version: ``caseroute_ruleset_version_info{ruleset,role,version}``.
        shadow_comparisons: ``caseroute_shadow_comparisons_total{ruleset,version,result}``.
        shadow_differences: ``caseroute_shadow_differences_total{ruleset,version,kind}``.
        shadow_dropped: ``caseroute_shadow_dropped_total{ruleset,version}``.
        roster_log_lookups: ``caseroute_roster_log_lookups_total{result}``.
    """

    decisions: Counter
    decision_seconds: Histogram
    time_to_triage: Histogram
    escalations: Counter
    exceptions: Counter
    rule_hits: Counter
    agents_excluded: Counter
    relaxations: Counter
    relaxed_requirements: Counter
    continuity: Counter
    replays: Counter
    requests_refused: Counter
    audit_commit_seconds: Histogram
    audit_commit_size: Histogram
    audit_failures: Counter
    reloads: Counter
    ruleset_version: Gauge
    shadow_comparisons: Counter
    shadow_differences: Counter
    shadow_dropped: Counter
    roster_log_lookups: Counter


def define_metrics(registry: CollectorRegistry | None) -> Metrics:
    """Create every caseroute metric.

    Args:
        registry: Where to register them; ``None`` in a multiprocess worker, whose values go
            to its files in ``PROMETHEUS_MULTIPROC_DIR`` and are read by the parent's
            ``MultiProcessCollector`` (registering them too would export them twice).

    Returns:
        The metrics.
    """

    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return Counter(PREFIX + name, doc, labels, registry=registry)

    return Metrics(
        decisions=counter(
            "decisions",
            "Decisions returned to callers (recorded in the decision log), by ruleset, version "
            "and outcome. Idempotent retries are not counted again.",
            ("ruleset", "version", "outcome"),
        ),
        decision_seconds=Histogram(
            PREFIX + "decision_seconds",
            "Server-side time of a successful Decide or DecideBatch call, from the decoded "
            "request to the reply (decision, audit write included).",
            ("method",),
            buckets=DECISION_SECONDS_BUCKETS,
            registry=registry,
        ),
        time_to_triage=Histogram(
            PREFIX + "time_to_triage_seconds",
            "Time from a case's created_at to the instant of its decision (now), per decision.",
            ("intent", "urgency"),
            buckets=TIME_TO_TRIAGE_BUCKETS,
            registry=registry,
        ),
        escalations=counter(
            "escalations",
            "ESCALATE decisions by reason code (a decision counts once under each of its codes).",
            ("ruleset", "reason"),
        ),
        exceptions=counter(
            "exceptions",
            "EXCEPTION decisions by reason code (a decision counts once under each of its codes).",
            ("ruleset", "reason"),
        ),
        rule_hits=counter(
            "rule_hits",
            "Decisions by the rule (or built-in check) that decided them.",
            ("ruleset", "rule_id"),
        ),
        agents_excluded=counter(
            "agents_excluded",
            "Agents excluded from a decision's candidates, by failed check (an agent failing "
            "two checks counts under both).",
            ("check",),
        ),
        relaxations=counter(
            "relaxations",
            "Decisions whose deciding rule has soft requirements, by ladder and the step active "
            "at the decision ((none): nothing relaxed yet).",
            ("ruleset", "ladder", "step"),
        ),
        relaxed_requirements=counter(
            "relaxed_requirements",
            "Requirements a ladder had relaxed at the decision, one count per decision.",
            ("ruleset", "requirement"),
        ),
        continuity=counter(
            "continuity",
            "Decisions of cases naming preferred agents, by continuity outcome.",
            ("ruleset", "outcome"),
        ),
        replays=counter(
            "decision_replays",
            "Stored decisions returned again to an idempotent retry (same request_id and input).",
            ("ruleset",),
        ),
        requests_refused=counter(
            "requests_refused",
            "gRPC calls that ended with a status other than OK, by status code.",
            ("code",),
        ),
        audit_commit_seconds=Histogram(
            PREFIX + "audit_commit_seconds",
            "Time of one decision-log transaction, the wait for the file lock other processes "
            "hold included.",
            buckets=AUDIT_COMMIT_SECONDS_BUCKETS,
            registry=registry,
        ),
        audit_commit_size=Histogram(
            PREFIX + "audit_commit_size",
            "Appends (decision batches, lifecycle events, shadow results) committed in one "
            "transaction (group commit); an append that stored nothing (a retry found stored, "
            "the health probe's empty write) is not counted.",
            buckets=AUDIT_COMMIT_SIZE_BUCKETS,
            registry=registry,
        ),
        audit_failures=counter(
            "audit_write_failures",
            "Appends whose decision-log transaction failed (the disk or database refused it). A "
            "decision among them is refused with UNAVAILABLE, unless it is a retry the log then "
            "answers from its stored record, which still counts; the health probe's empty write "
            "counts too.",
            (),
        ),
        reloads=counter(
            "reloads",
            "Ruleset loads, reloads, activations and rollbacks by result: ok, errors (a source "
            "did not load; its last good version serves), failed (nothing swapped).",
            ("action", "result"),
        ),
        # livemax: summed over workers a version would read as 2; a worker that exited drops
        # out (mark_process_dead); a version no longer serving is set to 0 (multiprocess mode
        # cannot remove a label set).
        ruleset_version=Gauge(
            PREFIX + "ruleset_version_info",
            "1 for each ruleset version serving a role (active, shadow) in some live worker, "
            "0 once it no longer serves.",
            ("ruleset", "role", "version"),
            multiprocess_mode="livemax",
            registry=registry,
        ),
        shadow_comparisons=counter(
            "shadow_comparisons",
            "Live decisions compared with the ruleset's shadow version, by result (agree, "
            "disagree).",
            ("ruleset", "version", "result"),
        ),
        shadow_differences=counter(
            "shadow_differences",
            "Shadow disagreements by what differed (outcome, agent, queue, priority, "
            "deciding_rule, escalation, relaxation, continuity, error); one comparison may "
            "count under several.",
            ("ruleset", "version", "kind"),
        ),
        shadow_dropped=counter(
            "shadow_dropped",
            "Live decisions not compared with the shadow version: its queue was full.",
            ("ruleset", "version"),
        ),
        roster_log_lookups=counter(
            "roster_log_lookups",
            "Rosters named by roster_sha256 alone that this worker had not seen, looked up in "
            "the decision log it shares (SQLite: the server's workers; PostgreSQL: replicas "
            "too), by result (loaded, not_stored, unreadable, too_large, refused, edited, "
            "busy, no_time, error).",
            ("result",),
        ),
    )
