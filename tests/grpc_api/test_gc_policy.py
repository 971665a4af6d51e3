"""`--gc-threshold`: the cyclic garbage collector thresholds each serving process sets."""

import gc
from pathlib import Path

import pytest

from caseroute.cli import build_parser
from caseroute.cli.serve import server_config
from caseroute.grpc_api.processes import apply_gc_policy
from caseroute.grpc_api.server import DEFAULT_GC_THRESHOLD, ServerConfig
from tests.serve_process import start_serve

SET_LINE = "gc thresholds set to "
"""What a serving process logs once it has set the thresholds (then the three, comma-joined)."""


def test_the_default_is_the_measured_policy() -> None:
    """Unset: Python's young thresholds, the oldest generation after 1,000 gen-1 collections."""
    config = server_config(build_parser().parse_args(["serve"]))
    assert (config.gc_threshold, ServerConfig().gc_threshold, DEFAULT_GC_THRESHOLD) == (
        (700, 10, 1000),
        (700, 10, 1000),
        (700, 10, 1000),
    )


def test_the_flag_and_the_variable_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """--gc-threshold beats CASEROUTE_GC_THRESHOLD, which beats the default."""
    monkeypatch.setenv("CASEROUTE_GC_THRESHOLD", "700,10,10")
    by_env = server_config(build_parser().parse_args(["serve"]))
    by_flag = server_config(build_parser().parse_args(["serve", "--gc-threshold", "5,6,7"]))
    assert (by_env.gc_threshold, by_flag.gc_threshold) == ((700, 10, 10), (5, 6, 7))


@pytest.mark.parametrize("value", ["0,10,10", "700,10", "700,10,10,10", "a,b,c", "700,-1,10"])
def test_a_bad_value_stops_serve_with_what_to_write(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not three whole numbers of at least 1 (0 would turn collection off): exit 2, one line."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["serve", "--gc-threshold", value])
    assert (stopped.value.code, capsys.readouterr().err.splitlines()[-1]) == (
        2,
        (
            "caseroute serve: error: argument --gc-threshold: must be three whole numbers of at "
            f"least 1, comma-separated (e.g. 700,10,10), got {value!r} (set by the flag or "
            "$CASEROUTE_GC_THRESHOLD)"
        ),
    )


def test_apply_gc_policy_sets_the_thresholds_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The process's collector takes the config's thresholds; the log line says what it has."""
    caplog.set_level("INFO", logger="caseroute.server")
    apply_gc_policy(ServerConfig(gc_threshold=(1234, 5, 67)))
    assert (gc.get_threshold(), [r.getMessage() for r in caplog.records]) == (
        (1234, 5, 67),
        [SET_LINE + "1234,5,67"],
    )


def _serve_until_set(tmp_path: Path, workers: int, *extra: str) -> list[str]:
    """Start `caseroute serve`, read stderr until each worker said its thresholds, stop it."""
    said: list[str] = []
    loaded = 0
    with start_serve(tmp_path / "audit.db", *extra, workers=workers, ready=None) as served:
        for line in served.lines():  # ends at exit too
            if SET_LINE in line:
                said.append(line.split(SET_LINE)[1].split('"')[0].strip())
            loaded += "rulesets loaded" in line  # after the thresholds, if they are set
            if workers in (len(said), loaded):
                break
    return said


def test_each_spawned_worker_sets_the_flags_thresholds(tmp_path: Path) -> None:
    """`serve --workers 2 --gc-threshold 2000,5,500`: both workers run with those thresholds."""
    assert _serve_until_set(tmp_path, 2, "--gc-threshold", "2000,5,500") == [
        "2000,5,500",
        "2000,5,500",
    ]


def test_a_lone_worker_sets_the_default_when_unset(tmp_path: Path) -> None:
    """`serve --workers 1` (serving in its own process), no setting: the default thresholds."""
    assert _serve_until_set(tmp_path, 1) == ["700,10,1000"]
