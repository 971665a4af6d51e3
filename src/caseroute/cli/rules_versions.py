"""The ``rules`` subcommands of one family (filled in by the issue 9 work in progress)."""

from __future__ import annotations

from caseroute.cli.rules import RulesCommands


def register(rules_sub: RulesCommands) -> None:
    """Add this family's subcommands to the ``rules`` group."""
    del rules_sub
