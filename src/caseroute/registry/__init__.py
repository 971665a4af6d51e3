"""The loaded rulesets: every version under a rulesets directory, which one serves, safe reload.

``state`` is one immutable state, ``build`` makes a new one from disk, ``core`` swaps it in
and closes what it replaced once no call uses it.
"""

from caseroute.registry.build import (
    DecidedLookup,
    RulesetPreparer,
    check_not_changed_after_deciding,
)
from caseroute.registry.core import BeforeSwap, RulesetRegistry, load_registry
from caseroute.registry.state import (
    ACTIVE,
    SHADOW,
    ReloadReport,
    RulesetChange,
    RulesetStatus,
    VersionInfo,
)

__all__ = [
    "ACTIVE",
    "SHADOW",
    "BeforeSwap",
    "DecidedLookup",
    "ReloadReport",
    "RulesetChange",
    "RulesetPreparer",
    "RulesetRegistry",
    "RulesetStatus",
    "VersionInfo",
    "check_not_changed_after_deciding",
    "load_registry",
]
