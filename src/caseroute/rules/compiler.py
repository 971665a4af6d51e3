"""Compile a ruleset: YAML source -> ``CompiledRuleset`` (the engine-neutral IR and rules).

The passes are the ordered table in ``passes.py`` (schema, conditions, ordering, safeguarding,
queues, ladders, lint); each collects every problem it finds, so a load reports all of them at once.
Nothing here is specific to an engine: each engine builds its own form from the IR when a
ruleset is prepared (durable_rules: ``engine/durable_codegen.py``).
"""

from __future__ import annotations

from pathlib import Path

from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.passes import run_passes
from caseroute.rules.source import SourceFile, read_yaml

RULESET_FILE = "ruleset.yaml"
MAX_RULESET_BYTES = 256 * 1024  # the reference ruleset is 10 KB; 256 KiB parses in ~3 s worst case


def compile_source(source: SourceFile) -> CompiledRuleset:
    """Compile a parsed ruleset file.

    Args:
        source: The YAML file (its ``pending`` problems, repeated keys, are reported with the
            passes' own: every problem at once).

    Returns:
        The compiled ruleset (lint warnings in ``warnings``).

    Raises:
        RulesetError: With every error (and warning) found, if any error was found.
    """
    state = run_passes(source)
    raw, problems = state.raw, [*source.pending, *state.problems]
    if raw.constraints is None and "constraints" not in raw.unreadable_sections:
        # Invariant guard: the schema flags every way it can fail to build constraints, so this
        # never fires; if it ever did, the caller still learns why nothing was compiled.
        problems.append(
            Problem(
                "schema.missing_key",
                "`safeguarding` is required in `constraints`",
                source.path,
                1,
                0,
            )
        )
    if any(p.severity is Severity.ERROR for p in problems) or raw.constraints is None:
        raise RulesetError(sorted(problems, key=lambda p: (p.line, p.column, p.code)))
    return CompiledRuleset(
        name=raw.name,
        version=raw.version,
        description=raw.description,
        owner=raw.owner,
        path=source.path,
        sha256=source.sha256,
        source_text=source.text,
        params=raw.params,
        signals=raw.signals,
        attributes=raw.attributes,
        constraints=raw.constraints,
        compacts=raw.compacts,
        registers=raw.registers,
        areas=raw.areas,
        statuses=raw.statuses,
        ranking=raw.ranking,
        queues=raw.queues,
        leaves=state.leaves,
        rules=state.rules,
        warnings=tuple(problems),
        ladders=raw.ladders,
        continuity=raw.continuity,
    )


def ruleset_file(path: Path) -> Path:
    """The YAML file for a ruleset path: the file itself, or ``ruleset.yaml`` in a directory."""
    return path / RULESET_FILE if path.is_dir() else path


def load_ruleset(path: Path) -> CompiledRuleset:
    """Read and compile a ruleset from a file or a ruleset directory.

    Args:
        path: ``rulesets/<name>/`` or a YAML file.

    Returns:
        The compiled ruleset.

    Raises:
        RulesetError: With every problem found (a file over ``MAX_RULESET_BYTES`` is refused
            unread).
    """
    return compile_source(read_yaml(ruleset_file(path), MAX_RULESET_BYTES, past_duplicates=True))
