"""resolve_candidate(): a path, a ruleset's home, NAME@VERSION on disk or from the decision log."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseroute.audit.record import Blob, BlobKind
from caseroute.domain.errors import RulesetNotFoundError
from caseroute.replay import resolve_candidate
from caseroute.rules.compiler import MAX_RULESET_BYTES
from caseroute.testing import REFERENCE_HOME, REFERENCE_RULESET, compile_text
from tests.replay.recorded import BASE, CANDIDATES

BASE_SHA = compile_text(BASE).sha256
"""The sha256 ``test@1`` decided with."""


class _Log:
    """A decision log answering for test@1 with the given sources."""

    def __init__(self, blobs: dict[str, Blob]) -> None:
        self.blobs = blobs

    def decided_sha256s(self, ruleset_name: str, ruleset_version: str) -> frozenset[str]:
        return (
            frozenset(self.blobs)
            if (ruleset_name, ruleset_version) == ("test", "1")
            else (frozenset())
        )

    def get_blob(self, sha256: str) -> Blob | None:
        return self.blobs.get(sha256)


def test_a_rulesets_home_resolves_to_its_active_version() -> None:
    """A ruleset's home gives the version its serving.yaml names active."""
    source = resolve_candidate(str(REFERENCE_HOME), Path("unused"))
    assert source.path == str(REFERENCE_RULESET / "ruleset.yaml")


def test_flat_directory_declaring_the_version_resolves(tmp_path: Path) -> None:
    """NAME@VERSION finds a flat rulesets/NAME/ruleset.yaml that declares that version."""
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "ruleset.yaml").write_text(CANDIDATES["queue"])
    assert resolve_candidate("test@2", tmp_path).compile().version == "2"


def test_missing_path_says_what_to_pass(tmp_path: Path) -> None:
    """A path that does not exist (and is no NAME@VERSION) is refused saying what is accepted."""
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate(str(tmp_path / "nope.yaml"), tmp_path)
    assert str(caught.value) == (
        f"candidate {tmp_path / 'nope.yaml'} does not exist; pass a ruleset file, a ruleset "
        "directory or NAME@VERSION (looked up under --rulesets)"
    )


def test_version_from_the_log_uses_its_stored_source(tmp_path: Path) -> None:
    """NAME@VERSION absent on disk is the source the log stored when it decided."""
    log = _Log({BASE_SHA: Blob(BASE_SHA, BlobKind.RULESET, BASE)})
    source = resolve_candidate("test@1", tmp_path, log)
    assert (source.path, source.text) == ("test@1 (from the decision log)", BASE)


def test_version_whose_stored_source_was_edited_is_refused(tmp_path: Path) -> None:
    """A stored source that no longer hashes to the sha256 that decided is refused, not used."""
    edited = BASE.replace("case.urgency == 'urgent'", "case.urgency != 'urgent'")
    log = _Log({BASE_SHA: Blob(BASE_SHA, BlobKind.RULESET, edited)})
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate("test@1", tmp_path, log)
    assert str(caught.value) == (
        f"the decision log's source of test@1 (sha256 {BASE_SHA[:12]}) was edited: it no "
        "longer hashes to the sha256 that decided; run `caseroute audit verify`, or pass the "
        "ruleset's path instead"
    )


def test_version_with_two_stored_sources_is_refused(tmp_path: Path) -> None:
    """A version that decided with two different sources is ambiguous: refused, saying why."""
    log = _Log({s: Blob(s, BlobKind.RULESET, BASE) for s in ("s1", "s2")})
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate("test@1", tmp_path, log)
    assert str(caught.value) == (
        "test@1 decided with 2 different sources in the log (its file was edited after it "
        "decided); pass the ruleset's path instead"
    )


def test_version_whose_source_blob_is_missing_is_not_found(tmp_path: Path) -> None:
    """A version the log names but whose source blob is gone is reported not found."""
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate("test@1", tmp_path, _Log({"s1": Blob("s1", BlobKind.ROSTER, "{}")}))
    assert str(caught.value).startswith("no ruleset version test@1 under ")


def test_oversized_candidate_is_refused_unread(tmp_path: Path) -> None:
    """A candidate file over the ruleset size limit is refused naming the limit."""
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_RULESET_BYTES + 1))
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate(str(big), tmp_path)
    assert str(caught.value) == (
        f"candidate {big} is larger than {MAX_RULESET_BYTES} bytes; a ruleset file must be smaller"
    )


def test_unreadable_candidate_names_the_cause(tmp_path: Path) -> None:
    """A candidate that is not UTF-8 text is refused with the reason and what to pass."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RulesetNotFoundError) as caught:
        resolve_candidate(str(bad), tmp_path)
    assert str(caught.value) == (
        f"cannot read candidate {bad}: UnicodeDecodeError; pass a ruleset file, a ruleset "
        "directory or NAME@VERSION"
    )
