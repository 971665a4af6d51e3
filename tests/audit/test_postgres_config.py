"""`--audit-db`: a postgresql:// URL selects PostgreSQL, a path SQLite, anything else is refused."""

import json
import os
from pathlib import Path

import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation, parse_audit_db, redact_url
from caseroute.cli.command import main
from caseroute.domain.errors import AuditUnavailableError, ConfigError

SECRET = "s3cr3t-pw"  # noqa: S105 - a made-up password that must never be printed


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CASEROUTE_* variable from the developer's shell reaches the command."""
    for name in [n for n in os.environ if n.startswith("CASEROUTE_")]:
        monkeypatch.delenv(name)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stopped:
        code = int(str(stopped.code))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://caseroute:{SECRET}@db.internal:5432/audit",
        f"postgres://caseroute:{SECRET}@db.internal/audit?sslmode=require",
        f"POSTGRESQL://caseroute:{SECRET}@db.internal/audit",
    ],
)
def test_a_postgres_url_selects_postgresql(url: str) -> None:
    """Both of libpq's schemes, any case, give a PostgresLocation holding the URL libpq reads.

    The scheme is written lower-case (libpq reads an upper-case one as keyword=value pairs and
    fails to connect); the rest is kept as given.
    """
    from psycopg.conninfo import conninfo_to_dict

    scheme, rest = url.split("://", 1)
    location = parse_audit_db(url)
    assert PostgresLocation(f"{scheme.lower()}://{rest}") == location
    assert conninfo_to_dict(location.conninfo)["host"] == "db.internal"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("var/audit.db", Path("var/audit.db")),
        ("/srv/caseroute/audit.db", Path("/srv/caseroute/audit.db")),
        ("./postgresql:audit.db", Path("postgresql:audit.db")),
    ],
)
def test_a_path_selects_sqlite(text: str, path: Path) -> None:
    """A path is a SQLite file; ./ lets a file name hold a colon."""
    assert path == parse_audit_db(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"mysql://root:{SECRET}@db/audit",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a `mysql:` URL: "
                "`mysql:` is not a supported decision log; use postgresql://... or a SQLite file "
                "path (write ./mysql:... for a file whose name holds a colon)"
            ),
        ),
        (
            f"postgresql:caseroute:{SECRET}@db/audit",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a `postgresql:` URL: write "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (with //)"
            ),
        ),
        (
            "sqlite:///var/audit.db",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a `sqlite:` URL: "
                "`sqlite:` is not a supported decision log; use postgresql://... or a SQLite file "
                "path (write ./sqlite:... for a file whose name holds a colon)"
            ),
        ),
        (
            f"var/postgresql://caseroute:{SECRET}@db/audit",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a URL-like value: a URL "
                "must start with postgresql://; a file path has no ://"
            ),
        ),
        (
            f"postgresql://caseroute:{SECRET}@db:port/audit",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a postgresql:// URL that cannot be parsed (not shown: it may hold a "
                "password); write postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with a "
                "password's reserved characters percent-encoded (/ as %2F, @ as %40, ? as %3F)"
            ),
        ),
        (
            # a base64 password pasted raw: its "/" ended the authority, and it was printed
            "postgresql://caseroute:Ab3/xY9+Qz==@db.internal:5432/audit",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), "
                "got a postgresql:// URL that cannot be parsed (not shown: it may hold a "
                "password); write postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with a "
                "password's reserved characters percent-encoded (/ as %2F, @ as %40, ? as %3F)"
            ),
        ),
        (
            "  ",
            (
                "must be a SQLite file path (not a directory), a postgresql:// URL or libpq "
                "keyword=value pairs (host=HOST dbname=DATABASE ...), got '  '"
            ),
        ),
    ],
)
def test_anything_else_is_refused_without_its_password(text: str, message: str) -> None:
    """Another scheme, a postgresql: without //, a URL-like value: refused, saying what to write."""
    with pytest.raises(ValueError, match="must be") as refused:
        parse_audit_db(text)
    assert message == str(refused.value)


def test_the_password_never_shows_in_str_or_repr() -> None:
    """str() and repr() of a location mask the password; the driver still gets the whole URL."""
    location = PostgresLocation(f"postgresql://caseroute:{SECRET}@db:5432/audit")
    assert str(location) == "postgresql://caseroute:***@db:5432/audit"
    assert repr(location) == "PostgresLocation('postgresql://caseroute:***@db:5432/audit')"
    assert location.passwords == (SECRET,)
    assert f"postgresql://caseroute:{SECRET}@db:5432/audit" == location.conninfo


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://db/audit", "postgresql://db/audit"),
        ("postgresql://caseroute@db/audit", "postgresql://caseroute@db/audit"),
        ("postgresql://u:p:q@db", "postgresql://u:***@db"),
        ("not a url", "not a url"),
        # libpq's query form (review R29 F6: printed in every "cannot open" message)
        (
            "postgresql://u@db/audit?password=p&sslmode=require",
            "postgresql://u@db/audit?password=***&sslmode=require",
        ),
        (
            "postgresql://u@db?sslmode=require&PASSWORD=p",
            "postgresql://u@db?sslmode=require&PASSWORD=***",
        ),
        # libpq reads "#" as part of the value, and a percent-encoded keyword (review R29b F3)
        ("postgresql://u@db/a?sslpassword=k#x", "postgresql://u@db/a?sslpassword=***"),
        ("postgresql://u@db/a?pass%77ord=k%23x&x=1", "postgresql://u@db/a?pass%77ord=***&x=1"),
        # a "/" in the userinfo's password (review R29b F2)
        ("postgresql://u:Ab3/xY9+Qz==@db/audit", "postgresql://u:***@db/audit"),
        # a "?" in it: libpq connects with "pa?ss" (printed in full before stop 30)
        ("postgresql://u:pa?ss@db/audit", "postgresql://u:***@db/audit"),
        (
            "postgresql://u:pa?ss@db/audit?sslmode=require&password=q",
            "postgresql://u:***@db/audit?sslmode=require&password=***",
        ),
        # libpq's password ends at the first "@" (host "b@db"): masked with the rest
        ("postgresql://u:a@b@db/audit", "postgresql://u:***@db/audit"),
        # an "@" only in the query is no userinfo
        (
            "postgresql://db/audit?application_name=a@b",
            "postgresql://db/audit?application_name=a@b",
        ),
        ("postgresql://@db/audit", "postgresql://@db/audit"),
        # a URL libpq refuses ("?" then "/" in the password): masked to its last "@" (R30b F7)
        ("postgresql://u:p?w34/x@db", "postgresql://u:***@db"),
        ("postgresql://u:p?x=1/y@db", "postgresql://u:***@db"),
        ("postgresql://u:p?w34/x@db/a?password=z", "postgresql://u:***@db/a?password=***"),
        # ... but read apart with no ":" before its last "@" there is no password to mask
        ("postgresql://u@x@db/audit", "postgresql://u@x@db/audit"),
        # ... while a URL both parsers read alike keeps the host before an "@" in its query
        (
            "postgresql://db:5432/audit?application_name=a@b",
            "postgresql://db:5432/audit?application_name=a@b",
        ),
        (
            "postgresql://u:p@db/a?application_name=x@y",
            "postgresql://u:***@db/a?application_name=x@y",
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """Only a password is masked; a URL without one, or no URL, is shown as it is."""
    assert shown == redact_url(url)


def test_a_url_without_a_password_has_none_to_scrub() -> None:
    """No password: nothing to scrub from driver messages; one that will not parse still is."""
    assert PostgresLocation("postgresql://db/audit").passwords == ()
    assert PostgresLocation("postgresql://u:p@[::1/x").passwords == ("p",)


def test_a_password_holding_a_question_mark_is_scrubbed_whole() -> None:
    """The driver reads ``u:s3cr?et9@db`` as password ``s3cr?et9``; only "s3cr" was scrubbed."""
    from psycopg.conninfo import conninfo_to_dict

    url = "postgresql://u:s3cr?et9@db/audit"
    assert conninfo_to_dict(url)["password"] == "s3cr?et9"  # noqa: S105 - what libpq uses
    assert PostgresLocation(url).passwords == ("s3cr?et9",)
    with pytest.raises(ValueError, match="cannot be parsed") as refused:
        parse_audit_db(url)  # Python's parser reads port "s3cr": refused, never quoted
    assert "s3cr" not in str(refused.value)
    assert "? as %3F" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "libpq_password"),
    [("postgresql://u:s3cr@et9@localhost:1/x", "s3cr"), ("postgresql://u:pw41@@host/x", "pw41")],
)
def test_a_raw_at_sign_in_the_password_is_refused_and_both_readings_scrubbed(
    url: str, libpq_password: str
) -> None:
    """Libpq connects with the part before the first "@" and reads the rest as the host.

    Review R30b: the URL was accepted (Python reads the whole password) and the driver's
    "failed to resolve host 'et9@localhost'" printed the password's tail.
    """
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(url)["password"] == libpq_password
    assert libpq_password in PostgresLocation(url).passwords
    with pytest.raises(ValueError, match="cannot be parsed") as refused:
        parse_audit_db(url)
    assert libpq_password not in str(refused.value)


def test_a_url_libpq_cannot_parse_never_quotes_its_password() -> None:
    """The driver's parse error quotes the password's tail ("w34/x@db"): not shown (R30b F7)."""
    from caseroute.audit.postgres import PostgresAuditSink

    location = PostgresLocation("postgresql://u:p?w34/x@db")
    assert location.passwords == ("p?w34/x",)
    with pytest.raises(AuditUnavailableError) as refused:
        PostgresAuditSink(location)
    assert str(refused.value) == (
        "cannot open the decision log postgresql://u:***@db: libpq cannot parse the URL (its "
        "message is not shown: it may quote the password); write "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with a password's reserved characters "
        "percent-encoded (/ as %2F, @ as %40, ? as %3F)"
    )


def test_every_password_in_the_url_is_scrubbed() -> None:
    """The query's (libpq uses it when both are given) and the userinfo's, raw and decoded."""
    location = PostgresLocation("postgresql://u:wrong%21@db/audit?password=right%23x")
    assert location.passwords == ("wrong%21", "wrong!", "right%23x", "right#x")
    assert "wrong" not in str(location)
    assert "right" not in str(location)


def test_a_postgres_log_needs_a_key_file_or_the_key() -> None:
    """No `<db>.key` beside a database: without --audit-key-file or the key, a clear refusal."""
    config = AuditConfig.at(PostgresLocation(f"postgresql://u:{SECRET}@127.0.0.1:1/x"))
    with pytest.raises(ConfigError) as refused:
        config.open_sink()
    with pytest.raises(ConfigError, match=r"u:\*\*\*@127.0.0.1:1/x is not a SQLite file"):
        config.open_store()
    assert str(refused.value) == (
        "the decision log postgresql://u:***@127.0.0.1:1/x is a PostgreSQL database: pass the "
        "masking key with --audit-key-file FILE (every replica the same file) or "
        "CASEROUTE_AUDIT_KEY"
    )


def test_config_show_selects_postgresql_and_hides_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Config show (text and JSON) prints the URL with *** for the password."""
    url = f"postgresql://caseroute:{SECRET}@db.internal:5432/audit"
    code, out, err = _run(["config", "show", "--audit-db", url], capsys)
    assert (code, err) == (0, "")
    row = next(line for line in out.splitlines() if line.startswith("audit.db "))
    assert row.split() == [
        "audit.db",
        "flag",
        "--audit-db",
        "postgresql://caseroute:***@db.internal:5432/audit",
    ]
    code, out, err = _run(["config", "show", "--format", "json", "--audit-db", url], capsys)
    settings = {s["setting"]: s["value"] for s in json.loads(out)["settings"]}
    assert (code, settings["audit.db"]) == (0, "postgresql://caseroute:***@db.internal:5432/audit")
    assert SECRET not in out


@pytest.mark.parametrize("origin", ["flag", "env"])
def test_serve_refuses_another_scheme_without_creating_a_file(
    origin: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve --audit-db mysql://...` (or the variable) exits 2 naming the setting; no file made."""
    monkeypatch.chdir(tmp_path)
    value = f"mysql://root:{SECRET}@db/audit"
    argv = ["serve", "--audit-db", value] if origin == "flag" else ["serve"]
    if origin == "env":
        monkeypatch.setenv("CASEROUTE_AUDIT_DB", value)
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert (
        "argument --audit-db: must be a SQLite file path (not a directory), a postgresql:// "
        "URL or libpq keyword=value pairs (host=HOST dbname=DATABASE ...), got a `mysql:` "
        "URL: `mysql:` is not a supported decision log; use postgresql://... or a SQLite file "
        "path (write ./mysql:... for a file whose name holds a colon) (set by the flag or "
        "$CASEROUTE_AUDIT_DB)"
    ) in err
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == []
