"""benchmarks/served_profile.py, run tiny: its folded-stack aggregation, without a server.

Never timing. What is pinned: the thread group each kind of stack is counted under, and the us
per decision the tables print (samples x 1e6 / rate / decisions), from a saved raw file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from caseroute.testing import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "served_profile.py"

FOLDED = """\
thread (0x1);Thread.run (threading.py:975);_serve (grpc/_server.py:1200);\
ThreadPoolExecutor.submit (concurrent/futures/thread.py:176) 10
thread (0x2);_worker (concurrent/futures/thread.py:83);_unary_response_in_pool \
(grpc/_server.py:600);canonical_json (caseroute/domain/fingerprint.py:380) 30
thread (0x3);Thread.run (threading.py:975);SqliteAuditStore._write_loop \
(caseroute/audit/store.py:559);SqliteAuditStore._commit (caseroute/audit/store.py:640) 5
thread (0x4);Thread.run (threading.py:975);DeferredLines._write_lines \
(caseroute/logs/deferred.py:120) 3
thread (0x5);0x7f00 (libc.so.6);epoll_wait (libc.so.6) 2
thread (0x6);Thread.run (threading.py:975);_worker (concurrent/futures/thread.py:90) 10
not a stack line
"""


def test_folded_file_aggregates_by_group_and_function(tmp_path: Path) -> None:
    """A saved raw file, 100 decisions at 500 Hz: 20 us per sample per decision, by group."""
    raw = tmp_path / "raw.txt"
    raw.write_text(FOLDED)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--folded", str(raw), "--decisions", "100", "--top", "3"],
        capture_output=True,
        text=True,
        check=False,
        cwd=SCRIPT.parent,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("load ")
    assert lines[1] == (
        "100 decisions, 60 samples at 500 Hz: 1,200 us of server CPU per decision (sampled)"
    )
    body = done.stdout.split("| --- | --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    assert body.splitlines() == [
        "| rpc | 800.0 | 66.7% |",
        "| serve | 200.0 | 16.7% |",
        "| auditwriter | 100.0 | 8.3% |",
        "| logwriter | 60.0 | 5.0% |",
        "| C | 40.0 | 3.3% |",
    ]
    assert "| `canonical_json (caseroute/domain/fingerprint.py)` | 600.0 | 50.0% | rpc |" in lines
    assert (
        "| `ThreadPoolExecutor.submit (concurrent/futures/thread.py)` | 200.0 | 16.7% | serve |"
        in lines
    )


def test_switch_table_reads_perf_stat_per_thread_counts() -> None:
    """GIL releases from ``perf stat --per-thread -x ,`` lines join switches and CPU by group."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import served_profile
    finally:
        sys.path.remove(str(SCRIPT.parent))
    drops = served_profile.per_thread_counts(
        "python-11,300,,probe_libpython3:PyEval_SaveThread,100.00,,\n"
        "python-12,<not counted>,,probe,0,100.00,,\n"
        "event_engine-13,0,,probe_libpython3:PyEval_SaveThread,100.00,,\n"
    )
    assert drops == {11: 300, 13: 0}
    names = {11: "rpc_0", 12: "ThreadPoolExecutor-0_0_serve"}
    before = {11: (10, 1, 0), 12: (0, 0, 0), 13: (5, 0, 0)}
    after = {11: (60, 11, 0), 12: (20, 0, 0), 13: (15, 5, 0)}
    table = served_profile.switch_table(names, before, after, 10, drops)
    assert table.splitlines()[4:] == [
        "| rpc | 1 | 5.00 | 1.00 | 30.00 | 0 |",
        "| serve | 1 | 2.00 | 0.00 | 0.00 | 0 |",
        "| C | 1 | 1.00 | 0.50 | 0.00 | 0 |",
    ]
