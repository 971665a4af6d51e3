"""One mistake, one finding: an error in a ladder reference or step is not repeated as a warning."""

from tests.rules.test_ladders import STEP, _problems, _ruleset


def test_an_unknown_ladder_is_not_also_reported_as_soft_never_relaxing() -> None:
    """`ladder: wiat` is rules.unknown_ladder; no extra ladders.soft_never_relaxes for the rule."""
    text = _ruleset([STEP], "soft: [language], ladder: wiat")
    codes = sorted(p.code for p in _problems(text))
    assert codes == ["ladders.unused", "lint.no_consent", "lint.no_licence", "rules.unknown_ladder"]


def test_a_step_relaxing_a_hard_requirement_is_not_also_a_step_without_effect() -> None:
    """The step relaxes language the rule holds hard: relaxes_hard only, not step_no_effect."""
    text = _ruleset([STEP], "ladder: wait")
    codes = sorted(p.code for p in _problems(text))
    assert codes == ["ladders.relaxes_hard", "lint.no_consent", "lint.no_licence"]
