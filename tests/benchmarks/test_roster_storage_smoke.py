"""benchmarks/roster_storage.py, run tiny: its table, and that a one-agent change writes a part.

Never timing. What is pinned: each scenario's row is printed, every snapshot read back as its
roster (the script exits otherwise), and a snapshot with one agent changed wrote less than the
whole roster (before rosters were stored in chunks it wrote 100%).
"""

from __future__ import annotations

import re
import subprocess
import sys

from caseroute.testing import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "roster_storage.py"


def test_quick_run_prints_every_scenario_and_writes_less_for_one_change() -> None:
    """Four rows; 'one agent busier' wrote under half the whole roster; 'all new' about all."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        cwd=SCRIPT.parent,
    )
    assert done.returncode == 0, done.stderr
    shares = dict(
        re.findall(r"^\| ([a-z0-9%+ ]+) \| [\d,]+ \| ([\d.]+)% \|", done.stdout, re.MULTILINE)
    )
    assert sorted(shares) == sorted(["one agent busier", "2% changed", "login + logout", "all new"])
    assert float(shares["one agent busier"]) < 50 < float(shares["all new"])
