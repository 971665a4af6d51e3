"""benchmarks/served_latency.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import run_script


@pytest.mark.slow
def test_served_latency_maps_every_stage_of_check_and_decide_in_order() -> None:
    """Both tables list every stage in call order, each stamped by all 10 calls, then the p50s."""
    out = run_script("served_latency.py", "--quick")
    lines = out.splitlines()
    assert [x.split()[0] for x in lines if x.startswith("load")] == ["load", "load"]
    check_at = lines.index(
        "check: 10 calls, medians in us (offset from send, step from the stage above)"
    )
    decide_at = next(i for i, x in enumerate(lines) if x.startswith("decide: 10 calls"))
    check = [
        x.split()[0] for x in lines[check_at + 1 : decide_at] if not x.lstrip().startswith("(")
    ]
    decide = [x.split()[0] for x in lines[decide_at + 1 :] if x.startswith("  ") and "(" not in x]
    assert check == [
        "send",
        "deser_in",
        "deser_out",
        "handler_in",
        "handler_out",
        "ser_in",
        "ser_out",
        "recv",
    ]
    assert decide == [
        "send",
        "deser_in",
        "deser_out",
        "handler_in",
        "decided",
        "reply_built",
        "append_in",
        "handed",
        "writer_took",
        "locked",
        "begun",
        "commit_in",
        "committed",
        "settled",
        "woken",
        "handler_out",
        "ser_in",
        "ser_out",
        "recv",
    ]
    assert lines[-1].startswith("p50 check ")


def test_table_takes_medians_of_offsets_and_steps_skipping_missing_stages() -> None:
    """Offsets from send and steps from the nearest earlier stage a call has, in us."""
    import sys

    from tests.benchmarks.test_bench_smoke import BENCHMARKS

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from served_latency import table
    finally:
        sys.path.remove(str(BENCHMARKS))
    calls = [
        {"send": 0, "a": 1000, "c": 4000},
        {"send": 10_000, "a": 12_000, "c": 16_000},
        {"send": 0, "a": 3000, "c": 3000},
    ]
    assert table(calls, ("send", "a", "b", "c")) == [
        ("send", 0.0, 0.0),
        ("a", 2.0, 2.0),
        ("c", 4.0, 3.0),
    ]


def test_a_call_log_line_still_being_written_prints_without_its_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A call whose log line began but had not ended when measured: log_in only, no crash."""
    import sys

    from tests.benchmarks.test_bench_smoke import BENCHMARKS

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from served_latency import _print_table
    finally:
        sys.path.remove(str(BENCHMARKS))
    _print_table("check", [{"send": 0, "recv": 2000, "log_in": 3000}], ("send", "recv"))
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  (call log writer: 1 of 1 calls; log_in 3.0)"
    )
