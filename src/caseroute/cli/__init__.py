"""The ``caseroute`` command line: one module per command group, ``main`` the entry point.

The package itself imports nothing: ``python -m caseroute.cli`` imports it before
``caseroute.cli.entry`` can catch a Ctrl-C, so its names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caseroute.cli.command import build_parser, main
    from caseroute.cli.serve import server_config

__all__ = ["build_parser", "main", "server_config"]

_HOMES = {
    "build_parser": "caseroute.cli.command",
    "main": "caseroute.cli.command",
    "server_config": "caseroute.cli.serve",
}


def __getattr__(name: str) -> Any:
    """Load ``build_parser``, ``main`` or ``server_config`` from its module on first use."""
    home = _HOMES.get(name)
    if home is None:  # also how ``from caseroute.cli import audit`` finds the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
