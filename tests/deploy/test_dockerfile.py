"""The Dockerfile and .dockerignore: the properties docs/deploy.md promises, read from the files."""

import fnmatch
import re
import subprocess
import tomllib

from caseroute.testing import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


STAGES: list[list[tuple[str, str]]] = []
for _instruction in instructions(DOCKERFILE):
    if _instruction[0] == "FROM":
        STAGES.append([])
    if STAGES:
        STAGES[-1].append(_instruction)
BUILD, RUNTIME = STAGES
ENV = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for i, a in RUNTIME if i == "ENV")))


def test_the_image_has_a_build_stage_and_a_runtime_stage_without_a_compiler() -> None:
    """Two stages: gcc is installed in the build stage only, and the runtime copies its venv."""
    assert [stage[0][1] for stage in STAGES] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert any("gcc=" in a for i, a in BUILD if i == "RUN")
    assert [a for i, a in RUNTIME if i == "RUN" and "apt-get" in a] == []
    assert ("COPY", "--from=build /opt/caseroute /opt/caseroute") in RUNTIME


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    """USER is uid:gid in numbers (runAsNonRoot can check it), not 0, and the user created."""
    users = [a for i, a in RUNTIME if i == "USER"]
    assert users == ["10001:10001"]
    run = " ".join(a for i, a in RUNTIME if i == "RUN")
    assert "useradd --system --uid 10001 --gid 10001" in run
    assert "groupadd --system --gid 10001" in run


def test_every_apt_package_is_pinned_to_a_version() -> None:
    """Each package an `apt-get install` names carries `=version`."""
    packages = []
    run = " ".join(a for i, a in instructions(DOCKERFILE) if i == "RUN")
    for command in re.findall(r"apt-get install ([^&;]+)", run):
        packages += [word for word in command.split() if not word.startswith("-")]
    assert packages == ["gcc=4:12.2.0-3", "libc6-dev=2.36-9+deb12u14"]


def test_dependencies_install_from_the_lock_before_the_source_is_copied() -> None:
    """The hash-checked lock install is a layer of its own, made before src/ is copied."""
    steps = [f"{i} {a}" for i, a in BUILD]
    lock_copy = steps.index("COPY requirements.lock ./")
    lock_install = steps.index("RUN pip install --require-hashes --no-deps -r requirements.lock")
    source_copy = steps.index("COPY src ./src")
    assert lock_copy < lock_install < source_copy
    assert "RUN pip install --no-deps . && pip check" in steps[source_copy:]


def test_the_docker_build_stage_has_everything_the_wheel_includes() -> None:
    """Each force-included path is copied into the build stage before `pip install .` runs."""
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    copied = {part.rstrip("/") for i, a in BUILD if i == "COPY" for part in a.split()[:-1]}
    needed = {path.split("/")[0] for path in wheel["force-include"]} | {"src", "pyproject.toml"}
    assert needed - copied == set()


def test_dockerfile_copies_paths_that_exist() -> None:
    """Every path the Dockerfile COPYs from the build context is in the repository."""
    sources = [
        part
        for i, a in instructions(DOCKERFILE)
        if i == "COPY" and "--from=" not in a
        for part in a.split()[:-1]
        if not part.startswith("--")
    ]
    assert [s for s in sources if not (REPO_ROOT / s).exists()] == []
    assert "requirements.lock" in sources


def test_rulesets_are_read_only_for_the_service_user() -> None:
    """Rulesets are copied owned by root (no --chown); the user owns only the two data dirs."""
    copies = [a for i, a in RUNTIME if i == "COPY"]
    assert "rulesets ./rulesets" in copies
    assert [a for a in copies if "--chown" in a or "--chmod" in a] == []
    run = " ".join(a for i, a in RUNTIME if i == "RUN")
    owned = re.findall(r"install -d -o 10001 -g 10001 -m 0700 ([^&]+)", run)
    assert [dirs.split() for dirs in owned] == [["/var/lib/caseroute", "/etc/caseroute/key"]]


def test_the_audit_key_is_outside_the_decision_log_volume() -> None:
    """The key file's directory is its own volume, not the decision log's."""
    db_dir = ENV["CASEROUTE_AUDIT_DB"].rsplit("/", 1)[0]
    key_dir = ENV["CASEROUTE_AUDIT_KEY_FILE"].rsplit("/", 1)[0]
    assert (db_dir, key_dir) == ("/var/lib/caseroute", "/etc/caseroute/key")
    assert not key_dir.startswith(db_dir + "/")
    assert [a for i, a in RUNTIME if i == "VOLUME"] == [f'["{db_dir}", "{key_dir}"]']


def test_the_image_carries_oci_labels() -> None:
    """Title, description, licence, version, revision, created and documentation are labelled."""
    labels = " ".join(a for i, a in RUNTIME if i == "LABEL")
    keys = re.findall(r"org\.opencontainers\.image\.(\w+)=", labels)
    assert keys == [
        "title", "description", "licenses", "version", "revision", "created", "documentation"
    ]  # fmt: skip
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    assert f"VERSION={PYPROJECT['project']['version']}" in DOCKERFILE


def test_the_healthcheck_is_the_light_probe_not_the_cli() -> None:
    """HEALTHCHECK runs the grpc-only script the image copies, every 30 s, on CASEROUTE_PORT."""
    checks = [a for i, a in RUNTIME if i == "HEALTHCHECK"]
    expected = (
        '--interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", '
        '"/opt/caseroute/healthcheck.py"]'
    )
    assert checks == [expected]
    assert ("COPY", "deploy/docker/healthcheck.py /opt/caseroute/healthcheck.py") in RUNTIME
    assert ENV["CASEROUTE_PORT"] == "50051"
    assert [a for i, a in RUNTIME if i == "EXPOSE"] == ["50051"]


def test_the_image_serves_by_default() -> None:
    """`caseroute serve` is the entrypoint and command, bound to all interfaces."""
    assert ("ENTRYPOINT", '["caseroute"]') in RUNTIME
    assert ("CMD", '["serve"]') in RUNTIME
    assert ENV["CASEROUTE_HOST"] == "0.0.0.0"  # noqa: S104 - inside a container, on purpose


def ignore_patterns() -> list[str]:
    """The .dockerignore patterns (no negations are used)."""
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert [p for p in patterns if p.startswith("!")] == []
    return [p.rstrip("/") for p in patterns]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the context: a pattern matches it or a parent."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(
                prefix.rsplit("/", 1)[-1], bare
            ):
                return True
    return False


def test_dockerignore_keeps_environments_logs_keys_and_git_out() -> None:
    """.venv, var/, decision logs, keys, token files, TLS files and .git stay out of builds."""
    patterns = ignore_patterns()
    leaks = [
        path
        for path in (
            ".venv/bin/python",
            "var/audit.db",
            "var/audit.db.key",
            "audit.db",
            "audit.db-wal",
            "prod.key",
            "admin-tokens",
            "tls/server.pem",
            ".git/HEAD",
            "src/caseroute/__pycache__/cli.cpython-311.pyc",
        )
        if not ignored(path, patterns)
    ]
    assert leaks == []


def test_dockerignore_keeps_every_file_the_image_copies() -> None:
    """No tracked file under a path the Dockerfile COPYs is excluded from the context."""
    sources = [
        part
        for i, a in instructions(DOCKERFILE)
        if i == "COPY" and "--from=" not in a
        for part in a.split()[:-1]
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--", *sources],  # noqa: S607 - git from PATH, fixed arguments
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    patterns = ignore_patterns()
    assert len(tracked) > 20
    assert [path for path in tracked if ignored(path, patterns)] == []
