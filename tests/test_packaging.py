import re
import subprocess
import sys

from caseroute.testing import REPO_ROOT


def test_the_image_entrypoint_commands_exist() -> None:
    """`caseroute serve --help` and `caseroute health --help` work in this environment."""
    for command in ("serve", "health"):
        done = subprocess.run(
            [sys.executable, "-m", "caseroute.cli", command, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")


def test_readme_commands_work() -> None:
    """The README starts the server, tests with .ci/run, and its decide example runs as written."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert "\nbash .ci/run\n" in readme
    assert ".venv/bin/pip install -e . && .venv/bin/caseroute serve\n" in readme
    demo = re.search(r"\.venv/bin/caseroute (decide [^\n]+)", readme)
    assert demo is not None
    argv = [a for a in demo.group(1).split() if a != "--server"]
    argv = [a for a in argv if not a.startswith("127.0.0.1:")]  # in-process instead
    done = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == (
        "CASE-1001: ASSIGN to nurse-tx-02 (queue clinical), priority normal"
    )
