"""Issue 13 target 5: caseroute beside GoRules zen and hand-written Python on the clinical rule.

Usage: .venv/bin/python benchmarks/zen_side_by_side.py [--quick] [--sizes 100 1000]
[--rounds 7] [--calls N] [--table PATH]

The work compared: who gets the benchmark case (an urgent clinical enquiry in Texas,
``roster_gen.make_bench_case``) from a ``roster_gen.make_ranked_roster`` roster under the
reference ruleset's ``clinical`` rule: which agents are eligible (consent, declined, status, an RN
licence valid where the patient is, Nurse Licensure Compact included, territory, skills, the
patient's language until the wait relaxes it, capacity) and how the eligible rank (lowest
utilisation, highest triage level, longest idle, agent_id). Four contenders, in one process:

- caseroute ``decide()``: durable_rules engine of record, the whole reference ruleset (every case
  rule, then matching and ranking), summary level (``agent_detail=False``, as
  EXPLANATION_LEVEL_SUMMARY). No decision log: neither contender writes one.
- zen, per agent: ``benchmarks/zen_tables/clinical_eligibility.json``, a first-hit decision table
  (one row per failed check, then "eligible"), loaded once, evaluated once per agent with
  ``{agent, case, now, today}``; the eligible agents ranked in Python.
- zen, loop: the same table in zen's loop mode (``executionMode: loop`` over the roster), one
  evaluate call per decision; a zen user with big rosters would write this.
- hand-written Python: the same checks and ranking as plain functions over the dicts.

Inputs: every contender gets the roster and case in their JSON form (dicts, as
``fingerprint.roster_to_dict``/``case_to_dict`` write them); caseroute also from protobuf
messages (what its gRPC server converts). Warm: the same roster again (caseroute parsed, hashed
and indexed it before; only the case is converted per call). Cold: a roster never seen (new
dicts or a new message each call, made untimed): caseroute converts the roster as a library user's
call does (``parse_roster``: its one-pass path for plainly valid dicts, ``domain/fast_dict.py``,
the strict parser otherwise; or ``wire.convert.roster_from_proto``), hashes it
(``fingerprint_roster``) and indexes it (inside ``decide``); zen and Python do the same work as
warm (they keep nothing between calls). The zen table is loaded once, outside every timing.

Before timing, the script checks that all four agree at each size: the same first failed check
for every agent, the same eligible agents and the same ranking (so the same chosen agent), and
that caseroute's decision is a ranked ASSIGN by rule ``clinical``; it stops otherwise. Rounds
interleave the contenders; each figure is the median over rounds of the per-round median.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import zen

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.decision import Outcome
from caseroute.domain.fingerprint import (
    case_json,
    case_to_dict,
    fingerprint_roster,
    input_sha256_of,
    roster_to_dict,
)
from caseroute.engine.case_rules import EngineKind, LoadedRuleset
from caseroute.engine.decide import decide
from caseroute.testing import NOW, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire.convert import (
    case_from_proto,
    case_to_proto,
    roster_from_proto,
    roster_to_proto,
)
from roster_gen import make_bench_case, make_ranked_roster

# Not benchmarks/zen/: a directory named like the zen package would shadow it for tools that put
# benchmarks/ on their path (ruff already took it for a first-party package).
TABLE = Path(__file__).resolve().parent / "zen_tables" / "clinical_eligibility.json"
TARGET = 5.0
MIN_ELIGIBLE = 3

# The hand-written version's copy of the ruleset: what a team without a rules engine hard-codes.
CONSENT_FLAG = "consent_missing"
STATUSES = frozenset({"available"})
LICENCE_TYPES = frozenset({"RN"})
NLC_TYPES = frozenset({"RN", "LPN"})
NLC_MEMBERS = frozenset(
    f"US-{state}"
    for state in (
        *("AR", "AZ", "CO", "DE", "FL", "GA", "IA", "ID", "KS", "KY", "MD", "ME", "MO", "MS"),
        *("MT", "NC", "ND", "NE", "NH", "OK", "PA", "SC", "SD", "TN", "TX", "UT", "VA", "WI"),
        *("WV", "WY"),
    )
)
"""Nurse Licensure Compact members on the benchmark's day (the table holds the same list)."""
LANGUAGE_RELAXED_AFTER = timedelta(minutes=10)  # the `language` ladder, routine and urgent

Verdicts = dict[str, str | None]
"""agent_id -> the first check the agent fails, ``None`` when eligible."""


@dataclass(frozen=True)
class Choice:
    """What one contender decided: every agent's first failed check and the ranking."""

    verdicts: Verdicts
    ranking: tuple[str, ...]


Runner = Callable[[list[dict[str, Any]], dict[str, Any]], "Choice"]
"""A zen or hand-written contender: (agents, case) -> its choice."""


# --- hand-written Python ----------------------------------------------------------------------


def _licence_ok(licence: dict[str, Any], location: str, today: date) -> bool:
    if licence["type"] not in LICENCE_TYPES or date.fromisoformat(licence["expires_on"]) < today:
        return False
    jurisdiction = licence["jurisdiction"]
    if location == jurisdiction or location.startswith(jurisdiction + "-"):
        return True
    return bool(
        licence.get("multistate")
        and licence["type"] in NLC_TYPES
        and jurisdiction in NLC_MEMBERS
        and location in NLC_MEMBERS
    )


def python_verdicts(
    agents: Sequence[dict[str, Any]], case: dict[str, Any], now: datetime
) -> Verdicts:
    """Hand-written eligibility: each agent's first failed check (``None``: eligible).

    Args:
        agents: The roster's agents as dicts.
        case: The case as a dict.
        now: The decision instant.

    Returns:
        agent_id -> first failed check.
    """
    today = now.date()
    consent_missing = CONSENT_FLAG in case.get("flags", ())
    declined = set(case.get("declined_agents", ()))
    location, region = case["patient_location"], case["region"]
    required = [(s["name"], s["min_level"]) for s in case.get("required_skills", ())]
    language = case.get("preferred_language")
    waited = now - datetime.fromisoformat(case.get("waiting_since") or case["created_at"])
    wanted = (
        language.split("-")[0]
        if language and case["urgency"] != "critical" and waited < LANGUAGE_RELAXED_AFTER
        else None
    )
    out: Verdicts = {}
    for agent in agents:
        levels = {s["name"]: s["level"] for s in agent.get("skills", ())}
        capacity = agent.get("capacity", {})
        failed: str | None = None
        if consent_missing:
            failed = "consent"
        elif agent["agent_id"] in declined:
            failed = "declined"
        elif agent["status"] not in STATUSES:
            failed = "status"
        elif not any(_licence_ok(lic, location, today) for lic in agent.get("licences", ())):
            failed = "licence"
        elif not any(region == t or region.startswith(t + "-") for t in agent["territories"]):
            failed = "territory"
        elif any(levels.get(name, -1) < level for name, level in required):
            failed = "skills"
        elif wanted is not None and not any(
            lang.split("-")[0] == wanted for lang in agent.get("languages", ())
        ):
            failed = "language"
        elif capacity.get("active", 0) >= capacity.get("max", 0):
            failed = "capacity"
        out[agent["agent_id"]] = failed
    return out


def rank_agents(eligible: Sequence[dict[str, Any]], case: dict[str, Any]) -> tuple[str, ...]:
    """The reference ranking: lowest utilisation, highest skill level, longest idle, agent_id.

    Shared by the zen and hand-written contenders (a zen table filters; it does not sort).
    """
    required = case.get("required_skills") or ()
    skill = required[0]["name"] if required else None

    def key(agent: dict[str, Any]) -> tuple[float, int, float, str]:
        capacity = agent.get("capacity", {})
        most, active = capacity.get("max", 0), capacity.get("active", 0)
        level = next((s["level"] for s in agent.get("skills", ()) if s["name"] == skill), 0)
        last = agent.get("last_assigned_at")
        idle = datetime.fromisoformat(last).timestamp() if last else float("-inf")
        return (active / most if most > 0 else 1.0, -level, idle, agent["agent_id"])

    return tuple(agent["agent_id"] for agent in sorted(eligible, key=key))


def python_decide(agents: Sequence[dict[str, Any]], case: dict[str, Any]) -> Choice:
    """Hand-written eligibility plus ranking."""
    verdicts = python_verdicts(agents, case, NOW)
    return Choice(
        verdicts, rank_agents([a for a in agents if verdicts[a["agent_id"]] is None], case)
    )


# --- zen --------------------------------------------------------------------------------------


def zen_inputs() -> dict[str, str]:
    """The instants the table reads beside the agent and the case."""
    return {"now": NOW.isoformat().replace("+00:00", "Z"), "today": NOW.date().isoformat()}


def loop_table(table: dict[str, Any]) -> dict[str, Any]:
    """The same decision table in zen's loop mode: every agent in one evaluate call."""
    looped = copy.deepcopy(table)
    for node in looped["nodes"]:
        if node["type"] == "decisionTableNode":
            node["content"].update(
                inputField="map(agents, {agent: #, case: case, now: now, today: today})",
                outputPath="verdicts",
                executionMode="loop",
            )
    return looped


def _zen_verdict(result: dict[str, Any]) -> str | None:
    # The table's last row outputs failed_check null, which zen leaves out.
    return None if result["eligible"] else str(result["failed_check"])


def zen_per_agent(decision: zen.ZenDecision) -> Runner:
    """A contender: the table evaluated once per agent, the eligible ranked in Python."""
    extra = zen_inputs()

    def run(agents: list[dict[str, Any]], case: dict[str, Any]) -> Choice:
        verdicts = {
            a["agent_id"]: _zen_verdict(
                decision.evaluate({"agent": a, "case": case, **extra})["result"]
            )
            for a in agents
        }
        return Choice(
            verdicts, rank_agents([a for a in agents if verdicts[a["agent_id"]] is None], case)
        )

    return run


def zen_loop(decision: zen.ZenDecision) -> Runner:
    """A contender: the looped table, one evaluate call; the eligible ranked in Python."""
    extra = zen_inputs()

    def run(agents: list[dict[str, Any]], case: dict[str, Any]) -> Choice:
        results = decision.evaluate({"agents": agents, "case": case, **extra})["result"]
        verdicts = {
            a["agent_id"]: _zen_verdict(r) for a, r in zip(agents, results["verdicts"], strict=True)
        }
        return Choice(
            verdicts, rank_agents([a for a in agents if verdicts[a["agent_id"]] is None], case)
        )

    return run


def table_nlc_lists(table: dict[str, Any]) -> list[frozenset[str]]:
    """Every list of jurisdictions written in the table's cells and column expressions."""
    text = json.dumps(table)
    return [
        frozenset(json.loads("[" + body.replace('\\"', '"') + "]"))
        for body in re.findall(r"\[((?:\\\"US-[A-Z]{2}\\\",? ?)+)\]", text)
    ]


# --- caseroute --------------------------------------------------------------------------------


def caseroute_outcome(
    case: dict[str, Any], roster: dict[str, Any], loaded: LoadedRuleset
) -> tuple[Choice, str]:
    """The verdicts and ranking at full detail, and the check line's decision part."""
    decision = decide(parse_case(case), parse_roster(roster), loaded, NOW, agent_detail=True)
    matching = decision.explanation.matching
    line = (
        f"{len(roster['agents'])} agents: {decision.outcome.value} {decision.agent_id or '-'} "
        f"by rule {decision.explanation.deciding_rule_id}, "
        f"{matching.eligible if matching else 0} eligible"
    )
    if (
        matching is None
        or decision.outcome is not Outcome.ASSIGN
        or decision.explanation.deciding_rule_id != "clinical"
        or matching.eligible < MIN_ELIGIBLE
    ):
        sys.exit(f"not a ranked ASSIGN by rule clinical with >= {MIN_ELIGIBLE} eligible: {line}")
    verdicts = {v.agent_id: None if v.eligible else v.failures[0].check for v in matching.agents}
    return Choice(verdicts, tuple(c.agent_id for c in matching.ranking)), line


def first_disagreement(reference: Choice, other: Choice) -> str | None:
    """Where ``other`` differs from caseroute (``None`` when it agrees on everything)."""
    for agent_id, check in reference.verdicts.items():
        theirs = other.verdicts.get(agent_id, "(missing)")
        if theirs != check:
            return f"{agent_id}: caseroute {check or 'eligible'}, this {theirs or 'eligible'}"
    if set(other.verdicts) != set(reference.verdicts):
        return "agents differ"
    if other.ranking != reference.ranking:
        return f"ranking: caseroute {', '.join(reference.ranking)}; this {', '.join(other.ranking)}"
    return None


# --- timing -----------------------------------------------------------------------------------


@dataclass
class Workload:
    """One roster size: its inputs in every form, and the roster prepared for warm calls."""

    size: int
    case_dict: dict[str, Any]
    case_msg: pb.Case
    roster_json: str
    roster_bytes: bytes
    agents: list[dict[str, Any]]
    loaded: LoadedRuleset

    def __post_init__(self) -> None:
        self.roster = parse_roster(json.loads(self.roster_json))
        self.fingerprint = fingerprint_roster(self.roster)  # what the server's cache keeps
        self.caseroute("dicts", None)  # parsed, hashed and indexed: what "warm" means

    def fresh(self, source: str) -> Any:
        """A roster never seen: new dicts, or a new message decoded from the same bytes."""
        if source == "dicts":
            return json.loads(self.roster_json)
        return pb.Roster.FromString(self.roster_bytes)

    def fresh_agents(self) -> list[dict[str, Any]]:
        """New agent dicts (what zen and Python get cold)."""
        agents: list[dict[str, Any]] = json.loads(self.roster_json)["agents"]
        return agents

    def same_agents(self) -> list[dict[str, Any]]:
        """The agent dicts every warm call gets."""
        return self.agents

    def caseroute(self, source: str, roster: Any) -> str | None:
        """One caseroute decision: warm (``roster`` None) or cold (convert, hash, index).

        Args:
            source: ``dicts`` (the strict parser) or ``protobuf`` (the server's converter).
            roster: A fresh roster in that form, or ``None`` for the prepared one.

        Returns:
            The chosen agent.
        """
        if source == "dicts":
            case = parse_case(self.case_dict)
            parsed = self.roster if roster is None else parse_roster(roster)
        else:
            case = case_from_proto(self.case_msg)
            parsed = self.roster if roster is None else roster_from_proto(roster)
        # The roster's digests: kept beside a warm roster (as the server's roster cache keeps
        # them), computed for a cold one; the input hash is then one sha256, as served.
        digests = self.fingerprint if roster is None else fingerprint_roster(parsed)
        input_hash = input_sha256_of(case_json(case), digests)
        return decide(
            case, parsed, self.loaded, NOW, agent_detail=False, input_hash=input_hash
        ).agent_id


def _nothing() -> None:
    """The warm calls' preparation: nothing new."""


def _timed(calls: int, prepare: Callable[[], Any], work: Callable[[Any], object]) -> float:
    """Median seconds of ``work(prepare())`` over ``calls`` calls, ``prepare`` untimed."""
    samples = []
    for _ in range(calls):
        given = prepare()
        start = time.perf_counter()
        work(given)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _on(run: Runner, case: dict[str, Any], agents: list[dict[str, Any]]) -> Choice:
    return run(agents, case)


CONTENDERS = ("caseroute (dicts)", "caseroute (protobuf)", "zen per agent", "zen loop", "Python")
SOURCES = ("dicts", "protobuf")


def measure_round(
    w: Workload, calls: int, runners: dict[str, Runner]
) -> dict[tuple[str, str], float]:
    """One round at one size: (contender, warm|cold) -> median seconds of ``calls`` calls."""
    out = {}
    for source in SOURCES:
        decide_one = partial(w.caseroute, source)
        out[f"caseroute ({source})", "warm"] = _timed(calls, _nothing, decide_one)
        out[f"caseroute ({source})", "cold"] = _timed(calls, partial(w.fresh, source), decide_one)
    for name, run in runners.items():
        work = partial(_on, run, w.case_dict)
        out[name, "warm"] = _timed(calls, w.same_agents, work)
        out[name, "cold"] = _timed(calls, w.fresh_agents, work)
    return out


# --- report -----------------------------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def check_agreement(w: Workload, runners: dict[str, Runner]) -> str:
    """The check line for one size; stops the run unless all four contenders agree."""
    reference, line = caseroute_outcome(w.case_dict, json.loads(w.roster_json), w.loaded)
    for name, run in runners.items():
        differs = first_disagreement(reference, run(w.agents, w.case_dict))
        if differs is not None:
            sys.exit(f"{name} disagrees with caseroute at {w.size} agents: {differs}")
    eligible = ", ".join(reference.ranking)
    return (
        f"check: {line} ({eligible}, best first); zen per agent, zen loop and Python agree "
        f"on every agent's first failed check and on the ranking"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def main() -> None:
    """Check agreement, time interleaved rounds, print markdown tables and the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 call")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 1)")
    parser.add_argument(
        "--calls", type=int, help="calls per block (default 2000 / agents, at least 5; quick 1)"
    )
    parser.add_argument("--table", type=Path, default=TABLE, help="the zen decision table")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 7)
    print(f"load average at start: {load_average()}")
    table = json.loads(args.table.read_text())
    loaded = reference_ruleset(EngineKind.DURABLE)
    members = loaded.compiled.compacts[0].members_on(NOW.date())
    if members != NLC_MEMBERS or any(found != members for found in table_nlc_lists(table)):
        sys.exit("the NLC member list of the table or of the Python version is not the ruleset's")
    engine = zen.ZenEngine()
    runners: dict[str, Runner] = {
        "zen per agent": zen_per_agent(engine.create_decision(json.dumps(table))),
        "zen loop": zen_loop(engine.create_decision(json.dumps(loop_table(table)))),
        "Python": python_decide,
    }
    case = make_bench_case()
    workloads = []
    for size in args.sizes:
        roster = make_ranked_roster(size)
        roster_json = json.dumps(roster_to_dict(roster))
        workloads.append(
            Workload(
                size,
                case_to_dict(case),
                case_to_proto(case),
                roster_json,
                roster_to_proto(roster).SerializeToString(),
                json.loads(roster_json)["agents"],
                loaded,
            )
        )
    calls = {
        w.size: args.calls or (1 if args.quick else max(5, 2000 // max(w.size, 1)))
        for w in workloads
    }
    print(
        f"zen-engine {version('zen-engine')}; caseroute decide(): durable_rules, reference ruleset "
        f"{loaded.compiled.version}, summary level; {rounds} rounds; calls per block: "
        + ", ".join(f"{size} agents {n}" for size, n in calls.items())
    )
    for w in workloads:
        print(check_agreement(w, runners))
    timed: dict[tuple[int, str, str], list[float]] = {}
    for _ in range(rounds):
        for w in workloads:
            for key, seconds in measure_round(w, calls[w.size], runners).items():
                timed.setdefault((w.size, *key), []).append(seconds)
    print(f"load average at end: {load_average()}")
    print()
    print("| agents | contender | warm median ms | cold median ms | cold us per agent |")
    print("| --- | --- | --- | --- | --- |")
    for w in workloads:
        for name in CONTENDERS:
            warm = statistics.median(timed[w.size, name, "warm"])
            cold = statistics.median(timed[w.size, name, "cold"])
            print(f"| {w.size} | {name} | {_ms(warm)} | {_ms(cold)} | {cold * 1e6 / w.size:.1f} |")

    def ahead(size: int, state: str, caseroute: str, rival: str) -> float:
        """Median over rounds of (rival / caseroute): how many times caseroute is ahead."""
        pairs = zip(timed[size, rival, state], timed[size, caseroute, state], strict=True)
        return statistics.median(r / c for r, c in pairs)

    print()
    print(
        "| agents | state | caseroute input | zen per agent / caseroute | zen loop / caseroute "
        "| Python / caseroute |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for w in workloads:
        for state in ("warm", "cold"):
            for source in ("dicts", "protobuf"):
                mine = f"caseroute ({source})"
                print(
                    f"| {w.size} | {state} | {source} | "
                    + " | ".join(
                        f"{ahead(w.size, state, mine, rival):.2f}x"
                        for rival in ("zen per agent", "zen loop", "Python")
                    )
                    + " |"
                )
    print()
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    for rival, label in (("zen per agent", "zen (table per agent)"), ("zen loop", "zen loop mode")):
        for w in workloads:
            for source in ("dicts", "protobuf"):
                ratio = ahead(w.size, "cold", f"caseroute ({source})", rival)
                met = "met" if ratio >= TARGET else "**not met**"
                print(
                    f"| cold {w.size} agents from {source}: >= {TARGET:g}x ahead of {label} "
                    f"| {ratio:.2f}x | {met} |"
                )


if __name__ == "__main__":
    main()
