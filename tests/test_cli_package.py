"""The `caseroute.cli` package: one entry point, and each command group in its own module."""

import argparse
import importlib
import tomllib

from caseroute.cli import build_parser, entry
from caseroute.testing import REPO_ROOT


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_the_console_script_runs_the_entry_that_catches_ctrl_c_while_loading() -> None:
    """The `caseroute` script in pyproject resolves to `caseroute.cli.entry.main`."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    module, _, name = pyproject["project"]["scripts"]["caseroute"].partition(":")
    assert entry.main is getattr(importlib.import_module(module), name)


def test_each_command_runs_code_from_its_groups_module() -> None:
    """Top-level commands keep their order, and every subcommand's handler lives in its group."""
    top = _subparsers(build_parser())
    assert list(top) == [
        "decide",
        "serve",
        "health",
        "rules",
        "audit",
        "simulate",
        "replay",
        "report",
        "config",
    ]
    handlers: dict[str, str] = {}
    for name, parser in top.items():
        for sub, leaf in (_subparsers(parser) or {"": parser}).items():
            handlers[f"{name} {sub}".strip()] = leaf.get_default("run").__module__
    assert handlers == {
        "decide": "caseroute.cli.decide",
        "serve": "caseroute.cli.serve",
        "health": "caseroute.cli.serve",
        "rules check": "caseroute.cli.rules",
        "rules test": "caseroute.cli.rules",
        "rules fmt": "caseroute.cli.rules_fmt",
        "rules fields": "caseroute.cli.rules",
        "rules diff": "caseroute.cli.rules",
        "rules new-version": "caseroute.cli.rules_versions",
        "rules list": "caseroute.cli.rules_admin",
        "rules get": "caseroute.cli.rules_admin",
        "rules validate": "caseroute.cli.rules_admin",
        "rules activate": "caseroute.cli.rules_admin",
        "rules rollback": "caseroute.cli.rules_admin",
        "rules reload": "caseroute.cli.rules_admin",
        "rules shadow-report": "caseroute.cli.rules_shadow",
        "audit show": "caseroute.cli.audit",
        "audit export": "caseroute.cli.audit",
        "audit verify": "caseroute.cli.audit",
        "audit events": "caseroute.cli.audit",
        "audit rotate-key": "caseroute.cli.audit",
        "simulate": "caseroute.cli.simulate",
        "replay": "caseroute.cli.replay",
        "report": "caseroute.cli.report",
        "config show": "caseroute.cli.config",
    }
