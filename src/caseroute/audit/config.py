"""Audit settings: where the decision log lives, the masking key, which fields are masked."""

from __future__ import annotations

import difflib
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
from caseroute.audit.masking import (
    DEFAULT_MASKED_PATHS,
    DERIVED_PATHS,
    Masker,
    covered_by,
    key_fingerprint,
)
from caseroute.audit.store import KeyMismatchError, SqliteAuditStore
from caseroute.domain.errors import ConfigError
from caseroute.domain.fields import CASE_FIELDS, CASE_LIST_FIELDS, CASE_MAP_FIELDS
from caseroute.domain.fingerprint import format_timestamp
from caseroute.domain.limits import limit_flag
from caseroute.domain.reader import ATTRIBUTE_NAME

if TYPE_CHECKING:
    from caseroute.audit.postgres import PostgresAuditSink

log = logging.getLogger("caseroute.audit")

DEFAULT_AUDIT_DB = Path("var/audit.db")
KEY_BYTES = 32
_PATH_RE = re.compile(r"^case(\.[A-Za-z_][A-Za-z0-9_]*)+(\.\*)?$")
DEFAULTS_ITEM = "defaults"
"""An item of the masked field list standing for ``DEFAULT_MASKED_PATHS`` (to add to them)."""
ATTRIBUTE_PATHS = "case.attributes."
SHOWN_PATH_CHARS = 120
"""How much of a path longer than this a message shows (a pasted file is no path)."""
_LONG_WORD = re.compile(rf"[^\s,;()'?`]{{{SHOWN_PATH_CHARS + 1},}}")
"""A path in a message too long to show whole (no other word of a message is this long)."""
NameLimit = tuple[int, str] | None
"""The server's limit on an attribute name and how to name its setting (None: not checked)."""
NEAR_MISS_CUTOFF = 0.8
"""How alike (difflib's ratio) an attribute name and a default one must be to be taken for it
(suggested in an error, warned of at start):
``pateint_name`` and ``patient_name`` are 0.92, ``patient_id`` and ``patient_name`` 0.73."""


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
        masked_fields_origin: Where ``masked_fields`` came from, as the operator names it
            (``--audit-masked-fields``, ``$CASEROUTE_AUDIT_MASKED_FIELDS``, ``[audit]
            masked_fields (FILE:LINE)``).
        replaced_masks: Masked field lists other settings gave that this one replaced
            (precedence: flag, variable, file), each as ``(origin, paths)``: the start-up
            warnings name what they mask and it does not.
    """

    db: Path = DEFAULT_AUDIT_DB
    key_file: Path | None = None
    key_hex: str | None = None
    masked_fields: tuple[str, ...] = DEFAULT_MASKED_PATHS
    postgres: PostgresLocation | None = None
    pg_liveness_s: float | None = None
    masked_fields_origin: str = "the masked field list"
    replaced_masks: tuple[tuple[str, tuple[str, ...]], ...] = ()

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

    def masking_warnings(self) -> tuple[str, ...]:
        """What the operator should hear at start about these masked fields (``masking_warnings``).

        Raises:
            ConfigError: If a masked field path is invalid.
        """
        paths = check_masked_fields(self.masked_fields)
        return masking_warnings(paths) + replaced_mask_warnings(
            paths, self.masked_fields_origin, self.replaced_masks
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


def _through_list(path: str) -> str | None:
    """Why ``path`` cannot be masked because it goes into a list's items (None: it does not)."""
    parts = path.split(".")
    # The masker walks objects only, so a path into a list's items (``case.sla_clocks.name``)
    # masked nothing (review R31d 4).
    if len(parts) > 2 and parts[1] in CASE_LIST_FIELDS:
        return (
            f"{path} cannot be masked: case.{parts[1]} is a list, and a path into its items "
            "masks nothing in the decision log; mask whole fields or attributes "
            "(case.attributes.NAME)"
        )
    return None


def _nearest_path(parts: list[str], limit: NameLimit = None) -> tuple[str | None, str | None]:
    """What an operator probably meant by ``parts``, whose field no case has.

    A misspelt field (``case.atributes.mrn``, ``case.Attributes.mrn``) is the nearest one by
    difflib; a lone unknown name (``case.patient_name``) is patient data: an attribute. An
    attribute name near a default one (``pateint_name``) is taken to mean the default.

    Only a path the list would accept is suggested: ``case.created`` once got "did you mean
    case.created_at?", which is refused too, so an operator who took the advice failed again
    (review S43a). When the nearest field is one that cannot be masked, its refusal is
    returned instead, so the operator learns why and what to do.

    Returns:
        ``(suggestion, refusal)``: the nearest accepted path (None: none), and when that is
        None, why the nearest path, refused, would be refused (None: there is none).
    """
    nearest = _nearest_field_path(parts)
    if nearest is None:
        return None, None
    refused = _path_problem(nearest, limit)
    return (nearest, None) if refused is None else (None, refused)


def _nearest_field_path(parts: list[str]) -> str | None:
    """The path nearest ``parts`` (of a field no case has) by spelling, accepted or not."""
    name = parts[1].lower()
    close = [] if len(parts) != 2 else _near_default(name)
    if close:
        return f"case.attributes.{close[0]}"
    close = difflib.get_close_matches(name, CASE_FIELDS, n=1)
    if close:
        rest = parts[2:]
        if close[0] == "attributes":  # callers' attribute names are lower case
            rest = [part.lower() for part in rest]
            rest = (_near_default(rest[0]) or rest) if len(rest) == 1 else rest
        return ".".join(["case", close[0], *rest])
    if len(parts) == 2 and ATTRIBUTE_NAME.regex.fullmatch(name):
        return f"case.attributes.{name}"
    return None


def _near_default(name: str, defaults: tuple[str, ...] = DEFAULT_MASKED_PATHS) -> list[str]:
    """The attribute name of ``defaults`` most like ``name`` (``NEAR_MISS_CUTOFF``), if any."""
    names = [d.removeprefix(ATTRIBUTE_PATHS) for d in defaults if d.startswith(ATTRIBUTE_PATHS)]
    return difflib.get_close_matches(name, names, n=1, cutoff=NEAR_MISS_CUTOFF)


def _field_problem(path: str, limit: NameLimit = None) -> str | None:
    """Why ``path`` (of a valid shape) would mask nothing a case can hold (None: it masks).

    ``limit``: the server's, for the paths advised (``_path_problem``).

    Review S42a: ``case.atributes.patient_name`` (a typo), ``case.region.code`` (below a
    single value) and ``case.attributes.Patient_Name`` (a name no caller can send) were
    accepted and masked nothing, while the list replaced the defaults: the patient's name
    was stored and returned in clear.
    """
    parts = path.split(".")
    name = parts[1]
    if name not in CASE_FIELDS:
        nearest, refused = _nearest_path(parts, limit)
        meant = "" if nearest is None else f" (did you mean {nearest}?)"
        also = "" if refused is None else f"; the path nearest it is refused too: {refused}"
        return (
            f"{path} names no field of a case{meant}, so it would mask nothing: a case's "
            f"fields are {', '.join(CASE_FIELDS)}; correct the path (patient data belongs in "
            f"case.attributes.NAME){also}"
        )
    if name in CASE_LIST_FIELDS:
        return None  # a path into its items: _through_list
    if name in CASE_MAP_FIELDS:
        if len(parts) == 2:
            return None
        key = parts[2]
        if key != "*" and not ATTRIBUTE_NAME.regex.fullmatch(key):
            lowered = ".".join([*parts[:2], key.lower()])
            refused = _path_problem(lowered, limit)  # over the limit: never advised
            meant = f" (did you mean {lowered}?)" if refused is None else ""
            also = "" if refused is None else f"; in lower case it is refused too: {refused}"
            return (
                f"{path} would mask nothing: attribute names are lower_snake_case (a-z, 0-9 "
                "and _, not starting with a digit; a case sending any other is refused) and "
                f"are matched exactly{meant}; write the name as callers send it{also}"
            )
        if len(parts) == 3:
            return None
        field = ".".join(parts[:3])
    elif len(parts) == 2:
        return None
    else:
        field = f"case.{name}"
    refused = _path_problem(field, limit)  # never advise a path the list refuses (review S43a)
    advice = f"mask {field} itself" if refused is None else f"the field is refused too: {refused}"
    return (
        f"{path} would mask nothing: {field} holds a single value, not an object with "
        f"fields; {advice}"
    )


_CASE_ID_PROBLEM = (
    "case.case_id cannot be masked: the decision log keeps case ids in clear so that "
    "decisions can be found by case (ListDecisions, audit export --case-id); send a "
    "pseudonymous case id instead of one that identifies the patient"
)


def _placement_problem(path: str) -> str | None:
    """Why ``path`` names a field that may not be masked (None: no such reason).

    The case id, fields decisions derive shown values from, fields derived from others, and
    paths into a list's items.
    """
    if path == "case.case_id":
        return _CASE_ID_PROBLEM
    return _derived_problem(path) or _rule_field_problem(path) or _through_list(path)


_SEPARATORS = re.compile(r"[,;\s]")
"""Characters in a path that say several paths were written as one item."""


def _shape_hint(path: str, limit: NameLimit = None) -> str:
    """What a path of no valid shape probably meant, as a note to add after it ("": nothing).

    Several paths in one item (``a;b``, ``a b``, a comma inside a TOML string) are named as
    such, and so is a pattern (``case.attributes.patient_*``, ``case.**``); otherwise a path
    the list accepts is suggested: ``Defaults``, ``Case.attributes.mrn``,
    ``CASE.ATTRIBUTES.MRN``, ``attributes.mrn``, ``case..attributes.mrn``,
    ``case.attributes.`` (``case.attributes.*``). Never a path the list would refuse.
    """
    text = path.strip()
    if _SEPARATORS.search(text):
        return (
            " (several paths in one item? separate them with commas in the flag or the "
            "variable, and write each as its own string in [audit] masked_fields)"
        )
    if any(glob in text for glob in "*?["):
        return (
            " (no patterns: `*` stands alone as the last part, for every key of an object, "
            "as in case.attributes.*; otherwise name each field)"
        )
    lowered = text.lower()
    if difflib.get_close_matches(lowered, [DEFAULTS_ITEM], n=1, cutoff=NEAR_MISS_CUTOFF):
        return f" (did you mean {DEFAULTS_ITEM}?)"
    parts = [part for part in text.split(".") if part]
    if parts and parts[0].lower() != "case":
        parts.insert(0, "case")
    if len(parts) < 2:
        return ""
    meant = ".".join(["case", *parts[1:]])
    # A final dot: every key under it, as `case.attributes.*` writes it.
    tries = [f"{meant}.*"] if text.endswith(".") else []
    tries += [meant, meant.lower()]  # attribute names are lower case
    refusals = []
    for candidate in tries:
        if not _PATH_RE.fullmatch(candidate):
            continue
        refused = _path_problem(candidate, limit)
        if refused is None:
            return f" (did you mean {candidate}?)"
        if _path_problem(candidate) is None:  # refused only for the server's name limit
            refusals.append(refused)
    # What was meant is refused under the limit alone: say so, as _nearest_path's callers do,
    # rather than nothing (the operator would learn it only at the next start).
    return f" (the path meant is refused too: {refusals[0]})" if refusals else ""


def _quoted(path: str) -> str:
    """``path`` quoted for a message: whole, or its start and length when it is long."""
    if len(path) <= SHOWN_PATH_CHARS:
        return repr(path)
    return f"{path[:SHOWN_PATH_CHARS]!r}... ({len(path)} characters)"


def _shape_problem(bad: list[str], limit: NameLimit = None) -> str:
    """Why the paths ``bad`` are no masked field paths at all (not dotted ``case.`` paths)."""
    shown = ", ".join(_quoted(path) + _shape_hint(path, limit) for path in bad)
    return (
        f"invalid masked field path(s): {shown}; a path is dotted "
        "and starts with `case.` (e.g. case.attributes.patient_name, or "
        f"case.attributes.* for every attribute; `{DEFAULTS_ITEM}` stands for the "
        "built-in list). Roster data is staff data and is not masked."
    )


def _path_problem(path: str, limit: NameLimit = None) -> str | None:
    """Why the list would refuse ``path`` on its own (None: it would accept it).

    The one test of a single path: ``check_masked_fields`` refuses with these words, and
    ``_nearest_path`` suggests only a path it passes. ``limit``: the server's limit on an
    attribute name and its setting's name (None: not checked); a path advised under it is
    checked against it too, since ``serve`` refuses a longer name (review S43i).
    """
    placement = _placement_problem(path)
    if placement is not None:
        return placement
    if not _PATH_RE.fullmatch(path):  # `$` alone admits a final "\n"
        return _shape_problem([path], limit)
    problem = _field_problem(path, limit)
    if problem is None and limit is not None:
        return _length_problem(path, *limit)
    return problem


def _expanded(paths: tuple[str, ...]) -> tuple[str, ...]:
    """``paths`` with ``defaults`` replaced by the default paths, each path once, in order."""
    items = (
        item
        for path in paths
        for item in (DEFAULT_MASKED_PATHS if path == DEFAULTS_ITEM else (path,))
    )
    return tuple(dict.fromkeys(items))


def check_masked_fields(
    paths: tuple[str, ...],
    *,
    max_name_chars: int | None = None,
    limit_origin: str = limit_flag("max_id_chars"),
) -> tuple[str, ...]:
    """Validate masked field paths (``case.attributes.patient_name``, ``case.attributes.*``).

    Every path accepted masks a field a case can hold: one naming no field of a case, going
    below a single value or into a list's items, or naming an attribute no caller can send,
    is refused (it would silently mask nothing, and the list replaces the defaults).

    Args:
        paths: The configured list; the item ``defaults`` stands for ``DEFAULT_MASKED_PATHS``.
        max_name_chars: The server's limit on an attribute name (``--max-id-chars``): a longer
            name is one no caller can send, so a path naming it is refused too (None: a
            command that serves nothing, such as ``rules check``, does not check it).
        limit_origin: How to name that limit's setting (its flag, ``$VAR`` or ``file:line``).

    Returns:
        The paths, ``defaults`` expanded, each path once, in their order (checking them again
        returns them unchanged).

    Raises:
        ConfigError: Naming each invalid path, or if the list names no path at all; several
            problems are numbered, on one line (``3 problems in the masked field list: (1)
            ... (2) ... (3) ...``).
    """
    paths = _expanded(paths)
    if not paths:
        raise ConfigError(
            "the masked field list names no field, so nothing would be masked (the list "
            f"replaces the defaults); list the fields to mask (`{DEFAULTS_ITEM}` stands for "
            f"the built-in list: {DEFAULTS_ITEM},case.attributes.NAME adds to it), or leave "
            "the setting unset to mask the defaults"
        )
    limit = None if max_name_chars is None else (max_name_chars, limit_origin)
    problems, bad = [], []
    for path in paths:
        problem = _path_problem(path, limit)
        if problem is None:
            continue
        if _placement_problem(path) is None and not _PATH_RE.fullmatch(path):
            bad.append(path)  # one message for every path of no valid shape
        else:
            problems.append(problem)
    if bad:
        problems.append(_shape_problem(bad, limit))
    if problems:
        raise ConfigError(_LONG_WORD.sub(_shortened, _numbered(problems)))
    return paths


def _numbered(problems: list[str]) -> str:
    """One problem as it is; several numbered, on one line.

    Review S43a: joined with ``; ``, which every problem holds itself, several refusals read
    as one run-on sentence. One line, as every setting's error is: the command line puts
    ``caseroute:`` (and the flag, variable or ``file:line``) before the first line only.
    """
    if len(problems) == 1:
        return problems[0]
    numbered = " ".join(f"({n}) {p.rstrip('.')}." for n, p in enumerate(problems, 1))
    return f"{len(problems)} problems in the masked field list: {numbered}"


def _length_problem(path: str, max_chars: int, origin: str) -> str | None:
    """Why ``path`` names an attribute longer than callers may send (None: it does not).

    Review S43a: such a path was accepted and masked nothing, since the server refuses a case
    sending the name (``--max-id-chars``), while the list replaced the defaults. A default
    path is let be (``date_of_birth`` is 13 characters): the built-in list is a net for
    names callers may send, and a server whose limit is below one of them still starts.
    """
    parts = path.split(".")
    if len(parts) != 3 or parts[1] not in CASE_MAP_FIELDS or parts[2] == "*":
        return None
    if path in DEFAULT_MASKED_PATHS:
        return None
    name = parts[2]
    if len(name) <= max_chars:
        return None
    return (
        f"{path} would mask nothing: its attribute name is {len(name)} characters, and the "
        f"server refuses a case sending an attribute name longer than {max_chars} ({origin}); "
        f"write the name as callers send it, or raise {origin} if they send names that long"
    )


def _shortened(found: re.Match[str]) -> str:
    """A path too long to show whole: its start and its length."""
    return f"{found[0][:SHOWN_PATH_CHARS]}... ({len(found[0])} characters)"


def masking_warnings(paths: tuple[str, ...]) -> tuple[str, ...]:
    """What to tell the operator at start about a checked masked field list (empty: nothing).

    The list replaces the defaults: every default it no longer masks is named, with how to
    keep it; an attribute path that looks like one of those (``case.attributes.pateint_name``)
    is named as the probable typo it is (attribute names match exactly).

    Args:
        paths: The list as ``check_masked_fields`` returns it.

    Returns:
        One line per warning; no field values, only paths.
    """
    dropped = [d for d in DEFAULT_MASKED_PATHS if not any(covered_by(d, p) for p in paths)]
    if not dropped:
        return ()
    added = [p for p in paths if p not in DEFAULT_MASKED_PATHS]
    warnings = [
        (
            "the masked fields configured (--audit-masked-fields, CASEROUTE_AUDIT_MASKED_FIELDS "
            f"or [audit] masked_fields) replace the defaults and leave {len(dropped)} of them "
            f"unmasked: {', '.join(dropped)}; patient data a case sends in them is stored in the "
            f"decision log and returned in clear. To keep masking them, add `{DEFAULTS_ITEM}` to "
            f"the list ({','.join([DEFAULTS_ITEM, *added])}), or name them"
        )
    ]
    for path in paths:
        name = path.removeprefix(ATTRIBUTE_PATHS)
        if name in (path, "*") or path in DEFAULT_MASKED_PATHS:
            continue
        close = _near_default(name, tuple(dropped))
        if close:
            default = ATTRIBUTE_PATHS + close[0]
            warnings.append(
                f"the masked field {path} looks like the default {default}, which is not "
                f"masked: attribute names match exactly, so a case's {close[0]} is stored "
                f"in clear; if {path} is a typo, write {default}"
            )
    return tuple(warnings)


def replaced_mask_warnings(
    paths: tuple[str, ...], origin: str, replaced: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[str, ...]:
    """A warning for each replaced masked field list that masks what the list in force does not.

    Review S43a: a flag replaces the variable's and the file's list, and a variable the
    file's, silently; ``[audit] masked_fields = ["defaults", "case.attributes.insurance_no"]``
    beside a forgotten ``CASEROUTE_AUDIT_MASKED_FIELDS=defaults`` stored insurance numbers in
    clear, and nothing said why.

    Args:
        paths: The list in force, checked.
        origin: Where it came from (``--audit-masked-fields``...).
        replaced: ``(origin, checked paths)`` of each list it replaced.

    Returns:
        One line per such list; paths only, no values.
    """
    warnings = []
    for where, other in replaced:
        lost = [p for p in other if not any(covered_by(p, q) for q in paths)]
        if lost:
            warnings.append(
                f"{where} sets masked fields too, but {origin} replaces it (flags come "
                f"before variables, variables before the file), so {len(lost)} field(s) it "
                f"masks are stored in clear: {', '.join(lost)}; add them to {origin}, or "
                f"remove the setting you did not mean"
            )
    return tuple(warnings)


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
