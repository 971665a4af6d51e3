"""`serve` (and `config show`) refuse a masked attribute name over `--max-id-chars`, naming it.

Review S43a: such a name masks nothing (the server refuses a case sending it), while the list
replaced the defaults.
"""

import os

import pytest

from caseroute.cli.command import main

KEY = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CASEROUTE_* variable of the test runner's; the audit key from its variable."""
    for name in [n for n in os.environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASEROUTE_AUDIT_KEY", KEY)


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
