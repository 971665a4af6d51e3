"""benchmarks/zen_side_by_side.py at its smallest settings: agreement, output shape, its guards.

Never timing: the figures of a smoke run mean nothing. What is pinned is that caseroute, the zen
decision table (per agent and in loop mode) and the hand-written Python choose the same agents
at 100 and 1,000 agents, that every table and target row the docs quote is printed, and that a
table which disagrees with caseroute, or holds another compact membership, stops the run.
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from caseroute.testing import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "zen_side_by_side.py"
TABLE = REPO_ROOT / "benchmarks" / "zen_tables" / "clinical_eligibility.json"
AGREE = (
    "zen per agent, zen loop and Python agree on every agent's first failed check and on the "
    "ranking"
)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the script with this interpreter; its result, whatever the exit code."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=300,
    )


def tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown tables by their header row: each a list of body rows, cells stripped."""
    found: dict[str, list[list[str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("| "):
                    break
                rows.append([cell.strip() for cell in body.strip().strip("|").split("|")])
            found[line] = rows
    return found


def edited_table(tmp_path: Path, edit: str, *, drop_rule: str | None = None) -> Path:
    """The reference table with one edit, written to ``tmp_path``."""
    table = json.loads(TABLE.read_text())
    content = table["nodes"][1]["content"]
    if drop_rule is not None:
        content["rules"] = [r for r in content["rules"] if r["_id"] != drop_rule]
    text = json.dumps(table)
    if edit:
        text = text.replace(edit, "")
    path = tmp_path / "table.json"
    path.write_text(text)
    return path


def test_all_four_choose_the_same_agents_at_100_and_1000() -> None:
    """Quick run: the three others agree with caseroute at both sizes; every table row printed."""
    done = run("--quick")
    out = done.stdout
    found = tables(out)
    medians = found["| agents | contender | warm median ms | cold median ms | cold us per agent |"]
    ratios = found[
        "| agents | state | caseroute input | zen per agent / caseroute | zen loop / caseroute "
        "| Python / caseroute |"
    ]
    targets = found["| target | measured | met |"]
    assert (done.returncode, done.stderr) == (0, "")
    assert [line for line in out.splitlines() if line.startswith("check")] == [
        (
            "check: 100 agents: ASSIGN agent-00072 by rule clinical, 3 eligible (agent-00072, "
            f"agent-00028, agent-00094, best first); {AGREE}"
        ),
        (
            "check: 1000 agents: ASSIGN agent-00272 by rule clinical, 6 eligible (agent-00272, "
            f"agent-00673, agent-00482, agent-00284, agent-00730, agent-00608, best first); {AGREE}"
        ),
    ]
    assert [row[:2] for row in medians] == [
        [size, name]
        for size in ("100", "1000")
        for name in (
            "caseroute (dicts)",
            "caseroute (protobuf)",
            "zen per agent",
            "zen loop",
            "Python",
        )
    ]
    assert [row[:3] for row in ratios] == [
        [size, state, source]
        for size in ("100", "1000")
        for state in ("warm", "cold")
        for source in ("dicts", "protobuf")
    ]
    assert [row[0] for row in targets] == [
        f"cold {size} agents from {source}: >= 5x ahead of {rival}"
        for rival in ("zen (table per agent)", "zen loop mode")
        for size in ("100", "1000")
        for source in ("dicts", "protobuf")
    ]
    assert {row[2] for row in targets} <= {"met", "**not met**"}
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("load")] == [
        "load average at start",
        "load average at end",
    ]


def test_a_table_missing_a_check_stops_the_run_naming_the_first_agent_it_gets_wrong(
    tmp_path: Path,
) -> None:
    """A table without its skills row disagrees with caseroute: exit 1, nothing timed."""
    done = run(
        "--quick",
        "--sizes",
        "100",
        "--table",
        str(edited_table(tmp_path, "", drop_rule="fails-skills")),
    )
    assert (done.returncode, done.stderr) == (
        1,
        (
            "zen per agent disagrees with caseroute at 100 agents: agent-00036: caseroute skills, "
            "this language\n"
        ),
    )
    assert "| agents |" not in done.stdout


def test_a_table_with_another_compact_membership_stops_the_run(tmp_path: Path) -> None:
    """A table written before Pennsylvania joined the NLC is refused before anything runs."""
    done = run("--quick", "--sizes", "100", "--table", str(edited_table(tmp_path, ' \\"US-PA\\",')))
    assert (done.returncode, done.stderr) == (
        1,
        "the NLC member list of the table or of the Python version is not the ruleset's\n",
    )
    assert "check:" not in done.stdout


def test_the_bench_extra_is_pinned_and_locked_for_ci() -> None:
    """zen-engine: pinned exactly in the bench extra, at that version in the dev lock (CI)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lock = (REPO_ROOT / "requirements-dev.lock").read_text()
    assert project["optional-dependencies"]["bench"] == ["zen-engine==2.1.3"]
    assert "\nzen-engine==2.1.3 \\\n    --hash=sha256:" in lock
    assert "--extra dev --extra bench " in lock.splitlines()[1]
