import pytest

from caseroute.domain.decision import SlaRisk
from caseroute.engine.signals import derive_signals, sla_risk, summarise_sentiment
from caseroute.rules.model import SignalSettings
from caseroute.testing import NOW, clock, make_case, reading


def test_sla_risk_boundaries() -> None:
    """Breached below zero; at risk up to and including the threshold; ok above it."""
    assert [sla_risk(m, 60) for m in (-0.01, 0, 60, 60.01)] == [
        SlaRisk.BREACHED,
        SlaRisk.AT_RISK,
        SlaRisk.AT_RISK,
        SlaRisk.OK,
    ]


def test_most_urgent_clock_is_the_sla() -> None:
    """Clocks are ordered by time left; the first is `sla`."""
    signals = derive_signals(
        make_case(sla_clocks=(clock("rtt", 500), clock("ack", 30))),
        SignalSettings(sla_at_risk_minutes=60),
        NOW,
    )
    assert [c.name for c in signals.sla_clocks] == ["ack", "rtt"]
    assert signals.sla is not None
    assert (signals.sla.name, signals.sla.minutes_remaining, signals.sla.risk) == (
        "ack",
        30.0,
        SlaRisk.AT_RISK,
    )


def test_sentiment_summary() -> None:
    """Latest, minimum, change over the window, and the trailing negative run."""
    summary = summarise_sentiment([0.2, -0.6, 0.1, -0.5, -0.7], negative=-0.5, window=3)
    assert (summary.count, summary.latest, summary.minimum, summary.consecutive_negative) == (
        5,
        -0.7,
        -0.7,
        2,
    )
    assert summary.change == pytest.approx(-0.1)  # latest -0.7 against -0.6, 3 replies back


def test_sentiment_with_few_or_no_replies() -> None:
    """No replies: nothing to report; one reply: no change yet."""
    assert summarise_sentiment([], -0.5, 3).latest is None
    one = summarise_sentiment([-0.9], -0.5, 3)
    assert (one.latest, one.change, one.consecutive_negative) == (-0.9, None, 1)


def test_case_age_uses_now_not_the_clock() -> None:
    """Age is now - created_at for the given now."""
    case = make_case(sentiment=(reading(-0.1, 3),))
    assert derive_signals(case, SignalSettings(), NOW).case_age_minutes == 5.0
