"""The candidate ruleset: found from a path or ``NAME@VERSION``, compiled once per process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from caseroute.audit.record import Blob, BlobKind, blob_sha256
from caseroute.domain.errors import RulesetNotFoundError
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.rules.compiler import (
    MAX_RULESET_BYTES,
    RULESET_FILE,
    compile_source,
    ruleset_file,
)
from caseroute.rules.layout import active_source, discover
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.source import parse_yaml

FROM_LOG = " (from the decision log)"
"""How a candidate read from the decision log's stored source ends its ``path`` (its problems'
``file``): no file on disk holds it, so ``rules check`` cannot be pointed at it."""


@dataclass(frozen=True, slots=True)
class CandidateSource:
    """A candidate ruleset's YAML, as text, so worker processes can compile it themselves.

    Attributes:
        path: Where it was read (named in ruleset problems as ``file:line``).
        text: The YAML source.
    """

    path: str
    text: str

    def compile(self) -> CompiledRuleset:
        """The compiled ruleset.

        Raises:
            RulesetError: With every problem found.
        """
        return compile_source(parse_yaml(self.text, self.path, past_duplicates=True))

    def load(self, engine: EngineKind) -> LoadedRuleset:
        """The compiled ruleset with its evaluators (the durable engine is per process).

        Raises:
            RulesetError: With every problem found.
            EngineUnavailableError: If durable_rules is selected and cannot be used.
            EngineValidationError: If durable_rules rejects the compiled definitions.
        """
        return prepare_ruleset(self.compile(), engine)


def _read(path: Path) -> CandidateSource:
    file = ruleset_file(path)
    try:
        if file.stat().st_size > MAX_RULESET_BYTES:
            raise RulesetNotFoundError(
                f"candidate {file} is larger than {MAX_RULESET_BYTES} bytes; a ruleset file "
                "must be smaller"
            )
        return CandidateSource(str(file), file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise RulesetNotFoundError(
            f"cannot read candidate {file}: {reason}; pass a ruleset file, a ruleset directory "
            "or NAME@VERSION"
        ) from None


class RulesetBlobs(Protocol):
    """What ``resolve_candidate`` needs of a decision log to find a version's stored source."""

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        """The sha256s the version decided with."""
        ...

    def get_blob(self, sha256: str) -> Blob | None:
        """One blob."""
        ...


def _from_log(log: RulesetBlobs, name: str, version: str) -> CandidateSource | None:
    """The source ``name@version`` decided with, as the log stored it (None: never decided)."""
    shas = sorted(log.decided_sha256s(name, version))
    if len(shas) > 1:
        raise RulesetNotFoundError(
            f"{name}@{version} decided with {len(shas)} different sources in the log (its "
            "file was edited after it decided); pass the ruleset's path instead"
        )
    blob = log.get_blob(shas[0]) if shas else None
    if blob is None or blob.kind is not BlobKind.RULESET:
        return None
    # The version that decided is the source that hashes to the recorded sha256; a source
    # edited in the log would replay as that version (review R32b F4), as audit show refuses.
    if type(blob.content) is not str or blob_sha256(BlobKind.RULESET, blob.content) != shas[0]:
        raise RulesetNotFoundError(
            f"the decision log's source of {name}@{version} (sha256 {shas[0][:12]}) was edited: "
            "it no longer hashes to the sha256 that decided; run `caseroute audit verify`, or "
            "pass the ruleset's path instead"
        )
    return CandidateSource(f"{name}@{version}{FROM_LOG}", blob.content)


def resolve_candidate(
    spec: str, rulesets: Path, log: RulesetBlobs | None = None
) -> CandidateSource:
    """The candidate named on the command line.

    Args:
        spec: A ruleset file or directory (a ruleset's home: the version its serving.yaml names
            active), or ``NAME@VERSION`` looked up under ``rulesets``
            (``rulesets/NAME/VERSION/ruleset.yaml``, or a flat ``rulesets/NAME/`` declaring it).
        rulesets: The rulesets directory.
        log: A decision log: ``NAME@VERSION`` not found under ``rulesets`` is read from the
            source the log stored when that version decided.

    Returns:
        Its source.

    Raises:
        RulesetNotFoundError: If nothing is found there; the message lists what is.
    """
    path = Path(spec)
    if path.exists() or "@" not in spec:
        if not path.exists():
            raise RulesetNotFoundError(
                f"candidate {spec} does not exist; pass a ruleset file, a ruleset directory "
                "or NAME@VERSION (looked up under --rulesets)"
            )
        return _read(active_source(path))
    name, _, version = spec.rpartition("@")
    return resolve_version(name, version, rulesets, log)


def resolve_version(
    name: str, version: str, rulesets: Path, log: RulesetBlobs | None = None
) -> CandidateSource:
    """The source of ``name@version``: under ``rulesets``, else as ``log`` stored it.

    Never reads a path the caller names (the admin API's entry: ``name`` and ``version`` are
    checked to be plain names first).

    Raises:
        RulesetNotFoundError: If nothing is found; the message lists what is (with paths).
    """
    versioned = rulesets / name / version
    if (versioned / RULESET_FILE).is_file():
        return _read(versioned)
    flat = rulesets / name
    if (flat / RULESET_FILE).is_file():
        source = _read(flat)
        compiled = source.compile()
        if (compiled.name, compiled.version) == (name, version):
            return source
    stored = _from_log(log, name, version) if log is not None else None
    if stored is not None:
        return stored
    found = sorted(
        f"{s.name_dir}@{s.version_dir}" for s in discover(rulesets).sources if s.name_dir
    )
    listing = ", ".join(found) if found else "none"
    in_log = "; nor has it decided any record in the decision log" if log is not None else ""
    raise RulesetNotFoundError(
        f"no ruleset version {name}@{version} under {rulesets} (expected "
        f"{versioned / RULESET_FILE}); versions there: {listing}{in_log}; pass --rulesets DIR "
        "or a path"
    )
