"""benchmarks/commit_floor.py at its smallest settings: output shape, never timing."""

from tests.benchmarks.test_bench_smoke import run_script


def test_commit_floor_prints_each_variant_with_its_columns() -> None:
    """One round: the three transactions, the bare fdatasync and both lone appends, in order."""
    out = run_script("commit_floor.py", "--rounds", "1", "--records", "20")
    lines = out.splitlines()
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")]
    columns = [[cell.split()[0] for cell in row[1].split(", ")] for row in rows]
    transaction = ["transaction_us", "commit_us", "frames"]
    append = ["append_us", "cpu_us"]
    assert (lines[0].split(":")[0], lines[-1].split(":")[0]) == ("load before", "load after")
    assert [(row[0], cols) for row, cols in zip(rows, columns, strict=True)] == [
        ("as-built", transaction),
        ("fewer-indexes", transaction),
        ("no-fsync", transaction),
        ("fdatasync", ["fdatasync_us"]),
        ("queued (as built)", append),
        ("unqueued", append),
    ]
