"""The ruleset lifecycle operators drive: list, read, validate, activate, roll back, reload.

The one object the admin API (gRPC ``RulesetAdmin``), SIGHUP and the file poller talk to. It
owns the rulesets directory on disk: activation and rollback rewrite a ruleset's pointer file
(``rulesets/<name>/serving.yaml``), then reload, so the disk is always the truth a restart
reads. Every change of an active or shadow version is recorded in the decision log's hash
chain *before* the new state serves (who, when, from which version and sha256 to which), so an
auditor can tell which version was active at any instant; if the log cannot be written the
change is not made.

Never imports gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from caseroute.domain.errors import Problem


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One loaded version of a ruleset.

    Attributes:
        version: The version string (``2025.06.0``).
        sha256: sha256 of its source text.
        path: The file it was loaded from (an operator-facing path, for ListRulesets).
    """

    version: str
    sha256: str
    path: str


@dataclass(frozen=True, slots=True)
class RulesetInfo:
    """What the server holds for one ruleset name (ListRulesets).

    Attributes:
        name: Ruleset name.
        active_version: The version unpinned requests get (None: none can serve unpinned).
        shadow_version: The version evaluated in shadow beside it, or None.
        previous_versions: Earlier active versions, most recent last (``Rollback`` takes the
            last one).
        versions: Every loaded (servable) version, sorted by version.
        last_reload: When the last load or reload that read this ruleset finished.
        last_error: Why the last load of some source of this ruleset failed (``file:line``
            first), or None.
    """

    name: str
    active_version: str | None
    shadow_version: str | None
    previous_versions: tuple[str, ...]
    versions: tuple[VersionInfo, ...]
    last_reload: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class RulesetChange:
    """One change of what serves a ruleset name, as recorded in the hash chain.

    Attributes:
        ruleset_name: The ruleset.
        role: ``active`` or ``shadow``.
        from_version: The version serving that role before ("" if none).
        from_sha256: Its sha256 ("" if none).
        to_version: The version serving it after ("" if none).
        to_sha256: Its sha256 ("" if none).
    """

    ruleset_name: str
    role: str
    from_version: str
    from_sha256: str
    to_version: str
    to_sha256: str


@dataclass(frozen=True, slots=True)
class LifecycleOutcome:
    """What a reload, activation or rollback did.

    Attributes:
        action: ``load``, ``reload``, ``activate`` or ``rollback``.
        actor: Who asked (``admin:<identity>``, ``signal:SIGHUP``, ``poll``, ``startup``).
        at: When the new state was swapped in.
        changes: Every change of an active or shadow version (each recorded in the chain).
        errors: One line per source that did not load (``path: N problem(s)``); the full
            problems are in ``RulesetInfo.last_error`` and the server log.
    """

    action: str
    actor: str
    at: datetime
    changes: tuple[RulesetChange, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RulesetText:
    """A loaded version's source (GetRuleset).

    Attributes:
        name: Ruleset name.
        version: Its version.
        sha256: sha256 of ``text``.
        text: The YAML source exactly as loaded.
    """

    name: str
    version: str
    sha256: str
    text: str


class RulesetAdminCore(Protocol):
    """What the admin transport needs (``RulesetLifecycle`` implements it; tests may fake it).

    Errors: ``RulesetNotFoundError`` (unknown name or version), ``RulesetStateError`` (the
    state does not allow it; nothing changed), ``AuditUnavailableError`` (the change could not
    be recorded in the decision log; nothing changed).
    """

    def list_rulesets(self) -> list[RulesetInfo]:
        """Every ruleset name the server knows, loaded or failed, sorted by name."""
        ...

    def get_source(self, name: str, version: str) -> RulesetText:
        """The source of ``name@version`` ("" version: the active one)."""
        ...

    def validate(self, text: str, file_name: str) -> list[Problem]:
        """Every problem of a ruleset source (compile and engine build); nothing activated.

        Args:
            text: YAML source.
            file_name: Name used in ``file:line`` locations (no directory).

        Returns:
            Every problem found, errors and warnings; empty when it would load cleanly.
        """
        ...

    def activate(self, name: str, version: str, actor: str) -> LifecycleOutcome:
        """Make a loaded version active (pointer file rewritten, chain records it)."""
        ...

    def rollback(self, name: str, actor: str) -> LifecycleOutcome:
        """Make the previously active version active again."""
        ...

    def reload(self, actor: str) -> LifecycleOutcome:
        """Re-read the rulesets directory and swap in the new state if it built."""
        ...
