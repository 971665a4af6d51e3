"""`--audit-db` in libpq's keyword=value form: PostgreSQL, its secrets masked, never a file name.

No test here needs a running PostgreSQL but the last (the ``pg_url`` fixture, which skips
without PostgreSQL's binaries).
"""

from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import (
    LIBPQ_KEYWORDS,
    PostgresLocation,
    _read_pairs,
    parse_audit_db,
    redact_conninfo,
)
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.domain.errors import AuditUnavailableError, ConfigError
from caseroute.testing import TEST_AUDIT_KEY
from tests.audit.test_postgres_config import _run, clean_env
from tests.pg import pg_server, pg_url

__all__ = ["clean_env", "pg_server", "pg_url"]  # fixtures, used by name

SECRET = "s3cr3t-pw"  # noqa: S105 - a made-up password that must never be printed
EXPECTED = (
    "must be a SQLite file path (not a directory), a postgresql:// URL or libpq keyword=value "
    "pairs (host=HOST dbname=DATABASE ...)"
)
KEYWORDS_HINT = (
    "write host=HOST port=PORT dbname=DATABASE user=USER password=PASSWORD, a value that holds "
    "a space, ' or \\ in single quotes with each ' or \\ in it after a \\ (password='a b\\'c')"
)


@pytest.mark.parametrize(
    "conninfo",
    [
        f"host=db password={SECRET} dbname=audit",
        f"  host = db.internal port=5432 user=caseroute password = '{SECRET}' sslmode=require ",
        f"dbname=audit host=db password='{SECRET} with spaces and \\' quote'",
        f"hostaddr=::1 dbname=audit user=u password={SECRET}\\ escaped",
        f"service=caseroute sslpassword={SECRET}",
    ],
)
def test_libpq_keyword_value_pairs_select_postgresql(conninfo: str) -> None:
    """Keyword=value pairs libpq accepts are a PostgreSQL log holding the text as given."""
    conninfo_to_dict(conninfo)  # libpq accepts it
    location = parse_audit_db(conninfo)
    assert PostgresLocation(conninfo) == location
    assert isinstance(location, PostgresLocation)
    assert conninfo == location.conninfo


def test_the_keyword_list_is_the_bundled_libpqs() -> None:
    """LIBPQ_KEYWORDS is what psycopg's libpq accepts: update it when a new libpq adds one."""
    assert {o.keyword.decode() for o in pq.Conninfo.get_defaults()} == LIBPQ_KEYWORDS


_PIECES = st.sampled_from(
    ["host", "password", "dbname", "Port", "x", "a b", "=", "'", "\\", " ", "\t", "\n", "é"]
)


@given(st.lists(_PIECES, max_size=12).map("".join))
def test_pairs_are_read_as_libpq_reads_them(text: str) -> None:
    """Whatever libpq accepts is read to the same values; whatever it refuses is refused."""
    try:
        expected: dict[str, str | int | None] | None = conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        expected = None
    read = _read_pairs(text)
    usable = read.stop is None and all(p.keyword in LIBPQ_KEYWORDS for p in read.pairs)
    assert expected == ({p.keyword: p.value for p in read.pairs} if usable else None)


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        (f"host=db password={SECRET} dbname=audit", "host=db password=*** dbname=audit"),
        (
            f"host = db  password = '{SECRET} \\' x' port=5",
            "host = db  password = *** port=5",
        ),
        (f"password={SECRET}\\ x user=u", "password=*** user=u"),
        # libpq skips blanks after "=": this password is "host=db"
        ("password= host=db", "password= ***"),
        (f"host=db sslpassword={SECRET}", "host=db sslpassword=***"),
        (f"host=db oauth_client_secret={SECRET}", "host=db oauth_client_secret=***"),
        ("host=db password=", "host=db password=***"),
        # a keyword libpq does not know (a misspelling, a capital) may label a password
        (f"host=db pasword={SECRET}", "host=db pasword=***"),
        (f"host=db Password={SECRET}", "host=db Password=***"),
        # libpq cannot read these: everything from the unreadable part on is masked
        (f"host=db password='{SECRET}", "host=db password=***"),
        (f"host=db password={SECRET} more words", "host=db password=*** ***"),
        ("host=db dbname=audit", "host=db dbname=audit"),
        # a value holding "://" does not make the pairs a URL
        (f"host=db options=a://b password={SECRET}", "host=db options=a://b password=***"),
    ],
)
def test_redact_conninfo_masks_keyword_form_secrets(conninfo: str, shown: str) -> None:
    """Only the values of secret (or unknown) keywords are masked, the rest shown as written."""
    assert shown == redact_conninfo(conninfo)


def test_a_keyword_form_location_never_shows_its_password() -> None:
    """str(), repr() mask it; passwords lists it as libpq reads it and as written, to scrub."""
    location = PostgresLocation(f"host=db password='{SECRET} x' dbname=audit")
    assert str(location) == "host=db password=*** dbname=audit"
    assert repr(location) == "PostgresLocation('host=db password=*** dbname=audit')"
    assert conninfo_to_dict(location.conninfo)["password"] in location.passwords
    assert (f"{SECRET} x", f"'{SECRET} x'") == location.passwords


def test_urls_are_still_masked_as_before() -> None:
    """The URL form keeps its masking (a URL's query secret now includes oauth_client_secret)."""
    assert redact_conninfo(f"postgresql://u:{SECRET}@db/a") == "postgresql://u:***@db/a"
    assert (
        redact_conninfo(f"postgresql://u@db/a?oauth_client_secret={SECRET}&x=1")
        == "postgresql://u@db/a?oauth_client_secret=***&x=1"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"host=db password={SECRET} more",
            (
                f"{EXPECTED}, got libpq keyword=value pairs that cannot be parsed (pair 3 has no "
                f"`=`; not shown: they may hold a password); {KEYWORDS_HINT}"
            ),
        ),
        (
            f"host=db password='{SECRET}",
            (
                f"{EXPECTED}, got libpq keyword=value pairs that cannot be parsed (pair 2's quoted "
                f"value is not closed; not shown: they may hold a password); {KEYWORDS_HINT}"
            ),
        ),
        (
            f"host=db pasword={SECRET}",
            (
                f"{EXPECTED}, got libpq keyword=value pairs whose keyword 2 is not one libpq knows "
                "(did you mean `password`?; not shown: it may be part of a password); keywords are "
                "lowercase, as in libpq's documentation (host, port, dbname, user, password, "
                "sslmode, ...)"
            ),
        ),
        (
            f"./host=db password={SECRET}",
            (
                f"{EXPECTED}, got a path holding `host=` (not shown: it may hold a password): for "
                "PostgreSQL write the keyword=value pairs alone, not after a path (host=HOST "
                "dbname=DATABASE ...); for a SQLite file choose a name without `host=`"
            ),
        ),
        (
            f"var/PASSWORD={SECRET}/audit.db",
            (
                f"{EXPECTED}, got a path holding `password=` (not shown: it may hold a password): "
                "for PostgreSQL write the keyword=value pairs alone, not after a path (host=HOST "
                "dbname=DATABASE ...); for a SQLite file choose a name without `password=`"
            ),
        ),
    ],
)
def test_conninfo_like_values_libpq_cannot_use_are_refused_unquoted(
    text: str, message: str
) -> None:
    """Unreadable pairs, an unknown keyword, a path holding pairs: refused, nothing quoted."""
    with pytest.raises(ValueError, match="must be") as refused:
        parse_audit_db(text)
    assert message == str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("var/audit.db", Path("var/audit.db")),
        ("./audit=1.db", Path("audit=1.db")),  # `audit` is no libpq keyword
        ("var/hosts/audit.db", Path("var/hosts/audit.db")),
    ],
)
def test_paths_without_libpq_pairs_are_still_sqlite(text: str, path: Path) -> None:
    """A path is a SQLite file unless it holds a libpq keyword followed by `=`."""
    assert path == parse_audit_db(text)


def test_a_conninfo_never_becomes_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported value opens PostgreSQL (refused here: no key), creating no file at all."""
    monkeypatch.chdir(tmp_path)
    config = AuditConfig.at(parse_audit_db(f"host=db password={SECRET} dbname=audit"))
    with pytest.raises(ConfigError) as refused:
        config.open_sink()
    assert str(refused.value) == (
        "the decision log host=db password=*** dbname=audit is a PostgreSQL database: pass the "
        "masking key with --audit-key-file FILE (every replica the same file) or "
        "CASEROUTE_AUDIT_KEY"
    )
    assert list(tmp_path.iterdir()) == []


def test_config_show_and_serve_mask_a_keyword_form_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config show` prints the pairs with *** for the password; `serve` refuses, no file made."""
    monkeypatch.chdir(tmp_path)
    conninfo = f"host=db password={SECRET} dbname=audit"
    code, out, err = _run(["config", "show", "--audit-db", conninfo], capsys)
    row = next(line for line in out.splitlines() if line.startswith("audit.db "))
    shown = ["audit.db", "flag", "--audit-db", "host=db", "password=***", "dbname=audit"]
    assert (0, "", shown) == (code, err, row.split())
    monkeypatch.setenv("CASEROUTE_AUDIT_DB", conninfo)
    # --port 0: the default port may be held by another server on the host; the refusal is
    # what is tested, not the port.
    code, out, err = _run(["serve", "--port", "0"], capsys)
    assert code == 2
    assert "the decision log host=db password=*** dbname=audit is a PostgreSQL database" in err
    assert SECRET not in out + err
    assert list(tmp_path.iterdir()) == []


def test_audit_commands_name_an_unreachable_keyword_form_log_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify` connects to the pairs' database; the refusal masks the password."""
    monkeypatch.chdir(tmp_path)
    conninfo = f"host=127.0.0.1 port=1 dbname=x connect_timeout=1 password={SECRET}"
    code, out, err = _run(["audit", "verify", "--audit-db", conninfo], capsys)
    assert (code, out) == (3, "")  # 3: verify checked nothing (never 1, which says TAMPERED)
    assert err.startswith(
        "caseroute: cannot open the decision log host=127.0.0.1 port=1 dbname=x "
        "connect_timeout=1 password=***: "
    )
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == []


def test_a_keyword_form_libpq_refuses_is_never_quoted() -> None:
    """Built directly (not through --audit-db), unreadable pairs: libpq's words are withheld."""
    with pytest.raises(AuditUnavailableError) as refused:
        PostgresAuditSink(PostgresLocation(f"host=db password={SECRET} more"))
    assert (
        "cannot open the decision log host=db password=*** ***: libpq cannot parse the "
        "connection string (its message is not shown: it may quote the password); "
        f"{KEYWORDS_HINT}"
    ) == str(refused.value)


def test_a_keyword_form_log_records_and_verifies(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The test database, named by keyword=value pairs, opens in PostgreSQL and verifies."""
    monkeypatch.chdir(tmp_path)
    conninfo = make_conninfo("", **conninfo_to_dict(pg_url))
    assert "password=" in conninfo
    sink = AuditConfig.at(parse_audit_db(conninfo), key_hex=TEST_AUDIT_KEY).open_sink()
    sink.close()
    assert (PostgresAuditSink, []) == (type(sink), list(tmp_path.iterdir()))
    code, out, err = _run(["audit", "verify", "--audit-db", conninfo], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("ok: 0 record(s), every link and blob verified; head 0:")


def test_rotate_key_on_an_unreachable_log_exits_3_having_rotated_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit rotate-key` against a log it cannot reach: 3, the outage code, with one line.

    It exited 1, which the other audit commands keep for a finding (TAMPERED, an edited
    record): a script rotating keys could not tell "the log is down" from a failure of the
    rotation itself. No key file is written when nothing could be read.
    """
    monkeypatch.chdir(tmp_path)
    conninfo = f"host=127.0.0.1 port=1 dbname=x connect_timeout=1 password={SECRET}"
    key = tmp_path / "new.key"
    argv = ["audit", "rotate-key", "--audit-db", conninfo, "--new-key-file", str(key)]
    code, out, err = _run([*argv, "--confirm"], capsys)
    assert (code, out) == (3, "")
    assert err.startswith(
        "caseroute: cannot open the decision log host=127.0.0.1 port=1 dbname=x "
        "connect_timeout=1 password=***: "
    )
    assert err.count("\n") == 1
    assert SECRET not in err
    assert not key.exists()
