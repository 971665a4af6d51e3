"""The masked field list's settings as the command line checks them (serve, config show).

- `caseroute config show` prints the warnings `serve` logs at start about the masked fields.
  Review S43a: a list the flag or variable replaced that masked more was told only in
  `serve`'s start-up log, after the deploy; an operator checking the settings before saw
  nothing.
- Empty items of the masked field list: refused in the file, ignored between commas. Review
  S43a: `""` in `[audit] masked_fields` was dropped without a word, and only the variable's
  handling of empty items was written down.
- `serve` (and `config show`) refuse a masked attribute name over `--max-id-chars`, naming it.
  Review S43a: such a name masks nothing (the server refuses a case sending it), while the
  list replaced the defaults.
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


def test_config_show_names_a_replaced_list_that_masked_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review S43a: only `serve` said so, at start; the settings checked before a deploy did not."""
    config = _write(
        tmp_path / "c.toml",
        '[audit]\nmasked_fields = ["defaults", "case.attributes.insurance_no"]\n',
    )
    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", "defaults")
    assert main(["config", "show", "--config", str(config)]) == 0
    expected = (
        f"caseroute: warning: [audit] masked_fields ({config}:2) sets masked fields too, but "
        "$CASEROUTE_AUDIT_MASKED_FIELDS replaces it (flags come before variables, variables "
        "before the file), so 1 field(s) it masks are stored in clear: "
        "case.attributes.insurance_no; add them to $CASEROUTE_AUDIT_MASKED_FIELDS, or remove "
        "the setting you did not mean\n"
    )
    assert expected == capsys.readouterr().err


def test_config_show_names_the_defaults_a_list_leaves_unmasked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The other start-up warning about the list: printed by `config show` too, to stderr."""
    code = main(["config", "show", "--format", "json", "--audit-masked-fields", "case.region"])
    err = capsys.readouterr().err
    assert (code, err.count("\n"), "replace the defaults and leave 12 of them unmasked" in err) == (
        0,
        1,
        True,
    )


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


@pytest.mark.parametrize(
    ("flags", "origin"),
    [
        (["--max-id-chars", "12"], "--max-id-chars"),
        ([], "$CASEROUTE_MAX_ID_CHARS"),
    ],
)
def test_an_attribute_name_longer_than_callers_may_send_is_refused(
    flags: list[str],
    origin: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Review S43a: a name over `--max-id-chars` was accepted and masked nothing.

    The server refuses a case sending such a name, so the path could never match, while the
    list had replaced the defaults. A name of exactly the limit is accepted.
    """
    monkeypatch.setenv("CASEROUTE_MAX_ID_CHARS", "12")
    at_limit = "case.attributes.insurance_no"  # 12 characters
    over = "case.attributes.insurance_num"  # 13
    argv = ["config", "show", *flags, "--audit-masked-fields"]
    assert main([*argv, f"defaults,{at_limit}"]) == 0
    capsys.readouterr()
    assert main([*argv, f"defaults,{over}"]) == 2
    expected = (
        f"caseroute: --audit-masked-fields: {over} would mask nothing: its attribute name is 13 "
        "characters, and the server refuses a case sending an attribute name longer than 12 "
        f"({origin}); write the name as callers send it, or raise {origin} if they send names "
        "that long\n"
    )
    assert expected == capsys.readouterr().err
