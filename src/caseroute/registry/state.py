"""One immutable registry state (rulesets by name and version, what serves) and its reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from caseroute.domain.errors import (
    NoRulesetLoadedError,
    RulesetNotFoundError,
    RulesetRetiredError,
)
from caseroute.domain.limits import quote_clipped
from caseroute.engine.case_rules import LoadedRuleset

ACTIVE = "active"
SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One loaded version of a ruleset.

    Attributes:
        version: The version string (``2025.06.0``).
        sha256: sha256 of its source text.
        path: The file it was loaded from.
    """

    version: str
    sha256: str
    path: str


@dataclass(frozen=True, slots=True)
class RulesetStatus:
    """What the registry holds for one ruleset name (the admin API's ListRulesets reads it).

    Attributes:
        name: Ruleset name.
        active_version: The version unpinned requests get (None: none can serve unpinned).
        shadow_version: The version evaluated in shadow beside it, or None.
        previous_versions: Earlier active versions from the pointer file, most recent last.
        versions: Every loaded (servable) version, sorted by version.
        last_reload: When the last load or reload that read this ruleset finished.
        last_error: What went wrong in that load (``file:line`` first), or None.
        retired_versions: Versions that served and left (rolled back from, or forgotten by
            ``previous_versions``), from the pointer file: a rollback never returns to them.
    """

    name: str
    active_version: str | None
    shadow_version: str | None
    previous_versions: tuple[str, ...]
    versions: tuple[VersionInfo, ...]
    last_reload: datetime | None
    last_error: str | None
    retired_versions: tuple[str, ...] = ()

    @property
    def sha256(self) -> str | None:
        """sha256 of the active version (None when there is none)."""
        return next((v.sha256 for v in self.versions if v.version == self.active_version), None)


@dataclass(frozen=True, slots=True)
class RulesetChange:
    """One change of the version serving a role of a ruleset, as the hash chain records it.

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
class ReloadReport:
    """What one reload swapped in.

    Attributes:
        at: When the new state was swapped in.
        changes: Every change of an active or shadow version, by ruleset name then role.
        failures: One line per source that did not load (``path: N problem(s)``).
    """

    at: datetime
    changes: tuple[RulesetChange, ...]
    failures: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One complete, immutable registry state; replaced whole, never changed.

    Attributes:
        versions: Name -> version -> prepared ruleset (every servable version).
        active: Name -> the version unpinned requests get.
        shadow: Name -> the version evaluated in shadow.
        previous: Name -> earlier active versions (from its pointer file).
        retired: Name -> versions that served and left (from its pointer file).
        default: The ruleset a request naming none gets.
        origins: Source path -> the rulesets loaded from it (a failing reload keeps them).
        errors: Name -> why some source or pointer of it did not load.
        load_errors: One line per source or pointer that did not load.
        reloaded_at: Name -> when a reload last read it.
        pointers: Name -> its pointer file (``serving.yaml``), when it has one.
        safeguarding_flags: Every loaded ruleset's safeguarding flag.
        missing_since: Source path -> when its files were first found missing, for sources
            kept serving as loaded meanwhile (``registry.build.MISSING_GRACE``).
    """

    versions: Mapping[str, Mapping[str, LoadedRuleset]]
    active: Mapping[str, str]
    shadow: Mapping[str, str] = field(default_factory=dict)
    previous: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retired: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default: str | None = None
    origins: Mapping[str, tuple[LoadedRuleset, ...]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    load_errors: tuple[str, ...] = ()
    reloaded_at: Mapping[str, datetime] = field(default_factory=dict)
    pointers: Mapping[str, str] = field(default_factory=dict)
    safeguarding_flags: frozenset[str] = frozenset()
    missing_since: Mapping[str, datetime] = field(default_factory=dict)

    def rulesets(self) -> set[LoadedRuleset]:
        """Every prepared ruleset this state holds."""
        return {r for versions in self.versions.values() for r in versions.values()}

    def serving(self, name: str, role: str) -> LoadedRuleset | None:
        """The ruleset serving ``role`` (active / shadow) for ``name``, if any."""
        version = (self.active if role == ACTIVE else self.shadow).get(name)
        return None if version is None else self.versions[name][version]

    def resolve(self, name: str, version: str) -> LoadedRuleset:
        """The ruleset a request selects (see ``RulesetRegistry.resolve``)."""
        if not self.versions:
            # Generic on purpose: the load errors name server paths and exception text; they
            # were logged in full when the load failed.
            raise NoRulesetLoadedError(
                "no ruleset is loaded on this server; its operators must fix the rulesets (the "
                "server log lists every problem) and restart or reload it; retry later or call "
                "another server"
            )
        chosen = name or self.default or ""
        versions = self.versions.get(chosen)
        if versions is None:
            raise RulesetNotFoundError(
                f"unknown ruleset {quote_clipped(chosen)}; loaded: "
                f"{', '.join(sorted(self.versions))}"
            )
        wanted = version or self.active.get(chosen)
        if wanted is None:
            raise RulesetNotFoundError(
                f"ruleset {quote_clipped(chosen)} has no active version (its operators must name "
                "one in its serving.yaml; the admin API's ListRulesets says why); pin one of the "
                f"loaded versions: {', '.join(sorted(versions))}"
            )
        if wanted not in versions:
            raise RulesetNotFoundError(
                f"ruleset {quote_clipped(chosen)} has no version {quote_clipped(wanted)}; loaded "
                f"versions: {', '.join(sorted(versions))}"
            )
        return versions[wanted]

    def serve(self, name: str, version: str) -> LoadedRuleset:
        """The ruleset a request selects, refusing a pinned version its operators retired.

        ``resolve`` plus one rule: a version ``serving.yaml`` lists under ``retired`` (the one
        a rollback left, or one ``previous`` forgot) does not decide, pinned or not, unless
        the pointer also names it active or shadow (a hand-edited file: the role wins).

        Raises:
            NoRulesetLoadedError: If nothing is loaded.
            RulesetNotFoundError: If the name or version is unknown.
            RulesetRetiredError: If the pinned version is retired.
        """
        ruleset = self.resolve(name, version)
        chosen = ruleset.compiled.name
        if (
            version in self.retired.get(chosen, ())
            and version != self.active.get(chosen)
            and version != self.shadow.get(chosen)
        ):
            active = self.active.get(chosen)
            instead = (
                f"pin the active version {quote_clipped(active)} or send no version"
                if active
                else "pin another loaded version"
            )
            raise RulesetRetiredError(
                f"ruleset {quote_clipped(chosen)} version {quote_clipped(version)} is retired "
                f"(its serving.yaml lists it under `retired`: rolled back from, or older than "
                f"the versions `previous` keeps) and no longer decides; {instead}, or ask its "
                f"operators to activate it again (caseroute rules activate {chosen} {version})"
            )
        return ruleset

    def status(self) -> dict[str, RulesetStatus]:
        """Per ruleset name (loaded or failed): what serves, every version, last error."""
        out = {}
        for name in sorted(set(self.versions) | set(self.errors)):
            versions = self.versions.get(name, {})
            out[name] = RulesetStatus(
                name=name,
                active_version=self.active.get(name),
                shadow_version=self.shadow.get(name),
                previous_versions=self.previous.get(name, ()),
                versions=tuple(
                    VersionInfo(v, r.compiled.sha256, r.compiled.path)
                    for v, r in sorted(versions.items())
                ),
                last_reload=self.reloaded_at.get(name),
                last_error=self.errors.get(name),
                retired_versions=self.retired.get(name, ()),
            )
        return out


def changes_between(old: Snapshot, new: Snapshot) -> tuple[RulesetChange, ...]:
    """Every change of the version (or content) serving a role, old -> new, in name order."""
    out = []
    for name in sorted(set(old.versions) | set(new.versions)):
        for role in (ACTIVE, SHADOW):
            before, after = old.serving(name, role), new.serving(name, role)
            b = (before.compiled.version, before.compiled.sha256) if before else ("", "")
            a = (after.compiled.version, after.compiled.sha256) if after else ("", "")
            if a != b:
                out.append(RulesetChange(name, role, *b, *a))
    return tuple(out)
