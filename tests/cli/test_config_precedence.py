"""Settings come from flags, then CASEROUTE_* variables, then the --config file, then defaults."""

from pathlib import Path

import pytest

from caseroute.cli.command import build_parser
from caseroute.cli.serve import server_config
from caseroute.cli.settings import SOURCES_ATTR, Source, replaced_values
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.engine.case_rules import EngineKind


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# One representative setting per value type: (dest, flag, env, table, key, flag value,
# env value, TOML value, parsed flag, parsed env, parsed file, default).
TYPES = [
    ("port", "--port", "CASEROUTE_PORT", "server", "port", "1001", "1002", "1003",
     1001, 1002, 1003, 50051),
    ("grace", "--grace", "CASEROUTE_GRACE", "server", "grace", "1.5", "2.5", "3.5",
     1.5, 2.5, 3.5, 10.0),
    ("log_level", "--log-level", "CASEROUTE_LOG_LEVEL", "logs", "level", "DEBUG", "warning",
     '"error"', "debug", "warning", "error", "info"),
    ("host", "--host", "CASEROUTE_HOST", "server", "host", "10.0.0.1", "10.0.0.2",
     '"10.0.0.3"', "10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1"),
    ("audit_db", "--audit-db", "CASEROUTE_AUDIT_DB", "audit", "db", "flag.db", "env.db",
     '"file.db"', Path("flag.db"), Path("env.db"), Path("file.db"), Path("var/audit.db")),
    ("admin_allow", "--admin-allow", "CASEROUTE_ADMIN_ALLOW", "access", "admin_allow", "f1",
     "e1, e2", '["t1", "t2"]', ("f1",), ("e1", "e2"), ("t1", "t2"), ()),
    ("audit_masked_fields", "--audit-masked-fields", "CASEROUTE_AUDIT_MASKED_FIELDS", "audit",
     "masked_fields", "case.a", "case.b,case.c", '["case.d"]', ("case.a",),
     ("case.b", "case.c"), ("case.d",), None),
]  # fmt: skip


@pytest.mark.parametrize("row", TYPES, ids=[r[0] for r in TYPES])
def test_flag_beats_env_beats_file_beats_default(
    row: tuple[object, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layer wins over the ones below it, and the source names the layer that won."""
    dest, flag, env, table, key, flag_text, env_text, toml_text, *parsed = row
    by_flag, by_env, by_file, default = parsed
    config = _write(tmp_path / "caseroute.toml", f"# comment\n[{table}]\n{key} = {toml_text}\n")
    monkeypatch.delenv(str(env), raising=False)

    def resolved(*argv: str) -> tuple[object, str]:
        args = build_parser().parse_args(["serve", *argv])
        return getattr(args, str(dest)), str(getattr(args, SOURCES_ATTR)[dest])

    plain = resolved()
    from_file = resolved("--config", str(config))
    monkeypatch.setenv(str(env), str(env_text))
    from_env = resolved("--config", str(config))
    from_flag = resolved("--config", str(config), str(flag), str(flag_text))
    if default is None:  # the masked fields' default is the long built-in list
        plain = (None, plain[1])
    assert [plain, from_file, from_env, from_flag] == [
        (default, "default"),
        (by_file, f"file {config}:3"),
        (by_env, f"env {env}"),
        (by_flag, f"flag {flag}"),
    ]


def test_a_blank_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CASEROUTE_PORT=' ' leaves the file's value in force (as if the variable were unset)."""
    config = _write(tmp_path / "c.toml", "[server]\nport = 7\n")
    monkeypatch.setenv("CASEROUTE_PORT", " ")
    args = build_parser().parse_args(["serve", "--config", str(config)])
    assert (args.port, getattr(args, SOURCES_ATTR)["port"]) == (7, Source("file", f"{config}:2"))


def test_the_config_variable_names_the_file_and_the_flag_beats_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CASEROUTE_CONFIG is read like --config; --config given as well wins."""
    first = _write(tmp_path / "first.toml", "[server]\nworkers = 3\n")
    second = _write(tmp_path / "second.toml", "[server]\nworkers = 5\n")
    monkeypatch.setenv("CASEROUTE_CONFIG", str(first))
    by_env = build_parser().parse_args(["serve"])
    by_flag = build_parser().parse_args(["serve", "--config", str(second)])
    assert [(by_env.workers, str(by_env.setting_sources["config"])),
            (by_flag.workers, str(by_flag.setting_sources["config"]))] == [
        (3, "env CASEROUTE_CONFIG"),
        (5, "flag --config"),
    ]  # fmt: skip


def test_serve_config_reaches_the_server_settings(tmp_path: Path) -> None:
    """A file setting host, port, workers, limits, audit, TLS, metrics, reload and logs."""
    config = _write(
        tmp_path / "caseroute.toml",
        """
[server]
rulesets = "rulesets"
host = "0.0.0.0"
port = 6000
workers = 2
threads = 4
max_message_mb = 8
max_response_mb = 2
grace = 2.5
max_now_skew = 300
engine = "python"
default_ruleset = "patient-enquiries"

[roster_cache]
agents = 10
mb = 1

[limits]
max_agents = 7
max_sla_clocks = 3

[audit]
db = "logs/audit.db"
key_file = "keys/audit.key"
masked_fields = ["case.attributes.mrn"]

[tls]
cert = "s.pem"
key = "s.key"
client_ca = "ca.pem"

[metrics]
port = 9464

[reload]
interval = 0

[access]
admin_token_file = "admin.tokens"
caller_allow = ["flow.example"]

[logs]
format = "json"
level = "warning"
""",
    )
    config_ = server_config(build_parser().parse_args(["serve", "--config", str(config)]))
    assert (
        config_.rulesets,
        config_.host,
        config_.port,
        config_.workers,
        config_.threads,
        config_.max_message_mb,
        config_.max_response_mb,
        config_.grace_s,
        config_.max_now_skew_s,
        config_.engine,
        config_.default_ruleset,
        config_.roster_cache_agents,
        config_.roster_cache_mb,
        config_.limits.max_agents,
        config_.limits.max_sla_clocks,
        config_.limits.max_batch_cases,
        config_.audit.db,
        config_.audit.key_file,
        config_.audit.masked_fields,
        config_.tls is not None and (config_.tls.cert, config_.tls.key, config_.tls.client_ca),
        config_.metrics_port,
        config_.reload_interval_s,
        config_.auth.admin_token_file,
        config_.auth.caller_allow,
        config_.log_format,
        config_.log_level,
    ) == (
        Path("rulesets"),
        "0.0.0.0",  # noqa: S104 - the value the file sets, not a bind
        6000,
        2,
        4,
        8,
        2,
        2.5,
        300.0,
        EngineKind.PYTHON,
        "patient-enquiries",
        10,
        1,
        7,
        3,
        DEFAULT_LIMITS.max_batch_cases,
        Path("logs/audit.db"),
        Path("keys/audit.key"),
        ("case.attributes.mrn",),
        (Path("s.pem"), Path("s.key"), Path("ca.pem")),
        9464,
        0.0,
        Path("admin.tokens"),
        ("flow.example",),
        "json",
        "warning",
    )


def test_the_audit_key_comes_only_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """$CASEROUTE_AUDIT_KEY reaches AuditConfig.key_hex; without it the key file is used."""
    monkeypatch.delenv("CASEROUTE_AUDIT_KEY", raising=False)
    without = server_config(build_parser().parse_args(["serve"])).audit.key_hex
    monkeypatch.setenv("CASEROUTE_AUDIT_KEY", "00" * 16)
    with_key = server_config(build_parser().parse_args(["serve"])).audit.key_hex
    assert (without, with_key) == (None, "00" * 16)


def test_the_masked_fields_flag_given_twice_adds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review S43a: the second `--audit-masked-fields` replaced the first, silently.

    `--audit-masked-fields case.attributes.* --audit-masked-fields case.region` kept only
    `case.region`, so every attribute was stored in clear; each flag's list now adds up, as
    the operator wrote them, and still replaces the variable's and the file's lists.
    """
    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", "case.attributes.mrn")
    argv = ["serve", "--audit-masked-fields", "case.attributes.*,case.tier"]
    args = build_parser().parse_args([*argv, "--audit-masked-fields", "case.region"])
    assert (args.audit_masked_fields, str(getattr(args, SOURCES_ATTR)["audit_masked_fields"])) == (
        ("case.attributes.*", "case.tier", "case.region"),
        "flag --audit-masked-fields",
    )


def test_a_replaced_masked_field_list_is_named_with_what_it_no_longer_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review S43a: a forgotten variable replaced the file's longer list, and nothing said so.

    The start-up warnings name each replaced list by its origin and the fields it masks that
    the list in force does not; a replaced list masking nothing more is not mentioned.
    """
    config = _write(
        tmp_path / "c.toml",
        '[audit]\nmasked_fields = ["defaults", "case.attributes.insurance_no"]\n',
    )
    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", "defaults,case.region")

    def warnings(*flags: str) -> tuple[str, ...]:
        args = build_parser().parse_args(["serve", "--config", str(config), *flags])
        return server_config(args).audit.masking_warnings()

    by_env = warnings()
    by_flag = warnings("--audit-masked-fields", "case.attributes.*,case.region")
    file_replaced = (
        f"[audit] masked_fields ({config}:2) sets masked fields too, but "
        "$CASEROUTE_AUDIT_MASKED_FIELDS replaces it (flags come before variables, "
        "variables before the file), so 1 field(s) it masks are stored in clear: "
        "case.attributes.insurance_no; add them to $CASEROUTE_AUDIT_MASKED_FIELDS, or "
        "remove the setting you did not mean"
    )
    # Every attribute and the region: nothing either replaced list masks is lost.
    assert [by_env, by_flag] == [(file_replaced,), ()]
    env_replaced = (
        "$CASEROUTE_AUDIT_MASKED_FIELDS sets masked fields too, but --audit-masked-fields "
        "replaces it (flags come before variables, variables before the file), so 1 field(s) "
        "it masks are stored in clear: case.region; add them to --audit-masked-fields, or "
        "remove the setting you did not mean"
    )
    assert warnings("--audit-masked-fields", "case.attributes.*") == (env_replaced,)


def test_a_replaced_masked_field_list_that_is_invalid_or_gone_warns_of_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replaced list that would have been refused, or a file that no longer loads, is passed.

    Neither can be what the operator meant to mask: the list in force is checked on its own,
    and the warning is about fields a valid replaced list masks; nothing is raised for them.
    """
    config = _write(tmp_path / "c.toml", '[audit]\nmasked_fields = ["case.nonexistent"]\n')
    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", "case.regon")
    args = build_parser().parse_args(
        ["serve", "--config", str(config), "--audit-masked-fields", "defaults"]
    )
    audit = server_config(args).audit
    assert audit.masking_warnings() == ()
    other = _write(tmp_path / "d.toml", "[server]\nworkers = 1\n")  # no masked list to replace
    monkeypatch.delenv("CASEROUTE_AUDIT_MASKED_FIELDS")
    args = build_parser().parse_args(
        ["serve", "--config", str(other), "--audit-masked-fields", "defaults"]
    )
    assert server_config(args).audit.masking_warnings() == ()


def test_a_replaced_file_that_no_longer_loads_is_skipped(tmp_path: Path) -> None:
    """The file loaded when the settings were resolved, then changed: its old value is gone."""
    config = _write(
        tmp_path / "c.toml", '[audit]\nmasked_fields = ["defaults", "case.attributes.mrn"]\n'
    )
    args = build_parser().parse_args(
        ["serve", "--config", str(config), "--audit-masked-fields", "defaults"]
    )
    assert [tuple(v) for _, v in replaced_values(args, "audit_masked_fields", {})] == [
        ("defaults", "case.attributes.mrn")
    ]
    config.write_text("[audit\n")  # no longer TOML
    assert replaced_values(args, "audit_masked_fields", {}) == []
