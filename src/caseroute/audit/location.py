"""Where a decision log lives: ``--audit-db`` read as a SQLite path or a PostgreSQL conninfo.

A PostgreSQL log is named by a ``postgresql://`` URL or by libpq's keyword=value pairs; either
may hold a password, which every message caseroute writes shows as ``***``
(``redact_conninfo``). Values that would silently become a SQLite file they were not meant to
be (another scheme, a path holding ``password=``) are refused, never quoted.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
"""URL schemes that select the PostgreSQL decision log (libpq's two spellings)."""
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
AUDIT_DB_EXPECTED = (
    "a SQLite file path (not a directory), a postgresql:// URL or libpq keyword=value pairs "
    "(host=HOST dbname=DATABASE ...)"
)
LIBPQ_KEYWORDS = frozenset(
    {
        "application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
        "fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host",
        "hostaddr", "keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval",
        "krbsrvname", "load_balance_hosts", "max_protocol_version", "min_protocol_version",
        "oauth_client_id", "oauth_client_secret", "oauth_issuer", "oauth_scope", "options",
        "passfile", "password", "port", "replication", "require_auth", "requirepeer",
        "scram_client_key", "scram_server_key", "service", "ssl_max_protocol_version",
        "ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression", "sslcrl",
        "sslcrldir", "sslkey", "sslkeylogfile", "sslmode", "sslnegotiation", "sslpassword",
        "sslrootcert", "sslsni", "target_session_attrs", "tcp_user_timeout", "user",
    }
)  # fmt: skip
"""The connection keywords of libpq 18 (psycopg-binary's; ``pq.Conninfo.get_defaults()``).

libpq matches them case-sensitively and refuses any other. Used to read ``--audit-db`` values
without psycopg installed, and to keep a password out of file names: a path holding one of
them before ``=`` is refused.
"""
_LIBPQ_SPACE = " \t\n\v\f\r"  # C isspace(), which libpq's parser uses; never Unicode spaces
_KEYWORDS_START_RE = re.compile(r"^[ \t\n\v\f\r]*[A-Za-z_][A-Za-z0-9_]*[ \t\n\v\f\r]*=")
_PATH_KEYWORD_RE = re.compile(
    r"(?:^|[\s/])(" + "|".join(sorted(LIBPQ_KEYWORDS, key=len, reverse=True)) + r")\s*=",
    re.IGNORECASE,
)
URL_HINT = (
    "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with a password's reserved "
    "characters percent-encoded (/ as %2F, @ as %40, ? as %3F)"
)
"""How to write a PostgreSQL URL, for messages that cannot quote the one given."""
KEYWORDS_HINT = (
    "write host=HOST port=PORT dbname=DATABASE user=USER password=PASSWORD, a value that holds "
    "a space, ' or \\ in single quotes with each ' or \\ in it after a \\ (password='a b\\'c')"
)
"""How to write libpq keyword=value pairs, for messages that cannot quote the ones given."""


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    """A PostgreSQL decision log's connection string (``--audit-db postgresql://...``).

    Either of libpq's forms: a URL, or keyword=value pairs (``host=db dbname=audit``). It may
    hold a password: ``str()`` and ``repr()`` show it as ``***``, and so does every message
    caseroute writes; only ``conninfo`` (given to the driver) holds it.

    Attributes:
        conninfo: The connection string as given: ``postgresql://user:pass@host:port/db?opts``
            or ``host=HOST port=PORT dbname=DB user=USER password=PASS ...``.
    """

    conninfo: str

    def __str__(self) -> str:
        return redact_conninfo(self.conninfo)

    def __repr__(self) -> str:
        return f"PostgresLocation({redact_conninfo(self.conninfo)!r})"

    @property
    def is_url(self) -> bool:
        """Whether ``conninfo`` is a URL (libpq reads any other text as keyword=value pairs)."""
        return _is_postgres_url(self.conninfo)

    @property
    def passwords(self) -> tuple[str, ...]:
        """Every password the string holds, to scrub from driver messages (empty: none).

        A URL's: the userinfo's and the query's (``?password=``, ``sslpassword``, ...), each
        as written and percent-decoded: libpq uses the query's when both are given. Pairs':
        each secret (or unknown) keyword's value as libpq reads it and as written, and any
        part libpq could not read.
        """
        if not self.is_url:
            return _keyword_secrets(self.conninfo)
        _, userinfo, _, _, _, query = _split_url(self.conninfo)
        found: list[str] = []
        # Every reading's: the driver may connect with a shorter one than is printed (R30b).
        for reading in (*_userinfo_readings(self.conninfo), userinfo):
            if reading is not None and ":" in reading and reading.split(":", 1)[1]:
                secret = reading.split(":", 1)[1]
                found += [secret, unquote(secret)]
        for key, eq, value in (part.partition("=") for part in query.split("&")):
            if eq and value and _is_secret_key(key):
                found += [value, unquote(value)]
        return tuple(dict.fromkeys(found))


AuditLocation = Path | PostgresLocation
"""Where a decision log lives: a SQLite file, or a PostgreSQL database."""


def _split_url(url: str) -> tuple[str, str, str, str, str, str]:
    """A libpq URL's parts: ``scheme://``, userinfo, ``@``, host and path, ``?``, query.

    Joined they give the URL back; each is "" when absent (all but the host: not a URL).

    The userinfo is taken as long as any reader could take it, so a password is masked
    whatever reads the URL: libpq ends it at the first ``@`` unless a ``/`` comes first (a
    ``?`` inside a password is the password's: ``u:pa?ss@db`` connects with ``pa?ss``), and
    Python's URL parsers at the last ``@`` before the query. A URL those two do not read alike
    (or that neither can read) has no host anyone can name, so its userinfo runs to its last
    ``@`` if a ``:`` comes before it: ``u:p?w34/x@db``, which libpq refuses, is masked whole
    (review R30b F7). The query is what follows the first ``?`` after the userinfo.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", "", url, "", ""
    ends = []
    first = next((i for i, c in enumerate(rest) if c in "@/"), -1)
    if first >= 0 and rest[first] == "@":
        ends.append(first)  # libpq's
    last = rest.partition("?")[0].rfind("@")
    if last >= 0:
        ends.append(last)
    if not _readable(url):
        greedy = rest.rfind("@")
        if ":" in rest[: max(greedy, 0)]:
            ends.append(greedy)
    end = max(ends, default=-1)
    userinfo, at, after = (rest[:end], "@", rest[end + 1 :]) if end >= 0 else ("", "", rest)
    hostpath, question, query = after.partition("?")
    return f"{scheme}{sep}", userinfo, at, hostpath, question, query


def _userinfo_readings(url: str) -> tuple[str | None, str | None]:
    """The userinfo as libpq reads it and as Python's ``urlsplit`` does (None: no userinfo).

    libpq ends it at the first ``@`` unless a ``/`` comes first; ``urlsplit`` at the last
    ``@`` of the part before the first ``/``, ``?`` or ``#``. They differ when a password
    holds a raw ``@`` or ``?``: one of them then connects with, or prints, another password.
    """
    rest = url.partition("://")[2]
    first = next((i for i, c in enumerate(rest) if c in "@/"), -1)
    libpq = rest[:first] if first >= 0 and rest[first] == "@" else None
    netloc = rest[: next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))]
    userinfo, at, _ = netloc.rpartition("@")
    return libpq, (userinfo if at else None)


def _readable(url: str) -> bool:
    """Whether libpq and Python read one userinfo (or none) from ``url``, and its port parses.

    Only then does the URL name one host: ``parse_audit_db`` refuses any other, and
    ``redact_url`` masks such a URL's userinfo to its last ``@``.
    """
    try:
        _ = urlsplit(url).port  # a port that is not a number raises here
    except ValueError:
        return False
    return len(set(_userinfo_readings(url))) == 1


def _is_secret_key(key: str) -> bool:
    """Whether a libpq keyword (percent-decoded, any case) names a secret.

    ``password``, ``sslpassword``, ``oauth_client_secret`` and the SCRAM keys
    (``scram_client_key``, ``scram_server_key``).
    """
    name = unquote(key).lower()
    return "password" in name or "secret" in name or name.startswith("scram_")


def _is_postgres_url(text: str) -> bool:
    """Whether libpq reads ``text`` as a URL: it starts ``postgresql://`` or ``postgres://``."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


@dataclass(frozen=True, slots=True)
class _Pair:
    """One keyword=value pair as libpq reads it, with where its value is written."""

    keyword: str
    value: str  # unquoted and unescaped: what libpq uses
    start: int  # the value as written is text[start:end] (quotes and backslashes included)
    end: int


@dataclass(frozen=True, slots=True)
class _Pairs:
    """keyword=value pairs read as libpq reads them, up to any part it cannot read."""

    pairs: tuple[_Pair, ...]
    stop: int | None = None
    """Where the unreadable part starts (None: all read): its keyword, or its value."""
    problem: str = ""
    """What is wrong there, quoting nothing of the text (it may be part of a password)."""


def _read_pairs(text: str) -> _Pairs:
    """Read libpq keyword=value pairs: ``conninfo_parse`` of libpq's fe-connect.c, in Python.

    Blanks separate pairs and may surround ``=``; a value is a run of non-blanks, or
    single-quoted; in both a backslash takes the next character as it is. Blanks after ``=``
    are skipped before the value, so ``password= host=db`` sets the password ``host=db``.
    Keywords are not checked here.
    """
    pairs: list[_Pair] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _LIBPQ_SPACE:
            i += 1
            continue
        key_start = i
        while i < n and text[i] != "=" and text[i] not in _LIBPQ_SPACE:
            i += 1
        keyword = text[key_start:i]
        while i < n and text[i] in _LIBPQ_SPACE:
            i += 1
        if i >= n or text[i] != "=":
            return _Pairs(tuple(pairs), key_start, f"pair {len(pairs) + 1} has no `=`")
        i += 1
        while i < n and text[i] in _LIBPQ_SPACE:
            i += 1
        start, chars = i, []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    problem = f"pair {len(pairs) + 1}'s quoted value is not closed"
                    return _Pairs(tuple(pairs), start, problem)
                if text[i] == "\\":
                    chars.append(text[i + 1 : i + 2])
                    i += 2
                    continue
                if text[i] == "'":
                    i += 1
                    break
                chars.append(text[i])
                i += 1
        else:
            while i < n and text[i] not in _LIBPQ_SPACE:
                if text[i] == "\\":
                    chars.append(text[i + 1 : i + 2])
                    i += 2
                else:
                    chars.append(text[i])
                    i += 1
        i = min(i, n)
        pairs.append(_Pair(keyword, "".join(chars), start, i))
    return _Pairs(tuple(pairs))


def _hidden(pair: _Pair) -> bool:
    """Whether a pair's value is masked: a secret's, or an unknown keyword's (a misspelling)."""
    return _is_secret_key(pair.keyword) or pair.keyword not in LIBPQ_KEYWORDS


def _redact_pairs(text: str) -> str:
    """keyword=value pairs as written, each hidden value and any unreadable rest as ``***``."""
    read = _read_pairs(text)
    parts, shown_to = [], 0
    for pair in read.pairs:
        if _hidden(pair):
            parts += [text[shown_to : pair.start], "***"]
            shown_to = pair.end
    if read.stop is not None:
        parts += [text[shown_to : read.stop], "***"]
        shown_to = len(text)
    parts.append(text[shown_to:])
    return "".join(parts)


def _keyword_secrets(text: str) -> tuple[str, ...]:
    """The hidden values of keyword=value pairs (as read and as written), and any unread rest."""
    read = _read_pairs(text)
    found: list[str] = []
    for pair in read.pairs:
        if _hidden(pair):
            found += [pair.value, text[pair.start : pair.end]]
    if read.stop is not None:
        found.append(text[read.stop :].strip(_LIBPQ_SPACE))
    return tuple(dict.fromkeys(f for f in found if f))


def redact_conninfo(conninfo: str) -> str:
    """A libpq connection string with every password (every secret) replaced by ``***``.

    A ``postgresql://`` URL as ``redact_url`` masks it; any other text as libpq reads it,
    keyword=value pairs: shown as written, but for the values of secret keywords
    (``password``, ``sslpassword``, ...) and of keywords libpq does not know (``pasword=``,
    ``Password=``: a misspelling may label a password), and anything from a part libpq cannot
    read on (``password=a b``: the rest of an unquoted password with a space).
    """
    if _is_postgres_url(conninfo):
        return redact_url(conninfo)
    return _redact_pairs(conninfo)


def redact_url(url: str) -> str:
    """``url`` with every password replaced by ``***``: in the userinfo or the query.

    The userinfo is read as ``_split_url`` reads it (a password may hold ``/``, pasted raw from
    base64, or ``?``, which libpq keeps in the password); ``?password=...`` (and
    ``sslpassword``, a keyword percent-encoded or not) is libpq syntax too, its value running
    to the next ``&`` (libpq does not read ``#`` as a fragment). Each was printed once (reviews
    R29 F6, R29b F2/F3; a ``?`` in the password at stop 30; a URL libpq refuses, R30b F7).
    No reading has to succeed: a URL no parser reads is masked to its last ``@``.
    """
    scheme, userinfo, at, hostpath, question, query = _split_url(url)
    if not scheme:
        return url
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    params = [
        f"{key}=***" if eq and _is_secret_key(key) else f"{key}{eq}{value}"
        for key, eq, value in (part.partition("=") for part in query.split("&"))
    ]
    return f"{scheme}{userinfo}{at}{hostpath}{question}{'&'.join(params)}"


def parse_audit_db(text: str) -> AuditLocation:
    """Where ``--audit-db`` (``[audit] db``, ``$CASEROUTE_AUDIT_DB``) says the log lives.

    A ``postgresql://`` or ``postgres://`` URL selects PostgreSQL, and so do libpq's
    keyword=value pairs (text that starts ``keyword=``: ``host=db dbname=audit``), which must
    read as libpq reads them, with keywords it knows. Any other value with a scheme
    (``mysql://x``, ``postgresql:db`` without ``//``, ``sqlite:///x``) is refused, since taken
    as a path it would silently create a SQLite file under a ``postgresql:`` directory; so is a
    path holding a libpq keyword and ``=`` (``./host=db password=x``), which would put a
    password in a file name. Anything else is a SQLite file path (``./name:with-colon`` for
    such a file).

    Raises:
        ValueError: Saying what to write instead; never quoting a password, nor any part of
            a value that may be one.
    """
    if "\x00" in text or not text.strip():
        raise ValueError(f"must be {AUDIT_DB_EXPECTED}, got {text!r}")
    if _KEYWORDS_START_RE.match(text):
        return _parse_pairs(text)
    scheme = _SCHEME_RE.match(text)
    if scheme is None and "://" not in text:
        return _parse_path(text)
    name = scheme.group(1).lower() if scheme else ""
    if name in POSTGRES_SCHEMES and text[len(name) + 1 :].startswith("//"):
        # A raw "@" in the password: libpq reads another password and host than Python does.
        if not _readable(text):
            # Not quoted, even redacted: what cannot be parsed cannot be redacted with certainty.
            raise ValueError(
                f"must be {AUDIT_DB_EXPECTED}, got a {name}:// URL that cannot be parsed (not "
                f"shown: it may hold a password); {URL_HINT}"
            ) from None
        # URL schemes are case-insensitive (RFC 3986) but libpq only knows them lower-case:
        # `POSTGRESQL://...` passed every check here, then failed to connect.
        return PostgresLocation(name + text[len(name) :])
    if name in POSTGRES_SCHEMES:
        hint = f"write {name}://USER:PASSWORD@HOST:PORT/DATABASE (with //)"
    elif name:
        hint = (
            f"`{name}:` is not a supported decision log; use postgresql://... or a SQLite file "
            f"path (write ./{name}:... for a file whose name holds a colon)"
        )
    else:
        hint = "a URL must start with postgresql://; a file path has no ://"
    raise ValueError(f"must be {AUDIT_DB_EXPECTED}, got {_shown(name)}: {hint}")


def _parse_pairs(text: str) -> PostgresLocation:
    """Read libpq keyword=value pairs as a PostgreSQL log, if libpq can read and use them.

    Raises:
        ValueError: If libpq could not read them, or a keyword is not libpq's (quoting no
            keyword or value: a password with a blank, unquoted, reads as more pairs).
    """
    read = _read_pairs(text)
    if read.stop is not None:
        raise ValueError(
            f"must be {AUDIT_DB_EXPECTED}, got libpq keyword=value pairs that cannot be parsed "
            f"({read.problem}; not shown: they may hold a password); {KEYWORDS_HINT}"
        )
    for number, pair in enumerate(read.pairs, 1):
        if pair.keyword not in LIBPQ_KEYWORDS:
            close = difflib.get_close_matches(pair.keyword.lower(), sorted(LIBPQ_KEYWORDS), 1)
            guess = f"did you mean `{close[0]}`?; " if close else ""
            raise ValueError(
                f"must be {AUDIT_DB_EXPECTED}, got libpq keyword=value pairs whose keyword "
                f"{number} is not one libpq knows ({guess}not shown: it may be part of a "
                "password); keywords are lowercase, as in libpq's documentation (host, port, "
                "dbname, user, password, sslmode, ...)"
            )
    return PostgresLocation(text)


def _parse_path(text: str) -> Path:
    """A SQLite file path, unless it holds a libpq keyword and ``=`` (a pasted conninfo).

    Raises:
        ValueError: Naming the keyword found (one of libpq's), never what follows it.
    """
    found = _PATH_KEYWORD_RE.search(text)
    if found is not None:
        keyword = found.group(1).lower()
        raise ValueError(
            f"must be {AUDIT_DB_EXPECTED}, got a path holding `{keyword}=` (not shown: it may "
            "hold a password): for PostgreSQL write the keyword=value pairs alone, not after a "
            "path (host=HOST dbname=DATABASE ...); for a SQLite file choose a name without "
            f"`{keyword}=`"
        )
    return Path(text)


def _shown(scheme: str) -> str:
    """A refused value as an error may quote it: a URL never beyond its scheme (passwords)."""
    if scheme:
        return f"a `{scheme}:` URL"
    return "a URL-like value"
