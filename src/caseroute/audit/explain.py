"""Rule traces of stored decisions, rendered from the ruleset source the decision log holds.

A decision is stored with its rules as data (``RuleResults``: which leaf conditions held,
which rules fired, the masked values read); the clause texts are the ruleset's own words, and
the log keeps each ruleset's source once, as a blob keyed by its sha256. ``StoredExplainer``
renders the traces from them, so a retry, GetDecision, ``audit show`` and export give the
caller what it got first. A ruleset this process prepared is used as it is; any other is
compiled from its blob once (``engine.trace`` keeps the plan by sha256).
"""

from __future__ import annotations

from collections.abc import Callable

from caseroute.audit.record import AuditRecord, Blob
from caseroute.domain.decision import Decision, Explanation, RuleTrace
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.domain.errors import RulesetError
from caseroute.engine.trace import TracePlan, explain_rules, known_plan, plan_traces
from caseroute.rules.compiler import compile_source
from caseroute.rules.source import parse_yaml


class StoredRulesetError(ValueError):
    """The ruleset a stored decision names cannot be had from the log (missing or damaged)."""


class StoredExplainer:
    """Renders the rule traces of stored decisions (a ``RuleExplainer``)."""

    def __init__(self, get_blob: Callable[[str], Blob | None]) -> None:
        """Read ruleset sources with ``get_blob`` (the decision log's)."""
        self._get_blob = get_blob

    def __call__(self, explanation: Explanation) -> tuple[RuleTrace, ...]:
        """The traces of ``explanation``'s rules, rendered from its ``rule_results``.

        Raises:
            StoredRulesetError: If the log has no usable source for its ruleset.
            RuleResultsMismatchError: If the results do not fit that ruleset.
        """
        results = explanation.rule_results
        if results is None:
            return explanation.rules
        return explain_rules(self._plan(explanation.ruleset_sha256), results)

    def decision(self, record: AuditRecord) -> Decision:
        """The decision a record stores, with its rule traces rendered.

        Raises:
            KeyError, TypeError, ValueError: If the record's decision is damaged or its rules
                cannot be rendered.
        """
        return decision_from_dict(record.decision, self)

    def _plan(self, sha256: str) -> TracePlan:
        plan = known_plan(sha256)
        if plan is not None:
            return plan
        blob = self._get_blob(sha256)
        if blob is None:
            raise StoredRulesetError(f"the decision log has no ruleset source {sha256}")
        try:
            compiled = compile_source(parse_yaml(blob.content, f"<decision log {sha256[:12]}>"))
        except RulesetError:
            raise StoredRulesetError(f"the stored ruleset {sha256} does not compile") from None
        if compiled.sha256 != sha256:
            raise StoredRulesetError(f"the stored ruleset {sha256} hashes to another sha256")
        return plan_traces(compiled)
