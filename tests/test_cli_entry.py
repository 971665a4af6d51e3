"""The ways to start the command: `python -m caseroute`, `python -m caseroute.cli`, the script."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

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


INTERRUPTED = "caseroute: interrupted; any output printed is incomplete\n"
"""What Ctrl-C inside a command prints (tests/test_cli_audit.py); startup prints the same."""

# Installed as sitecustomize: Ctrl-C lands while the command's modules load, every time (a
# real SIGINT would land wherever the clock puts it).
_INTERRUPT_THE_IMPORT = """
import sys

class InterruptTheImport:
    def find_spec(self, name, path=None, target=None):
        if name == "caseroute.cli.command":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, InterruptTheImport())
"""


def _console_script() -> list[str]:
    """Run the pyproject `caseroute` script's target as pip's generated wrapper does."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    module, _, name = pyproject["project"]["scripts"]["caseroute"].partition(":")
    return ["-c", f"import sys; from {module} import {name}; sys.exit({name}())"]


@pytest.mark.parametrize(
    "entry",
    [["-m", "caseroute"], ["-m", "caseroute.cli"], _console_script()],
    ids=["python -m caseroute", "python -m caseroute.cli", "console script"],
)
def test_ctrl_c_while_the_command_loads_exits_130_with_one_line(
    entry: list[str], tmp_path: Path
) -> None:
    """An interrupt before main() runs: exit 130 and the one line main() prints, no traceback."""
    (tmp_path / "sitecustomize.py").write_text(_INTERRUPT_THE_IMPORT)
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, *entry, "--version"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    expected = (130, "", INTERRUPTED)
    assert expected == (done.returncode, done.stdout, done.stderr)


def test_the_entry_loads_nothing_of_caseroute_before_its_guard() -> None:
    """Importing the entry (as each way to start does) loads only stdlib-only caseroute modules."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, caseroute.__main__, caseroute.cli.__main__; "
                "print(sorted(m for m in sys.modules if m.startswith('caseroute')))"
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = ["caseroute", "caseroute.__main__", "caseroute.cli", "caseroute.cli.__main__"]
    assert repr([*loaded, "caseroute.cli.entry"]) + "\n" == done.stdout
