"""The ways to start the command: `python -m caseroute`, `python -m caseroute.cli`, the script."""

import subprocess
import sys

import pytest

from caseroute.testing import REPO_ROOT


def _run(module: str, argv: list[str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--version"], 0),
        (["rules", "check", "rulesets/patient-enquiries"], 0),
        ([], 2),  # no command: usage
        (["rules", "check", "no/such/ruleset"], 1),
    ],
)
def test_python_m_caseroute_runs_the_same_command_as_python_m_caseroute_cli(
    argv: list[str], code: int
) -> None:
    """`python -m caseroute` gives the exit code, output and errors `-m caseroute.cli` gives."""
    expected = _run("caseroute.cli", argv)
    assert code == expected[0]
    assert expected == _run("caseroute", argv)
