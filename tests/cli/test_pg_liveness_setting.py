"""`[audit] pg_liveness` reaches the PostgreSQL log both `serve` and the audit commands open."""

from __future__ import annotations

from typing import Any

import pytest

from caseroute.audit import config as audit_config
from caseroute.cli import main
from caseroute.cli.command import build_parser
from caseroute.cli.serve import _audit_config
from caseroute.domain.errors import AuditUnavailableError

URL = "postgresql://auditor@db.invalid/caseroute"


def test_serve_passes_the_flag_and_the_default_to_its_audit_config() -> None:
    """`serve --audit-pg-liveness 3` gives the sink 3 s; without it, the default 10 s."""
    given = build_parser().parse_args(["serve", "--audit-db", URL, "--audit-pg-liveness", "3"])
    default = build_parser().parse_args(["serve", "--audit-db", URL])
    assert (_audit_config(given).pg_liveness_s, _audit_config(default).pg_liveness_s) == (
        3.0,
        10.0,
    )


def test_an_audit_command_opens_its_log_with_the_variable_s_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """$CASEROUTE_AUDIT_PG_LIVENESS reaches the read-only open of `audit verify`."""
    opened: list[dict[str, Any]] = []

    def open_postgres(_location: object, **kwargs: Any) -> None:
        opened.append(kwargs)
        raise AuditUnavailableError("not opened here")

    monkeypatch.setattr(audit_config, "open_postgres", open_postgres)
    monkeypatch.setenv("CASEROUTE_AUDIT_PG_LIVENESS", "2.5")
    assert main(["audit", "verify", "--audit-db", URL]) == 3  # the log could not be read
    assert opened == [{"readonly": True, "liveness_s": 2.5}]
    assert capsys.readouterr().err == (
        "caseroute: not opened here\n"
        "caseroute: audit verify checked nothing (the log could not be read: this is not a "
        "finding of tampering); exit 3\n"
    )


def test_a_negative_value_is_refused_naming_the_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--audit-pg-liveness -1`: exit 2, one line naming the flag."""
    with pytest.raises(SystemExit) as exited:
        main(["audit", "verify", "--audit-db", URL, "--audit-pg-liveness", "-1"])
    assert exited.value.code == 2
    assert "--audit-pg-liveness" in capsys.readouterr().err
