"""A configured masked field list never masks less than the operator wrote (review S42a).

Every path the settings accept masks something a case can hold; one that could not (a
mistyped field, a path below a single value, an attribute name no caller can send) is
refused at start, naming the path, the nearest real one and what to do. The list replaces
the defaults, so defaults it leaves out are named in a start-up warning.
"""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit import config as audit_config
from caseroute.audit.config import check_masked_fields
from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker, mask_case, masked_reads
from caseroute.cli import main
from caseroute.domain.case import ContinuityReason, PreferredAgent
from caseroute.domain.errors import ConfigError
from caseroute.domain.fields import CASE_FIELDS
from caseroute.domain.fingerprint import case_to_dict
from caseroute.rules.compiler import compile_source
from caseroute.rules.source import parse_yaml
from caseroute.testing import NOW, clock, make_case, reading, ruleset_with_rules, skill
from tests.serve_process import LOADED, start_serve

KEY = bytes(range(32))


def _full_case() -> dict[str, Any]:
    """A case as the log masks it, every field given, with an attribute of each name tried."""
    names = [p.removeprefix("case.attributes.") for p in DEFAULT_MASKED_PATHS] + ["x"]
    return case_to_dict(
        make_case(
            preferred_language="en",
            required_skills=(skill("triage", 2),),
            sentiment=(reading(-0.5, 3),),
            sla_clocks=(clock("rtt", 60),),
            flags=frozenset({"vip"}),
            attributes={name: f"{name}-value" for name in names},
            waiting_since=NOW - timedelta(minutes=1),
            declined_agents=frozenset({"a9"}),
            preferred_agents=(PreferredAgent("a1", ContinuityReason.CARE_TEAM),),
        )
    )


def _refusal(*paths: str) -> str:
    with pytest.raises(ConfigError) as exc:
        check_masked_fields(paths)
    return str(exc.value)


def test_a_mistyped_case_field_is_refused_naming_the_nearest_field() -> None:
    """`case.atributes.patient_name` masked nothing, and the list replaced the defaults."""
    assert _refusal("case.attributes.mrn", "case.atributes.patient_name") == (
        "case.atributes.patient_name names no field of a case (did you mean "
        "case.attributes.patient_name?), so it would mask nothing: a case's fields are "
        f"{', '.join(CASE_FIELDS)}; correct the path (patient data belongs in "
        "case.attributes.NAME)"
    )


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("case.attribute.mrn", "case.attributes.mrn"),
        ("case.Attributes.mrn", "case.attributes.mrn"),
        ("case.patient_name", "case.attributes.patient_name"),
        ("case.atributes.pateint_name", "case.attributes.patient_name"),
        ("case.Attributes.Insurance_No", "case.attributes.insurance_no"),
        ("case.insurance_no", "case.attributes.insurance_no"),
        ("case.regoin", "case.region"),
        ("case.prefered_language", "case.preferred_language"),
    ],
)
def test_a_path_naming_no_case_field_is_refused_with_what_was_meant(path: str, meant: str) -> None:
    """An unknown field, misspelt or an attribute written as a field, is refused at start."""
    assert _refusal(path).startswith(f"{path} names no field of a case (did you mean {meant}?)")


def test_a_path_like_no_field_is_refused_without_a_guess() -> None:
    """Nothing near it to suggest: the message still names the path and the case's fields."""
    assert _refusal("case.zzz.yyy").startswith(
        "case.zzz.yyy names no field of a case, so it would mask nothing: a case's fields are "
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("case.region.code", "case.region"),
        ("case.tier.x", "case.tier"),
        ("case.region.*", "case.region"),
        ("case.channel.*", "case.channel"),
        ("case.attributes.mrn.value", "case.attributes.mrn"),
        ("case.attributes.mrn.*", "case.attributes.mrn"),
    ],
)
def test_a_path_below_a_single_value_is_refused(path: str, field: str) -> None:
    """`case.region.code` masked nothing: the masker walks objects, a region is one string."""
    assert _refusal(path) == (
        f"{path} would mask nothing: {field} holds a single value, not an object with "
        f"fields; mask {field} itself"
    )


def test_an_attribute_name_no_caller_can_send_is_refused() -> None:
    """Attribute names are lower_snake_case (others are refused): `Patient_Name` masked nothing."""
    assert _refusal("case.attributes.Patient_Name") == (
        "case.attributes.Patient_Name would mask nothing: attribute names are "
        "lower_snake_case (a-z, 0-9 and _, not starting with a digit; a case sending any "
        "other is refused) and are matched exactly (did you mean "
        "case.attributes.patient_name?); write the name as callers send it"
    )


def test_every_problem_is_reported_at_once() -> None:
    """Two bad paths: both are named, so one start finds every mistake."""
    message = _refusal("case.atributes.mrn", "case.region.code")
    assert ("case.atributes.mrn names" in message, "case.region.code would" in message) == (
        True,
        True,
    )


_MEANT = re.compile(r"\(did you mean (\S+)\?\)")

MISTYPED = (
    *(f"case.{name}" for name in ("created", "createdat", "created_At", "urgncy", "intnt")),
    *(f"case.{name}" for name in ("waiting", "caseid", "Case_Id", "sla_clock", "declined")),
    *(f"case.{name}" for name in ("prefered_agents", "sentimnt", "sentiment_score")),
    "case.sla_clockz.name",
    "case.Sla_Clocks.name",
    "case.regon.code",
    "case.atributes.patient_name.x",
    "case.attribute.mrn.value",
    "case.region_area",
    "case.regionareas",
    "case.nonexistent",
    "case.atributes.*",
)


@pytest.mark.parametrize("path", MISTYPED)
def test_a_suggested_path_is_one_the_list_accepts(path: str) -> None:
    """Review S43a: `case.created` was told "did you mean case.created_at?", refused in turn.

    Whatever a refusal suggests loads; when the nearest path is refused too, no path is
    suggested and its refusal (why, and what to mask instead) is quoted.
    """
    message = _refusal(path)
    meant = _MEANT.search(message)
    if meant is not None:
        assert check_masked_fields((meant[1],)) == (meant[1],), message
    else:
        assert "the path nearest it is refused too: " in message, message


def test_a_mistyped_field_that_cannot_be_masked_says_why_not_what_to_write() -> None:
    """`case.created` is nearest `case.created_at`, which cannot be masked: no "did you mean"."""
    message = _refusal("case.created")
    assert message.endswith(
        "correct the path (patient data belongs in case.attributes.NAME); the path nearest "
        "it is refused too: case.created_at cannot be masked: decisions derive the case's age "
        "(signals.case_age_minutes) and the relaxation ladder's anchor, step times and "
        "next_relaxation_at from case.created_at, and return and record them in clear, so a "
        "digest would hide nothing; keep dates and values the log must not hold in masked "
        "attributes (case.attributes.NAME), which routing reads only where a rule names them"
    )
    assert "did you mean" not in message


def test_problems_of_every_kind_are_reported_at_once() -> None:
    """A field that cannot be masked no longer hides a mistyped path or one of no valid shape.

    The case id, a derived field, a typo and a bad shape: one start names all four.
    """
    message = _refusal("case.case_id", "case.created_at", "case.atributes.mrn", "roster.x")
    assert [
        "case.case_id cannot be masked" in message,
        "case.created_at cannot be masked" in message,
        "case.atributes.mrn names no field" in message,
        "invalid masked field path(s): 'roster.x'" in message,
    ] == [True, True, True, True]


def _candidates() -> list[str]:
    """Paths an operator might write: every field, below it, and attributes in every form."""
    paths = ["case.*", "case.attributes.*", "case.attributes.mrn", "case.attributes.MRN"]
    for name in (*CASE_FIELDS, "atributes", "patient_name", "region_areas"):
        paths += [f"case.{name}", f"case.{name}.*", f"case.{name}.x", f"case.{name}.mrn"]
    paths += [f"{p}.x" for p in DEFAULT_MASKED_PATHS]
    return paths


@pytest.mark.parametrize("path", _candidates())
def test_every_path_accepted_masks_something(path: str) -> None:
    """Whatever the settings accept changes the recorded case: none masks nothing silently."""
    try:
        checked = check_masked_fields((path,))
    except ConfigError:
        return  # refused at start: the operator is told
    case = _full_case()
    assert mask_case(case, Masker(KEY, checked)) != case, f"{path} is accepted but masks nothing"


def test_an_empty_list_is_refused() -> None:
    """`CASEROUTE_AUDIT_MASKED_FIELDS=,` (or `[]`) masked nothing at all: refused."""
    assert _refusal() == (
        "the masked field list names no field, so nothing would be masked (the list replaces "
        "the defaults); list the fields to mask (`defaults` stands for the built-in list: "
        "defaults,case.attributes.NAME adds to it), or leave the setting unset to mask the "
        "defaults"
    )


def test_a_list_of_empty_items_is_refused_naming_its_origin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stray comma in the variable is a usage error naming the variable, not no masking."""
    monkeypatch.setenv("CASEROUTE_AUDIT_MASKED_FIELDS", " , ")
    ruleset = Path(__file__).parents[2] / "rulesets" / "patient-enquiries"
    assert main(["rules", "check", str(ruleset)]) == 2
    assert (
        "caseroute: $CASEROUTE_AUDIT_MASKED_FIELDS: the masked field list names no field"
        in capsys.readouterr().err
    )


def test_defaults_in_the_list_adds_to_the_built_in_paths() -> None:
    """`defaults,case.attributes.insurance_no` masks the defaults and one more, each once."""
    assert check_masked_fields(
        ("defaults", "case.attributes.insurance_no", "case.attributes.mrn")
    ) == (*DEFAULT_MASKED_PATHS, "case.attributes.insurance_no")


def test_a_path_written_twice_is_kept_once() -> None:
    """Duplicates are dropped: the list reads as the operator meant, each path once."""
    assert check_masked_fields(
        ("case.attributes.mrn", "case.attributes.email", "case.attributes.mrn")
    ) == ("case.attributes.mrn", "case.attributes.email")


def _reading_mrn() -> Any:
    text = ruleset_with_rules(
        "  - id: by-mrn\n    when: \"case.attributes.mrn == 'x'\"\n"
        "    then: {route: {queue: by_intent}}\n"
        "  - id: rest\n    when: true\n    then: {route: {queue: by_intent}}\n"
    ).replace("owner: tests\n", "owner: tests\nattributes: {mrn: string}\n")
    return compile_source(parse_yaml(text, "ruleset.yaml"))


def test_rules_check_warns_when_a_whole_object_above_the_field_is_masked() -> None:
    """Masking `case.attributes` whole masks each attribute: `audit.masked_field` says so."""
    warned = masked_reads(_reading_mrn(), Masker(KEY, ("case.attributes",)))
    assert [(p.code, p.rule_id) for p in warned] == [("audit.masked_field", "by-mrn")]


def test_a_list_keeping_every_default_warns_of_nothing() -> None:
    """The defaults, `defaults` plus more, or every attribute: no start-up warning."""
    lists = [
        DEFAULT_MASKED_PATHS,
        ("defaults", "case.attributes.insurance_no"),
        ("case.attributes.*",),
        ("case.attributes", "case.region"),
    ]
    warned = [audit_config.masking_warnings(check_masked_fields(paths)) for paths in lists]
    assert warned == [(), (), (), ()]


def test_defaults_the_list_leaves_out_are_named_with_how_to_keep_them() -> None:
    """The list replaces the defaults: the ones it drops are named, and `defaults` offered."""
    kept = tuple(p for p in DEFAULT_MASKED_PATHS if p != "case.attributes.subject")
    paths = (*kept, "case.attributes.insurance_no")
    assert audit_config.masking_warnings(check_masked_fields(paths)) == (
        (
            "the masked fields configured (--audit-masked-fields, CASEROUTE_AUDIT_MASKED_FIELDS "
            "or [audit] masked_fields) replace the defaults and leave 1 of them unmasked: "
            "case.attributes.subject; patient data a case sends in them is stored in the decision "
            "log and returned in clear. To keep masking them, add `defaults` to the list "
            "(defaults,case.attributes.insurance_no), or name them"
        ),
    )


def test_a_near_miss_of_a_default_left_unmasked_is_named() -> None:
    """`case.attributes.pateint_name` is valid, masks no patient name: the warning says so."""
    paths = check_masked_fields(("case.attributes.pateint_name",))
    assert audit_config.masking_warnings(paths)[1:] == (
        (
            "the masked field case.attributes.pateint_name looks like the default "
            "case.attributes.patient_name, which is not masked: attribute names match exactly, "
            "so a case's patient_name is stored in clear; if case.attributes.pateint_name is a "
            "typo, write case.attributes.patient_name"
        ),
    )


def test_serve_logs_the_defaults_left_unmasked_at_start(tmp_path: Path) -> None:
    """`serve --audit-masked-fields case.attributes.mrn`: a WARNING line names the rest."""
    flags = ("--audit-masked-fields", "case.attributes.mrn", "--log-format", "json")
    # Ready (its rulesets loaded) before it is stopped: it drains and exits as in production.
    with start_serve(tmp_path / "audit.db", *flags) as served:
        seen = list(served.seen)
    first = next(line for line in seen if "replace the defaults" in line or LOADED in line)
    # The warning comes before the rulesets are loaded, once (the parent's, not per worker).
    assert ('"level": "warning"' in first, "leave 11 of them unmasked" in first) == (True, True)
    assert sum("replace the defaults" in line for line in seen) == 1


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("Defaults", "defaults"),
        ("default", "defaults"),
        ("Case.attributes.mrn", "case.attributes.mrn"),
        ("CASE.ATTRIBUTES.MRN", "case.attributes.mrn"),
        ("attributes.mrn", "case.attributes.mrn"),
        ("region", "case.region"),
        ("case..attributes.mrn", "case.attributes.mrn"),
        ("case.attributes.", "case.attributes.*"),
    ],
)
def test_a_path_of_no_valid_shape_is_refused_with_what_was_meant(path: str, meant: str) -> None:
    """Review S43a: a misspelt `defaults` or a capital `Case.` got only the general rule."""
    assert _refusal(path).startswith(
        f"invalid masked field path(s): {path!r} (did you mean {meant}?); a path is dotted"
    )
    if meant != "defaults":
        assert check_masked_fields((meant,)) == (meant,)


@pytest.mark.parametrize(
    "path", ["case.attributes.mrn;case.attributes.email", "case.attributes.mrn case.region"]
)
def test_several_paths_in_one_item_are_named_as_such(path: str) -> None:
    """A `;` or a space between paths (or a comma in a TOML string): say how to separate them."""
    assert _refusal(path).startswith(
        f"invalid masked field path(s): {path!r} (several paths in one item? separate them "
        "with commas in the flag or the variable, and write each as its own string in "
        "[audit] masked_fields); "
    )


def test_a_path_of_no_valid_shape_nearest_a_refused_one_gets_no_guess() -> None:
    """`Case.created_at` is nearest `case.created_at`, which is refused: nothing is suggested."""
    assert "did you mean" not in _refusal("Case.created_at")


@pytest.mark.parametrize(
    "path", ["case." + "x" * 100_000, "case.attributes." + "X" * 100_000, "x;" * 50_000]
)
def test_a_very_long_path_is_shown_by_its_start_and_length(path: str) -> None:
    """Review S43a: a pasted file came back two or three times over (megabytes on one line).

    The message shows the path's first 120 characters and its length, and still ends with
    what to do.
    """
    message = _refusal(path)
    assert (len(message) < 2_000, f"... ({len(path)} characters)" in message) == (True, True)


_ADVISED = re.compile(
    r"(?:mask|write|did you mean) (case\.[A-Za-z0-9_.*]+?)(?:\?|\)| itself|;|,|$)"
)


def _refused_paths() -> list[str]:
    """Every field, mistyped and in every form an operator might write below it."""
    fields = [*CASE_FIELDS, "created", "urgncy", "Case_Id", "regon", "atributes", "Intent"]
    return [f"case.{name}{tail}" for name in fields for tail in ("", ".x", ".*", ".x.y", ".X")]


@pytest.mark.parametrize("path", _refused_paths())
def test_every_path_a_refusal_advises_is_accepted(path: str) -> None:
    """Review S43a: `case.intent.x` was told "mask case.intent itself", which is refused too.

    Whatever path a refusal tells the operator to mask or write, the list accepts.
    """
    try:
        check_masked_fields((path,))
    except ConfigError as exc:
        advised = _ADVISED.findall(str(exc))
    else:
        return  # accepted: no advice to follow
    refused = []
    for meant in advised:
        try:
            check_masked_fields((meant,))
        except ConfigError:
            refused.append(meant)
    assert refused == []


@pytest.mark.parametrize(
    "path", ["case.attributes.patient*", "case.**", "case.attributes.*.x", "*", "case.attributes.?"]
)
def test_a_pattern_is_refused_saying_what_star_means(path: str) -> None:
    """`case.attributes.patient_*` got only the general rule; `*` means every key, alone."""
    assert _refusal(path).startswith(
        f"invalid masked field path(s): {path!r} (no patterns: `*` stands alone as the last "
        "part, for every key of an object, as in case.attributes.*; otherwise name each field); "
    )


@pytest.mark.parametrize("path", ["Case", "CASE.", ".."])
def test_a_path_with_no_field_after_case_gets_the_rule_and_no_guess(path: str) -> None:
    """Nothing after `case` to suggest a field from: the general rule alone, never a guess."""
    message = _refusal(path)
    assert message.startswith(f"invalid masked field path(s): {path!r}; a path is dotted")
    assert "did you mean" not in message


def test_a_path_whose_meant_form_is_still_no_path_gets_no_guess() -> None:
    """`Case.attributes.a-b`: even in small letters no path (a dash), so nothing is suggested."""
    message = _refusal("Case.attributes.a-b")
    assert message.startswith("invalid masked field path(s): 'Case.attributes.a-b'; a path is")
    assert "did you mean" not in message
    assert "refused too" not in message
