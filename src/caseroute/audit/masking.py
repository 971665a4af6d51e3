"""PHI minimisation: configured field paths are stored as keyed HMAC digests, never in clear.

A masked value becomes ``"hmac-sha256:<hex>"``: equal inputs still match each other (so an
auditor can follow one patient across decisions with the key holder's help), but the value
cannot be read back. Replay cannot use masked fields; ``caseroute rules check`` warns when a
rule reads one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from caseroute.domain.errors import Problem, Severity
from caseroute.rules.ir import AllOf, AnyOf, Cond, LeafRef, NotOf
from caseroute.rules.model import CompiledRuleset

MASK_PREFIX = "hmac-sha256:"

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "case.attributes.patient_name",
    "case.attributes.patient_id",
    "case.attributes.member_id",
    "case.attributes.mrn",
    "case.attributes.nhs_number",
    "case.attributes.date_of_birth",
    "case.attributes.email",
    "case.attributes.phone",
    "case.attributes.address",
    "case.attributes.notes",
    "case.attributes.free_text",
    "case.attributes.subject",
)
"""Patient names and identifiers and free-text fields, by default."""


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces values at configured paths with keyed digests.

    Attributes:
        key: The HMAC key (keep it outside the audit database).
        paths: Dotted paths into ``{"case": ..., "roster": ...}``; a path may end in ``*`` to
            mask every key under a mapping (``case.attributes.*``).
    """

    key: bytes
    paths: tuple[str, ...] = DEFAULT_MASKED_PATHS

    def digest(self, value: object) -> str:
        """The masked form of one value."""
        text = value if isinstance(value, str) else repr(value)
        return MASK_PREFIX + hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def mask(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with every configured path masked (absent paths are skipped)."""
        out: dict[str, Any] = _copy(data)
        for path in self.paths:
            parts = path.split(".")
            node: Any = out
            for part in parts[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                continue
            last = parts[-1]
            keys = list(node) if last == "*" else [last] if last in node else []
            for key in keys:
                node[key] = self.digest(node[key])
        return out

    def covers(self, field_path: str) -> bool:
        """Whether a rule field path (``case.attributes.x``) is masked in the audit record."""
        return any(
            field_path == p or (p.endswith(".*") and field_path.startswith(p[:-1]))
            for p in self.paths
        )


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _leaf_ids(cond: Cond) -> Iterator[str]:
    if isinstance(cond, LeafRef):
        yield cond.leaf_id
    elif isinstance(cond, AllOf | AnyOf):
        for child in cond.children:
            yield from _leaf_ids(child)
    elif isinstance(cond, NotOf):
        yield from _leaf_ids(cond.child)


def masked_reads(ruleset: CompiledRuleset, masker: Masker) -> list[Problem]:
    """A warning for every rule that reads a field the audit log masks.

    Such a rule still decides correctly when serving, but replay of its recorded decisions
    sees only the digest, so it cannot reproduce them.

    Args:
        ruleset: The compiled ruleset.
        masker: The audit masking settings.

    Returns:
        Warnings (``audit.masked_field``), one per rule and field, located at the rule.
    """
    problems = []
    for rule in ruleset.rules:
        read = sorted(
            {p for leaf_id in _leaf_ids(rule.when) for p in ruleset.leaves[leaf_id].paths}
        )
        problems += [
            Problem(
                "audit.masked_field",
                f"rule reads `{path}`, which the audit log stores only as a keyed digest: "
                "replay cannot reproduce its decisions. Route on a non-identifying field "
                "instead, or stop masking this field (--audit-masked-fields) if it is not PHI",
                ruleset.path,
                rule.line,
                0,
                rule.rule_id,
                Severity.WARNING,
            )
            for path in read
            if masker.covers(path)
        ]
    return problems
