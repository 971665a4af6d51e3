r"""JUnit XML for ``caseroute rules test --format junit``: golden-case results in, XML text out.

The shape is the one GitHub Actions reporters, GitLab and Jenkins read::

    <testsuites name="caseroute rules test" tests= failures= errors=>
      <testsuite name="NAME@VERSION" tests= failures= errors= skipped="0">
        <properties> path, ruleset_version, ruleset_sha256, engine </properties>
        <testcase classname="NAME" name="CASE" file="GOLDEN.yaml" line="N">
          <failure message="m1; m2" type="mismatch">m1\nm2</failure>
        </testcase>
        <testcase classname="NAME.coverage" name="RULE_ID" file="RULESET.yaml" line="N"/>
      </testsuite>
    </testsuites>

A ruleset (or its golden files) that does not load is a suite with one testcase holding an
``<error>`` whose text is every problem with ``file:line``. There is no ``time`` or
``timestamp``: the same ruleset and cases give the same bytes.

Text taken from operator files and paths is cleaned of every character XML 1.0 cannot hold
(control characters other than tab and newline, CR, DEL, C1 controls, lone surrogates,
U+FFFE/U+FFFF); ElementTree does all escaping. The output is ASCII: anything else is written
as a character reference, so it reads the same whatever stdout's encoding and puts no raw
bidi override or line separator on a terminal.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from caseroute.domain.errors import Problem, Severity
from caseroute.rules.golden import GoldenResult
from caseroute.rules.ir import is_catch_all
from caseroute.rules.model import CompiledRuleset

# Everything outside XML 1.0's Char production, plus \r (parsers turn it into \n), DEL and the
# C1 controls (legal XML, but terminal controls and never meant in a ruleset or a path).
_NOT_XML = re.compile("[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A new child of ``parent``; every attribute and the text pass through ``_clean``."""
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _clean(text)
    return element


def _suite(name: str, properties: Mapping[str, str]) -> ET.Element:
    suite = ET.Element("testsuite", {"name": _clean(name)})
    props = _child(suite, "properties")
    for key, value in properties.items():
        _child(props, "property", name=key, value=value)
    return suite


def _count(suite: ET.Element) -> ET.Element:
    """Set the suite's counts from its testcases."""
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", "0")
    return suite


def _coverage_gaps(rule_id: str, catch_all: bool, decided: int, not_fired: int, n: int) -> str:
    """Why a rule's coverage falls short, and which case to add (empty: it does not)."""
    needs = []
    if not decided:
        needs.append(
            f"rule `{rule_id}` decides none of the {n} golden case(s): add a case it decides"
        )
    if not not_fired and catch_all:
        needs.append(
            f"catch-all rule `{rule_id}` decides all {n} golden case(s): add a case an earlier "
            "rule decides"
        )
    elif not not_fired:
        needs.append(
            f"rule `{rule_id}` fires in all {n} golden case(s): add a case where it does not fire"
        )
    return "; ".join(needs)


def golden_suite(
    compiled: CompiledRuleset,
    results: Sequence[GoldenResult],
    coverage: Mapping[str, tuple[int, int]] | None,
    properties: Mapping[str, str],
) -> ET.Element:
    """The suite of one ruleset: a testcase per golden case, then one per rule if required.

    Args:
        compiled: The ruleset the cases ran against (its name, rules and file).
        results: The golden runner's results, in order.
        coverage: ``rule_coverage`` of the results when ``--require-coverage`` asks for a
            testcase per rule (failing when the rule never decides a case, or never misses
            one); ``None`` for no coverage testcases.
        properties: ``<property>`` name -> value, in order.

    Returns:
        The ``<testsuite>`` element.
    """
    suite = _suite(f"{compiled.name}@{compiled.version}", properties)
    for result in results:
        case = _child(
            suite,
            "testcase",
            classname=compiled.name,
            name=result.case.name,
            file=result.case.file,
            line=str(result.case.line),
        )
        if result.mismatches:
            _child(
                case,
                "failure",
                "\n".join(result.mismatches),
                message="; ".join(result.mismatches),
                type="mismatch",
            )
    # Invariant: a rule fails here exactly when `rules test` counts it a gap (never decides, or
    # never misses), so the XML and the exit code agree.
    if coverage is None:
        return _count(suite)
    for rule in compiled.rules:
        decided, not_fired = coverage[rule.rule_id]
        case = _child(
            suite,
            "testcase",
            classname=f"{compiled.name}.coverage",
            name=rule.rule_id,
            file=compiled.path,
            line=str(rule.line),
        )
        gaps = _coverage_gaps(
            rule.rule_id, is_catch_all(rule.when), decided, not_fired, len(results)
        )
        if gaps:
            _child(case, "failure", gaps, message=gaps, type="coverage")
    return _count(suite)


def load_error_suite(
    *,
    name: str,
    classname: str,
    testcase: str,
    message: str,
    problems: Sequence[Problem],
    properties: Mapping[str, str],
) -> ET.Element:
    """A suite for a ruleset or golden file that does not load: one testcase, one ``<error>``.

    The error's ``type`` is ``load``.

    Args:
        name: The suite's name (``NAME@VERSION``, or the path when even the name is unknown).
        classname: The testcase's class name.
        testcase: The testcase's name (what failed to load).
        message: The error's one-line summary (what to do).
        problems: Every problem; the error's text is one per line, with ``file:line``.
        properties: ``<property>`` name -> value, in order.

    Returns:
        The ``<testsuite>`` element.
    """
    suite = _suite(name, properties)
    case = _child(suite, "testcase", classname=classname, name=testcase)
    text = "\n".join(str(p) for p in problems)
    _child(case, "error", text, message=message, type="load")
    return _count(suite)


def problem_counts(problems: Sequence[Problem]) -> str:
    """``N error(s), M warning(s)`` for an error message."""
    errors = sum(p.severity is Severity.ERROR for p in problems)
    return f"{errors} error(s), {len(problems) - errors} warning(s)"


def render_junit(suites: Sequence[ET.Element]) -> str:
    """The JUnit XML document holding ``suites``: ASCII text ending in a newline.

    Args:
        suites: ``<testsuite>`` elements from ``golden_suite`` or ``load_error_suite``.

    Returns:
        The document, XML declaration first, indented.
    """
    root = ET.Element("testsuites", {"name": "caseroute rules test"})
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.extend(suites)
    ET.indent(root)
    # us-ascii: ElementTree writes every other character as a character reference.
    data: bytes = ET.tostring(root, encoding="us-ascii", xml_declaration=True)
    return data.decode("ascii") + "\n"
