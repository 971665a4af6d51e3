"""The checked-in ISO 3166-2 parents table: generated from pycountry, and what it says."""

import functools
import importlib.metadata
import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from caseroute.domain.iso_parents import ISO_PARENTS, PYCOUNTRY_VERSION
from caseroute.testing import REPO_ROOT

SCRIPT = REPO_ROOT / ".ci" / "gen_iso_parents.py"


@functools.cache
def _generator() -> ModuleType:
    """.ci/gen_iso_parents.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("gen_iso_parents", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_matches_pycountry() -> None:
    """`gen_iso_parents.py --check` passes on both committed tables (CI's drift check)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    expected = (
        "src/caseroute/domain/iso_parents.py matches pycountry\n"
        "src/caseroute/domain/iso_codes.py matches pycountry\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")


def test_the_table_names_the_pycountry_release_it_came_from() -> None:
    """The generated header and constant record the pycountry version."""
    source = (REPO_ROOT / "src" / "caseroute" / "domain" / "iso_parents.py").read_text()
    version = importlib.metadata.version("pycountry")
    assert (version, True) == (PYCOUNTRY_VERSION, f"pycountry {version}" in source)


@pytest.mark.parametrize(
    ("code", "parent"),
    [
        ("GB-KEN", "GB-ENG"),
        ("GB-LND", "GB-ENG"),
        ("GB-MAN", "GB-ENG"),
        ("GB-EDH", "GB-SCT"),
        ("GB-CRF", "GB-WLS"),
        ("GB-BFS", "GB-NIR"),
    ],
)
def test_uk_councils_lie_within_their_nation(code: str, parent: str) -> None:
    """Each UK council area's parent is its nation."""
    assert parent == ISO_PARENTS[code]


def test_every_parent_is_a_full_code_of_the_same_country() -> None:
    """Parents are written in full (``GB-ENG``, never ``ENG``) and never cross a border."""
    crossing = {
        code: parent
        for code, parent in ISO_PARENTS.items()
        if "-" not in parent or parent.split("-")[0] != code.split("-")[0]
    }
    nothing: dict[str, str] = {}
    assert nothing == crossing


def test_a_parent_written_as_a_bare_suffix_is_normalised() -> None:
    """A release writing ``parent: ENG`` gives ``GB-ENG``, as one writing it in full does."""
    entries = [
        {"code": "GB-ENG", "name": "England", "type": "Country"},
        {"code": "GB-KEN", "name": "Kent", "type": "County", "parent": "ENG"},
        {"code": "GB-LND", "name": "London", "type": "City", "parent": "GB-ENG"},
    ]
    expected = {"GB-KEN": "GB-ENG", "GB-LND": "GB-ENG"}
    assert expected == _generator().parents(entries)


def test_a_parent_naming_no_subdivision_stops_the_generator() -> None:
    """A dangling parent is an error, never a table entry pointing nowhere."""
    entries = [{"code": "GB-KEN", "name": "Kent", "type": "County", "parent": "XYZ"}]
    with pytest.raises(SystemExit, match="names no other subdivision"):
        _generator().parents(entries)


def test_every_code_of_the_parents_table_is_in_the_codes_table() -> None:
    """Both generated tables agree: each subdivision and parent is a listed subdivision."""
    from caseroute.domain.iso_codes import PYCOUNTRY_VERSION as CODES_VERSION
    from caseroute.domain.iso_codes import SUBDIVISIONS

    listed = {
        f"{country}-{suffix}"
        for country, lines in SUBDIVISIONS.items()
        for line in lines
        for suffix in line.split()
    }
    assert CODES_VERSION == PYCOUNTRY_VERSION
    assert {*ISO_PARENTS, *ISO_PARENTS.values()} <= listed
    assert {"GB-ENG", "GB-KEN", "US-TX", "US-PR", "FR-75C"} <= listed
    assert {"GB", "US", "AQ"} <= SUBDIVISIONS.keys()
    assert "UK" not in SUBDIVISIONS


def test_the_codes_table_wraps_its_lines_as_ruff_formats_them() -> None:
    """Suffixes are split into lines within the limit, and joined back they are all there."""
    gen = _generator()
    words = [f"S{n:02d}" for n in range(60)]
    lines = gen._wrapped(words)
    assert all(len(line) <= gen.LINE for line in lines)
    assert " ".join(lines).split() == words
    assert len(lines) == 3
