"""Derived signal values are rounded at their source, so rules and output see -0.2, not -0.19999."""

from __future__ import annotations

from datetime import timedelta

import pytest

from caseroute.domain.case import SentimentReading
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.signals import SIGNAL_DECIMALS, derive_signals, summarise_sentiment
from caseroute.rules.model import SignalSettings
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    clock,
    compile_text,
    make_case,
    make_roster,
    ruleset_with_rules,
)

DROP_RULE = """\
  - id: sharp-drop
    when: sentiment.change <= -0.2
    then: {escalate: {queue: complaints, reason: sentiment_drop}}
"""


@pytest.mark.parametrize("engine", [EngineKind.PYTHON, EngineKind.DURABLE])
def test_a_drop_of_exactly_the_threshold_fires_the_rule(engine: EngineKind) -> None:
    """Readings -0.1 then -0.3 change by -0.2 (not -0.19999999999999998): `<= -0.2` fires."""
    ruleset = prepare_ruleset(compile_text(ruleset_with_rules(DROP_RULE + CATCH_ALL_RULE)), engine)
    case = make_case(
        sentiment=(
            SentimentReading(-0.1, NOW - timedelta(minutes=5)),
            SentimentReading(-0.3, NOW - timedelta(minutes=1)),
        )
    )
    decision = decide(case, make_roster(), ruleset, NOW)
    assert (
        decision.rule_id,
        decision.explanation.signals.sentiment.change,
    ) == ("sharp-drop", -0.2)


def test_sentiment_change_is_rounded_to_the_signal_precision() -> None:
    """The change is rounded to SIGNAL_DECIMALS (9) decimals: -0.3 - -0.1 is exactly -0.2."""
    summary = summarise_sentiment([-0.1, -0.3], negative=-0.5, window=3)
    assert (SIGNAL_DECIMALS, summary.change) == (9, -0.2)


def test_minutes_are_rounded_to_the_signal_precision() -> None:
    """Case age and minutes remaining carry at most 9 decimals (a third of a minute shows so)."""
    signals = derive_signals(
        make_case(created_at=NOW - timedelta(seconds=20), sla_clocks=(clock("ack", 30),)),
        SignalSettings(sla_at_risk_minutes=60),
        NOW + timedelta(seconds=0.1),
    )
    assert signals.sla is not None
    assert (signals.case_age_minutes, signals.sla.minutes_remaining) == (0.335, 29.998333333)
