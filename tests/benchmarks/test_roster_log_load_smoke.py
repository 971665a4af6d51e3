"""benchmarks/roster_log_load.py at its smallest setting: shape, never timing."""

import pytest

from tests.benchmarks.test_bench_smoke import run_script


@pytest.mark.slow
def test_a_log_load_and_a_sent_parse_are_timed_per_size() -> None:
    """Each size gets a row: the roster really loaded from the log, the sent parse, the ratio."""
    out = run_script("roster_log_load.py", "--sizes", "10,100", "--rounds", "1")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| agents | loaded from the log, ms | parsed as sent, ms | log / sent |"
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["10", "100"]
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.split("|")[2:5]]
        assert float(cells[0]) > 0
        assert float(cells[1]) > 0
        assert cells[2].endswith("x")
    assert out.startswith("load average at start:")
    assert out.rstrip().splitlines()[-1].startswith("load average at end:")
