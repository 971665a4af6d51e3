"""The facade transports call: decide (audited, idempotent) and read the decision log.

``routing`` is the decide path, ``decision_log`` the paged reading of recorded decisions; both
never import gRPC.
"""

from caseroute.registry import RulesetRegistry, RulesetStatus, load_registry
from caseroute.service.decision_log import (
    AuditedDecision,
    DecisionLog,
    DecisionPage,
    DecisionQuery,
)
from caseroute.service.routing import (
    DecideCommand,
    DecideResult,
    DecisionObserver,
    RoutingCore,
    batch_size_violations,
    request_decision_id,
    request_sha256,
)

__all__ = [
    "AuditedDecision",
    "DecideCommand",
    "DecideResult",
    "DecisionLog",
    "DecisionObserver",
    "DecisionPage",
    "DecisionQuery",
    "RoutingCore",
    "RulesetRegistry",
    "RulesetStatus",
    "batch_size_violations",
    "load_registry",
    "request_decision_id",
    "request_sha256",
]
