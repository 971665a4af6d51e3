"""Masking and the stored record bytes stay byte-identical to the commit before the per-call levers.

Every expected value here was produced by fbbb805 (before masking planned its paths once, copied
a keyed HMAC instead of rebuilding it, and copied only the dicts it changes): a change that
alters one stored byte or digest fails these tests. The stored texts' and chain hashes were
rewritten once since, when records began to name their masking key (``masked_with``): with
that key left out of the input, the code of that change still gave fbbb805's values. The
stored texts and chain hash of the batches masked with the defaults *and* ``case.attributes.*``
were rewritten once more (review S42a): each default attribute was digested twice there (its
record held the digest of its digest, the reply the value's own digest); now once, the replies
unchanged. The reference masker below skips a path another one covers, as ``_plan`` does.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.fingerprint import canonical_json
from caseroute.engine.case_rules import EngineKind
from caseroute.service import DecideCommand, RoutingCore, load_registry
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audit_config,
    make_agent,
    make_case,
    make_roster,
)

PATHS = (
    "case.attributes.patient_name",
    "case.attributes.x.*",
    "case.attributes.notes",
    "case.sla_clocks.name",
    "case.region",
    "roster.secret",
    "case.attributes.list.*",
    "case.extra.*",
)


def _h(hex_digest: str) -> str:
    return "hmac-sha256:" + hex_digest


def _data() -> dict[str, Any]:
    return {
        "case": {
            "case_id": "C1",
            "region": "US-TX",
            "sla_clocks": [{"name": "a"}],
            "attributes": {
                "patient_name": "Ada",
                "notes": {"k": [1, 2]},
                "x": {"a": 1, "b": True, "c": None},
                "list": ["p"],
                "payer": "acme",
            },
            "extra": {},
        },
        "roster": "not-a-dict",
    }


def test_mask_gives_the_golden_dict_and_leaves_the_input_unchanged() -> None:
    """Paths through lists, non-dict parents, ``*`` over a dict and over a list, absent keys."""
    masker = Masker(b"golden-key", PATHS)
    data = _data()
    masked = masker.mask(data)
    assert {
        "case": {
            "attributes": {
                "list": ["p"],
                "notes": _h("7ebe84f9bcaee7eb7cfd762215bda70bdbf83d8b637dcaf7972e37ac8482e9e3"),
                "patient_name": _h(
                    "35be5d7aec2febaa51d96fbf966b66668e5506a94ed14fb39e0a10be86d99d51"
                ),
                "payer": "acme",
                "x": {
                    "a": _h("1f2ae6bfd4b6a0b4e72e224b9277b3bb128489f698bc7a501c9a0c05c7ca7059"),
                    "b": _h("26c0c54a8170509fa357bd86e6d502b65aa721c8317e811aa6b8813d70667282"),
                    "c": _h("2fb20407d55e946d41c6eab525defa9aeca3de0755c9f4bd058727864f0fcc4f"),
                },
            },
            "case_id": "C1",
            "extra": {},
            "region": _h("46cc0e5119e3a5a6a8aa9c6b2643a5960ebd60693461aadc628cdc98308cb4e7"),
            "sla_clocks": [{"name": "a"}],
        },
        "roster": "not-a-dict",
    } == masked
    assert _data() == data


def test_mask_keeps_the_key_order_of_the_input() -> None:
    """A masked value stays where it was: the copied dicts list their keys in the input's order."""
    masked = Masker(b"golden-key", PATHS).mask(_data())
    assert list(masked["case"]) == ["case_id", "region", "sla_clocks", "attributes", "extra"]
    assert list(masked["case"]["attributes"]) == ["patient_name", "notes", "x", "list", "payer"]


def test_mask_with_the_default_paths_gives_the_golden_dict() -> None:
    """The default paths mask a number and a short string, and leave other keys alone."""
    data = {"case": {"attributes": {"mrn": 42, "email": "a@b", "payer": "x"}, "flags": ["f"]}}
    assert {
        "case": {
            "attributes": {
                "email": _h("d269e571aa9e14e7997822577264553549e1b5dcfcc8104fc6c32fbeeb025853"),
                "mrn": _h("a0e195cf291e42f135d9349acf80aac3d3f7fa288b3b0f217d21aa161f9e0c0a"),
                "payer": "x",
            },
            "flags": ["f"],
        }
    } == Masker(b"golden-key").mask(data)


def test_masked_values_lists_the_golden_pairs_in_path_order() -> None:
    """The ``(path, clear value)`` pairs ``mask`` replaces, ``*`` expanded in the dict's order."""
    assert Masker(b"golden-key", PATHS).masked_values(_data()) == [
        ("case.attributes.patient_name", "Ada"),
        ("case.attributes.x.a", 1),
        ("case.attributes.x.b", True),
        ("case.attributes.x.c", None),
        ("case.attributes.notes", {"k": [1, 2]}),
        ("case.region", "US-TX"),
    ]


def test_digests_and_keyed_hash_are_the_golden_hmacs() -> None:
    """A non-string is digested as its repr; the keyed hash is plain hex of the text's UTF-8."""
    masker = Masker(b"golden-key", PATHS)
    assert [
        _h("6d732120886abe6771528ed1f1f94efbd804e94a15f85cd77ad5601ecdd31687"),
        _h("35be5d7aec2febaa51d96fbf966b66668e5506a94ed14fb39e0a10be86d99d51"),
        _h("2fb20407d55e946d41c6eab525defa9aeca3de0755c9f4bd058727864f0fcc4f"),
        "7959687ee69ca10676d4f36fc9e821753dc8457f00642107fbb1b4469211e827",
    ] == [
        masker.digest(12345),
        masker.digest("Ada"),
        masker.digest(None),
        masker.keyed_hash("h\u00e9llo"),
    ]


def test_a_masker_compares_pickles_and_digests_as_its_key_and_paths_say() -> None:
    """Equal key and paths are equal maskers; a pickled masker digests as the original."""
    masker = Masker(b"golden-key", PATHS)
    copy = pickle.loads(pickle.dumps(masker))  # noqa: S301 - our own bytes
    assert (masker == Masker(b"golden-key", PATHS), masker == Masker(b"k2")) == (True, False)
    assert masker.digest("Ada") == copy.digest("Ada")
    assert masker.masked_values(_data()) == copy.masked_values(_data())
    assert Masker(b"k2").digest("Ada") != masker.digest("Ada")


def _stored(directory: Path, extra_paths: tuple[str, ...]) -> list[str]:
    """Two batches decided and recorded: the replies' digest, the records' and the last hash."""
    config = audit_config(directory)
    masker = Masker(config.masker().key, DEFAULT_MASKED_PATHS + extra_paths)
    registry = load_registry(REFERENCE_RULESET.parent, EngineKind.PYTHON)
    core = RoutingCore(registry, config.open_store(), masker, lambda: NOW)
    roster = make_roster(
        make_agent("a1"), make_agent("a2", languages=frozenset({"es"})), make_agent("a3")
    )
    cases = (
        make_case(
            case_id="C1",
            attributes={
                "patient_name": "Ada Lovelace",
                "mrn": 123456,
                "notes": "call Ada Lovelace back",
                "payer": "acme",
            },
        ),
        make_case(
            case_id="C2", preferred_language="es", attributes={"member_id": "M-77", "email": "en"}
        ),
        make_case(case_id="C3"),
    )
    out = []
    for detail in (True, False):
        command = DecideCommand(
            f"req-golden-{detail}", "", "", cases, roster, NOW, detail, "alice", batch=True
        )
        replies = [decision_to_dict(d) for d in core.decide(command).decisions]
        out.append(hashlib.sha256(canonical_json(replies).encode()).hexdigest())
    records = list(core.audit.records())
    texts = "\n".join(r.hashed_text or "" for r in records)
    out += [hashlib.sha256(texts.encode()).hexdigest(), records[-1].record_hash]
    core.audit.close()
    return out


def test_recorded_batches_keep_the_golden_bytes(tmp_path: Path) -> None:
    """Replies, stored texts and chain hash of two PHI-carrying batches, default masking."""
    assert _stored(tmp_path, ()) == [
        "46a2f37d5587ec70df2104e06e3fcf027fadcab34ae1521eda6cce89bbab863b",
        "fda57029c84513c5d4c34441584950eb249586c134b7e61fb3371d9684243581",
        "2f5daaab35191021aa2a7126a55af737bb53399dd00562197d4efa89e256a935",
        "70eae3dabf294a57387e2bacf25f28a6bef53129e0111f2b9b654372e89ca54c",
    ]


def test_recorded_batches_keep_the_golden_bytes_when_explanations_are_scrubbed(
    tmp_path: Path,
) -> None:
    """Masking the location, language and every attribute rewrites explanation texts as before."""
    extra = ("case.patient_location", "case.preferred_language", "case.attributes.*")
    assert _stored(tmp_path, extra) == [
        "a7e6b2328b60c929e30f5d43a8588c2b1ea3047b898888dad0f8490b9d0c4d80",
        "62e30cfe4b02dc2effa9fb0dde6f7aeb9878b027c17e80e26157a082790ec533",
        "266e7e8adf21dbbdc64431d2ab4cf5767eb0da2555d5899f65e7105ecd9a3204",
        "5763b7367b2c521bb582af8fe36335926a9e298e8a4e3e220f965e09fa1184d2",
    ]


def _walked(paths: tuple[str, ...]) -> list[str]:
    """The paths a masker walks: each once, none that another masks too (above it, or ``X.*``)."""

    def masks(by: str, path: str) -> bool:
        parent = by.removesuffix("*") if by.endswith(".*") else by + "."
        return by != path and (path + ".").startswith(parent)

    return [
        p for i, p in enumerate(paths) if p not in paths[:i] and not any(masks(b, p) for b in paths)
    ]


def _reference_mask(masker: Masker, data: dict[str, Any]) -> dict[str, Any]:
    """``Masker.mask`` as 1665a64 wrote it: a deep copy, then each path walked, in order."""

    def copy(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    out: dict[str, Any] = copy(data)
    for path in _walked(masker.paths):
        parts = path.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        last = parts[-1]
        keys = list(node) if last == "*" else [last] if last in node else []
        for key in keys:
            node[key] = masker.digest(node[key])
    return out


def _reference_values(masker: Masker, data: dict[str, Any]) -> list[tuple[str, Any]]:
    """``Masker.masked_values`` as 1665a64 wrote it."""
    found: list[tuple[str, Any]] = []
    for path in _walked(masker.paths):
        parts = path.split(".")
        node: Any = data
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        last, parent = parts[-1], ".".join(parts[:-1])
        keys = list(node) if last == "*" else [last] if last in node else []
        found += [(f"{parent}.{key}", node[key]) for key in keys]
    return found


@pytest.mark.parametrize(
    "paths",
    [
        ("case.attributes.a", "case.*", "case.attributes.b"),
        ("case.attributes.x.*", "case.attributes.*"),
        ("case.attributes.*", "case.attributes.x.*"),
        ("case.attributes.a", "case.attributes.*", "case.attributes.a"),
        ("case.attributes.a", "case.region", "case.attributes.b", "case.attributes.x.p"),
        DEFAULT_MASKED_PATHS,
    ],
)
def test_overlapping_and_interleaved_paths_mask_in_the_order_given(paths: tuple[str, ...]) -> None:
    """Paths sharing a parent are walked together only when adjacent: the reference's result."""
    masker = Masker(b"golden-key", paths)
    data = {
        "case": {
            "attributes": {"a": "A", "b": "B", "x": {"p": 1}, "mrn": 7},
            "region": "R",
            "extra": [],
        }
    }
    assert masker.mask(data) == _reference_mask(masker, data)
    assert masker.masked_values(data) == _reference_values(masker, data)
