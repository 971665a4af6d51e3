"""buf lint and the breaking-change check against the newest release image (protos/releases)."""

import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from ruamel.yaml import YAML

from caseroute.testing import REPO_ROOT

BUF = REPO_ROOT / ".ci" / "buf" / "node_modules" / ".bin" / "buf"
RELEASES = REPO_ROOT / "protos" / "releases"
# The breaking rules buf.yaml may ignore only while the newest release image lacks the option.
OPTION_RULES = {
    "FILE_SAME_CSHARP_NAMESPACE": "csharp_namespace",
    "FILE_SAME_GO_PACKAGE": "go_package",
    "FILE_SAME_JAVA_MULTIPLE_FILES": "java_multiple_files",
    "FILE_SAME_JAVA_OUTER_CLASSNAME": "java_outer_classname",
    "FILE_SAME_JAVA_PACKAGE": "java_package",
    "FILE_SAME_PHP_NAMESPACE": "php_namespace",
    "FILE_SAME_RUBY_PACKAGE": "ruby_package",
}

pytestmark = pytest.mark.skipif(
    not BUF.exists(), reason="buf is not installed: run `npm ci --prefix .ci/buf` (.ci/run does)"
)


def newest_release() -> Path:
    """The newest image in protos/releases (caseroute-v1-X.Y.Z.binpb), by version number."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.stem.removeprefix("caseroute-v1-").split("."))

    return max(RELEASES.glob("caseroute-v1-*.binpb"), key=version)


def buf(*args: str, cwd: Path = REPO_ROOT) -> tuple[int, str]:
    """Run the pinned buf CLI; (exit status, stdout + stderr)."""
    done = subprocess.run(
        [str(BUF), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def copy_module(tmp_path: Path) -> Path:
    """A copy of buf.yaml and protos/ to edit."""
    shutil.copy(REPO_ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO_ROOT / "protos", tmp_path / "protos")
    return tmp_path


def test_the_protos_pass_buf_lint() -> None:
    """STANDARD lint, with buf.yaml's per-file exceptions, finds nothing."""
    assert buf("lint") == (0, "")


def test_the_protos_keep_the_newest_release_compatible() -> None:
    """Nothing in protos/ breaks the newest release image (`buf breaking`)."""
    assert buf("breaking", "--against", str(newest_release())) == (0, "")


def test_a_renumbered_field_fails_the_breaking_check(tmp_path: Path) -> None:
    """Moving DecideRequest.request_id from 1 to 9 is reported as a deleted field."""
    root = copy_module(tmp_path)
    routing = root / "protos" / "caseroute" / "v1" / "routing.proto"
    text = routing.read_text()
    line = text[: text.index("message DecideRequest {")].count("\n") + 1  # buf names the message
    routing.write_text(text.replace("  string request_id = 1;", "  string request_id = 9;", 1))
    expected = (
        f"protos/caseroute/v1/routing.proto:{line}:1:Previously present field "
        '"1" with name "request_id" on message "DecideRequest" was deleted.\n'
    )
    assert buf("breaking", "--against", str(newest_release()), cwd=root) == (100, expected)


def test_the_lint_exceptions_do_not_cover_a_new_file(tmp_path: Path) -> None:
    """A new file with a service lacking the Service suffix is still reported."""
    root = copy_module(tmp_path)
    routing = (root / "protos" / "caseroute" / "v1" / "routing.proto").read_text()
    options = [line for line in routing.splitlines() if line.startswith("option ")]
    header = ['syntax = "proto3";', "package caseroute.v1;", *options, "// An example."]
    (root / "protos" / "caseroute" / "v1" / "extra.proto").write_text(
        "\n".join([*header, "service Extra {}", ""])
    )
    expected = (
        f"protos/caseroute/v1/extra.proto:{len(header) + 1}:9:Service name "
        '"Extra" should be suffixed with "Service".\n'
    )
    assert buf("lint", cwd=root) == (100, expected)


def test_option_rules_are_ignored_only_while_the_newest_release_lacks_the_options() -> None:
    """buf.yaml ignores a FILE_SAME_<option> rule exactly when the release image lacks it."""
    image = descriptor_pb2.FileDescriptorSet.FromString(newest_release().read_bytes())
    published = [f for f in image.file if f.package == "caseroute.v1"]
    lacking = {
        rule
        for rule, option in OPTION_RULES.items()
        if any(option not in {d.name for d, _ in f.options.ListFields()} for f in published)
    }
    config = YAML(typ="safe").load((REPO_ROOT / "buf.yaml").read_text())
    ignored = set(config["breaking"].get("ignore_only", {})) & set(OPTION_RULES)
    assert ([f.name for f in published], ignored) == (
        ["caseroute/v1/admin.proto", "caseroute/v1/routing.proto"],
        lacking,
    )
