"""Shadow results in the decision log: stored beside the chain, summarised, never holding PHI."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import ShadowResult, ShadowSummary
from caseroute.audit.store import WRITE_UNAVAILABLE, SqliteAuditStore
from caseroute.audit.verify import verify_chain
from caseroute.domain.errors import AuditUnavailableError
from caseroute.testing import make_audit_record

LIVE = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "priority": "normal"}


def _result(n: int, *differences: str, **overrides: Any) -> ShadowResult:
    shadow = dict(LIVE)
    if "agent" in differences:
        shadow["agent_id"] = "a2"
    if "outcome" in differences:
        shadow["outcome"] = "QUEUE"
    values: dict[str, Any] = {
        "decision_id": f"dec_{n}",
        "recorded_at": f"2026-11-21T10:00:{n:02d}Z",
        "ruleset_name": "test",
        "live_version": "1",
        "live_sha256": "a" * 64,
        "shadow_version": "2",
        "shadow_sha256": "b" * 64,
        "differences": differences,
        "live": dict(LIVE),
        "shadow": shadow,
    }
    values.update(overrides)
    return ShadowResult(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A fresh store in a temporary directory."""
    made = SqliteAuditStore(tmp_path / "audit.db")
    yield made
    made.close()


def test_results_round_trip_and_filter(store: SqliteAuditStore) -> None:
    """Stored results read back equal, oldest first, by version and disagreements only."""
    results = [
        _result(1),
        _result(2, "agent"),
        _result(3, "outcome", "agent", shadow_version="3"),
        _result(4, "outcome"),
    ]
    store.append_shadow(results)
    assert store.shadow_results("test") == results
    assert store.shadow_results("test", "2") == [results[0], results[1], results[3]]
    assert store.shadow_results("test", disagreements_only=True, limit=2) == results[1:3]
    assert store.shadow_results("test", "2", disagreements_only=True) == [results[1], results[3]]
    assert store.shadow_results("other") == []


def test_shadow_results_are_outside_the_chain(store: SqliteAuditStore) -> None:
    """Storing shadow results moves no seq and no head; the chain still verifies."""
    store.append([make_audit_record(1)])
    head = store.head()
    store.append_shadow([_result(1, "agent")], {("test", "2"): 3})
    assert store.head() == head
    assert verify_chain(store.records(), store.head(), None, store.iter_events()).ok


def test_results_from_before_the_adaptive_kinds_read_and_count_beside_new_ones(
    store: SqliteAuditStore,
) -> None:
    """A result without ladder or continuity keys reads as stored, beside ones carrying them."""
    step = {"ladder_step": "any-language", "relaxed": ["language"]}
    held = {"continuity": "held_for_preferred", "hold_minutes": 7.5}
    results = [
        _result(1, "agent"),
        _result(2, "relaxation", live={**LIVE, "ladder_step": ""}, shadow={**LIVE, **step}),
        _result(
            3, "continuity", live={**LIVE, **held}, shadow={**LIVE, **held, "hold_minutes": 10}
        ),
        _result(4, live={**LIVE, **step, **held}, shadow={**LIVE, **step, **held}),
    ]
    store.append_shadow(results)
    assert store.shadow_results("test") == results
    (summary,) = store.shadow_summary("test")
    assert (summary.evaluated, summary.agreed, summary.differences) == (
        4,
        1,
        (("agent", 1), ("relaxation", 1), ("continuity", 1)),
    )


def test_the_same_comparison_is_stored_once(store: SqliteAuditStore) -> None:
    """A decision compared again with the same shadow content is not counted twice."""
    store.append_shadow([_result(1, "agent")])
    store.append_shadow([_result(1, "agent"), _result(2)])
    assert [r.decision_id for r in store.shadow_results("test")] == ["dec_1", "dec_2"]


def test_summary_counts_per_shadow_version(store: SqliteAuditStore) -> None:
    """Per version: live versions, evaluated, agreed, counts per kind in order, drops, times."""
    store.append_shadow(
        [
            _result(1),
            _result(2, "outcome", "agent", live_version="0"),
            _result(3, "agent"),
            _result(4, "deciding_rule", shadow_version="3", shadow_sha256="c" * 64),
        ],
        dropped={("test", "2"): 2, ("test", "4"): 5, ("other", "2"): 7},
    )
    store.append_shadow([_result(5)], dropped=1)
    assert store.shadow_summary("test") == [
        ShadowSummary(
            ruleset_name="test",
            shadow_version="2",
            shadow_sha256s=("b" * 64,),
            live_versions=("0", "1"),
            evaluated=4,
            agreed=2,
            differences=(("outcome", 1), ("agent", 2)),
            dropped=3,
            first_recorded_at="2026-11-21T10:00:01Z",
            last_recorded_at="2026-11-21T10:00:05Z",
        ),
        ShadowSummary(
            "test",
            "3",
            ("c" * 64,),
            ("1",),
            1,
            0,
            (("deciding_rule", 1),),
            0,
            "2026-11-21T10:00:04Z",
            "2026-11-21T10:00:04Z",
        ),
        ShadowSummary("test", "4", (), (), 0, 0, (), 5, "", ""),
    ]
    summary = store.shadow_summary("test")[0]
    assert (summary.disagreed, summary.disagreement_rate) == (2, 0.5)
    assert store.shadow_summary("test")[2].disagreement_rate is None
    assert store.shadow_summary("none") == []


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            _result(1, live={**LIVE, "patient_name": "Ada"}),
            (
                "shadow result for 'dec_1': live key 'patient_name' is not one of agent_id, "
                "continuity, error, escalation, hold_minutes, ladder_step, outcome, priority, "
                "queue, relaxed, rule_id (a summary never holds case data)"
            ),
        ),
        (
            _result(1, shadow={"outcome": {"case": "x"}}),
            (
                "shadow result for 'dec_1': shadow['outcome'] must be a string, number, boolean "
                "or None"
            ),
        ),
        (
            _result(1, shadow={"error": "x" * 201}),
            "shadow result for 'dec_1': shadow['error'] is longer than 200 characters",
        ),
        (
            _result(1, "rule"),
            (
                "shadow result for 'dec_1': difference 'rule' is not one of outcome, agent, queue, "
                "priority, deciding_rule, escalation, relaxation, continuity, error"
            ),
        ),
        (
            _result(1, shadow={**LIVE, "relaxed": ["language", "Ada Lovelace"]}),
            (
                "shadow result for 'dec_1': shadow['relaxed'] must be a list of requirement names "
                "(territory, skills, language, roles)"
            ),
        ),
        (
            _result(1, shadow={**LIVE, "relaxed": "language"}),
            (
                "shadow result for 'dec_1': shadow['relaxed'] must be a list of requirement names "
                "(territory, skills, language, roles)"
            ),
        ),
        (
            _result(1, live={**LIVE, "hold_minutes": float("nan")}),
            "shadow result for 'dec_1': live['hold_minutes'] must be a finite number",
        ),
        (
            _result(1, shadow_version=""),
            (
                "shadow result for 'dec_1': decision_id, ruleset_name and shadow_version must not "
                "be empty"
            ),
        ),
    ],
    ids=[
        "case-field",
        "nested-value",
        "long-value",
        "unknown-kind",
        "relaxed-case-value",
        "relaxed-not-a-list",
        "hold-not-finite",
        "no-version",
    ],
)
def test_a_result_that_could_carry_case_data_is_refused(
    store: SqliteAuditStore, result: ShadowResult, message: str
) -> None:
    """Only listed summary keys with short scalar values are stored; nothing of the batch is."""
    with pytest.raises(ValueError, match=r"^shadow result ") as caught:
        store.append_shadow([_result(2), result])
    assert str(caught.value) == message
    assert store.shadow_results("test") == []


def test_dropped_must_be_attributable(store: SqliteAuditStore) -> None:
    """An int drop count needs exactly one shadow version in the batch; else use a mapping."""
    with pytest.raises(ValueError, match=r"^dropped=2 ") as caught:
        store.append_shadow([_result(1), _result(2, shadow_version="3")], dropped=2)
    assert str(caught.value) == (
        "dropped=2 cannot be attributed: the results name 2 shadow versions; pass a mapping "
        "{(ruleset_name, shadow_version): count}"
    )
    with pytest.raises(ValueError, match=r"^dropped=1 "):
        store.append_shadow([], dropped=1)
    with pytest.raises(ValueError, match=r"^dropped count "):
        store.append_shadow([], dropped={("test", "2"): -1})
    assert store.shadow_summary("test") == []


def test_a_failed_shadow_write_raises_and_leaves_decisions_writable(tmp_path: Path) -> None:
    """A shadow batch that cannot commit raises WRITE_UNAVAILABLE; decisions still commit."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON shadow_results "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        conn.commit()
    with pytest.raises(AuditUnavailableError) as caught:
        store.append_shadow([_result(1)], dropped=4)
    assert (str(caught.value), store.failures) == (WRITE_UNAVAILABLE, 1)
    (appended,) = store.append([make_audit_record(1)])
    assert (appended.record.seq, store.shadow_summary("test")) == (1, [])
    store.close()
    with pytest.raises(AuditUnavailableError) as caught:
        store.append_shadow([_result(1)])
    assert str(caught.value) == WRITE_UNAVAILABLE


def test_stored_rows_hold_only_the_summaries(store: SqliteAuditStore) -> None:
    """The shadow_results row holds ids, versions, kinds and the two summaries, as JSON."""
    store.append_shadow([_result(1, "agent")])
    with closing(sqlite3.connect(store.path)) as conn:
        row = conn.execute(
            "SELECT differences, agreed, live, shadow FROM shadow_results"
        ).fetchone()
    assert row == (
        '["agent"]',
        0,
        '{"agent_id": "a1", "outcome": "ASSIGN", "priority": "normal", "queue": "clinical"}',
        '{"agent_id": "a2", "outcome": "ASSIGN", "priority": "normal", "queue": "clinical"}',
    )


def test_failed_shadow_decisions_are_kept_per_version(store: SqliteAuditStore) -> None:
    """A shadow error (no sha256) is stored for each version and does not list an empty sha."""
    failed = {"error": "RulesetNotFoundError"}
    store.append_shadow(
        [
            _result(1, "error", shadow_sha256="", shadow=failed),
            _result(1, "error", shadow_version="3", shadow_sha256="", shadow=failed),
            _result(2),
        ]
    )
    summaries = store.shadow_summary("test")
    assert [(s.shadow_version, s.evaluated, s.shadow_sha256s) for s in summaries] == [
        ("2", 2, ("b" * 64,)),
        ("3", 1, ()),
    ]
