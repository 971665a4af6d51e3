"""Empty items of the masked field list: refused in the file, ignored between commas.

Review S43a: `""` in `[audit] masked_fields` was dropped without a word, and only the
variable's handling of empty items was written down.
"""

import json
import os
from pathlib import Path

import pytest

from caseroute.cli.command import main

KEY = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CASEROUTE_* variable of the test runner's; the audit key from its variable."""
    for name in [n for n in os.environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASEROUTE_AUDIT_KEY", KEY)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_an_empty_item_in_the_file_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review S43a: `""` in `[audit] masked_fields` was dropped without a word.

    A TOML array takes a trailing comma without an item, so `""` was written as one: a path
    left blank or deleted from its quotes. The variable's and the flag's empty items (a
    trailing or doubled comma) are still ignored, as documented.
    """
    config = _write(
        tmp_path / "c.toml", '[audit]\nmasked_fields = [\n  "defaults",\n  "",\n  " ",\n]\n'
    )
    with pytest.raises(SystemExit) as exited:
        main(["config", "show", "--config", str(config)])
    expected = (
        f"caseroute config show: error: {config}:2: [audit] masked_fields has empty items "
        "(2, 3 of 3); they mask nothing: remove them, or write the paths they were meant to "
        "be (e.g. case.attributes.NAME)\n"
    )
    assert (exited.value.code, capsys.readouterr().err) == (2, expected)


def test_empty_items_of_the_variable_and_the_flag_are_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trailing or doubled comma writes no path: the list is what is between the commas."""

    def shown(*flags: str) -> object:
        assert main(["config", "show", "--format", "json", *flags]) == 0
        rows = json.loads(capsys.readouterr().out)["settings"]
        return next(r["value"] for r in rows if r["setting"] == "audit.masked_fields")

    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", "defaults,,case.region,")
    by_env = shown()
    by_flag = shown("--audit-masked-fields", "defaults,")
    assert [by_env, by_flag] == [["defaults", "case.region"], ["defaults"]]
