"""``caseroute rules new-version``: start a new draft version from the active one, never by hand."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from caseroute.cli.output import EXIT_OK, UsageError, out
from caseroute.cli.rules import RulesCommands

_VERSION_LINE = re.compile(r"^version:.*$", re.MULTILINE)


def _cmd_new_version(args: argparse.Namespace) -> int:
    from caseroute.domain.errors import RulesetError
    from caseroute.rules.compiler import RULESET_FILE, load_ruleset
    from caseroute.rules.schema import VERSION_RE
    from caseroute.rules.serving import SERVING_FILE, parse_serving

    home: Path = args.path
    version: str = args.version
    if not VERSION_RE.fullmatch(version):
        raise UsageError(
            f"--version {version!r} is not a version: letters, digits, dots, dashes, + and _, "
            "starting with a letter or digit (e.g. 2026.12.0)"
        )
    _refuse_what_is_not_a_home(home)
    if (home / RULESET_FILE).is_file():
        raise UsageError(
            f"{home} holds a single ruleset file, not versions: move it to "
            f"{home}/<its version>/{RULESET_FILE} and write {home}/{SERVING_FILE} with "
            "`active: <its version>` (docs/rulesets.md, Versions), then run this again"
        )
    pointer = home / SERVING_FILE
    if args.source is not None:
        if not VERSION_RE.fullmatch(args.source):  # a path would copy from outside PATH
            raise UsageError(
                f"--from {args.source!r} is not a version: letters, digits, dots, dashes, + "
                "and _, starting with a letter or digit (e.g. 2026.11.1)"
            )
        source_version = args.source
    elif pointer.is_file():
        source_version = parse_serving(pointer).active
    else:
        raise UsageError(
            f"no {SERVING_FILE} in {home}, so no active version to copy: pass --from VERSION "
            "or point PATH at a ruleset's directory (rulesets/<name>)"
        )
    source = home / source_version
    if not (source / RULESET_FILE).is_file():
        raise UsageError(
            f"no version {source_version} to copy: {source}/{RULESET_FILE} is missing; "
            f"{_versions_here(home, source_version)}"
        )
    target = home / version
    if target.exists():
        raise UsageError(
            f"{target} already exists: a version is never overwritten; pick another --version"
        )
    try:
        load_ruleset(source)
    except RulesetError as exc:
        raise UsageError(
            f"version {source_version} does not load ({len(exc.problems)} problem(s); run "
            f"`caseroute rules check {source}`); copy a version that loads, with --from"
        ) from exc
    staging = home / f".{version}.new"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    text = (staging / RULESET_FILE).read_text(encoding="utf-8")
    text, count = _VERSION_LINE.subn(f'version: "{version}"', text, count=1)
    (staging / RULESET_FILE).write_text(text, encoding="utf-8")
    # The line rewrite is textual: YAML may spell the key quoted or put the value on the next
    # line. Only a draft that loads and declares the new version is kept.
    try:
        draft = load_ruleset(staging) if count == 1 else None
    except RulesetError:
        draft = None
    if draft is None or draft.version != version:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(
            f'could not set `version: "{version}"` in the copy of {source}/{RULESET_FILE}: '
            f'write its version on one top-level line of its own, `version: "{source_version}"`'
            ", then run this again"
        )
    staging.rename(target)  # atomic: a poller never sees a half-copied version
    out(f"created {target} from {source_version} (a draft: nothing serves it until activated)")
    out("next: edit it, then")
    out(f"  caseroute rules check {target} [--roster roster.json]")
    out(f"  caseroute rules test {target}")
    out(f"  caseroute rules diff {source} {target}")
    out(f"  caseroute rules activate {draft.name} {version} --server HOST:PORT")
    return EXIT_OK


def _refuse_what_is_not_a_home(path: Path) -> None:
    """Refuse a PATH that is not a ruleset's directory, saying which path to pass instead.

    A version directory was told to become a home of its own (move its file down a level and
    write a serving.yaml there: a layout the server would then misread), and a misspelt
    directory was told it lacked a serving.yaml (docs walk, finding 6).

    Raises:
        UsageError: If ``path`` does not exist, is a file, or is a version directory.
    """
    from caseroute.rules.compiler import RULESET_FILE
    from caseroute.rules.layout import placed_source, version_home

    placed = placed_source(path)
    if placed.version_dir is not None:
        what = "the file of a version" if path.is_file() else "a version directory"
        raise UsageError(
            f"{path} is {what} of ruleset {placed.name_dir}, not the ruleset's directory: "
            f"pass {version_home(path)} (add --from {placed.version_dir} to copy this version "
            "rather than the active one)"
        )
    if path.is_file():
        raise UsageError(
            f"{path} is a file: pass the ruleset's directory, rulesets/<name> (the one "
            f"holding serving.yaml and a directory per version, each with its {RULESET_FILE})"
        )
    if not path.exists():
        raise UsageError(f"no such directory: {path}{_did_you_mean(path)}")


def _did_you_mean(path: Path) -> str:
    """`` (did you mean rulesets/x?)`` naming the sibling directory ``path`` misspells, if any."""
    from caseroute.domain.reader import near_miss

    try:
        siblings = [p.name for p in path.parent.iterdir() if p.is_dir() and p.name[0] != "."]
    except OSError:
        return ""
    meant = near_miss(path.name, siblings)
    return "" if meant is None else f" (did you mean {path.parent / meant}?)"


def _versions_here(home: Path, missing: str) -> str:
    """The versions a ruleset's directory holds, worded for a refusal (and the nearest one)."""
    import difflib

    from caseroute.rules.layout import version_names

    found = version_names(home)
    if not found:
        return f"{home} holds no version directory (<version>/ruleset.yaml)"
    # Versions are mostly digits and dots, alike to difflib's usual 0.6 cutoff (2020.1.0 and
    # 2026.12.1 are 0.7): only a near spelling (2026.12 for 2026.12.1) is suggested.
    meant = difflib.get_close_matches(missing, found, n=1, cutoff=0.85)
    tip = f" (did you mean --from {meant[0]}?)" if meant else ""
    return f"the versions in {home}: {', '.join(found)}; pass one with --from{tip}"


def register(rules_sub: RulesCommands) -> None:
    """Add ``rules new-version``."""
    cmd = rules_sub.add_parser(
        "new-version",
        help="copy a ruleset's active version (with its golden cases) into a new draft version",
        description="Copy the active version of a ruleset (named by PATH/serving.yaml, or "
        "--from) into PATH/VERSION/, golden cases included, with its `version:` set to VERSION. "
        "The draft serves nothing until it is activated; a version that has decided is never "
        "edited in place, so every change starts here.",
    )
    cmd.add_argument("path", type=Path, help="the ruleset's directory: rulesets/<name>")
    cmd.add_argument("--version", required=True, help="the new version, e.g. 2026.12.0")
    cmd.add_argument(
        "--from",
        dest="source",
        default=None,
        help="copy this version instead of the active one",
    )
    cmd.set_defaults(run=_cmd_new_version)
