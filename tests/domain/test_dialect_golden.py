"""Golden YAML cases may be written in the proto spelling, like every other input."""

from __future__ import annotations

from pathlib import Path

from caseroute.engine.decide import decide
from caseroute.rules.golden import load_golden_file, run_golden
from caseroute.testing import reference_ruleset

GOLDEN = """\
now: "2026-11-21T10:00:00Z"
roster:
  snapshot_id: s1
  takenAt: "2026-11-21T09:55:00Z"
  agents:
    - agent_id: nurse-tx-02
      role: ROLE_AGENT
      status: AGENT_STATUS_AVAILABLE
      licences: [{type: RN, jurisdiction: US-TX, expires_on: "2027-02-28"}]
      territories: [US-TX]
      skills: [{name: clinical-triage, level: 2}]
      languages: [en]
      capacity: {max: 5, active: 1}
cases:
  - name: proto-spelling
    description: Enum names, camelCase fields and AttributeValue objects read as the short forms.
    case:
      case_id: G-PROTO-1
      createdAt: "2026-11-21T09:52:00Z"
      channel: CHANNEL_PHONE
      intent: INTENT_CLINICAL
      urgency: URGENCY_URGENT
      tier: TIER_GOLD
      patient_location: US-TX
      region: US-TX
      requiredSkills: [{name: clinical-triage, minLevel: 2}]
      attributes: {plan: {string_value: hmo}}
    expect:
      outcome: ASSIGN
      rule: clinical
      agent: nurse-tx-02
"""


def test_golden_cases_in_proto_spelling_run(tmp_path: Path) -> None:
    """A golden file in the proto spelling loads and its expectation holds."""
    path = tmp_path / "golden.yaml"
    path.write_text(GOLDEN)
    ruleset = reference_ruleset()
    (result,) = run_golden(load_golden_file(path), lambda c, r, now: decide(c, r, ruleset, now))
    assert (result.case.case.case_id, result.mismatches) == ("G-PROTO-1", ())
