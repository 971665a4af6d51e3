"""A big ruleset for benchmarks: the reference ruleset plus regional rules, all distinct and valid.

``write_big_ruleset`` copies the active reference version and inserts regional routing rules
before its ``clinical`` rule: per intent and US state (Texas excluded), some narrowed by channel,
tier or sentiment, each routing to its own regional queue with the licence, soft requirements
and ladder the reference gives that intent. Deterministic. The benchmark case (an urgent
clinical enquiry in Texas) matches none of them, so it is decided by the same ``clinical`` rule
as under the reference, after every generated rule has been tried.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from caseroute.testing import REFERENCE_RULESET

STATES = [
    "US-AL", "US-AK", "US-AZ", "US-AR", "US-CA", "US-CO", "US-CT", "US-DE", "US-DC", "US-FL",
    "US-GA", "US-HI", "US-ID", "US-IL", "US-IN", "US-IA", "US-KS", "US-KY", "US-LA", "US-ME",
    "US-MD", "US-MA", "US-MI", "US-MN", "US-MS", "US-MO", "US-MT", "US-NE", "US-NV", "US-NH",
    "US-NJ", "US-NM", "US-NY", "US-NC", "US-ND", "US-OH", "US-OK", "US-OR", "US-PA", "US-RI",
    "US-SC", "US-SD", "US-TN", "US-UT", "US-VT", "US-VA", "US-WA", "US-WV", "US-WI", "US-WY",
]  # fmt: skip
"""Regions of the generated rules: never US-TX, the benchmark case's region."""

INTENTS = ["clinical", "prescription", "billing", "appointment", "complaint", "general"]

_NARROWING = [
    ("", ""),
    (" and case.channel == 'chat'", "-chat"),
    (" and case.tier in ['gold', 'platinum']", "-priority"),
    (" and case.urgency == 'routine' and case.age_minutes >= 20", "-waiting"),
]
"""Extra conditions (and the id/queue suffix each gives) cycling over the generated rules."""

_INSERT_BEFORE = "  - id: clinical\n"


def _route(intent: str, queue: str) -> str:
    """The ``route`` of a generated rule: what the reference requires for ``intent``."""
    if intent == "clinical":
        extra = "licence: [RN], soft: [language], ladder: language"
    elif intent == "prescription":
        extra = "licence: [pharmacist], soft: [language], ladder: language"
    else:
        extra = "soft: [language, territory], ladder: language-then-territory"
    return f"{{queue: {queue}, reason: regional_{intent}, {extra}}}"


def big_rules(count: int) -> str:
    """``count`` generated rules as YAML list items (two-space indented, as in ``rules:``).

    Args:
        count: Rules to generate (at most ``len(STATES) * len(INTENTS) * 4``).

    Returns:
        The YAML text.
    """
    items = []
    for i in range(count):
        intent = INTENTS[i % len(INTENTS)]
        state = STATES[(i // len(INTENTS)) % len(STATES)]
        clause, suffix = _NARROWING[(i // (len(INTENTS) * len(STATES))) % len(_NARROWING)]
        queue = f"{intent}-{state.lower()}{suffix}"
        items.append(
            f"  - id: {queue}\n"
            f"    description: {intent.capitalize()} enquiries from {state}"
            f"{suffix.replace('-', ' ')} go to the {state} team's own queue.\n"
            f"    when: \"case.intent == '{intent}' and case.region == '{state}'{clause}\"\n"
            f"    then:\n"
            f"      route: {_route(intent, queue)}\n"
        )
    return "\n".join(items) + "\n"


def write_big_ruleset(directory: Path, rules: int = 200) -> Path:
    """Write the reference ruleset grown to ``rules`` rules into ``directory``.

    Args:
        directory: Where the ruleset directory goes (created; it must not exist).
        rules: Total rules wanted (the reference's own included).

    Returns:
        The ruleset directory (``load_ruleset`` reads it).

    Raises:
        ValueError: If ``rules`` is fewer than the reference's own rules.
    """
    source = (REFERENCE_RULESET / "ruleset.yaml").read_text()
    own = source.count("\n  - id: ")
    if rules < own:
        raise ValueError(f"the reference has {own} rules; ask for at least that many")
    shutil.copytree(REFERENCE_RULESET, directory, ignore=shutil.ignore_patterns("golden"))
    head, tail = source.split(_INSERT_BEFORE, 1)
    (directory / "ruleset.yaml").write_text(
        head + big_rules(rules - own) + "\n" + _INSERT_BEFORE + tail
    )
    return directory
