"""Fuzz the ruleset loader and the condition parser: diagnostics only, in bounded time and memory.

Whatever text, YAML document or condition an operator (or an attacker with write access to a
ruleset directory) produces, loading ends in a compiled ruleset or a ``RulesetError`` with
located problems; parsing a condition ends in a tree or an ``ExprSyntaxError``. Never another
exception, never a hang, never a memory blow-up.
"""

import io
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules.expr import ExprSyntaxError, parse_expression
from caseroute.testing import REFERENCE_RULESET, compile_text, ruleset_with_rules

REFERENCE_TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()
MAX_PEAK_BYTES = 40_000_000  # per example; the reference ruleset compiles in a few MB
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _bounded(run: Callable[[], object]) -> None:
    """Run ``run`` and assert its peak traced allocation stays under the bound."""
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES


def _problems(text: str) -> tuple[Problem, ...]:
    """Problems compiling ``text`` (empty when it compiles); any other exception propagates."""
    try:
        compile_text(text, "fuzz.yaml")
    except RulesetError as exc:
        return exc.problems
    return ()


def _load(text: str) -> None:
    """Compile ``text``; diagnostics are a fine outcome, but each must be located and coded."""
    problems = _problems(text)
    assert all(p.file == "fuzz.yaml" and "." in p.code and p.message for p in problems)


@FUZZ
@given(st.text(max_size=3000))
def test_arbitrary_text_loads_or_gives_diagnostics(text: str) -> None:
    """Any text at all: a ruleset or diagnostics, never another exception."""
    _bounded(lambda: _load(text))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["true", "when", "rules", "case.urgency == 'x'", "<<", "&a", "*a", "!!x"])
)
_KEYS = st.sampled_from(
    [
        "ruleset",
        "version",
        "rules",
        "id",
        "when",
        "then",
        "route",
        "queue",
        "constraints",
        "safeguarding",
        "flag",
        "params",
        "attributes",
        "signals",
        "compacts",
        "matching",
        "<<",
    ]
) | st.text(max_size=12)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=40,
)


def _dump(data: Any) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.dump(data, out)
    return out.getvalue()


@FUZZ
@given(_DOCUMENTS)
def test_arbitrary_yaml_documents_load_or_give_diagnostics(data: Any) -> None:
    """Generated structures dumped to YAML: a ruleset or diagnostics, never another exception."""
    text = _dump(data)
    _bounded(lambda: _load(text))


_HOSTILE_SNIPPETS = [
    "&a ",
    "*a",
    "<<: *a\n",
    "!!python/object:os.system ",
    "!foo ",
    "\x00",
    "\x1b[2J",
    "\ufeff",
    "\ud800",
    "[" * 50,
    "{" * 50,
    "(" * 60,
    "not " * 60,
    " 1e300",
    " .inf",
    " .nan",
    " 99999999999999999999999",
    '"\\0"',
    "\n---\n",
    "\t",
    ": ",
    "- ",
    "'",
    '"',
    "#",
    "\n  ",
]


@st.composite
def _mutated_reference(draw: st.DrawFn) -> str:
    text = REFERENCE_TEXT
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "duplicate", "text"]))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(_HOSTILE_SNIPPETS)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif kind == "duplicate":
            piece = text[at : at + draw(st.integers(1, 400))]
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    return text


@FUZZ
@given(_mutated_reference())
def test_mutated_reference_rulesets_load_or_give_diagnostics(text: str) -> None:
    """Mutated copies of the reference ruleset: a ruleset or diagnostics, never a traceback."""
    _bounded(lambda: _load(text))


_TOKENS = st.sampled_from(
    [
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "and",
        "or",
        "not",
        "in",
        "exists",
        "true",
        "false",
        "case",
        "urgency",
        "case.urgency",
        "case.flags",
        "case.attributes.x",
        "params.p",
        "sentiment.latest",
        "'critical'",
        "'a",
        '"b"',
        "1",
        "-2.5",
        "1e300",
        "1e18",
        "999999999999999999999",
        ".5",
        "\\",
        "'\\''",
        "\n",
        "\x00",
    ]
)


_PARSE_CODES = ("expr.syntax", "limit.expression_depth", "limit.expression_length", "limit.number")


def _parse_error(text: str) -> ExprSyntaxError | None:
    """The parser's syntax error for ``text`` (None when it parses)."""
    try:
        parse_expression(text)
    except ExprSyntaxError as exc:
        return exc
    return None


def _parse(text: str) -> None:
    error = _parse_error(text)
    assert error is None or (0 <= error.offset <= len(text) and error.code in _PARSE_CODES)


@settings(max_examples=150, deadline=timedelta(seconds=1))
@given(st.text(max_size=2500) | st.lists(_TOKENS, max_size=80).map(" ".join))
def test_arbitrary_conditions_parse_or_give_a_syntax_error(text: str) -> None:
    """The condition parser: a tree or an ExprSyntaxError with an offset, never another error."""
    _bounded(lambda: _parse(text))


@FUZZ
@given(st.lists(_TOKENS, max_size=40).map(" ".join))
def test_arbitrary_conditions_in_a_ruleset_compile_or_give_diagnostics(when: str) -> None:
    """Token soup as a rule's `when`: type-checked and lowered, or diagnostics; never a crash."""
    quoted = when.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = ruleset_with_rules(
        f'  - id: r\n    when: "{quoted}"\n    then: {{route: {{queue: clinical}}}}\n'
        "  - id: all\n    when: true\n    then: {route: {queue: clinical}}\n"
    )
    _bounded(lambda: _load(text))
