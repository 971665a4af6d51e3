"""Audit settings: where the decision log lives, the masking key, which fields are masked."""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caseroute.audit.location import AuditLocation, PostgresLocation
from caseroute.audit.masking import DEFAULT_MASKED_PATHS, DERIVED_PATHS, Masker, key_fingerprint
from caseroute.audit.store import KeyMismatchError, SqliteAuditStore
from caseroute.domain.errors import ConfigError
from caseroute.domain.fingerprint import format_timestamp

if TYPE_CHECKING:
    from caseroute.audit.postgres import PostgresAuditSink

log = logging.getLogger("caseroute.audit")

DEFAULT_AUDIT_DB = Path("var/audit.db")
KEY_BYTES = 32
_PATH_RE = re.compile(r"^case(\.[A-Za-z_][A-Za-z0-9_]*)+(\.\*)?$")


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """How decisions are recorded.

    Attributes:
        db: The SQLite decision log (created on first start); unused when ``postgres`` is set.
        postgres: A PostgreSQL decision log instead (its schema is created on first start).
        key_file: File holding the HMAC masking key as hex (created, mode 0600, when it is
            missing and the log holds no records yet); ``None`` means ``<db>.key`` for a
            SQLite log (a PostgreSQL log needs it, or ``key_hex``). Keep it off the
            database's backups.
        key_hex: The key itself as hex (``CASEROUTE_AUDIT_KEY``); overrides ``key_file``.
        masked_fields: Case field paths stored as keyed digests.
        pg_liveness_s: PostgreSQL only: how long a startup's statement may go without a
            reply before the server is checked on a new connection (None: the default).
    """

    db: Path = DEFAULT_AUDIT_DB
    key_file: Path | None = None
    key_hex: str | None = None
    masked_fields: tuple[str, ...] = DEFAULT_MASKED_PATHS
    postgres: PostgresLocation | None = None
    pg_liveness_s: float | None = None

    @classmethod
    def at(cls, location: AuditLocation, **settings: Any) -> AuditConfig:
        """The settings for a log at ``location`` (``--audit-db``: a path or a URL)."""
        if isinstance(location, PostgresLocation):
            return cls(postgres=location, **settings)
        return cls(db=location, **settings)

    @property
    def log_name(self) -> str:
        """The log as messages name it (a URL without its password)."""
        return str(self.postgres or self.db)

    @property
    def key_path(self) -> Path:
        """Where the key file is (or would be).

        Raises:
            ConfigError: For a PostgreSQL log without ``key_file`` or ``key_hex`` (no file
                to put it beside).
        """
        if self.key_file is not None:
            return self.key_file
        if self.postgres is not None:
            if self.key_hex is not None:
                return Path(os.devnull)  # never read: the key is key_hex
            raise ConfigError(
                f"the decision log {self.postgres} is a PostgreSQL database: pass the masking key "
                "with --audit-key-file FILE (every replica the same file) or CASEROUTE_AUDIT_KEY"
            )
        return self.db.with_name(self.db.name + ".key")

    @property
    def key_source(self) -> str:
        """Where the key comes from, as an operator would name it."""
        return "CASEROUTE_AUDIT_KEY" if self.key_hex is not None else f"file {self.key_path}"

    def masker(self) -> Masker:
        """The masker for these settings (call ``open_store`` first: it creates the key).

        Raises:
            ConfigError: If the key is missing or invalid, or a masked field path is invalid.
        """
        return Masker(
            load_key(self.key_path, self.key_hex, create=False),
            check_masked_fields(self.masked_fields),
        )

    def open_store(self) -> SqliteAuditStore:
        """Open the SQLite decision log for writing (``open_sink`` opens either kind).

        Raises:
            ConfigError: If these settings name a PostgreSQL log, or as ``open_sink``.
            AuditUnavailableError: If the file cannot be opened or created.
        """
        if self.postgres is not None:
            raise ConfigError(f"the decision log {self.postgres} is not a SQLite file")
        store = self.open_sink()
        assert isinstance(store, SqliteAuditStore)  # noqa: S101 - no URL: a file
        return store

    def open_sink(self) -> SqliteAuditStore | PostgresAuditSink:
        """Open (creating if needed) the decision log for writing, bound to the masking key.

        Refuses a log other users can read, and a key that is not the one the log is masked
        with (its fingerprint is recorded on first use). The key file is created only for a
        log without records.

        Raises:
            ConfigError: If the log is readable by others, or the key is missing, invalid
                or another key than the log's.
            AuditUnavailableError: If the file (or database) cannot be opened or created.
        """
        return self.open_recording()[0]

    def open_recording(self) -> tuple[SqliteAuditStore | PostgresAuditSink, Masker]:
        """``open_sink`` and the masker of the very key it bound the log to (read once).

        Reading the key file twice (``open_sink``, then ``masker``) could give two keys if the
        file changed in between; the log's writer would then refuse every record.

        Raises:
            ConfigError: As ``open_sink`` and ``masker``.
            AuditUnavailableError: As ``open_sink``.
        """
        store: SqliteAuditStore | PostgresAuditSink
        if self.postgres is not None:
            if self.key_hex is None:
                _ = self.key_path  # refuses a PostgreSQL log without a key file
            store = open_postgres(self.postgres, liveness_s=self.pg_liveness_s)
        else:
            exposed = exposed_files(self.db)
            if exposed:
                raise ConfigError(exposure_message(exposed))
            store = SqliteAuditStore(self.db)
        try:
            key = self._bind_key(store)
            masker = Masker(key, check_masked_fields(self.masked_fields))
        except BaseException:
            store.close()
            raise
        return store, masker

    def _bind_key(self, store: SqliteAuditStore | PostgresAuditSink) -> bytes:
        bound = store.has_records()
        if self.key_hex is None and bound and not self.key_path.exists():
            history = store.key_history()
            stored = history[-1].new_fingerprint if history else "not recorded"
            raise ConfigError(
                f"the audit key file {self.key_path} is missing, but the decision log "
                f"{self.log_name} already holds records masked with a key (fingerprint "
                f"{stored}); a "
                "new key would give the same patient a different digest. Restore the key file "
                "from its backup (or set CASEROUTE_AUDIT_KEY), or, if the key is lost for "
                "good, start a new key era with `caseroute audit rotate-key --audit-db "
                f"{self.log_name} --new-key-file FILE --confirm`"
            )
        key = load_key(self.key_path, self.key_hex)
        try:
            store.claim_key(key_fingerprint(key), format_timestamp(datetime.now(UTC)))
        except KeyMismatchError as exc:
            raise ConfigError(
                f"the audit key ({self.key_source}) does not match the key the decision log "
                f"{self.log_name} is masked with (fingerprint {exc.stored}, this key "
                f"{key_fingerprint(key)}): the same patient would get a different digest. "
                "Restore the original key, or change keys on purpose with `caseroute audit "
                "rotate-key --audit-db "
                f"{self.log_name} --new-key-file FILE --confirm`"
            ) from None
        return key


def open_postgres(
    location: PostgresLocation, *, readonly: bool = False, liveness_s: float | None = None
) -> PostgresAuditSink:
    """Open a PostgreSQL decision log (the ``postgres`` extra must be installed).

    ``liveness_s``: how long a statement of the startup, or of a read-only log's reads, may go
    without a reply before the server is checked (``[audit] pg_liveness``; None: the default).

    Raises:
        ConfigError: If psycopg is not installed.
        AuditUnavailableError: If the database cannot be reached or its schema created.
    """
    try:
        from caseroute.audit.postgres import PostgresAuditSink
    except ImportError as exc:  # pragma: no cover - the test environment has the extra
        raise ConfigError(
            f"--audit-db {location} needs the PostgreSQL driver: install caseroute[postgres] "
            f"(psycopg and psycopg-pool); {exc}"
        ) from None
    if liveness_s is None:
        return PostgresAuditSink(location, readonly=readonly)
    return PostgresAuditSink(location, readonly=readonly, liveness_s=liveness_s)


def exposed_files(db: Path) -> list[tuple[Path, int]]:
    """The log's files (database, -wal, -shm) that group or other users can access, with modes."""
    found = []
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        except OSError:
            continue  # unreadable metadata: opening it reports the problem
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append((path, mode))
    return found


def exposure_message(exposed: list[tuple[Path, int]]) -> str:
    """What to tell the operator about log files other users can read."""
    files = ", ".join(f"{path} (mode {mode:o})" for path, mode in exposed)
    paths = " ".join(str(path) for path, _ in exposed)
    return (
        f"the decision log is readable by other users: {files}; it holds patient data: run "
        f"`chmod 600 {paths}`"
    )


_DERIVED_FROM = {
    "case.created_at": "the case's age (signals.case_age_minutes) and the relaxation ladder's "
    "anchor, step times and next_relaxation_at",
    "case.waiting_since": "the relaxation ladder's anchor, step times and next_relaxation_at",
    "case.sla_clocks.started_at": "each clock's minutes remaining and risk (signals.sla_clocks)",
    "case.sla_clocks.deadline": "each clock's minutes remaining and risk (signals.sla_clocks)",
    "case.sentiment.score": "the sentiment summary (signals.sentiment: latest, minimum, change)",
    "case.sentiment.at": "the sentiment summary's order (signals.sentiment: latest, change)",
    "case.preferred_agents": "the continuity trace (each preferred agent, its reason and last "
    "contact), the ranking's preference and next_relaxation_at",
    "case.declined_agents": "each agent's declined check (which agents failed it)",
    # Review R34c: both were accepted, and the reply and record still told them.
    "case.intent": "the queue of a rule routing by_intent (the queue is named for the "
    "intent) and which licence constraint applies",
    "case.urgency": "the relaxation ladder's step times and holds (after_minutes, "
    "next_relaxation_at), which differ by urgency",
}
"""Case fields each decision turns into other values it returns and records in clear.

Masked, such a field's digest hid nothing (review R31b F2: a masked ``created_at`` came back as
the relaxation trace's ``anchor_at``), and the reply needs those values (``next_relaxation_at``
says when to decide again), so the field is refused, as is a path above it
(``case.sla_clocks``, ``case.sentiment.*``).
"""


def _derived_problem(path: str) -> str | None:
    """Why ``path`` cannot be masked because decisions derive shown values from it (None: can)."""
    bare = path.removesuffix(".*")
    for field, derived in _DERIVED_FROM.items():
        if field == bare or field.startswith(bare + "."):
            return (
                f"{path} cannot be masked: decisions derive {derived} from {field}, and "
                "return and record them in clear, so a digest would hide nothing; keep "
                "dates and values the log must not hold in masked attributes "
                "(case.attributes.NAME), which routing reads only where a rule names them"
            )
    return None


def _rule_field_problem(path: str) -> str | None:
    """Why ``path`` cannot be masked: a field rules read that no case holds (None: it can be).

    ``case.region_areas`` is worked out from ``case.region``: masking it alone masked nothing
    (its list was shown in clear), while ``rules check`` called it masked.
    """
    bare = path.removesuffix(".*")
    field = next((f for f in DERIVED_PATHS if bare == f or bare.startswith(f + ".")), None)
    if field is None:
        return None
    source = DERIVED_PATHS[field]
    return (
        f"{path} cannot be masked on its own: {field} is derived from {source} (the region "
        "and every area it lies within), not sent, so no record holds it to mask; it is "
        f"masked whenever {source} is: mask {source}"
    )


_LIST_FIELDS = (
    "required_skills",
    "sentiment",
    "sla_clocks",
    "flags",
    "declined_agents",
    "preferred_agents",
)
"""Case fields that are lists: the masker walks objects only, so a path into their items
(``case.sla_clocks.name``) masked nothing (review R31d 4)."""


def _through_list(path: str) -> str | None:
    """Why ``path`` cannot be masked because it goes into a list's items (None: it does not)."""
    parts = path.split(".")
    if len(parts) > 2 and parts[1] in _LIST_FIELDS:
        return (
            f"{path} cannot be masked: case.{parts[1]} is a list, and a path into its items "
            "masks nothing in the decision log; mask whole fields or attributes "
            "(case.attributes.NAME)"
        )
    return None


def check_masked_fields(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Validate masked field paths (``case.attributes.patient_name``, ``case.attributes.*``).

    Raises:
        ConfigError: Naming each invalid path.
    """
    if "case.case_id" in paths:
        raise ConfigError(
            "case.case_id cannot be masked: the decision log keeps case ids in clear so that "
            "decisions can be found by case (ListDecisions, audit export --case-id); send a "
            "pseudonymous case id instead of one that identifies the patient"
        )
    derived = [problem for problem in map(_derived_problem, paths) if problem is not None]
    derived += [problem for problem in map(_rule_field_problem, paths) if problem is not None]
    derived += [
        problem
        for path in paths
        if _derived_problem(path) is None and (problem := _through_list(path)) is not None
    ]
    if derived:
        raise ConfigError("; ".join(derived))
    bad = [p for p in paths if not _PATH_RE.fullmatch(p)]  # `$` alone admits a final "\n"
    if bad:
        raise ConfigError(
            f"invalid masked field path(s): {', '.join(map(repr, bad))}; a path is dotted "
            "and starts with `case.` (e.g. case.attributes.patient_name, or "
            "case.attributes.* for every attribute). Roster data is staff data and is not masked."
        )
    return paths


def load_key(path: Path, key_hex: str | None, *, create: bool = True) -> bytes:
    """The masking key: from ``key_hex`` if given, else the key file.

    Args:
        path: The key file.
        key_hex: The key as hex (``CASEROUTE_AUDIT_KEY``), overriding the file.
        create: Create the file with a fresh random key when it is missing (only for a log
            without records: ``AuditConfig.open_store`` decides).

    Raises:
        ConfigError: If the key is not hex, is shorter than 16 bytes, or the key file is
            readable by other users, or cannot be read or created, or is missing and
            ``create`` is false.
    """
    if key_hex is not None:
        return _parse_key(key_hex.strip(), "CASEROUTE_AUDIT_KEY")
    if not create and not path.exists():
        raise ConfigError(
            f"the audit key file {path} does not exist; restore it from its backup, pass "
            "--audit-key-file / CASEROUTE_AUDIT_KEY, or start the server once (it creates "
            "the key for a new decision log)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot create the audit key file {path}: {exc}; create the directory, or pass "
            "--audit-key-file / CASEROUTE_AUDIT_KEY"
        ) from exc
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
        log.warning(
            "created a new audit masking key at %s: back it up separately from the decision "
            "log; masked values cannot be matched to a patient without it",
            path,
        )
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key file {path}: {exc}") from exc
    refuse_shared_secret(path, mode, "the audit key file")
    return _parse_key(text.strip(), str(path))


def refuse_shared_secret(path: Path, mode: int, what: str) -> None:
    """Refuse a secret file (masking key, admin tokens) that group or other users can access.

    Args:
        path: The file.
        mode: Its ``st_mode``.
        what: What it is, for the message (``the audit key file``).

    Raises:
        ConfigError: If group or other users have any permission on it.
    """
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} {path} is accessible to other users (mode "
            f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(
            f"{where}: the audit key must be hex (e.g. from `openssl rand -hex 32`)"
        ) from None
    if len(key) < KEY_BYTES // 2:
        raise ConfigError(
            f"{where}: the audit key is {len(key)} bytes; use at least {KEY_BYTES // 2} "
            "(`openssl rand -hex 32`)"
        )
    return key
