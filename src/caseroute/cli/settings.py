"""The settings table: each setting's TOML key, variable, flag, type and default, and resolution.

One row per setting (``SETTINGS``); argparse flags, environment variables, the TOML file
(``--config`` / ``$CASEROUTE_CONFIG``) and ``caseroute config show`` all read the same rows, so a
setting cannot exist in one place and not in another. Precedence: flag > environment > file >
default. A blank variable counts as unset. Every bad value stops the command with exit 2 and one
line that names the flag, the variable or ``file:line`` and what is expected; never a traceback.

Relative paths are relative to the working directory wherever they come from (the file too).
Defaults are not checked for existence (a command that needs the file says so when it reads it);
a path someone *gave* is checked at start.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from caseroute.audit.config import DEFAULT_AUDIT_DB, KEY_BYTES
from caseroute.audit.location import AUDIT_DB_EXPECTED, parse_audit_db
from caseroute.audit.masking import DEFAULT_MASKED_PATHS
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits, limit_flag
from caseroute.logs import LOG_FORMATS, LOG_LEVELS
from caseroute.rules.schema import NAME_RE

CONFIG_ENV = "CASEROUTE_CONFIG"
SOURCES_ATTR = "setting_sources"
"""The parsed namespace's attribute mapping each setting's ``dest`` to its ``Source``."""

MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (a real one is a few KiB)."""


class SettingError(Exception):
    """A setting's value is unusable; the message is one line saying where and what to write."""


# ---------------------------------------------------------------------------------------------
# Kinds: how a value is read from text (a flag or a variable) and from TOML, and shown.
# Each raises ValueError with the part of the message after the setting's name:
# "must be a whole number of at least 1, got '0'".


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _wrong_type(expected: str, value: object) -> ValueError:
    return ValueError(f"must be {expected}, got {value!r} ({_toml_type(value)})")


@dataclass(frozen=True, slots=True)
class Kind:
    """A value type: its text parser, its TOML type check, and how ``config show`` writes it.

    Attributes:
        expected: What a value must be, as the error messages say it.
        toml: The TOML type a file must use (``an integer``, ``a string``...).
        parse: From text (a flag or a variable) to the value; raises ValueError.
        check: From a TOML value of the right type to the value; raises ValueError.
    """

    expected: str
    toml: str
    parse: Callable[[str], Any]
    check: Callable[[Any], Any]

    def from_toml(self, value: object) -> Any:
        """The value a TOML file gave, type-checked then range-checked like text.

        Raises:
            ValueError: Saying what was expected and what was found.
        """
        if self.toml == "an integer":
            ok = type(value) is int
        elif self.toml == "a number":
            ok = type(value) in (int, float)
        elif self.toml == "a string":
            ok = type(value) is str
        else:  # an array of strings
            ok = isinstance(value, list) and all(type(i) is str for i in value)
        if not ok:
            raise _wrong_type(self.toml, value)
        return self.check(value)


def whole(minimum: int, maximum: int | None = None, what: str = "") -> Kind:
    """A whole number within bounds (``what`` replaces the generic description)."""
    expected = what or (
        f"a whole number of at least {minimum}"
        if maximum is None
        else f"a whole number {minimum}-{maximum}"
    )

    def check(value: int) -> int:
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be {expected}, got {value!r}")
        return value

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be {expected}, got {text!r}") from None
        try:
            return check(value)
        except ValueError:
            raise ValueError(f"must be {expected}, got {text!r}") from None

    return Kind(expected, "an integer", parse, check)


def seconds(minimum: float = 0.0) -> Kind:
    """A finite number of seconds of at least ``minimum``."""
    expected = f"a number of seconds of at least {minimum:g}"

    def check(value: float) -> float:
        if not (value >= minimum and math.isfinite(value)):
            raise ValueError(f"must be {expected}, got {value!r}")
        return float(value)

    def parse(text: str) -> float:
        try:
            return check(float(text))
        except ValueError:
            raise ValueError(f"must be {expected}, got {text!r}") from None

    return Kind(expected, "a number", parse, check)


def choice(values: Sequence[str]) -> Kind:
    """One of ``values``, in any case."""
    expected = f"one of {', '.join(values)}"

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"must be {expected}, got {text!r}")
        return value

    return Kind(expected, "a string", parse, parse)


def pattern(regex: re.Pattern[str], expected: str) -> Kind:
    """A string matching ``regex`` (whole)."""

    def parse(text: str) -> str:
        if not regex.fullmatch(text):
            raise ValueError(f"must be {expected}, got {text!r}")
        return text

    return Kind(expected, "a string", parse, parse)


def path(check: str = "") -> Kind:
    """A filesystem path; ``check``: ``file`` (an existing file), ``exists``, ``not_dir``."""
    expected = {
        "file": "an existing file",
        "exists": "an existing file or directory",
        "not_dir": "a file path (not a directory)",
        "": "a path",
    }[check]

    def parse(text: str) -> Path:
        value = Path(text)
        if "\x00" in text or not text.strip():
            raise ValueError(f"must be {expected}, got {text!r}")
        if check == "file" and not value.is_file():
            why = "a directory" if value.is_dir() else "no such file"
            raise ValueError(f"must be {expected}, got {text!r} ({why})")
        if check == "exists" and not value.exists():
            raise ValueError(f"must be {expected}, got {text!r} (no such file or directory)")
        if check == "not_dir" and value.is_dir():
            raise ValueError(f"must be {expected}, got {text!r} (a directory)")
        return value

    return Kind(expected, "a string", parse, parse)


def audit_db() -> Kind:
    """The decision log: a SQLite file path, a ``postgresql://`` URL or libpq keyword=value pairs.

    A URL or pairs are never quoted whole (they may hold a password).
    """
    files = path("not_dir")

    def parse(text: str) -> Any:
        location = parse_audit_db(text)
        return files.parse(text) if isinstance(location, Path) else location

    return Kind(AUDIT_DB_EXPECTED, "a string", parse, parse)


SERVICE_LINK = re.compile(r"tcp://\S+:\d+")
"""What Kubernetes puts in ``<SERVICE>_PORT`` of every pod beside a Service of that name."""


def port_or_off() -> Kind:
    """A TCP port 0-65535 (0 picks a free one); unset means off.

    A ``tcp://HOST:PORT`` value is no typo: Kubernetes injects it as ``CASEROUTE_PORT`` into
    every pod of a namespace holding a Service named ``caseroute`` (service links), and the
    error says so instead of leaving the operator to guess where the value came from.
    """
    kind = whole(0, 65535, "a TCP port 0-65535 (0 picks a free one)")

    def parse(text: str) -> int:
        try:
            value: int = kind.parse(text)
        except ValueError as exc:
            if SERVICE_LINK.fullmatch(text.strip()):
                raise ValueError(
                    f"{exc}: a value of the form tcp://HOST:PORT is what Kubernetes sets in "
                    "<SERVICE>_PORT for a Service of that name (service links); set "
                    "enableServiceLinks: false in the pod spec, as deploy/kubernetes does"
                ) from None
            raise
        return value

    return Kind(kind.expected, kind.toml, parse, kind.check)


def gc_thresholds() -> Kind:
    """The cyclic garbage collector's three thresholds (``gc.set_threshold``), each at least 1.

    Text and TOML alike: a string of three comma-separated whole numbers (``"700,10,10"``:
    Python's own). 0, which turns collection off, is refused: cyclic garbage would never go.
    """
    expected = "three whole numbers of at least 1, comma-separated (e.g. 700,10,10)"

    def parse(text: str) -> tuple[int, int, int]:
        parts = text.split(",")
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"must be {expected}, got {text!r}") from None
        if len(values) != 3 or min(values) < 1:  # gc's three generations, none off
            raise ValueError(f"must be {expected}, got {text!r}")
        return values[0], values[1], values[2]

    return Kind(expected, "a string", parse, parse)


def masked_paths() -> Kind:
    """Case field paths: comma-separated as text, an array of strings in TOML.

    Only split here: ``options.masked_fields`` checks the paths where a command uses them
    (``rules check`` and ``serve`` report a bad one as a usage error naming its origin).
    """

    def split(text: str) -> tuple[str, ...]:
        # A trailing or doubled comma leaves an empty item: nothing written, ignored.
        return tuple(p.strip() for p in text.split(",") if p.strip())

    def check(paths: list[str]) -> tuple[str, ...]:
        # Review S43a: in the file an empty string is an item written as such (a TOML array
        # takes a trailing comma without one), so a path left blank, or deleted from its
        # quotes: refused, where before it was dropped without a word.
        blank = [n for n, p in enumerate(paths, 1) if not p.strip()]
        if blank:
            which = ", ".join(str(n) for n in blank)
            found, advice = (
                (
                    f"an empty item (item {which}",
                    "it masks nothing: remove it, or write the path it was meant to be",
                )
                if len(blank) == 1
                else (
                    f"empty items ({which}",
                    "they mask nothing: remove them, or write the paths they were meant to be",
                )
            )
            raise ValueError(f"has {found} of {len(paths)}); {advice} (e.g. case.attributes.NAME)")
        return tuple(p.strip() for p in paths)

    return Kind("case field paths", "an array of strings", split, check)


_IDENTITY_RE = re.compile(r"[^\s,]{1,253}")


def identities() -> Kind:
    """Client-certificate identities: comma-separated as text, an array of strings in TOML."""
    expected = "identities (DNS names or common names, no spaces)"

    def check(items: Iterable[str]) -> tuple[str, ...]:
        value = tuple(i.strip() for i in items if i.strip())
        bad = [i for i in value if not _IDENTITY_RE.fullmatch(i)]
        if bad:
            raise ValueError(f"must be {expected}, got {bad[0]!r}")
        return value

    return Kind(expected, "an array of strings", lambda text: check(text.split(",")), check)


def identity() -> Kind:
    """One client-certificate identity (a repeatable flag's item)."""
    items = identities()
    expected = "an identity (a DNS name or common name, no spaces or commas)"

    def parse(text: str) -> str:
        value = items.parse(text)
        if len(value) != 1:
            raise ValueError(f"must be {expected}, got {text!r}")
        return str(value[0])

    return Kind(expected, "a string", parse, parse)


def audit_key() -> Kind:
    """The masking key as hex; errors never quote it (a secret)."""
    minimum = KEY_BYTES // 2
    expected = f"hex of at least {minimum} bytes (e.g. from `openssl rand -hex 32`)"

    def parse(text: str) -> str:
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise ValueError(f"must be {expected}; the value is not shown (a secret)") from None
        if len(key) < minimum:
            raise ValueError(
                f"must be {expected}, got {len(key)} bytes; the value is not shown (a secret)"
            )
        return text.strip()

    return Kind(expected, "a string", parse, parse)


# ---------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting.

    Attributes:
        dest: Attribute of the parsed arguments (and the setting's id in code).
        table: TOML table (``server``, ``audit``...); ``client`` for a caller's own settings.
        key: Key within ``table``; ``config show`` names the setting ``table.key``.
        env: Environment variable.
        flag: Command-line flag (None: set only by the variable, e.g. a secret).
        kind: Value type.
        default: Value when nothing sets it (None: unset).
        help: What it does (``--help``, docs/operations.md).
        in_file: Whether the TOML file may set it (not the secrets, not a caller's own).
        secret: Never shown (``config show`` prints ``<redacted>``), never quoted in errors.
        repeat: The flag is given once per item (lists).
        adds_up: The flag takes a comma-separated list, and given again adds to it (one
            given twice kept only the last list: ``--audit-masked-fields case.attributes.*
            --audit-masked-fields case.region`` left every attribute in clear).
        hint: Added to the "(set by the flag or $VAR...)" note of a bad value.
        metavar: The flag's placeholder in ``--help``.
    """

    dest: str
    table: str
    key: str
    env: str
    flag: str | None
    kind: Kind
    default: Any
    help: str
    in_file: bool = True
    secret: bool = False
    repeat: bool = False
    adds_up: bool = False
    hint: str = ""
    metavar: str | None = None

    @property
    def name(self) -> str:
        """``table.key``: how ``config show`` and the docs name it."""
        return f"{self.table}.{self.key}"


_HOST_RE = re.compile(r"[A-Za-z0-9_.:%\[\]-]{1,253}")

_LIMIT_HELP = {
    "max_agents": "agents in one roster",
    "max_batch_cases": "cases in one DecideBatch",
    "max_batch_pairs": "cases x agents in one DecideBatch (the matching work)",
    "max_id_chars": "characters of an id or code (request_id, case_id, agent_id, flags, names)",
    "max_text_chars": "characters of a free-text value (attribute values)",
    "max_list_items": "items in one list (flags, skills, licences, territories, languages...)",
    "max_attributes": "entries in one attributes map",
    "max_sentiment_readings": "readings in case.sentiment",
    "max_sla_clocks": "clocks in case.sla_clocks",
}

DEFAULT_RULESET = Path("rulesets/patient-enquiries")
"""``caseroute decide``'s ruleset when none is given."""


def _limits() -> list[Setting]:
    from dataclasses import fields

    return [
        Setting(
            f.name,
            "limits",
            f.name,
            "CASEROUTE_" + f.name.upper(),
            limit_flag(f.name),
            whole(1),
            getattr(DEFAULT_LIMITS, f.name),
            _LIMIT_HELP.get(f.name, f.name.replace("_", " ")),
            metavar="N",
        )
        for f in fields(InputLimits)
    ]


def _access() -> list[Setting]:
    rows = []
    for prefix, service, who in (
        ("admin", "RulesetAdmin", "operators"),
        ("audit", "DecisionLog", "auditors"),
        ("caller", "RoutingService", "calling systems"),
    ):
        env = f"CASEROUTE_{prefix.upper()}"
        rows += [
            Setting(
                f"{prefix}_token_file",
                "access",
                f"{prefix}_token_file",
                f"{env}_TOKEN_FILE",
                f"--{prefix}-token-file",
                path("not_dir"),
                None,
                f"bearer tokens of the {who} allowed to call {service}",
                metavar="FILE",
            ),
            Setting(
                f"{prefix}_allow",
                "access",
                f"{prefix}_allow",
                f"{env}_ALLOW",
                f"--{prefix}-allow",
                identities(),
                (),
                f"client-certificate identities (mutual TLS) allowed to call {service}; the "
                "flag is repeatable, the variable comma-separated",
                repeat=True,
                metavar="IDENTITY",
            ),
        ]
    return rows


def _table() -> tuple[Setting, ...]:
    s = Setting
    rows = [
        s(
            "config",
            "",
            "",
            CONFIG_ENV,
            "--config",
            path("file"),
            None,
            'TOML configuration file (docs/operations.md, "Configuration")',
            in_file=False,
            metavar="FILE",
        ),
        s("rulesets", "server", "rulesets", "CASEROUTE_RULESETS", "--rulesets", path("exists"),
          Path("rulesets"), "rulesets directory (or one ruleset file)", metavar="DIR"),
        s("host", "server", "host", "CASEROUTE_HOST", "--host",
          pattern(_HOST_RE, "a host name or IP address"), "127.0.0.1",
          "bind address (0.0.0.0 for every interface); metrics bind here too"),
        s("port", "server", "port", "CASEROUTE_PORT", "--port", port_or_off(), 50051,
          "gRPC port; 0 picks a free one"),
        s("workers", "server", "workers", "CASEROUTE_WORKERS", "--workers", whole(0), 0,
          "worker processes; 0 = one per CPU the container's cgroup quota allows, at most one "
          "per usable core", metavar="N"),
        s("threads", "server", "threads", "CASEROUTE_THREADS", "--threads", whole(1), 16,
          "request threads per worker", metavar="N"),
        s("max_message_mb", "server", "max_message_mb", "CASEROUTE_MAX_MESSAGE_MB",
          "--max-message-mb", whole(1), 64, "largest request the server accepts, in MiB",
          metavar="MB"),
        s("max_response_mb", "server", "max_response_mb", "CASEROUTE_MAX_RESPONSE_MB",
          "--max-response-mb", whole(1), 4,
          "largest response the server sends, in MiB; a larger one is refused before it is "
          "recorded (clients' default receive limit is 4)", metavar="MB"),
        s("grace", "server", "grace", "CASEROUTE_GRACE", "--grace", seconds(), 10.0,
          "seconds in-flight calls get after SIGTERM", metavar="SECONDS"),
        s("max_now_skew", "server", "max_now_skew", "CASEROUTE_MAX_NOW_SKEW",
          "--max-now-skew", seconds(), 0.0,
          "largest difference in seconds between a request's now and the server's clock; "
          "further off is refused (INVALID_ARGUMENT at now), so a stale now cannot judge an "
          "expired licence valid; 0 accepts any now (the example requests carry a fixed one)",
          metavar="SECONDS"),
        s("engine", "server", "engine", "CASEROUTE_ENGINE", "--engine",
          choice(("durable", "python")), "durable", "engine of record",
          metavar="durable|python"),
        s("default_ruleset", "server", "default_ruleset", "CASEROUTE_DEFAULT_RULESET",
          "--default-ruleset", pattern(NAME_RE, "a ruleset name (a-z, 0-9, _ and -)"), None,
          "ruleset for requests that name none", metavar="NAME"),
        s("gc_threshold", "server", "gc_threshold", "CASEROUTE_GC_THRESHOLD",
          "--gc-threshold", gc_thresholds(), (700, 10, 1000),
          "each worker's cyclic garbage collector thresholds (gc.set_threshold; Python's own: "
          "700,10,10): a higher third one walks every cached roster less often",
          metavar="N,N,N"),
        s("roster_cache_agents", "roster_cache", "agents", "CASEROUTE_ROSTER_CACHE_AGENTS",
          "--roster-cache-agents", whole(0), 100_000,
          "agents kept in each worker's parsed-roster cache; 0 turns it off", metavar="N"),
        s("roster_cache_mb", "roster_cache", "mb", "CASEROUTE_ROSTER_CACHE_MB",
          "--roster-cache-mb", whole(0), 256,
          "estimated MiB of parsed rosters each worker keeps (least recently used go first); "
          "0 turns the cache off", metavar="MB"),
        *_limits(),
        s("audit_db", "audit", "db", "CASEROUTE_AUDIT_DB", "--audit-db", audit_db(),
          DEFAULT_AUDIT_DB, "decision log: a SQLite file, or PostgreSQL as a postgresql:// URL "
          "or libpq keyword=value pairs ('host=H dbname=D ...'; several replicas sharing one "
          "log; the password is never shown)", metavar="FILE|URL|CONNINFO"),
        s("audit_key_file", "audit", "key_file", "CASEROUTE_AUDIT_KEY_FILE",
          "--audit-key-file", path("not_dir"), None,
          "HMAC masking key file, hex; created (mode 0600) if missing (default "
          "<audit db>.key; CASEROUTE_AUDIT_KEY overrides)", metavar="FILE"),
        s("audit_key", "audit", "key", "CASEROUTE_AUDIT_KEY", None, audit_key(), None,
          "the masking key itself, as hex (overrides the key file); only from the "
          "environment, never a flag or the file", in_file=False, secret=True),
        s("audit_masked_fields", "audit", "masked_fields", "CASEROUTE_AUDIT_MASKED_FIELDS",
          "--audit-masked-fields", masked_paths(), DEFAULT_MASKED_PATHS,
          "case fields the decision log stores only as keyed digests (default: patient "
          "names, identifiers, contact details and free text, see docs/audit.md); the list "
          "replaces the defaults, and its item `defaults` stands for them "
          "(defaults,case.attributes.NAME adds one); a path that would mask nothing is refused; "
          "the flag given again adds to the list", metavar="PATH,...", adds_up=True),
        s("audit_pg_liveness", "audit", "pg_liveness", "CASEROUTE_AUDIT_PG_LIVENESS",
          "--audit-pg-liveness", seconds(), 10.0,
          "PostgreSQL log: a statement of the startup (schema check, migration), of an "
          "`audit` command or of a server's replay with no reply this long makes caseroute "
          "check, on a new connection, "
          "that the server still answers; it runs on while it does and is cut (the command "
          "fails naming host:port) when it does not; 0 never cuts", metavar="SECONDS"),
        s("tls_cert", "tls", "cert", "CASEROUTE_TLS_CERT", "--tls-cert", path("not_dir"), None,
          "PEM certificate", metavar="FILE"),
        s("tls_key", "tls", "key", "CASEROUTE_TLS_KEY", "--tls-key", path("not_dir"), None,
          "PEM private key", metavar="FILE"),
        s("tls_client_ca", "tls", "client_ca", "CASEROUTE_TLS_CLIENT_CA", "--tls-client-ca",
          path("not_dir"), None,
          "require client certificates signed by this CA (mutual TLS); the client's identity "
          "is recorded as the caller of each decision", metavar="FILE"),
        s("metrics_port", "metrics", "port", "CASEROUTE_METRICS_PORT", "--metrics-port",
          port_or_off(), None,
          "serve Prometheus metrics on http://HOST:PORT/metrics, HOST being the bind address; "
          "0 picks a free port (printed at start); off when not set",
          hint="; unset it to serve no metrics", metavar="PORT"),
        s("reload_interval", "reload", "interval", "CASEROUTE_RELOAD_INTERVAL",
          "--reload-interval", seconds(), 2.0,
          "poll the rulesets directory for changes this often; 0 turns polling off (SIGHUP and "
          "`caseroute rules reload` still reload)", metavar="SECONDS"),
        *_access(),
        s("log_format", "logs", "format", "CASEROUTE_LOG_FORMAT", "--log-format",
          choice(LOG_FORMATS), "auto",
          "log lines on stderr: json (one object per line), console (for people), or auto: "
          "console when stderr is a terminal, else json", metavar="|".join(LOG_FORMATS)),
        s("log_level", "logs", "level", "CASEROUTE_LOG_LEVEL", "--log-level",
          choice(LOG_LEVELS), "info",
          "lowest level logged; info writes one line per call and per ruleset change",
          metavar="|".join(LOG_LEVELS)),
        s("token_file", "client", "token_file", "CASEROUTE_TOKEN_FILE", "--token-file",
          path("not_dir"), None,
          "file holding just your own bearer token, mode 0600 (commands calling a server)",
          in_file=False, metavar="FILE"),
        s("ruleset", "client", "ruleset", "CASEROUTE_RULESET", "--ruleset", path("exists"),
          DEFAULT_RULESET, "ruleset directory or YAML file `caseroute decide` decides with "
          "locally (a dry run; with --server the server's rulesets decide: pin a version "
          "with --ruleset-name/--ruleset-version)",
          in_file=False, metavar="PATH"),
    ]  # fmt: skip
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _table()
"""Every setting, in the order ``config show`` and the docs list them."""

BY_DEST: Mapping[str, Setting] = {s.dest: s for s in SETTINGS}

SERVE_SETTINGS: tuple[str, ...] = tuple(s.dest for s in SETTINGS if s.table not in ("", "client"))
"""What ``caseroute serve`` reads (every setting but a caller's own)."""

FILE_TABLES: tuple[str, ...] = tuple(dict.fromkeys(s.table for s in SETTINGS if s.in_file))
"""The tables a configuration file may hold, in order."""


# ---------------------------------------------------------------------------------------------
# Resolution.


@dataclass(frozen=True, slots=True)
class Source:
    """Where a setting's value came from.

    Attributes:
        kind: ``flag``, ``env``, ``file`` or ``default``.
        where: The flag, the variable, or ``file:line`` (empty for a default).
    """

    kind: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.where}".strip()


@dataclass(slots=True)
class ConfigFile:
    """A parsed configuration file: values by setting, and the line each was found on."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, name: str) -> str:
        """``file:line`` of a setting (just the file when the line was not found)."""
        line = self.lines.get(name)
        return f"{self.path}:{line}" if line else str(self.path)


_HEADER_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=")


def _scan_lines(text: str) -> dict[str, int]:
    """The line of each ``[table]`` header and ``key =`` (as ``table`` / ``table.key``).

    tomllib gives no positions; this scan finds the common layouts (a header, then ``key =``
    lines). A key written another way (inline table, dotted at the top) has no line: errors
    then name just the file.
    """
    found: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER_RE.match(line)
        if header:
            table = header.group(1).strip().strip("\"'")
            found.setdefault(table, number)
            continue
        key = _KEY_RE.match(line)
        if key:
            name = f"{table}.{key.group(1)}" if table else key.group(1)
            found.setdefault(name, number)
    return found


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def load_config(path: Path) -> ConfigFile:
    """Read and check a configuration file: TOML, known tables and keys, right types.

    Args:
        path: The file.

    Returns:
        The values it sets, by setting ``dest``.

    Raises:
        SettingError: Naming ``file:line``, the key and what to write instead.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SettingError(
            f"cannot read the configuration file {path}: {exc.strerror or exc}; pass "
            f"--config (or ${CONFIG_ENV}) naming a readable TOML file"
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SettingError(
            f"{path}: the configuration file is over {MAX_CONFIG_BYTES // 1024} KiB; is it "
            "the right file?"
        )
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise SettingError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise SettingError(
            f"{where}: not valid TOML: {exc}; fix the syntax (https://toml.io)"
        ) from None
    lines = _scan_lines(text)
    config = ConfigFile(path)
    by_name = {s.name: s for s in SETTINGS if s.in_file}
    for table, body in data.items():
        where = f"{path}:{lines[table]}" if table in lines else str(path)
        if not isinstance(body, dict):
            raise SettingError(
                f"{where}: `{table}` is outside a table; settings go in tables: "
                f"{', '.join(f'[{t}]' for t in FILE_TABLES)}{_suggest(table, FILE_TABLES)}"
            )
        if table not in FILE_TABLES:
            close = difflib.get_close_matches(table, FILE_TABLES, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise SettingError(
                f"{where}: unknown table [{table}]{hint}; the tables are "
                f"{', '.join(f'[{t}]' for t in FILE_TABLES)}"
            )
        keys = [s.key for s in SETTINGS if s.table == table and s.in_file]
        for key, value in body.items():
            name = f"{table}.{key}"
            where = config_where(path, lines, name, table)
            setting = by_name.get(name)
            if setting is None:
                secret = next((s for s in SETTINGS if s.name == name and s.secret), None)
                if secret is not None:
                    raise SettingError(
                        f"{where}: [{table}] {key} is a secret and cannot be in the file; set "
                        f"${secret.env} in the environment (or use [audit] key_file)"
                    )
                raise SettingError(
                    f"{where}: unknown key `{key}` in [{table}]{_suggest(key, keys)}; the keys "
                    f"of [{table}] are {', '.join(keys)}"
                )
            try:
                config.values[setting.dest] = setting.kind.from_toml(value)
            except ValueError as exc:
                raise SettingError(f"{where}: [{table}] {key} {exc}") from None
            if name in lines:
                config.lines[setting.dest] = lines[name]
    return config


def config_where(path: Path, lines: Mapping[str, int], name: str, table: str) -> str:
    """``file:line`` of ``name`` (of its table's header when the key was not found)."""
    line = lines.get(name) or lines.get(table)
    return f"{path}:{line}" if line else str(path)


def _flag_note(setting: Setting) -> str:
    return f"(set by the flag or ${setting.env}{setting.hint})"


def resolve(
    settings: Iterable[Setting],
    given: Mapping[str, Any],
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Source]]:
    """Each setting's value and source: flag > environment > file > default.

    Args:
        settings: The settings a command reads.
        given: Values the command line gave (already parsed), by ``dest``.
        environ: The environment.

    Returns:
        Values and sources by ``dest``.

    Raises:
        SettingError: If a variable or the file holds a bad value (one line, naming it).
    """
    settings = list(settings)
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for setting in settings:  # environment first: the file's own path is one of them
        if setting.dest in given:
            flag = setting.flag or ""
            values[setting.dest], sources[setting.dest] = given[setting.dest], Source("flag", flag)
            continue
        text = environ.get(setting.env, "")
        if not text.strip():  # a blank variable counts as unset
            continue
        try:
            values[setting.dest] = setting.kind.parse(text)
        except ValueError as exc:
            if setting.flag is None:
                raise SettingError(f"${setting.env}: {exc}") from None
            raise SettingError(f"argument {setting.flag}: {exc} {_flag_note(setting)}") from None
        sources[setting.dest] = Source("env", setting.env)
    config_path = values.get("config")
    config = load_config(config_path) if config_path is not None else None
    for setting in settings:
        if setting.dest in values:
            continue
        if config is not None and setting.dest in config.values:
            values[setting.dest] = config.values[setting.dest]
            sources[setting.dest] = Source("file", config.where(setting.dest))
        else:
            values[setting.dest] = setting.default
            sources[setting.dest] = Source("default")
    return values, sources


# ---------------------------------------------------------------------------------------------
# argparse.


class SettingsParser(argparse.ArgumentParser):
    """An ArgumentParser that fills its settings after parsing (flag > env > file > default).

    Subcommand parsers are made of the same class (argparse's default), so each command
    resolves the settings ``add_settings`` gave it, whichever way it is parsed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings: list[Setting] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse, then resolve this parser's settings onto the namespace (exit 2 on a bad one)."""
        parsed, extras = super().parse_known_args(args, namespace)
        if self.settings:
            given = {
                s.dest: getattr(parsed, s.dest) for s in self.settings if hasattr(parsed, s.dest)
            }
            try:
                values, sources = resolve(self.settings, given, os.environ)
            except SettingError as exc:
                self.fail(str(exc))
            for dest, value in values.items():
                setattr(parsed, dest, tuple(value) if isinstance(value, list) else value)
            setattr(parsed, SOURCES_ATTR, sources)
        return parsed, extras

    def fail(self, message: str) -> NoReturn:
        """Stop with one line (no usage: the value did not come from this command line)."""
        from caseroute.render import escape_lines

        self.exit(2, f"{self.prog}: error: {escape_lines(message)}\n")


def _flag_type(setting: Setting) -> Callable[[str], Any]:
    kind = identity() if setting.repeat else setting.kind

    def parse(text: str) -> Any:
        try:
            return kind.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} {_flag_note(setting)}") from None

    parse.__name__ = setting.dest  # argparse names the type in some messages
    return parse


def _help(setting: Setting) -> str:
    default = setting.default
    if default is None:
        shown = "not set"
    elif isinstance(default, tuple):
        shown = ",".join(str(item) for item in default) or "none"
    else:
        shown = str(default)
    if setting.dest == "audit_masked_fields":
        shown = "see docs/audit.md"
    file_key = f"; [{setting.table}] {setting.key}" if setting.in_file else ""
    # argparse %-formats help strings.
    return f"{setting.help} (${setting.env}{file_key}; default {shown})".replace("%", "%%")


class _AddUp(argparse.Action):
    """A list flag given again adds its items to those given before (``Setting.adds_up``)."""

    # argparse's Action signature: only the namespace and the values are used.
    def __call__(
        self,
        parser: argparse.ArgumentParser,  # noqa: ARG002
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,  # noqa: ARG002
    ) -> None:
        setattr(namespace, self.dest, (*getattr(namespace, self.dest, ()), *values))


def add_settings(
    parser: argparse.ArgumentParser,
    dests: Iterable[str],
    group: argparse._ActionsContainer | None = None,
) -> None:
    """Give ``parser`` these settings: their flags, and resolution after parsing.

    A command reading any setting a file can hold also takes ``--config``.

    Args:
        parser: A ``SettingsParser`` (every parser ``build_parser`` makes is one).
        dests: Settings by ``dest``, in ``--help`` order.
        group: Where to list the flags in ``--help`` (default: the parser itself).
    """
    assert isinstance(parser, SettingsParser)  # noqa: S101 - build_parser makes every parser
    rows = [BY_DEST[d] for d in dests]
    if any(s.in_file for s in rows) and all(s.dest != "config" for s in [*parser.settings, *rows]):
        rows.insert(0, BY_DEST["config"])
    for setting in rows:
        parser.settings.append(setting)
        if setting.flag is None:
            continue
        (group or parser).add_argument(
            setting.flag,
            dest=setting.dest,
            type=_flag_type(setting),
            action="append" if setting.repeat else _AddUp if setting.adds_up else "store",
            default=argparse.SUPPRESS,
            metavar=setting.metavar,
            help=_help(setting),
        )


def setting_source(args: argparse.Namespace, dest: str) -> Source:
    """Where the parsed ``args`` got a setting (``default`` when it was not resolved)."""
    sources: Mapping[str, Source] = getattr(args, SOURCES_ATTR, {})
    return sources.get(dest, Source("default"))


def replaced_values(
    args: argparse.Namespace, dest: str, environ: Mapping[str, str] | None = None
) -> list[tuple[str, Any]]:
    """The values lower layers gave a setting that a higher one replaced, with their origins.

    A flag replaces the variable's and the file's value, a variable the file's, silently;
    for a setting where that can cost something (the masked field list: a list replaced
    masks less), the command can say so.

    Args:
        args: The parsed arguments.
        dest: The setting.
        environ: The environment (default: this process's).

    Returns:
        ``(origin, value)`` for the variable and then the file, each when it set a value
        that parses and was replaced; origins as ``setting_origin`` names them.
    """
    setting = BY_DEST[dest]
    environ = os.environ if environ is None else environ
    winner = setting_source(args, dest).kind
    found: list[tuple[str, Any]] = []
    text = environ.get(setting.env, "")
    if winner == "flag" and text.strip():
        # A replaced variable is never read: a value that does not parse does not matter.
        with contextlib.suppress(ValueError):
            found.append((f"${setting.env}", setting.kind.parse(text)))
    config_path = getattr(args, "config", None)
    if winner in ("flag", "env") and setting.in_file and config_path is not None:
        try:
            config = load_config(config_path)
        except SettingError:
            return found  # it loaded when the settings were resolved; changed since
        if dest in config.values:
            where = f"[{setting.table}] {setting.key} ({config.where(dest)})"
            found.append((where, config.values[dest]))
    return found


def setting_origin(args: argparse.Namespace, dest: str) -> str:
    """How to name a setting in a message: its flag, ``$VAR`` or ``[table] key (file:line)``."""
    setting = BY_DEST[dest]
    source = setting_source(args, dest)
    if source.kind == "env":
        return f"${setting.env}"
    if source.kind == "file":
        return f"[{setting.table}] {setting.key} ({source.where})"
    return setting.flag or f"${setting.env}"
