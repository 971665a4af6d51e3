"""Requirement variants derived once per action object, and ranking's labels: same values."""

from dataclasses import replace

from caseroute.engine import relaxation
from caseroute.engine.ranking import criterion_label
from caseroute.engine.relaxation import derived_requirements, relaxed_requirements
from caseroute.rules.model import RankingCriterion, Requirements


def test_relaxed_requirements_equal_the_replaced_ones_and_are_reused() -> None:
    """Dropping territory (with a language preference) gives replace()'s value, once per req."""
    req = Requirements(soft=("territory",), prefer=("language",))
    relaxed = relaxed_requirements(req, ("territory",))
    assert replace(req, territory=False, language=False) == relaxed
    assert relaxed_requirements(req, ("territory",)) is relaxed
    assert relaxed_requirements(Requirements(), ()) == Requirements()


def test_equal_requirements_in_two_objects_get_their_own_entries() -> None:
    """The memo is by identity: an equal object is built afresh (and equal)."""
    first, second = Requirements(prefer=("language",)), Requirements(prefer=("language",))
    built = [relaxed_requirements(r, ()) for r in (first, second)]
    assert built[0] == built[1]
    assert built[0] is not built[1]


def test_derived_requirements_are_bounded() -> None:
    """Past the bound the memo is emptied, then refilled with the new entry."""
    req = Requirements()
    relaxation._DERIVED.clear()
    for n in range(relaxation._DERIVED_MAX):
        derived_requirements(req, n, Requirements)
    assert len(relaxation._DERIVED) == relaxation._DERIVED_MAX
    derived_requirements(req, "one more", Requirements)
    assert len(relaxation._DERIVED) == 1


def test_criterion_labels_are_unchanged() -> None:
    """Each criterion's label, with and without a skill."""
    assert [criterion_label(c, "triage") for c in RankingCriterion] == [
        "utilisation",
        "triage level",
        "idle minutes",
        "seniority",
    ]
    assert criterion_label(RankingCriterion.HIGHEST_SKILL_LEVEL, None) == "skill level"
