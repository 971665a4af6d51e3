import functools
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from caseroute.domain.errors import RulesetError
from caseroute.rules import fmt
from caseroute.rules.fmt import (
    CANONICAL_ORDER,
    FormatError,
    format_file,
    format_text,
    semantic_form,
    write_atomically,
)
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import REFERENCE_RULESET, compile_text

REFERENCE_TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()

MESSY = """\
# Header comment.


ruleset: test   \n\
version: "1"
owner: tests
rules:
    # the first rule
    -   id: safeguarding
        when: "'safeguarding' in case.flags"    # eol
        then:
            escalate: {queue: safeguarding, level: 1, reason: safeguarding_concern}
    -   id: clinical
        when: 'case.intent == ''clinical'''
        then:
            route: {queue: clinical, reason: clinical, licence: [RN]}
    - id: by-intent
      when: true
      then:
        route: {queue: by_intent, reason: by_intent}



# About constraints.
constraints:
    safeguarding: {flag: safeguarding, queue: safeguarding}
    licence:
        clinical: [RN]
description: >
    A messy
    file.

queues: {clinical: clinical, prescription: rx, appointment: appt, billing: billing,
         complaint: complaints, general: general}
# end
"""

MESSY_FORMATTED = """\
# Header comment.

ruleset: test
version: "1"
description: >
  A messy
  file.

owner: tests

# About constraints.
constraints:
  safeguarding: {flag: safeguarding, queue: safeguarding}
  licence:
    clinical: [RN]
queues:
  clinical: clinical
  prescription: rx
  appointment: appt
  billing: billing
  complaint: complaints
  general: general
rules:
  # the first rule
  - id: safeguarding
    when: "'safeguarding' in case.flags"        # eol
    then:
      escalate: {queue: safeguarding, level: 1, reason: safeguarding_concern}
  - id: clinical
    when: case.intent == 'clinical'
    then:
      route: {queue: clinical, reason: clinical, licence: [RN]}
  - id: by-intent
    when: true
    then:
      route: {queue: by_intent, reason: by_intent}
# end
"""

SMALL = """\
ruleset: test
version: "1"
description: test ruleset
owner: tests
constraints:
  safeguarding: {flag: safeguarding, queue: safeguarding}
  licence: {clinical: [RN]}
queues: {clinical: clinical, prescription: rx, appointment: appt, billing: billing}
rules:
  - id: safeguarding
    when: "'safeguarding' in case.flags"
    then: {escalate: {queue: safeguarding, reason: safeguarding_concern}}
  - id: checked
    when: {WHEN}
    then: {exception: {queue: exceptions, reason: checked}}
  - id: rest
    when: true
    then: {exception: {queue: exceptions, reason: rest}}
"""


BILLING = "case.intent == 'billing'"


def _small(when: str = BILLING) -> str:
    return SMALL.replace("{WHEN}", when)


def _top_level_keys(text: str) -> list[str]:
    return re.findall(r"^([a-z_]+):", text, re.MULTILINE)


def _comments(text: str) -> list[str]:
    # The reference ruleset's values never hold a `#`, so any `#` starts a comment.
    return sorted(line[line.index("#") :].rstrip() for line in text.splitlines() if "#" in line)


def test_reference_ruleset_is_already_canonical() -> None:
    """The shipped reference ruleset is in the canonical layout: fmt leaves its bytes alone."""
    assert format_text(REFERENCE_TEXT, "ruleset.yaml") == REFERENCE_TEXT


def test_messy_file_gets_the_canonical_layout() -> None:
    """Key order, 2-space indent, plain conditions, long flow to block, whitespace, comments."""
    assert format_text(MESSY, "messy.yaml") == MESSY_FORMATTED


def test_formatting_is_idempotent_on_the_messy_file() -> None:
    """A formatted file is already canonical: formatting it again changes nothing."""
    assert format_text(MESSY_FORMATTED, "messy.yaml") == MESSY_FORMATTED


def test_formatting_keeps_the_messy_file_meaning() -> None:
    """The compiled ruleset (rules, leaves, params) of the formatted text equals the original's."""
    assert semantic_form(compile_text(MESSY)) == semantic_form(compile_text(MESSY_FORMATTED))


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("'case.intent == ''clinical'''", "case.intent == 'clinical'"),
        ("\"case.intent == 'clinical'\"", "case.intent == 'clinical'"),
        ("case.intent == 'clinical'", "case.intent == 'clinical'"),
        ("'''vip'' in case.flags'", "\"'vip' in case.flags\""),
        (
            ">-\n      case.intent == 'clinical'\n      and case.urgency == 'critical'",
            "case.intent == 'clinical' and case.urgency == 'critical'",
        ),
        ("case.urgency  ==   'critical'", "case.urgency  ==   'critical'"),
    ],
)
def test_conditions_are_plain_unless_yaml_needs_double_quotes(written: str, canonical: str) -> None:
    """A `when` is one line: plain when YAML allows it, else in double quotes."""
    assert _small(canonical) == format_text(_small(written), "small.yaml")


def test_short_flow_collections_stay_flow_and_blocks_stay_blocks() -> None:
    """Flow style is kept when its line fits in MAX_FLOW_LINE; a block is never made flow."""
    text = _small().replace(
        "constraints:\n  safeguarding: {flag: safeguarding, queue: safeguarding}\n",
        "constraints:\n  safeguarding:\n    flag: safeguarding\n    queue: safeguarding\n",
    )
    assert text == format_text(text, "small.yaml")


QUEUES = "queues: {clinical: clinical, prescription: rx, appointment: appt, billing: billing}\n"


@pytest.mark.parametrize(("name", "stays_flow"), [("c" * 25, True), ("c" * 26, False)])
def test_flow_collection_too_long_for_its_line_becomes_a_block(name: str, stays_flow: bool) -> None:
    """A flow mapping stays flow up to a 100-character line; at 101 it becomes a block."""
    queues = (
        f"queues: {{clinical: {name}, prescription: rx, appointment: appt, billing: billing}}\n"
    )
    block = (
        f"queues:\n  clinical: {name}\n  prescription: rx\n  appointment: appt\n"
        "  billing: billing\n"
    )
    text = _small().replace(QUEUES, queues)
    expected = text if stays_flow else _small().replace(QUEUES, block)
    assert (100 if stays_flow else 101, expected) == (
        len(queues) - 1,
        format_text(text, "small.yaml"),
    )


def test_comment_above_a_key_moves_with_it() -> None:
    """Comment lines written above a top-level key travel with the key when keys are reordered."""
    text = (
        _small()
        .replace("ruleset: test\n", "")
        .replace("rules:\n", "# Who we are.\nruleset: test\nrules:\n")
    )
    assert "# Who we are.\n" + _small() == format_text(text, "small.yaml")


def test_block_scalar_content_is_kept_byte_for_byte() -> None:
    """Trailing spaces and blank runs inside a literal block scalar are content, so they stay."""
    text = _small().replace(
        "description: test ruleset\n",
        "description: |\n  line one   \n\n\n  line two\n",
    )
    assert text == format_text(text, "small.yaml")


def test_trailing_whitespace_blank_runs_and_final_newline() -> None:
    """Trailing blanks go, blank runs become one, leading blank lines go, one final newline."""
    text = "\n\n" + _small().replace("owner: tests\n", "owner: tests   \n\n\n\n") + "\n\n"
    expected = _small().replace("owner: tests\n", "owner: tests\n\n")
    assert expected == format_text(text, "small.yaml")


def test_file_that_does_not_load_is_refused_before_any_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hostile YAML (an alias) is reported with file:line and never reaches ruamel round-trip."""

    def no_round_trip() -> YAML:
        raise AssertionError("round-trip mode reached")

    monkeypatch.setattr(fmt, "_round_trip_yaml", no_round_trip)
    text = _small().replace("owner: tests", "owner: &who tests\nx: *who")
    with pytest.raises(RulesetError) as exc:
        format_text(text, "hostile.yaml")
    assert [(p.code, p.location) for p in exc.value.problems] == [
        ("yaml.anchor_not_allowed", "hostile.yaml:4:8"),
        ("yaml.anchor_not_allowed", "hostile.yaml:5:4"),
    ]


def test_a_layout_step_that_changed_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """If formatting would change what the ruleset decides, FormatError and no text."""
    monkeypatch.setattr(fmt, "_tidy_lines", lambda text: text.replace("reason: rest", "reason: x"))
    with pytest.raises(FormatError) as exc:
        format_text(_small(), "small.yaml")
    assert [(p.code, p.location) for p in exc.value.problems] == [
        ("fmt.meaning_changed", "small.yaml")
    ]


def test_a_comment_inside_a_flow_collection_is_not_silently_dropped() -> None:
    """A comment inside `{...}` (ruamel drops it): fmt refuses, naming the comment's line."""
    text = _small().replace(
        "  safeguarding: {flag: safeguarding, queue: safeguarding}\n",
        "  safeguarding: {flag: safeguarding,   # why\n                 queue: safeguarding}\n",
    )
    with pytest.raises(FormatError) as exc:
        format_text(text, "small.yaml")
    assert [(p.code, p.location) for p in exc.value.problems] == [
        ("fmt.comment_lost", "small.yaml:6")
    ]


def test_format_file_reads_through_the_size_limit(tmp_path: Path) -> None:
    """format_file uses the normal loader: a file over 256 KiB is refused unread."""
    path = tmp_path / "ruleset.yaml"
    path.write_text(_small() + "#" * (256 * 1024) + "\n")
    with pytest.raises(RulesetError) as exc:
        format_file(path)
    assert [p.code for p in exc.value.problems] == ["limit.file_size"]


def test_write_atomically_replaces_content_and_keeps_the_mode(tmp_path: Path) -> None:
    """The new text replaces the file, its permission bits stay, and no temp file is left."""
    path = tmp_path / "ruleset.yaml"
    path.write_text("old\n")
    path.chmod(0o640)
    write_atomically(path, "new\n")
    assert (
        path.read_text(),
        stat.S_IMODE(path.stat().st_mode),
        sorted(p.name for p in tmp_path.iterdir()),
    ) == ("new\n", 0o640, ["ruleset.yaml"])


def test_write_atomically_failure_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed rename leaves the original file untouched and removes the temp file."""
    path = tmp_path / "ruleset.yaml"
    path.write_text("old\n")

    def fail(*_: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, "new\n")
    assert (
        path.read_text(),
        sorted(p.name for p in tmp_path.iterdir()),
    ) == ("old\n", ["ruleset.yaml"])


# Mutations of the reference ruleset that must not change what it means.


def _chunks(text: str) -> tuple[list[str], list[str]]:
    """The header lines, and each top-level key's lines up to the next key.

    Independent of the formatter's own splitting, so the test does not assume what it checks.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"[a-z_]+:", line)]
    ends = [*starts[1:], len(lines)]
    return lines[: starts[0]], ["".join(lines[s:e]) for s, e in zip(starts, ends, strict=True)]


def _reindent(text: str, mapping: int, sequence: int, offset: int, quote: bool) -> str:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.width = 4096
    data = yaml.load(text)
    if quote:
        for rule in data["rules"]:
            if isinstance(rule["when"], str):
                rule["when"] = SingleQuotedScalarString(str(rule["when"]))
    from io import StringIO

    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


_KEY_LINE = re.compile(r"^\s*(- )?[a-z_]+:")


@st.composite
def _variants(draw: st.DrawFn) -> str:
    """The reference ruleset reindented, re-quoted, reordered, with stray whitespace."""
    header, chunks = _chunks(REFERENCE_TEXT)
    order = draw(st.permutations(range(len(chunks))))
    blank_runs = draw(st.lists(st.integers(0, 3), min_size=len(chunks), max_size=len(chunks)))
    text = "".join(header) + "".join("\n" * blank_runs[i] + chunks[i] for i in order)
    indent = draw(st.sampled_from([(2, 4, 2), (4, 4, 2), (4, 6, 4), (2, 2, 0), (3, 5, 2)]))
    text = _reindent(text, *indent, quote=draw(st.booleans()))
    spaces = draw(st.sampled_from(["", " ", "   "]))
    return "".join(
        line + (spaces if _KEY_LINE.match(line) else "") + "\n" for line in text.splitlines()
    )


@functools.cache
def _reference_meaning() -> CompiledRuleset:
    """The reference ruleset's meaning, compiled once (the same for every example)."""
    return semantic_form(compile_text(REFERENCE_TEXT))


@settings(max_examples=20)
@given(_variants())
def test_formatting_variants_keeps_meaning_and_is_idempotent(variant: str) -> None:
    """Variants of the reference: same meaning, idempotent, ordered, comments kept, no blanks."""
    original = semantic_form(compile_text(variant))
    formatted = format_text(variant, "variant.yaml")
    keys = _top_level_keys(formatted)
    assert (original, formatted, sorted(keys, key=CANONICAL_ORDER.index), _comments(variant)) == (
        semantic_form(compile_text(formatted)),
        format_text(formatted, "variant.yaml"),
        keys,
        _comments(formatted),
    )
    assert [line for line in formatted.splitlines() if line != line.rstrip()] == []
    assert _reference_meaning() == original


@pytest.mark.parametrize("indent", [(4, 4, 2), (4, 6, 4), (2, 2, 0)])
def test_reindented_reference_formats_back_to_the_reference(
    indent: tuple[int, int, int],
) -> None:
    """Without reordering, any indentation of the reference formats back to its exact bytes."""
    assert format_text(_reindent(REFERENCE_TEXT, *indent, quote=True), "r.yaml") == REFERENCE_TEXT


def test_write_atomically_through_a_symlink_replaces_the_target(tmp_path: Path) -> None:
    """A symlinked ruleset stays a symlink; the file it points at gets the new text."""
    target = tmp_path / "v1.yaml"
    target.write_text("old\n")
    link = tmp_path / "ruleset.yaml"
    link.symlink_to(target.name)
    write_atomically(link, "new\n")
    assert (link.is_symlink(), target.read_text(), sorted(p.name for p in tmp_path.iterdir())) == (
        True,
        "new\n",
        ["ruleset.yaml", "v1.yaml"],
    )


_EDIT = st.tuples(
    st.sampled_from(["duplicate", "delete", "swap", "indent", "comment", "blank"]),
    st.integers(0, 10_000),
    st.integers(0, 8),
)


@settings(max_examples=30)
@given(st.lists(_EDIT, min_size=1, max_size=4))
def test_line_edits_that_still_load_format_to_the_same_meaning(
    edits: list[tuple[str, int, int]],
) -> None:
    """Random line edits of the reference that still load: fmt is idempotent, keeps meaning."""
    lines = REFERENCE_TEXT.splitlines()
    for op, where, width in edits:
        at = where % len(lines)
        if op == "duplicate":
            lines.insert(at, lines[at])
        elif op == "delete":
            del lines[at]
        elif op == "swap" and at + 1 < len(lines):
            lines[at], lines[at + 1] = lines[at + 1], lines[at]
        elif op == "indent":
            lines[at] = " " * width + lines[at]
        elif op == "comment":
            lines.insert(at, " " * width + f"# note {where}")
        elif op == "blank":
            lines.insert(at, " " * width)
    text = "\n".join(lines) + "\n"
    try:
        original = semantic_form(compile_text(text))
    except RulesetError:
        return  # the loader refuses it, and so does fmt (pinned above)
    formatted = format_text(text, "edited.yaml")
    assert (semantic_form(compile_text(formatted)), format_text(formatted, "edited.yaml")) == (
        original,
        formatted,
    )
