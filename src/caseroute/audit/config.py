"""Audit settings: where the decision log lives, the masking key, which fields are masked."""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker
from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.errors import ConfigError

log = logging.getLogger("caseroute.audit")

DEFAULT_AUDIT_DB = Path("var/audit.db")
KEY_BYTES = 32
_PATH_RE = re.compile(r"^case(\.[A-Za-z_][A-Za-z0-9_]*)+(\.\*)?$")


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """How decisions are recorded.

    Attributes:
        db: The SQLite decision log (created on first start).
        key_file: File holding the HMAC masking key as hex (created, mode 0600, if missing);
            ``None`` means ``<db>.key``. Keep it off the database's backups.
        key_hex: The key itself as hex (``CASEROUTE_AUDIT_KEY``); overrides ``key_file``.
        masked_fields: Case field paths stored as keyed digests.
    """

    db: Path = DEFAULT_AUDIT_DB
    key_file: Path | None = None
    key_hex: str | None = None
    masked_fields: tuple[str, ...] = DEFAULT_MASKED_PATHS

    @property
    def key_path(self) -> Path:
        """Where the key file is (or would be)."""
        return self.key_file or self.db.with_name(self.db.name + ".key")

    def masker(self) -> Masker:
        """The masker for these settings (creates the key file on first use).

        Raises:
            ConfigError: If the key or a masked field path is invalid.
        """
        return Masker(
            load_key(self.key_path, self.key_hex), check_masked_fields(self.masked_fields)
        )

    def open_store(self) -> SqliteAuditStore:
        """Open (creating if needed) the decision log.

        Raises:
            AuditUnavailableError: If the file cannot be opened or created.
        """
        return SqliteAuditStore(self.db)


def check_masked_fields(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Validate masked field paths (``case.attributes.patient_name``, ``case.attributes.*``).

    Raises:
        ConfigError: Naming each invalid path.
    """
    bad = [p for p in paths if not _PATH_RE.match(p)]
    if bad:
        raise ConfigError(
            f"invalid masked field path(s): {', '.join(map(repr, bad))}; a path is dotted "
            "and starts with `case.` (e.g. case.attributes.patient_name, or "
            "case.attributes.* for every attribute). Roster data is staff data and is not masked."
        )
    return paths


def load_key(path: Path, key_hex: str | None) -> bytes:
    """The masking key: from ``key_hex`` if given, else the key file (created if missing).

    Raises:
        ConfigError: If the key is not hex, is shorter than 16 bytes, or the key file is
            readable by other users or cannot be read or created.
    """
    if key_hex is not None:
        return _parse_key(key_hex.strip(), "CASEROUTE_AUDIT_KEY")
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
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the audit key file {path} is accessible to other users (mode "
            f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )
    return _parse_key(text.strip(), str(path))


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
