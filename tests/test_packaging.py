import re
import subprocess
import sys

from caseroute.testing import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def test_dockerfile_copies_paths_that_exist() -> None:
    """Every path the Dockerfile COPYs from the build context is in the repository."""
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            sources += parts[:-1]
    assert sources
    missing = [s for s in sources if not (REPO_ROOT / s).exists()]
    assert missing == []


def test_dockerfile_runs_as_non_root_and_its_command_works() -> None:
    """The image runs as a non-root user, and its default command succeeds here."""
    assert re.search(r"^USER caseroute$", DOCKERFILE, re.MULTILINE)
    cmd = re.search(r'^CMD \["rules", "check", "/app/(.+)"\]$', DOCKERFILE, re.MULTILINE)
    assert cmd is not None
    done = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", "rules", "check", str(REPO_ROOT / cmd.group(1))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_readme_commands_work() -> None:
    """The README's demo decision runs as written, and its test command is .ci/run."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert "\nbash .ci/run\n" in readme
    demo = re.search(r"\.venv/bin/caseroute (decide [^\n]+)", readme)
    assert demo is not None
    argv = demo.group(1).split()
    done = subprocess.run(
        [sys.executable, "-m", "caseroute.cli", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("CASE-1001: ASSIGN to nurse-tx-02")
