"""Stored and operator strings cannot forge lines or drive the terminal in human output."""

import json
from pathlib import Path

import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.recorder import RequestFacts, blobs_to_store, build_records
from caseroute.cli import main
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.render import escape_text, render_text, safe_json
from caseroute.testing import (
    NOW,
    TEST_AUDIT_KEY,
    ScriptedMatcher,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)
from caseroute.wire.json_dialect import decision_to_json

HOSTILE = "C1\n  x a1: forged line\r\x1b[2J\x9b31m\u202edesrever\u2028end\x00"
ESCAPED = "C1\\n  x a1: forged line\\r\\x1b[2J\\x9b31m\\u202edesrever\\u2028end\\x00"
RULES = ruleset_with_rules(
    """\
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
)


def _unsafe(text: str) -> list[str]:
    """Characters a terminal could act on, other than the line breaks the output itself makes."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _hostile_log(tmp_path: Path) -> tuple[Path, str]:
    """A decision log holding one decision for a case whose id is terminal escapes."""
    config = AuditConfig(db=tmp_path / "audit.db", key_hex=TEST_AUDIT_KEY)
    store = config.open_store()
    loaded = prepare_ruleset(compile_text(RULES), EngineKind.PYTHON)
    roster = make_roster(make_agent("a1"))
    case = make_case(case_id=HOSTILE, attributes={"payer": HOSTILE})
    decision = decide(case, roster, loaded, NOW, decision_id="dec_hostile")
    facts = RequestFacts(HOSTILE, "0" * 64, HOSTILE, "2026-11-21T10:00:00Z")
    records = build_records(facts, loaded.compiled, [case], roster, [decision], config.masker())
    store.append(records, blobs_to_store(store, loaded.compiled, roster))
    store.close()
    return config.db, decision.decision_id


def test_escape_text_spells_out_every_character_a_terminal_acts_on() -> None:
    """C0/C1 controls, DEL, bidi overrides and line separators become visible escapes."""
    assert escape_text(HOSTILE) == ESCAPED
    assert escape_text("a\tb\x7fc\u2066d\u200be") == "a\\tb\\x7fc\\u2066d\\u200be"
    assert escape_text("José, 日本, ✓ plain text") == "José, 日本, ✓ plain text"


def test_audit_show_escapes_stored_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit show` prints a hostile case id, request id and caller escaped, on their lines."""
    db, decision_id = _hostile_log(tmp_path)
    code, out, _ = _run(capsys, "audit", "show", decision_id, "--audit-db", str(db))
    assert (code, _unsafe(out)) == (0, [])
    lines = out.splitlines()
    assert lines[1] == (
        f"  case {ESCAPED}, request {ESCAPED}, recorded 2026-11-21T10:00:00Z, caller {ESCAPED}"
    )
    assert f"{ESCAPED}: ASSIGN to a1 (queue clinical), priority normal" in lines
    assert "  x a1: forged line" not in lines


def test_json_outputs_escape_what_json_leaves_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export, show --json and the --json decision escape C1 controls and bidi overrides too."""
    db, decision_id = _hostile_log(tmp_path)
    code, out, _ = _run(capsys, "audit", "export", "--audit-db", str(db))
    assert (code, _unsafe(out), json.loads(out)["decision"]["case_id"]) == (0, [], HOSTILE)
    code, out, _ = _run(capsys, "audit", "show", decision_id, "--json", "--audit-db", str(db))
    assert (code, _unsafe(out), json.loads(out)["decision"]["case_id"]) == (0, [], HOSTILE)
    loaded = prepare_ruleset(compile_text(RULES), EngineKind.PYTHON)
    decision = decide(make_case(case_id=HOSTILE), make_roster(make_agent()), loaded, NOW)
    text = safe_json(decision_to_json(decision), indent=2)
    assert (_unsafe(text), json.loads(text)["case_id"]) == ([], HOSTILE)


def test_text_explanation_escapes_every_value() -> None:
    """render_text (used by `caseroute decide`) keeps one line per line whatever the ids say."""
    loaded = prepare_ruleset(compile_text(RULES), EngineKind.PYTHON)
    roster = make_roster(make_agent(HOSTILE))
    decision = decide(make_case(case_id=HOSTILE), roster, loaded, NOW)
    text = render_text(decision)
    assert _unsafe(text) == []
    assert (
        text.splitlines()[0] == f"{ESCAPED}: ASSIGN to {ESCAPED} (queue clinical), priority normal"
    )


def test_rules_check_escapes_operator_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules check` echoes a ruleset file name holding escape sequences escaped."""
    path = tmp_path / "rules\x1b[2J\u202e.yaml"
    path.write_text(RULES, encoding="utf-8")
    code, out, _ = _run(capsys, "rules", "check", str(path))
    assert (code, _unsafe(out)) == (0, [])
    assert f"\n{escape_text(str(path))}: ok - test version 1, 2 rules" in out  # after a warning


def test_cli_errors_escape_what_they_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error quoting a file name with escapes prints them spelled out."""
    missing = tmp_path / "case\x1b[2J\u202e.json"
    code, _, err = _run(
        capsys, "decide", "--case", str(missing), "--roster", str(missing), "--engine", "python"
    )
    assert (code, _unsafe(err)) == (2, [])
    assert escape_text(str(missing)) in err


def test_log_lines_quote_caller_ids(caplog: pytest.LogCaptureFixture) -> None:
    """A hostile case id cannot forge log lines: ids are logged quoted, escapes spelled out."""
    compiled = compile_text(RULES)
    loaded = prepare_ruleset(compiled, matcher=ScriptedMatcher(frozenset(compiled.leaves)))
    decision = decide(make_case(case_id=HOSTILE), make_roster(make_agent()), loaded, NOW)
    assert decision.reason_codes == ("engine_disagreement",)
    assert [m.split(" ruleset=")[0] for m in caplog.messages] == [
        f"ENGINE DISAGREEMENT decision_id={decision.decision_id} case_id={HOSTILE!r}"
    ]
    assert _unsafe("".join(caplog.messages)) == []
