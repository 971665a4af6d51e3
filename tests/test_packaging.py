import re
import subprocess
import sys
import tomllib

from caseroute.testing import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_the_docker_build_stage_has_everything_the_wheel_includes() -> None:
    """Each force-included path is copied into the build stage before `pip install .` runs."""
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    build_stage = DOCKERFILE.split("\nFROM ")[1].split("pip install")[0]  # [0]: comments
    copied = {
        part.rstrip("/")
        for line in build_stage.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    }
    needed = {path.split("/")[0] for path in wheel["force-include"]} | {"src", "pyproject.toml"}
    assert needed - copied == set()


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


def test_dockerfile_serves_with_a_grpc_healthcheck() -> None:
    """Non-root, `caseroute serve` as the command, and a HEALTHCHECK using `caseroute health`."""
    assert re.search(r"^USER caseroute$", DOCKERFILE, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["caseroute"\]$', DOCKERFILE, re.MULTILINE)
    assert re.search(r'^CMD \["serve"\]$', DOCKERFILE, re.MULTILINE)
    health = re.search(r'CMD \["caseroute", "health", "--server", "127.0.0.1:(\d+)"\]', DOCKERFILE)
    assert health is not None
    assert f"CASEROUTE_PORT={health.group(1)}" in DOCKERFILE
    assert f"EXPOSE {health.group(1)}" in DOCKERFILE


def test_dockerfile_keeps_the_decision_log_on_a_volume() -> None:
    """The audit database path is a volume the non-root user owns, not the image layer."""
    db = re.search(r"CASEROUTE_AUDIT_DB=(\S+)/audit\.db", DOCKERFILE)
    assert db is not None
    assert f'VOLUME ["{db.group(1)}"]' in DOCKERFILE
    assert f"install -d -o caseroute -m 0700 {db.group(1)}" in DOCKERFILE


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
