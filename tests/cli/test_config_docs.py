"""The example file, docs/operations.md and the README agree with the settings table."""

import re
import tomllib
from pathlib import Path

from caseroute.cli.settings import FILE_TABLES, SETTINGS, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "caseroute.toml"
OPERATIONS = REPO / "docs" / "operations.md"
README = REPO / "README.md"


def test_the_example_file_loads_and_holds_every_setting_at_its_default() -> None:
    """examples/caseroute.toml: every key of the file is there, set to its default or `# key =`."""
    loaded = load_config(EXAMPLE)
    text = EXAMPLE.read_text(encoding="utf-8")
    in_file = [s for s in SETTINGS if s.in_file]
    set_here = dict(loaded.values.items())
    commented = {
        s.dest
        for s in in_file
        if s.dest not in set_here
        and re.search(rf"^# {s.key} = ", _table_text(text, s.table), re.MULTILINE)
    }
    assert (sorted(set_here) + sorted(commented), set(set_here) & commented) == (
        sorted(s.dest for s in in_file if s.default is not None)
        + sorted(s.dest for s in in_file if s.default is None),
        set(),
    )
    assert set_here == {s.dest: s.default for s in in_file if s.default is not None}
    assert list(tomllib.loads(text)) == list(FILE_TABLES)


def _table_text(text: str, table: str) -> str:
    """The lines of ``[table]`` in a TOML text (up to the next header)."""
    start = text.index(f"\n[{table}]")
    end = text.find("\n[", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_operations_table_documents_exactly_the_settings() -> None:
    """docs/operations.md "Every setting": one row per setting: TOML key, variable and flag."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("### Every setting") :]
    row = (
        r"^\| (`\[(\w+)\] (\w+)`|— \(not in the file\)) \| `(CASEROUTE_\w+)` \| "
        r"(`(--[\w-]+)`|—) \|"
    )
    rows = re.findall(row, section, re.MULTILINE)
    documented = [
        (f"{table}.{key}" if table else None, env, flag or None)
        for _cell, table, key, env, _flagcell, flag in rows
    ]
    assert documented == [(s.name if s.in_file else None, s.env, s.flag) for s in SETTINGS]


def test_the_readme_points_to_the_full_table_and_lists_config_show() -> None:
    """The README's serve row links the Configuration table, and `config show` has a row."""
    text = README.read_text(encoding="utf-8")
    serve = next(line for line in text.splitlines() if line.startswith("| `caseroute serve "))
    show = [line for line in text.splitlines() if line.startswith("| `caseroute config show")]
    assert (
        "(docs/operations.md#configuration)" in serve,
        "--config F" in serve,
        "CASEROUTE_ENGINE" in serve,
        "CASEROUTE_TLS_CERT" in serve,
        len(show),
    ) == (True, True, True, True, 1)
