"""`caseroute config show` prints the warnings `serve` logs at start about the masked fields.

Review S43a: a list the flag or variable replaced that masked more was told only in `serve`'s
start-up log, after the deploy; an operator checking the settings before saw nothing.
"""

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
