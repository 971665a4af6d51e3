"""Derive the signals rules read (SLA risk, sentiment trend, case age) from a case at ``now``."""

from __future__ import annotations

from datetime import datetime

from caseroute.domain.case import Case
from caseroute.domain.decision import SentimentSummary, Signals, SlaRisk, SlaStatus
from caseroute.rules.model import SignalSettings

SIGNAL_DECIMALS = 9
"""Decimals every derived signal value is rounded to, here at its source (docs/json.md).

Binary floats make ``-0.3 - -0.1`` come out as ``-0.19999999999999998``: a rule
``sentiment.change <= -0.2`` would not fire on readings the operator reads as a drop of 0.2,
and every output would print the noise. Nine decimals keep far more than any score (two or
three decimals) or minute count (microsecond instants are 1.7e-8 minutes) carries.
"""


def _round(value: float) -> float:
    # + 0.0 turns -0.0 into 0.0: a rounded-away tiny negative must not print as "-0".
    return round(value, SIGNAL_DECIMALS) + 0.0


def _minutes(later: datetime, earlier: datetime) -> float:
    return _round((later - earlier).total_seconds() / 60.0)


def sla_risk(minutes_remaining: float, at_risk_minutes: float) -> SlaRisk:
    """Classify time left on a clock: breached below zero, at risk within the threshold."""
    if minutes_remaining < 0:
        return SlaRisk.BREACHED
    if minutes_remaining <= at_risk_minutes:
        return SlaRisk.AT_RISK
    return SlaRisk.OK


def summarise_sentiment(scores: list[float], negative: float, window: int) -> SentimentSummary:
    """Sentiment signals over replies, oldest first.

    Args:
        scores: Reply scores, oldest first.
        negative: Score at or below which a reply counts as negative.
        window: How many replies back ``change`` compares the latest with (or the oldest
            reply, when there are fewer).

    Returns:
        The summary; latest/minimum/change are ``None`` without replies (change also with one).
    """
    if not scores:
        return SentimentSummary(0, None, None, None, 0)
    latest = scores[-1]
    change = None if len(scores) < 2 else _round(latest - scores[max(0, len(scores) - 1 - window)])
    run = 0
    for score in reversed(scores):
        if score > negative:
            break
        run += 1
    return SentimentSummary(len(scores), latest, min(scores), change, run)


def derive_signals(case: Case, settings: SignalSettings, now: datetime) -> Signals:
    """Compute every derived signal for a case.

    Args:
        case: The case.
        settings: The ruleset's thresholds.
        now: The decision instant (never the wall clock).

    Returns:
        The signals, clocks most urgent first (ties by name).
    """
    clocks = sorted(
        (
            SlaStatus(c.name, minutes, sla_risk(minutes, settings.sla_at_risk_minutes))
            for c in case.sla_clocks
            for minutes in (_minutes(c.deadline, now),)
        ),
        key=lambda s: (s.minutes_remaining, s.name),
    )
    return Signals(
        case_age_minutes=_minutes(now, case.created_at),
        sla_clocks=tuple(clocks),
        sla=clocks[0] if clocks else None,
        sentiment=summarise_sentiment(
            [r.score for r in case.sentiment],
            settings.negative_sentiment,
            settings.sentiment_window,
        ),
        sla_at_risk_minutes=settings.sla_at_risk_minutes,
        negative_sentiment=settings.negative_sentiment,
        sentiment_window=settings.sentiment_window,
    )
