"""Hostile ruleset sources: each is a located diagnostic, never a traceback, hang or blow-up."""

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.case import SentimentReading
from caseroute.domain.decision import Outcome
from caseroute.domain.errors import RulesetError
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.rules.compiler import MAX_RULESET_BYTES, load_ruleset
from caseroute.rules.expr import ExprSyntaxError, parse_expression
from caseroute.rules.fields import MAX_ATTRIBUTES
from caseroute.rules.source import parse_yaml, read_yaml
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    REFERENCE_RULESET,
    clock,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

CATCH_ALL = "  - id: all\n    when: true\n    then: {route: {queue: clinical}}\n"


def _codes(text: str) -> list[tuple[str, str]]:
    """(code, file:line[:column]) of every error compiling ``text`` produces."""
    with pytest.raises(RulesetError) as exc:
        compile_text(text, "r.yaml")
    return [(p.code, p.location) for p in exc.value.problems if p.severity.value == "error"]


def _rule(when: str) -> str:
    """A valid ruleset whose rule `r` has the condition ``when`` (double-quoted) at line 15:12."""
    return ruleset_with_rules(
        f'  - id: r\n    when: "{when}"\n    then: {{route: {{queue: clinical}}}}\n{CATCH_ALL}'
    )


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijk"
    for i in range(1, levels + 1):
        prev, name = names[i - 1], names[i]
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_rejected_at_its_first_anchor_in_bounded_memory() -> None:
    """A 1 KB alias bomb (9^10 leaves if expanded) fails fast at the anchor, under 10 MB."""
    bomb = _billion_laughs()
    assert len(bomb) < 1100
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(RulesetError) as exc:
            parse_yaml(bomb, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    first = exc.value.problems[0]
    assert (first.code, first.location) == ("yaml.anchor_not_allowed", "bomb.yaml:1:4")
    assert peak < 10_000_000
    assert elapsed < 2.0


def test_rules_check_reports_every_path_even_after_a_hostile_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`rules check bomb deep good` reports a diagnostic for each and the good one as ok."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs())
    deep = tmp_path / "deep.yaml"
    deep.write_text(_rule("(" * 200 + "case.urgency == 'critical'" + ")" * 200))
    assert main(["rules", "check", str(bomb), str(deep), str(REFERENCE_RULESET)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{bomb}:1:4: error yaml.anchor_not_allowed")
    assert any(line.startswith(f"{deep}:15:") and "limit.expression_depth" in line for line in out)
    assert out[-1].startswith(f"{REFERENCE_RULESET}: ok - patient-enquiries version 2026.12.1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: &x 1\nb: *x\n",
            [("yaml.anchor_not_allowed", "f.yaml:1:4"), ("yaml.anchor_not_allowed", "f.yaml:2:4")],
        ),
        (
            "base: {a: 1}\nm:\n  <<: {a: 2}\n",
            [("yaml.merge_key_not_allowed", "f.yaml:3:3")],
        ),
        ("a: !!python/object:os.system x\n", [("yaml.tag_not_allowed", "f.yaml:1:4")]),
        ("a: !foo 1\n", [("yaml.tag_not_allowed", "f.yaml:1:4")]),
        ("a: !!str 1\n", [("yaml.tag_not_allowed", "f.yaml:1:4")]),
        ("a: 1\nb: 'x\x00y'\n", [("yaml.control_character", "f.yaml:2:6")]),
        ("a: 1\nb: x\x1by\n", [("yaml.control_character", "f.yaml:2:5")]),
        ('a: "x\\0y"\n', [("yaml.control_character", "f.yaml:1:4")]),
        ('a: "x\\ry"\n', [("yaml.control_character", "f.yaml:1:4")]),
        ("a: \ud800\n", [("yaml.control_character", "f.yaml:1:4")]),
        ("? [a, b]\n: 1\n", [("yaml.complex_key", "f.yaml:1:3")]),
        ("x: " + "[" * 40 + "]" * 40 + "\n", [("limit.yaml_depth", "f.yaml:1:35")]),
        ("x: " + "[" * 100_000 + "\n", [("limit.yaml_depth", "f.yaml:1:35")]),
        ("a: 1e400\n", [("limit.number", "f.yaml:1:4")]),
        ("a: .inf\n", [("limit.number", "f.yaml:1:4")]),
        ("a: -.inf\n", [("limit.number", "f.yaml:1:4")]),
        ("a: .nan\n", [("limit.number", "f.yaml:1:4")]),
        ("a: 1000000000000000000\n", [("limit.number", "f.yaml:1:4")]),
        ("a: " + "9" * 5000 + "\n", [("limit.number", "f.yaml:1:4")]),
        ("a: 1\n---\nb: 2\n", [("yaml.syntax", "f.yaml:2:1")]),
    ],
)
def test_hostile_yaml_is_a_located_diagnostic(text: str, expected: list[tuple[str, str]]) -> None:
    """Anchors, merge keys, tags, control characters, depth and huge numbers: code + file:line."""
    with pytest.raises(RulesetError) as exc:
        parse_yaml(text, "f.yaml")
    assert expected == [(p.code, p.location) for p in exc.value.problems]


def test_a_leading_bom_is_accepted_and_line_numbers_stay_right() -> None:
    """Editors that write a UTF-8 BOM do not break loading or shift positions."""
    source = parse_yaml("\ufeffa: 1\nb: x\n", "f.yaml")
    assert (source.root.value["b"].line, source.root.value["b"].column) == (2, 4)


def test_invalid_utf8_names_line_and_column(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is reported where it is, not as a decode traceback."""
    path = tmp_path / "r.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(RulesetError) as exc:
        read_yaml(path)
    assert [("source.encoding", f"{path}:2:7")] == [
        (p.code, p.location) for p in exc.value.problems
    ]


def test_oversized_ruleset_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """A ruleset file over the size limit is one diagnostic, never parsed."""
    path = tmp_path / "ruleset.yaml"
    path.write_text("# " + "x" * MAX_RULESET_BYTES + "\n")
    with pytest.raises(RulesetError) as exc:
        load_ruleset(path)
    assert [("limit.file_size", str(path))] == [(p.code, p.location) for p in exc.value.problems]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("(" * 200 + "case.urgency == 'critical'" + ")" * 200, ("limit.expression_depth", 15, 44)),
        ("not " * 400 + "case.urgency == 'critical'", ("limit.expression_depth", 15, 140)),
        ("case.classification_confidence > 1e300", ("limit.number", 15, 45)),
        ("case.classification_confidence > 1e18", ("limit.number", 15, 45)),
        ("case.classification_confidence > " + "9" * 30, ("limit.number", 15, 45)),
        ("case.region == 'a' or " * 120 + "true", ("limit.expression_length", 15, 12)),
    ],
)
def test_hostile_conditions_are_located_diagnostics(
    when: str, expected: tuple[str, int, int]
) -> None:
    """Deep nesting, chained not, out-of-range numbers, overlong text: code at file:line:column."""
    code, line, column = expected
    assert [(code, f"r.yaml:{line}:{column}")] == _codes(_rule(when))


def test_expression_parser_bounds_depth_itself() -> None:
    """The parser refuses nesting past the limit instead of recursing into a RecursionError."""
    with pytest.raises(ExprSyntaxError) as exc:
        parse_expression("(" * 900 + "true" + ")" * 900)
    assert (exc.value.code, exc.value.offset) == ("limit.expression_depth", 32)


@pytest.mark.parametrize(
    ("params", "expected"),
    [("x: .inf", "limit.number"), ("x: .nan", "limit.number"), ("x: -1e30", "limit.number")],
)
def test_non_finite_or_huge_params_are_diagnostics(params: str, expected: str) -> None:
    """A param the engine cannot represent is refused at its line, not a ValueError at emit."""
    text = (
        MINIMAL_HEADER
        + f"params: {{{params}}}\n"
        + ruleset_with_rules(
            "  - id: r\n    when: case.classification_confidence > params.x\n"
            f"    then: {{route: {{queue: clinical}}}}\n{CATCH_ALL}",
            "",
        )
    )
    assert [(expected, "r.yaml:10:13")] == _codes(text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('version: "1"', 'version: "1\\n"', ("schema.format", "r.yaml:2:10")),
        ('version: "1"', 'version: "1\\t"', ("schema.format", "r.yaml:2:10")),
        ('version: "1"', "version: 1 2", ("schema.format", "r.yaml:2:10")),
        ("ruleset: test", 'ruleset: "test\\n"', ("schema.format", "r.yaml:1:10")),
        ("ruleset: test", "ruleset: " + "t" * 65, ("schema.format", "r.yaml:1:10")),
        ("  - id: r\n", '  - id: "r\\n"\n', ("schema.format", "r.yaml:14:9")),
        ("queue: clinical}}\n  - id: all", 'queue: "clinical\\n"}}\n  - id: all', None),
        ("flag: safeguarding,", 'flag: "safeguarding\\n",', ("schema.format", "r.yaml:6:24")),
    ],
)
def test_identifiers_must_match_their_whole_pattern(
    old: str, new: str, expected: tuple[str, str] | None
) -> None:
    """A trailing newline/tab or an overlong name is a format error (fullmatch, not match)."""
    text = _rule("case.urgency == 'critical'").replace(old, new, 1)
    codes = _codes(text)
    if expected is None:
        assert [code for code, _ in codes] == ["schema.format"]
    else:
        assert [expected] == codes


def _attributes_ruleset(count: int) -> str:
    attributes = "attributes:\n" + "".join(f"  a{i}: string\n" for i in range(count))
    return ruleset_with_rules(
        f"  - id: r\n    when: case.attributes.a{count - 1} == 'x'\n"
        f"    then: {{route: {{queue: clinical}}}}\n{CATCH_ALL}",
        MINIMAL_HEADER + attributes,
    )


def test_attributes_at_the_engine_limit_load_and_decide_in_durable_rules() -> None:
    """What check accepts the engine loads: the fullest fact at the limit decides, no EXCEPTION."""
    compiled = compile_text(_attributes_ruleset(MAX_ATTRIBUTES))
    loaded = prepare_ruleset(compiled, EngineKind.DURABLE)
    case = make_case(
        attributes={f"a{i}": "x" for i in range(MAX_ATTRIBUTES)},
        flags=frozenset({"vip"}),
        preferred_language="en",
        sla_clocks=(clock("first-response", 30),),
        sentiment=tuple(SentimentReading(-0.6, NOW.replace(minute=m)) for m in range(5)),
    )
    decision = decide(case, make_roster(make_agent()), loaded, NOW)
    assert (
        decision.outcome,
        decision.explanation.deciding_rule_id,
        decision.explanation.data_problems,
    ) == (Outcome.ASSIGN, "r", ())


def test_one_attribute_over_the_engine_limit_is_a_diagnostic() -> None:
    """Declaring more attributes than the engine's fact can carry fails check at `attributes:`."""
    assert _codes(_attributes_ruleset(MAX_ATTRIBUTES + 1)) == [("limit.attributes", "r.yaml:10:1")]


def test_engine_limit_is_the_measured_one() -> None:
    """durable_rules holds 254 properties per fact; 27 are fixed fields, so 227 attributes fit."""
    assert MAX_ATTRIBUTES == 227


def test_reference_ruleset_still_loads() -> None:
    """The reference ruleset still loads with the stricter loader (no false positives)."""
    assert load_ruleset(REFERENCE_RULESET).version == "2026.12.1"


def test_rules_check_survives_an_unexpected_loader_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A loader bug on one path is reported as such, and the next path is still checked."""
    from caseroute.rules import compiler

    real = compiler.load_ruleset
    broken = tmp_path / "broken.yaml"

    def flaky(path: Path) -> object:
        if path == broken:
            raise KeyError("boom")
        return real(path)

    monkeypatch.setattr(compiler, "load_ruleset", flaky)
    assert main(["rules", "check", str(broken), str(REFERENCE_RULESET)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [
        (
            f"{broken}: error: caseroute failed while checking this ruleset (a bug: please "
            "report it with the file); the other paths are still checked"
        ),
        f"{REFERENCE_RULESET}: ok - patient-enquiries",
    ] == [out[0], out[-1].split(" version")[0]]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("licence: {clinical: [RN]}", "licence: {clinicl: [RN]}", "r.yaml:7:13"),
        ("queues: {clinical: clinical,", "queues: {clinicl: clinical,", "r.yaml:8:10"),
    ],
)
def test_unknown_intent_keys_are_diagnostics_not_value_errors(
    old: str, new: str, expected: str
) -> None:
    """A misspelt intent under licence or queues is `schema.unknown_key` (found by fuzzing)."""
    text = _rule("case.urgency == 'critical'").replace(old, new, 1)
    assert _codes(text) == [("schema.unknown_key", expected)]


def test_serve_loads_the_good_ruleset_beside_an_alias_bomb(tmp_path: Path) -> None:
    """A bomb in one ruleset directory is refused quickly; the next ruleset still loads."""
    from caseroute.service import load_registry

    (tmp_path / "a-bomb").mkdir()
    (tmp_path / "a-bomb" / "ruleset.yaml").write_text(_billion_laughs())
    (tmp_path / "b-good").mkdir()
    (tmp_path / "b-good" / "ruleset.yaml").write_text(
        (REFERENCE_RULESET / "ruleset.yaml").read_text()
    )
    registry = load_registry(tmp_path, EngineKind.PYTHON)
    assert registry.load_errors == [f"{tmp_path / 'a-bomb'}: 91 problem(s)"]
    assert registry.resolve("patient-enquiries", "").compiled.version == "2026.12.1"


def test_yaml_problems_are_capped_so_a_file_of_aliases_cannot_exhaust_memory() -> None:
    """300k aliases give at most MAX_YAML_PROBLEMS problems, not one object per alias."""
    from caseroute.rules.source import MAX_YAML_PROBLEMS

    with pytest.raises(RulesetError) as exc:
        parse_yaml("a: &a 1\nb: [" + "*a, " * 300_000 + "]\n", "f.yaml")
    assert len(exc.value.problems) == MAX_YAML_PROBLEMS
    assert exc.value.problems[-1].location == f"f.yaml:2:{5 + 4 * (MAX_YAML_PROBLEMS - 2)}"


def test_longest_identifiers_and_awkward_text_load_and_decide_in_durable_rules() -> None:
    """64-character name and version, and quotes, backslash and non-ASCII text in a literal.

    The literal is tested against a text attribute: `case.region` was used until a region
    test no request can meet became an error (a region has no spaces or quotes).
    """
    name, version = "n" * 64, "v" * 64
    value = 'O\'Brien "q" \\ é 🙂'
    literal = value.replace("\\", "\\\\").replace("'", "\\'")
    text = ruleset_with_rules(
        f"  - id: r\n    when: >-\n      case.attributes.surname == '{literal}'\n"
        f"    then: {{route: {{queue: clinical}}}}\n{CATCH_ALL}",
        MINIMAL_HEADER.replace("ruleset: test", f"ruleset: {name}").replace(
            'version: "1"', f"version: {version}\nattributes: {{surname: string}}"
        ),
    )
    loaded = prepare_ruleset(compile_text(text), EngineKind.DURABLE)
    case = make_case(attributes={"surname": value})
    decision = decide(case, make_roster(make_agent()), loaded, NOW)
    # A disagreement between durable_rules and Python would decide "engine:disagreement".
    assert (decision.outcome, decision.explanation.deciding_rule_id) == (Outcome.ASSIGN, "r")
    assert decision.explanation.engine.startswith("durable_rules")


def test_engine_validation_asserts_the_fullest_fact_check_allows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serve-time validation re-checks the attribute limit against the installed engine."""
    import io
    import json

    import durable_rules_engine

    from caseroute.engine import durable_check
    from caseroute.engine.durable_codegen import durable_shards
    from caseroute.rules.fields import ENGINE_MAX_FACT_PROPERTIES

    shards = json.dumps(list(durable_shards(load_ruleset(REFERENCE_RULESET))))
    monkeypatch.setattr("sys.stdin", io.StringIO(shards))
    assert durable_check.main() == 0
    assert capsys.readouterr().out == "ok\n"
    assert _count_properties(durable_check.fullest_fact()) == ENGINE_MAX_FACT_PROPERTIES
    monkeypatch.setattr(durable_check, "MAX_ATTRIBUTES", MAX_ATTRIBUTES + 1)
    monkeypatch.setattr("sys.stdin", io.StringIO(shards))
    with pytest.raises(durable_rules_engine.error, match="error code: 302"):
        durable_check.main()


def _count_properties(value: dict[str, object]) -> int:
    """Properties durable_rules counts: every key, nested objects included."""
    return sum(1 + (_count_properties(v) if isinstance(v, dict) else 0) for v in value.values())


def test_a_fifo_in_place_of_a_ruleset_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A FIFO (or device) named ruleset.yaml is a located problem; reading it would block."""
    fifo = tmp_path / "ruleset.yaml"
    os.mkfifo(fifo)
    with pytest.raises(RulesetError) as exc:
        read_yaml(fifo, MAX_RULESET_BYTES)
    assert [(p.code, p.message) for p in exc.value.problems] == [
        (
            "source.unreadable",
            "not a regular file (a FIFO, device or directory); point at a YAML file",
        )
    ]
