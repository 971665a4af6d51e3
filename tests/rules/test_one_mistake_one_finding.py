"""One mistake in the reference ruleset gives one finding, at the mistake (review R34b F1-F3).

A check that judges the rules as written must not also report what only follows from a rule
that did not read or compile: "rule `missing-patient-location` is first instead" for a typo in
rule 1, "add a catch-all" for a typo in the catch-all, "remove it" for a ladder or param only a
broken rule uses. Each case below is one edit of the reference ruleset and the whole list of
findings `rules check` would print.
"""

from __future__ import annotations

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.testing import REFERENCE_RULESET, compile_text

TEXT = (REFERENCE_RULESET / "ruleset.yaml").read_text()
BASELINE = sorted({p.code for p in compile_text(TEXT).warnings})
"""What the reference ruleset warns of unedited (nothing, or the same in every case)."""


def _findings(old: str, new: str) -> list[tuple[str, str | None]]:
    """Every finding's code and rule for TEXT with the first ``old`` replaced by ``new``."""
    assert old in TEXT, old
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace(old, new, 1))
    return [(p.code, p.rule_id) for p in exc.value.problems if p.code not in BASELINE]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # F1: a mistake in rule 1 is not also "safeguarding must be first; rule X is first".
        (
            "    when: \"'safeguarding' in case.flags\"",
            "    whne: \"'safeguarding' in case.flags\"",
            [("schema.unknown_key", "safeguarding")],
        ),
        ("  - id: safeguarding", "  - idd: safeguarding", [("schema.unknown_key", None)]),
        (
            "'safeguarding' in case.flags\"",
            "'safeguarding' in case.flag\"",
            [("expr.unknown_field", "safeguarding")],
        ),
        (
            "escalate: {queue: safeguarding,",
            "escalate: {queue: Safeguarding,",
            [("schema.format", "safeguarding")],
        ),
        # F2: a mistake in the catch-all is not also "add a catch-all" and "ladder unused".
        ("    when: true", "    wen: true", [("schema.unknown_key", "by-intent")]),
        ("    when: true", "    when: tru", [("expr.unknown_field", "by-intent")]),
        ("  - id: by-intent", "  - di: by-intent", [("schema.unknown_key", None)]),
        # F2: a param only a broken condition reads is not "never used; remove it".
        (
            "not exists(case.patient_location)",
            "not exists(case.patient_location",
            [("expr.syntax", "missing-patient-location")],
        ),
        # F2: a misspelt param the signals name: one error, with the name it meant.
        (
            "  negative_sentiment: -0.5",
            "  negative_sentimnt: -0.5",
            [("schema.unknown_param", None), ("expr.unknown_param", "unhappy-sla-at-risk")],
        ),
        # F3: a misspelt or unreadable intent under `queues:` is not also "no queue; add it".
        ("  clinical: clinical\n", "  clinicl: clinical\n", [("schema.unknown_key", None)]),
        ("  billing: billing\n", "  billing: Billing Team\n", [("schema.format", None)]),
        # A duplicated rule id is one error: the passes keyed conditions by id, so the second
        # rule's condition was judged as the first's (false lint.shadowed and
        # lint.licence_outside_constraint, or constraints.safeguarding_first and
        # rules.unreachable when the first rule's id was reused).
        ("  - id: prescription\n", "  - id: clinical\n", [("rules.duplicate_id", "clinical")]),
        (
            "  - id: missing-patient-location\n",
            "  - id: safeguarding\n",
            [("rules.duplicate_id", "safeguarding")],
        ),
        ("  - id: by-intent\n", "  - id: safeguarding\n", [("rules.duplicate_id", "safeguarding")]),
        # A licence constraint entry that does not read is its own error, not also a warning on
        # each licensed rule that the constraint "allows only :" (what was left of it: nothing).
        ("    clinical: [RN]\n", "    clinical: [' RN']\n", [("schema.format", None)]),
        ("    clinical: [RN]\n", "    clinical: [RN, ' LPN']\n", [("schema.format", None)]),
        ("    clinical: [RN]\n", "    clinical: []\n", [("schema.value", None)]),
        ("    clinical: [RN]\n", "    clinical:\n", [("schema.type", None)]),
        ("    clinical: [RN]\n", "    clinical: RN\n", [("schema.type", None)]),
        # `licence:` deleted from `constraints`: it is required (an error), not also the
        # warning that any agent may be assigned a clinical case.
        (
            (
                "  licence:                                                  # licence valid "
                "where the patient is\n    clinical: [RN]\n    prescription: [pharmacist]\n"
            ),
            "",
            [("schema.missing_key", None)],
        ),
        # `licence:` two spaces short, so at the top level: where it belongs, not also that
        # `constraints` lacks it (nor that no intent has a licence constraint).
        (
            (
                "  licence:                                                  # licence valid "
                "where the patient is\n"
            ),
            "licence:\n",
            [("schema.unknown_key", None)],
        ),
    ],
    ids=[
        "rule-1-key",
        "rule-1-id-key",
        "rule-1-field",
        "rule-1-queue",
        "catch-all-key",
        "catch-all-condition",
        "catch-all-id-key",
        "param-read-by-broken-condition",
        "misspelt-param",
        "queues-intent-key",
        "queues-queue-name",
        "duplicate-id-of-a-licensed-rule",
        "duplicate-id-of-rule-1",
        "duplicate-id-on-the-catch-all",
        "licence-type-unreadable",
        "licence-type-one-of-two-unreadable",
        "licence-types-empty",
        "licence-types-null",
        "licence-types-not-a-list",
        "licence-constraint-deleted",
        "licence-constraint-at-the-top-level",
    ],
)
def test_one_mistake_is_one_finding(
    old: str, new: str, expected: list[tuple[str, str | None]]
) -> None:
    """The edit's own error(s), and nothing that only follows from them."""
    assert _findings(old, new) == expected


def test_the_misspelt_param_the_signals_name_gets_a_did_you_mean() -> None:
    """`params.negative_sentiment` under signals, `negative_sentimnt:` under params."""
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace("  negative_sentiment: -0.5", "  negative_sentimnt: -0.5", 1))
    (signals,) = [p for p in exc.value.problems if p.code == "schema.unknown_param"]
    assert signals.message == (
        "signals.negative_sentiment refers to `params.negative_sentiment`, which is not a "
        "numeric param; did you mean `params.negative_sentimnt`?"
    )


def test_a_rule_1_that_reads_but_is_not_the_safeguarding_rule_is_still_refused() -> None:
    """The check still judges a first rule with no error of its own (moving a rule up)."""
    moved = TEXT.replace("  - id: safeguarding\n", "  - id: safeguarding-x\n", 1)
    with pytest.raises(RulesetError) as exc:
        compile_text(moved.replace("'safeguarding' in case.flags", "'vip' in case.flags", 1))
    assert [p.code for p in exc.value.problems if p.code not in BASELINE] == [
        "constraints.safeguarding_first"
    ]


def test_an_intent_left_out_of_queues_is_still_refused() -> None:
    """Deleting `general:` under `queues:` (no mistake written): queues.incomplete, as before."""
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace("  general: general\n", "", 1))
    assert [p.code for p in exc.value.problems if p.code not in BASELINE] == ["queues.incomplete"]


def test_a_catch_all_missing_with_no_mistake_in_the_last_rule_is_still_refused() -> None:
    """`when: true` replaced by a real condition: the catch-all is missing, and said so."""
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace("    when: true", "    when: case.urgency == 'routine'", 1))
    assert [p.code for p in exc.value.problems if p.code not in BASELINE] == [
        "rules.missing_catch_all"
    ]


# -- F9: a rule licence no agent can hold ------------------------------------------------------


def _warnings(old: str, new: str) -> list[tuple[str, str | None, str]]:
    """The warnings (code, rule, message) of TEXT edited, beyond the baseline's."""
    assert old in TEXT, old
    compiled = compile_text(TEXT.replace(old, new, 1))
    return [(p.code, p.rule_id, p.message) for p in compiled.warnings if p.code not in BASELINE]


def test_an_empty_rule_licence_is_refused() -> None:
    """Review R34b F9: `licence: []` passed with 0 warnings; no agent could ever be assigned.

    It is an error, as `constraints.licence.<intent>: []` already was.
    """
    old = "        reason: prescription\n        licence: [pharmacist]\n"
    assert _findings(old, old.replace("[pharmacist]", "[]")) == [("schema.value", "prescription")]


def _errors(old: str, new: str) -> list[tuple[str, int, str | None, str]]:
    """Every error (code, line, rule, message) of TEXT edited, beyond the baseline's."""
    assert old in TEXT, old
    with pytest.raises(RulesetError) as exc:
        compile_text(TEXT.replace(old, new, 1))
    return [
        (p.code, p.line, p.rule_id, p.message) for p in exc.value.problems if p.code not in BASELINE
    ]


@pytest.mark.parametrize(
    ("written", "hint"),
    [("[RN]", ""), ("[Pharmacist]", " (did you mean `pharmacist` for `Pharmacist`?)")],
    ids=["another-intents-type", "wrong-case"],
)
def test_a_rule_licence_no_constraint_of_its_intents_allows_is_refused(
    written: str, hint: str
) -> None:
    """A prescription-only rule requiring `RN` (constraint: pharmacist) can never assign: error.

    Review R34b F9 found it passed clean; then it was a warning, and `rules check` exited 0
    while every case the rule took queued for nobody, as with `licence: []` (an error).
    """
    line = TEXT.splitlines().index("  - id: prescription") + 1
    assert _errors("        licence: [pharmacist]\n", f"        licence: {written}\n") == [
        (
            "rules.licence_never_assigns",
            line,
            "prescription",
            (
                f"the rule requires licence {written[1:-1]} and routes only `prescription` "
                "cases, but constraints.licence.prescription allows only pharmacist: a rule "
                "narrows that list and never widens it, so this rule can never assign a case: "
                f"each one it takes queues for nobody{hint}; list types the constraint "
                "allows, or, to send these cases to a queue for people to pick up, write "
                "`escalate:` without `assign`"
            ),
        )
    ]


def test_a_rule_licence_one_of_its_intents_allows_is_only_warned_about() -> None:
    """`[pharmacist]` on a clinical-or-prescription rule assigns prescriptions: a warning."""
    old = "    when: case.intent == 'prescription'\n"
    text = TEXT.replace(old, "    when: case.intent in ['clinical', 'prescription']\n", 1)
    compiled = compile_text(text)
    found = [(p.code, p.rule_id) for p in compiled.warnings if p.code not in BASELINE]
    assert found == [("lint.licence_outside_constraint", "prescription")]


def test_a_rule_licence_on_a_rule_open_to_unconstrained_intents_is_only_warned_about() -> None:
    """`[RN]` on a rule for any intent may assign a `general` case (no constraint): a warning."""
    old = "    when: case.intent == 'prescription'\n"
    text = TEXT.replace(old, "    when: case.urgency == 'routine'\n", 1).replace(
        "        licence: [pharmacist]\n", "        licence: [RN]\n", 1
    )
    compiled = compile_text(text)
    found = [(p.code, p.rule_id) for p in compiled.warnings if p.code not in BASELINE]
    assert ("lint.licence_outside_constraint", "prescription") in found


def test_a_rule_licence_within_the_constraint_for_its_intent_is_not_warned_about() -> None:
    """Control: the reference rules (RN for clinical, pharmacist for prescription) warn nothing."""
    assert _warnings("        licence: [pharmacist]\n", "        licence: [pharmacist]\n") == []


def test_a_rule_licence_type_every_constraint_drops_is_warned_about() -> None:
    """`[pharmacist, RN]` on the prescription rule reads "an RN may take it"; none ever does."""
    assert _warnings("        licence: [pharmacist]\n", "        licence: [pharmacist, RN]\n") == [
        (
            "lint.licence_outside_constraint",
            "prescription",
            (
                "the rule requires licence pharmacist, RN, but constraints.licence allows only "
                "pharmacist for the `prescription` cases it routes: a rule narrows that list "
                "and never widens it, so RN is ignored and no agent holding only RN is ever "
                "chosen; remove it from the rule, or add it to the constraint if such an agent "
                "may take these cases"
            ),
        )
    ]


def test_a_rule_licence_type_kept_for_another_intent_it_routes_is_not_warned_about() -> None:
    """Control: `[pharmacist, RN]` for clinical and prescription cases: each intent keeps one."""
    old = "    when: case.intent == 'prescription'\n"
    text = TEXT.replace(old, "    when: case.intent in ['prescription', 'clinical']\n", 1)
    new = text.replace("        licence: [pharmacist]\n", "        licence: [pharmacist, RN]\n", 1)
    assert old in TEXT
    assert [w.code for w in compile_text(new).warnings if w.code not in BASELINE] == []
