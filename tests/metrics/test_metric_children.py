"""The recorder resolves each metric child once per label values and counts into that child."""

from prometheus_client import CollectorRegistry

from caseroute.engine.decide import decide
from caseroute.metrics import MetricsRecorder, define_metrics
from caseroute.service import DecideResult
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset


def test_repeated_labels_reuse_the_metrics_own_child_and_count_every_time() -> None:
    """Three decisions, two label sets: two children kept, each the one labels() gives, 2 + 1."""
    metrics = define_metrics(CollectorRegistry())
    recorder = MetricsRecorder(metrics)
    loaded = reference_ruleset()
    roster = make_roster(make_agent("a1"))
    cases = [
        make_case(case_id="C1"),
        make_case(case_id="C2"),
        make_case(case_id="C3", flags=frozenset({"safeguarding"})),
    ]
    for case in cases:
        recorder.decided((case,), DecideResult((decide(case, roster, loaded, NOW),), NOW))
    recorder.rpc_finished("Decide", "OK", 0.002)
    recorder.rpc_finished("Decide", "OK", 0.003)
    version = loaded.compiled.version
    kept = recorder._decisions._by_values
    assert sorted(kept) == [
        ("patient-enquiries", version, "ASSIGN"),
        ("patient-enquiries", version, "ESCALATE"),
    ]
    child = metrics.decisions.labels(ruleset="patient-enquiries", version=version, outcome="ASSIGN")
    assert kept[("patient-enquiries", version, "ASSIGN")] is child
    assert child._value.get() == 2.0
    seconds = recorder._decision_seconds._by_values
    assert list(seconds) == [("Decide",)]
    assert seconds[("Decide",)] is metrics.decision_seconds.labels(method="Decide")
    assert seconds[("Decide",)]._sum.get() == 0.005
