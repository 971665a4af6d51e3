from pathlib import Path

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.rules.source import parse_yaml, read_yaml, to_data


def test_nodes_remember_lines_and_yaml_12_scalars() -> None:
    """Values keep 1-based lines; `no` stays a string and timestamps stay text."""
    source = parse_yaml("a: 1\nb:\n  - x: no\n    at: 2026-11-21T10:00:00Z\n", "f.yaml")
    item = source.root.value["b"].value[0]
    assert item.value["x"].line == 3
    assert to_data(source.root) == {"a": 1, "b": [{"x": "no", "at": "2026-11-21T10:00:00Z"}]}


def test_duplicate_keys_are_errors_with_line() -> None:
    """PyYAML would keep the last duplicate silently; we report it."""
    with pytest.raises(RulesetError) as exc:
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    (problem,) = exc.value.problems
    assert (problem.code, problem.line) == ("yaml.duplicate_key", 3)


def test_syntax_error_has_location() -> None:
    """Malformed YAML is one problem at its line."""
    with pytest.raises(RulesetError) as exc:
        parse_yaml("a: [1\nb: 2\n", "f.yaml")
    assert [(p.code, p.location) for p in exc.value.problems] == [("yaml.syntax", "f.yaml:2:2")]


def test_sha256_is_of_the_exact_bytes(tmp_path: Path) -> None:
    """The content hash is the file's sha256, so anyone can recompute it."""
    import hashlib

    path = tmp_path / "r.yaml"
    path.write_bytes(b"a: 1  # comment\n")
    assert read_yaml(path).sha256 == hashlib.sha256(b"a: 1  # comment\n").hexdigest()


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    """A missing file is reported, not a traceback."""
    with pytest.raises(RulesetError) as exc:
        read_yaml(tmp_path / "missing.yaml")
    assert [(p.code, p.location, p.message) for p in exc.value.problems] == [
        (
            "source.unreadable",
            str(tmp_path / "missing.yaml"),
            "cannot read file: No such file or directory; check the path",
        )
    ]
