"""Every documented diagnostic code has a fixture producing it at an exact file:line.

The table in docs/rulesets.md ("Error codes") is the contract: a code listed there must be
produced by a fixture below, and a code the source can emit must be listed there.
"""

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from caseroute.audit.masking import Masker, masked_reads
from caseroute.domain.errors import Problem, RulesetError
from caseroute.domain.roster import Agent
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.engine.pyeval import PythonLeafEvaluator
from caseroute.engine.roster_places import unknown_places
from caseroute.engine.satisfiable import unsatisfiable_requirements
from caseroute.registry.build import build_state, check_not_changed_after_deciding
from caseroute.registry.state import Snapshot
from caseroute.rules.compiler import MAX_RULESET_BYTES, load_ruleset
from caseroute.rules.golden import load_golden, load_golden_file
from caseroute.rules.layout import VersionSource, check_placement
from caseroute.rules.model import CompiledRuleset
from caseroute.rules.serving import parse_serving
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    REPO_ROOT,
    compile_text,
    make_agent,
    make_roster,
    ruleset_with_rules,
)

DOC = REPO_ROOT / "docs" / "rulesets.md"
SOURCE = REPO_ROOT / "src" / "caseroute"
FAMILIES = (
    "yaml",
    "source",
    "limit",
    "schema",
    "expr",
    "rules",
    "constraints",
    "queues",
    "lint",
    "audit",
    "golden",
    "roster",
    "serving",
    "versions",
    "ladders",
    "areas",
)
NOT_CODES = frozenset({"audit.db", "serving.yaml", "roster.agents"})  # files, a field path

CATCH_ALL = "  - id: all\n    when: true\n    then: {route: {queue: clinical}}\n"
RULE_R = "  - id: r\n    when: {when}\n    then: {{route: {{queue: clinical}}}}\n"
# Lines of BASE: 1-9 MINIMAL_HEADER, 10 `rules:`, 11-13 safeguarding, 14-16 rule r, 17-19 all.
BASE = ruleset_with_rules(RULE_R.format(when="case.urgency == 'critical'") + CATCH_ALL)


def _when(condition: str) -> str:
    """BASE with rule r's condition replaced (double-quoted; text starts at 15:12)."""
    return BASE.replace("when: case.urgency == 'critical'", f'when: "{condition}"')


def _swap(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


def _compile(text: str) -> list[Problem]:
    """Errors (or, when it compiles, warnings) of a ruleset text named r.yaml."""
    try:
        return list(compile_text(text, "r.yaml").warnings)
    except RulesetError as exc:
        return list(exc.problems)


def _problems(load: Callable[[], object]) -> list[Problem]:
    """The problems ``load()`` raises; none when it loads."""
    try:
        load()
    except RulesetError as exc:
        return list(exc.problems)
    return []


def _ruleset_file(content: bytes) -> Callable[[Path], list[Problem]]:
    def run(tmp: Path) -> list[Problem]:
        (tmp / "ruleset.yaml").write_bytes(content)
        return _problems(lambda: load_ruleset(tmp))

    return run


def _missing_file(tmp: Path) -> list[Problem]:
    return _problems(lambda: load_ruleset(tmp / "nothing.yaml"))


def _masked(tmp: Path) -> list[Problem]:
    del tmp
    compiled = compile_text(
        ruleset_with_rules(
            RULE_R.format(when="case.attributes.notes == 'x'") + CATCH_ALL,
            MINIMAL_HEADER + "attributes: {notes: string}\n",
        ),
        "r.yaml",
    )
    return masked_reads(compiled, Masker(b"", ("case.attributes.notes",)))


GOLDEN_CASE = """\
  - name: {name}
    now: {now}
    roster: {roster}
    case: {case}
    expect: {{outcome: QUEUE, rule: all}}
"""
GOOD_CASE = (
    '{case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general, '
    "urgency: routine}"
)
GOOD_ROSTER = '{snapshot_id: s1, taken_at: "2026-11-21T09:00:00Z", agents: []}'


def _golden(cases: str, rule_ids: list[str] | None = None) -> Callable[[Path], list[Problem]]:
    def run(tmp: Path) -> list[Problem]:
        (tmp / "g.yaml").write_text("cases:\n" + cases)
        return _problems(lambda: load_golden_file(tmp / "g.yaml", rule_ids))

    return run


def _golden_case(
    name: str = "c1",
    now: str = '"2026-11-21T10:00:00Z"',
    roster: str = GOOD_ROSTER,
    case: str = GOOD_CASE,
) -> str:
    return GOLDEN_CASE.format(name=name, now=now, roster=roster, case=case)


def _serving(text: str) -> Callable[[Path], list[Problem]]:
    def run(tmp: Path) -> list[Problem]:
        (tmp / "serving.yaml").write_text(text)
        return _problems(lambda: parse_serving(tmp / "serving.yaml"))

    return run


def _versioned(name: str, version: str, note: str = "") -> str:
    """BASE as ruleset ``name`` version ``version`` (``note`` changes its bytes)."""
    return BASE.replace("ruleset: test", f"ruleset: {name}").replace(
        'version: "1"', f'version: "{version}"'
    ) + (f"# {note}\n" if note else "")


def _python(compiled: CompiledRuleset, engine: EngineKind) -> LoadedRuleset:
    del engine
    return LoadedRuleset(compiled, PythonLeafEvaluator(compiled.leaves))


def _built(files: dict[str, str]) -> Callable[[Path], list[Problem]]:
    """The version problems of a rulesets directory holding ``files`` (relative path: text)."""

    def run(tmp: Path) -> list[Problem]:
        for relative, text in files.items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp / relative).write_text(text)
        empty = Snapshot({}, {})
        return build_state(tmp, EngineKind.PYTHON, empty, _python, None, None, NOW).problems

    return run


def _gone(tmp: Path) -> list[Problem]:
    """Version 1 loaded and active, then its directory gone while serving.yaml names it."""
    _built({"routing/1/ruleset.yaml": _versioned("routing", "1")})(tmp)
    (tmp / "routing" / "serving.yaml").write_text("active: '1'\n")
    first = build_state(tmp, EngineKind.PYTHON, Snapshot({}, {}), _python, None, None, NOW)
    shutil.rmtree(tmp / "routing" / "1")
    return build_state(tmp, EngineKind.PYTHON, first.snapshot, _python, None, None, NOW).problems


def _misplaced(tmp: Path) -> list[Problem]:
    path = tmp / "routing" / "3"
    path.mkdir(parents=True)
    return check_placement(VersionSource(path, "routing", "3"), "routing", "2", BASE)


def _decided_before(tmp: Path) -> list[Problem]:
    del tmp
    compiled = compile_text(BASE, "r.yaml")
    return _problems(
        lambda: check_not_changed_after_deciding(compiled, lambda _n, _v: frozenset({"0" * 64}))
    )


@dataclass(frozen=True)
class Fixture:
    """Input that must produce ``code`` at ``where`` (``{dir}`` is the test's tmp dir)."""

    code: str
    produce: Callable[[Path], list[Problem]]
    where: str


def _text(text: str) -> Callable[[Path], list[Problem]]:
    return lambda _tmp: _compile(text)


def _against_roster(text: str, *agents: Agent) -> Callable[[Path], list[Problem]]:
    """Roster findings of a ruleset text against ``agents`` (default: one Texas RN), on NOW."""
    roster = make_roster(*(agents or (make_agent(),)))
    return lambda _tmp: unsatisfiable_requirements(
        compile_text(text, "r.yaml"), roster, "roster.json", NOW.date()
    )


def _route(requirements: str) -> str:
    """BASE with rule r's route given extra requirements (written on line 16)."""
    return _swap(
        "then: {route: {queue: clinical}}", f"then: {{route: {{queue: clinical, {requirements}}}}}"
    )


_STEP = "step: s1, after: 10m, relax: [language], why: w"


def _laddered(text: str, *steps: str) -> str:
    """``text`` with ladder ``wait`` of ``steps`` before ``rules:`` (lines 10-12+; rules shift)."""
    ladder = "ladders:\n  wait:\n" + "".join(f"    - {{{step}}}\n" for step in steps)
    return text.replace("rules:\n", ladder + "rules:\n", 1)


_DEEP = "x: " + "[" * 40 + "]" * 40 + "\n"
_ATTRIBUTES = "attributes:\n" + "".join(f"  a{i}: string\n" for i in range(300))

FIXTURES = [
    Fixture("yaml.syntax", _text(BASE + "  - [\n"), "r.yaml:21:1"),
    Fixture("yaml.duplicate_key", _text(_swap("owner: tests", "owner: a\nowner: b")), "r.yaml:5:1"),
    Fixture("yaml.anchor_not_allowed", _text(_swap("owner: tests", "owner: &o x")), "r.yaml:4:8"),
    Fixture(
        "yaml.merge_key_not_allowed",
        _text(_swap("safeguarding: {", "safeguarding: {<<: {}, ")),
        "r.yaml:6:18",
    ),
    Fixture("yaml.tag_not_allowed", _text(_swap("owner: tests", "owner: !!str x")), "r.yaml:4:8"),
    Fixture("yaml.complex_key", _text(_swap("owner: tests", "? [a]\n: b")), "r.yaml:4:3"),
    Fixture(
        "yaml.control_character", _text(_swap("owner: tests", "owner: te\x07sts")), "r.yaml:4:10"
    ),
    Fixture("source.unreadable", _missing_file, "{dir}/nothing.yaml"),
    Fixture(
        "source.encoding", _ruleset_file(b"ruleset: t\nowner: \xff\n"), "{dir}/ruleset.yaml:2:8"
    ),
    Fixture("limit.file_size", _ruleset_file(b"#" * (MAX_RULESET_BYTES + 1)), "{dir}/ruleset.yaml"),
    Fixture("limit.yaml_depth", _text(_DEEP), "r.yaml:1:35"),
    Fixture("limit.expression_length", _text(_when("true or " * 300 + "true")), "r.yaml:15:12"),
    Fixture("limit.expression_depth", _text(_when("not " * 40 + "true")), "r.yaml:15:140"),
    Fixture(
        "limit.number",
        _text(_when("case.classification_confidence > 1e18")),
        "r.yaml:15:45",
    ),
    Fixture("limit.attributes", _text(_swap("rules:\n", _ATTRIBUTES + "rules:\n")), "r.yaml:10:1"),
    Fixture(
        "schema.unknown_key", _text(_swap("owner: tests", "owner: tests\nownr: x")), "r.yaml:5:1"
    ),
    Fixture("schema.missing_key", _text(_swap("owner: tests\n", "")), "r.yaml:1:1"),
    Fixture("schema.type", _text(_swap("owner: tests", "owner: [x]")), "r.yaml:4:8"),
    Fixture(
        "schema.value",
        _text(_swap("rules:\n", "matching: {statuses: [asleep]}\nrules:\n")),
        "r.yaml:10:23",
    ),
    Fixture("schema.format", _text(_swap("ruleset: test", "ruleset: Test")), "r.yaml:1:10"),
    Fixture(
        "schema.range",
        _text(_swap("rules:\n", "signals: {sentiment_window: 0}\nrules:\n")),
        "r.yaml:10:29",
    ),
    Fixture(
        "schema.unknown_param",
        _text(_swap("rules:\n", "signals: {sla_at_risk_minutes: params.nope}\nrules:\n")),
        "r.yaml:10:32",
    ),
    Fixture(
        "areas.cycle",
        _text(_swap("rules:\n", "areas:\n  Y56: E54\n  E54: Y56\nrules:\n")),
        "r.yaml:11:3",
    ),
    Fixture(
        "areas.too_deep",
        _text(
            _swap(
                "rules:\n",
                "areas:\n" + "".join(f"  A{i}: A{i + 1}\n" for i in range(65)) + "rules:\n",
            )
        ),
        "r.yaml:11:3",
    ),
    Fixture(
        "areas.two_parents",
        _text(_swap("rules:\n", "areas:\n  E54: [Y56, Y58]\nrules:\n")),
        "r.yaml:11:8",
    ),
    Fixture(
        "areas.contradicts_iso",
        _text(_swap("rules:\n", "areas:\n  GB-KEN: GB-SCT\nrules:\n")),
        "r.yaml:11:3",
    ),
    Fixture(
        "schema.duplicate_name",
        _text(
            _swap(
                "rules:\n",
                "compacts:\n  - {name: nlc, licence_types: [RN], members: []}\n"
                "  - {name: nlc, licence_types: [LPN], members: []}\nrules:\n",
            )
        ),
        "r.yaml:12:12",
    ),
    Fixture("expr.syntax", _text(_when("case.urgency = 'critical'")), "r.yaml:15:25"),
    Fixture("expr.unknown_field", _text(_when("case.urgncy == 'critical'")), "r.yaml:15:12"),
    Fixture("expr.unknown_param", _text(_when("case.region == params.nope")), "r.yaml:15:27"),
    Fixture("expr.undeclared_attribute", _text(_when("case.attributes.vip")), "r.yaml:15:12"),
    Fixture("expr.type_mismatch", _text(_when("case.urgency == 3")), "r.yaml:15:12"),
    Fixture("expr.unknown_value", _text(_when("case.urgency == 'critcal'")), "r.yaml:15:12"),
    Fixture("expr.not_a_condition", _text(_when("case.region")), "r.yaml:15:12"),
    Fixture("expr.constant", _text(_when("1 == 1")), "r.yaml:15:12"),
    Fixture("expr.list_size", _text(_when("case.region in []")), "r.yaml:15:12"),
    Fixture("expr.unsupported", _text(_when("case.region in case.flags")), "r.yaml:15:12"),
    Fixture(
        "rules.duplicate_id",
        _text(
            BASE.replace(
                "  - id: all",
                "  - id: r\n    when: 'false'\n    then: {route: {queue: clinical}}\n  - id: all",
            )
        ),
        "r.yaml:17",
    ),
    Fixture("rules.missing_catch_all", _text(BASE.removesuffix(CATCH_ALL)), "r.yaml:14"),
    Fixture(
        "rules.unreachable",
        _text(BASE.replace("when: case.urgency == 'critical'", "when: true")),
        "r.yaml:14",
    ),
    Fixture(
        "rules.action_count",
        _text(_swap("then: {route: {queue: clinical}}", "then: {priority: high}")),
        "r.yaml:16:11",
    ),
    Fixture("rules.empty", _text(MINIMAL_HEADER + "rules: []\n"), "r.yaml:10"),
    Fixture(
        "rules.licence_never_assigns",
        _text(
            _route("licence: [Rn]").replace(
                "when: case.urgency == 'critical'", "when: case.intent == 'clinical'"
            )
        ),
        "r.yaml:14",
    ),
    Fixture(
        "constraints.safeguarding_first",
        _text(MINIMAL_HEADER + "rules:\n" + CATCH_ALL),
        "r.yaml:11",
    ),
    Fixture(
        "queues.incomplete",
        _text(
            _swap(
                "queues: {clinical: clinical, prescription: rx, appointment: appt, billing: "
                "billing,\n         complaint: complaints, general: general}",
                "queues: {clinical: clinical}",
            ).replace(
                "{route: {queue: clinical}}\n  - id: all",
                "{route: {queue: by_intent}}\n  - id: all",
            )
        ),
        "r.yaml:8",
    ),
    Fixture(
        "lint.unused_param",
        _text(_swap("rules:\n", "params: {spare: 1}\nrules:\n")),
        "r.yaml:10",
    ),
    Fixture(
        "lint.shadowed",
        _text(
            BASE.replace(
                "  - id: all",
                RULE_R.format(when="case.urgency == 'critical'").replace("id: r", "id: r2")
                + "  - id: all",
            )
        ),
        "r.yaml:17",
    ),
    Fixture("lint.never_fires", _text(_when("false")), "r.yaml:14"),
    Fixture("lint.no_consent", _text(BASE), "r.yaml:6"),
    Fixture(
        "lint.no_ranking",
        _text(_swap("rules:\n", "matching: {ranking: []}\nrules:\n")),
        "r.yaml:10",
    ),
    Fixture("lint.no_licence", _text(BASE), "r.yaml:6"),
    Fixture(
        "lint.flag_near_miss",
        _text(_swap("  licence:", "  consent: {flag: consent_mising}\n  licence:")),
        "r.yaml:7:19",
    ),
    Fixture("lint.licence_outside_constraint", _text(_route("licence: [Rn]")), "r.yaml:14"),
    Fixture(
        "lint.register_type_unused",
        _text(
            _swap(
                "rules:\n",
                "registers:\n  - {name: GPhC, licence_types: [pharmacist], jurisdiction: GB, "
                "covers: [GB-ENG]}\nrules:\n",
            )
        ),
        "r.yaml:11",
    ),
    Fixture(
        "lint.territory_case",
        _text(_swap("rules:\n", "areas:\n  Y56: gb-eng\nrules:\n")),
        "r.yaml:11:3",
    ),
    Fixture(
        "constraints.flag_clash",
        _text(BASE.replace("  licence:", "  consent: {flag: safeguarding}\n  licence:", 1)),
        "r.yaml:7:19",
    ),
    Fixture(
        "lint.flag_look_alike", _text(_when("'safeguarding_review' in case.flags")), "r.yaml:14"
    ),
    Fixture("lint.always_present", _text(_when("exists(case.intent)")), "r.yaml:14"),
    Fixture("lint.unknown_place", _text(_when("case.region == 'US-TXX'")), "r.yaml:14"),
    Fixture("audit.masked_field", _masked, "r.yaml:15"),
    Fixture("golden.now", _golden(_golden_case(now='"yesterday"')), "{dir}/g.yaml:3:10"),
    Fixture(
        "golden.roster",
        _golden(_golden_case(roster=GOOD_ROSTER.replace("2026-11-21T09:00:00Z", "soon"))),
        "{dir}/g.yaml:4:31",  # at `taken_at`, not at the roster's first key
    ),
    Fixture(
        "golden.case",
        _golden(_golden_case(case=GOOD_CASE.replace("phone", "pigeon"))),
        "{dir}/g.yaml:5:61",  # at `channel`, not at the case's first key
    ),
    Fixture(
        "roster.unsatisfiable_licence", _against_roster(_route("licence: [APRN]")), "r.yaml:16:46"
    ),
    Fixture(
        "roster.unsatisfiable_jurisdiction",
        _against_roster(
            _route("licence: [RN]").replace(
                "when: case.urgency == 'critical'", "when: case.patient_location == 'US-NM'"
            )
        ),
        "r.yaml:15",
    ),
    Fixture(
        "roster.unsatisfiable_skill",
        _against_roster(_route("skills: [{name: x-ray, min_level: 1}]")),
        "r.yaml:16:46",
    ),
    Fixture(
        "roster.unsatisfiable_language",
        _against_roster(_when("case.preferred_language == 'cy'")),
        "r.yaml:15",
    ),
    Fixture(
        "roster.unsatisfiable_territory", _against_roster(_when("case.region == 'GB'")), "r.yaml:15"
    ),
    Fixture(
        "roster.unsatisfiable_role", _against_roster(_route("roles: [manager]")), "r.yaml:16:44"
    ),
    Fixture(
        "roster.unsatisfiable_combination",
        _against_roster(
            _route("licence: [RN], skills: [{name: x-ray, min_level: 1}]"),
            make_agent("a1"),
            make_agent("a2", licences=(), skills={"x-ray": 1}),
        ),
        "r.yaml:14",
    ),
    Fixture(
        "roster.unknown_place",
        lambda _tmp: unknown_places(
            compile_text(BASE, "r.yaml"),
            make_roster(make_agent(territories=frozenset({"US-TXX"}))),
            "roster.json",
        ),
        "roster.json",
    ),
    Fixture("serving.unknown_key", _serving("active: '1'\nactve: '2'\n"), "{dir}/serving.yaml:2:1"),
    Fixture("serving.missing_active", _serving("shadow: '2'\n"), "{dir}/serving.yaml:1:1"),
    Fixture("serving.value", _serving("active: [1]\n"), "{dir}/serving.yaml:1:9"),
    Fixture("serving.type", _serving("- active\n"), "{dir}/serving.yaml:1:1"),
    Fixture("versions.misplaced", _misplaced, "{dir}/routing/3/ruleset.yaml:2"),
    Fixture("versions.changed_after_deciding", _decided_before, "r.yaml:2"),
    Fixture(
        "versions.duplicate",
        _built(
            {
                "a/ruleset.yaml": _versioned("routing", "1"),
                "b/ruleset.yaml": _versioned("routing", "1", "other bytes"),
            }
        ),
        "{dir}/b/ruleset.yaml:2",
    ),
    Fixture(
        "versions.no_active",
        _built(
            {
                "routing/1/ruleset.yaml": _versioned("routing", "1"),
                "routing/2/ruleset.yaml": _versioned("routing", "2"),
            }
        ),
        "{dir}/routing",
    ),
    Fixture(
        "versions.not_loaded",
        _built(
            {
                "routing/1/ruleset.yaml": _versioned("routing", "1"),
                "routing/serving.yaml": "active: '9'\n",
            }
        ),
        "{dir}/routing/serving.yaml:1",
    ),
    Fixture("versions.missing", _gone, "{dir}/routing/serving.yaml:1"),
    Fixture("ladders.unused", _text(_laddered(BASE, _STEP)), "r.yaml:11"),
    Fixture(
        "ladders.order",
        _text(
            _laddered(
                _route("soft: [language, territory], ladder: wait"),
                _STEP,
                "step: s2, after: 5m, relax: [territory], why: w",
            )
        ),
        "r.yaml:13",
    ),
    Fixture("ladders.relaxes_hard", _text(_laddered(_route("ladder: wait"), _STEP)), "r.yaml:12"),
    Fixture("ladders.hard", _text(_route("soft: [licence]")), "r.yaml:16:44"),
    Fixture(
        "ladders.step_unreachable",
        _text(
            _laddered(
                _route("soft: [language], ladder: wait"),
                "step: s1, after: {routine: 10m}, relax: [language], why: w",
            )
        ),
        "r.yaml:12",
    ),
    Fixture(
        "ladders.step_no_effect",
        _text(
            _laddered(
                _route("soft: [language], ladder: wait"),
                _STEP,
                "step: s2, after: 20m, relax: [language], why: w",
            )
        ),
        "r.yaml:13",
    ),
    Fixture(
        "ladders.soft_unused", _text(_route("language: false, prefer: [language]")), "r.yaml:14"
    ),
    Fixture("ladders.soft_never_relaxes", _text(_route("soft: [language]")), "r.yaml:14"),
    Fixture(
        "rules.unknown_ladder",
        _text(_laddered(_route("soft: [language], ladder: wiat"), _STEP)),
        "r.yaml:19:63",
    ),
    Fixture(
        "limit.ladders",
        _text(
            _swap(
                "rules:\n",
                "ladders:\n" + "".join(f"  l{i}: [{{{_STEP}}}]\n" for i in range(33)) + "rules:\n",
            )
        ),
        "r.yaml:11:3",
    ),
    Fixture(
        "golden.duplicate_name",
        _golden(_golden_case() + _golden_case()),
        "{dir}/g.yaml:7:5",
    ),
    Fixture("golden.none", lambda tmp: _problems(lambda: load_golden(tmp)), "{dir}/golden"),
    Fixture(
        "golden.unknown_rule",
        _golden(
            _golden_case().replace("rule: all}", "rule: all, not_fired: [al]}"), rule_ids=["all"]
        ),
        "{dir}/g.yaml:6:53",
    ),
    Fixture(
        "golden.unknown_agent",
        _golden(
            _golden_case().replace("rule: all}", "rule: all, excluded: {a1: [status]}}"),
            rule_ids=["all"],
        ),
        "{dir}/g.yaml:6:52",
    ),
    Fixture(
        "golden.unknown_check",
        _golden(
            _golden_case().replace("rule: all}", "rule: all, excluded: {a1: [licnce]}}"),
            rule_ids=["all"],
        ),
        "{dir}/g.yaml:6:57",
    ),
]


def _documented() -> list[str]:
    """Codes in the Error codes table of docs/rulesets.md, in order."""
    text = DOC.read_text()
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [code for row in rows for code in re.findall(r"`([a-z]+\.[a-z_]+)`", row.split("|")[1])]


def _emitted() -> set[str]:
    """Code-like string literals anywhere in the package source."""
    pattern = re.compile(r"[\"']((?:" + "|".join(FAMILIES) + r")\.[a-z_]+)[\"']")
    found = {
        code
        for path in SOURCE.rglob("*.py")
        if "v1" not in path.relative_to(SOURCE).parts[:1]
        for code in pattern.findall(path.read_text())
    }
    return found - NOT_CODES


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.code for f in FIXTURES])
def test_fixture_produces_its_code_at_its_location(fixture: Fixture, tmp_path: Path) -> None:
    """The fixture yields a problem with exactly this code at exactly this file:line[:col]."""
    problems = fixture.produce(tmp_path)
    expected = (fixture.code, fixture.where.format(dir=tmp_path))
    located = [(p.code, p.location) for p in problems if p.code == fixture.code]
    assert located == [expected]


def test_every_documented_code_has_a_fixture_and_no_fixture_is_undocumented() -> None:
    """The docs table and the fixtures list exactly the same codes, each once."""
    documented = _documented()
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(f.code for f in FIXTURES)


def test_every_code_the_source_emits_is_documented() -> None:
    """No code string in src/caseroute is missing from the docs table."""
    assert sorted(_emitted() - set(_documented())) == []
