"""The ``caseroute`` command line: one module per command group, ``main`` the entry point."""

from caseroute.cli.command import build_parser, main
from caseroute.cli.serve import server_config

__all__ = ["build_parser", "main", "server_config"]
