"""What a shadow version costs a live call: in-process ``core.decide``, shadow off vs on.

Both sides decide the same case against a 1,000-agent roster (a ranked ASSIGN), record it in a
fresh decision log (durable commit), with the reference ruleset on durable_rules. "on" has a
shadow version named in serving.yaml (a copy of the active one under another version), so
every live call also offers a job to the shadow worker, which decides it again on the other
core and stores the comparison. Rounds alternate off/on; the table gives each side's median
per round and the on/off ratio, plus the shadow worker's totals.

Usage: .venv/bin/python benchmarks/shadow_cost.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from caseroute.engine.case_rules import EngineKind
from caseroute.lifecycle import RulesetLifecycle
from caseroute.registry import RulesetRegistry
from caseroute.service import DecideCommand, RoutingCore
from caseroute.shadow import ShadowRunner
from caseroute.testing import NOW, REFERENCE_RULESET, audit_config
from roster_gen import make_bench_case, make_bench_roster

SHADOW_VERSION = "2099.1.0"
AGENTS = 1000  # the benchmark roster first yields a ranked ASSIGN at this size (docs/benchmarks.md)


def _tree(root: Path, shadow: bool) -> Path:
    home = root / "patient-enquiries"
    active = REFERENCE_RULESET.name
    shutil.copytree(REFERENCE_RULESET, home / active)
    if shadow:
        shutil.copytree(REFERENCE_RULESET, home / SHADOW_VERSION)
        source = home / SHADOW_VERSION / "ruleset.yaml"
        source.write_text(
            source.read_text().replace(f'version: "{active}"', f'version: "{SHADOW_VERSION}"')
        )
    pointer = f'active: "{active}"\n' + (f'shadow: "{SHADOW_VERSION}"\n' if shadow else "")
    (home / "serving.yaml").write_text(pointer)
    return root


def _side(root: Path, shadow: bool) -> tuple[RoutingCore, RulesetLifecycle]:
    config = audit_config(root / f"audit-{'on' if shadow else 'off'}")
    store = config.open_store()
    registry = RulesetRegistry()
    life = RulesetLifecycle(
        registry, _tree(root / ("on" if shadow else "off"), shadow), EngineKind.DURABLE, audit=store
    )
    life.load()
    core = RoutingCore(registry, store, config.masker(), lambda: NOW)
    core.shadow = ShadowRunner(registry, store)
    return core, life


def _round(core: RoutingCore, tag: str, calls: int) -> float:
    case, roster = make_bench_case(), make_bench_roster(AGENTS)
    samples = []
    for i in range(calls):
        # parsed: as a transport's command (the code-built check is not what is measured)
        cmd = DecideCommand(f"{tag}-{i}", "", "", (case,), roster, NOW, parsed=True)
        start = time.perf_counter()
        (decision,) = core.decide(cmd).decisions
        samples.append(time.perf_counter() - start)
        if decision.outcome.value != "ASSIGN":  # the target is a ranked ASSIGN, not a QUEUE
            raise SystemExit(f"expected a ranked ASSIGN, got {decision.outcome.value}")
    return statistics.median(samples) * 1e3


def main() -> None:
    """Print a markdown table: per round, median ms off and on, and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        off, _ = _side(Path(tmp), shadow=False)
        on, _ = _side(Path(tmp), shadow=True)
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        print("| round | shadow off median ms | shadow on median ms | on / off |")
        print("| --- | --- | --- | --- |")
        ratios = []
        for r in range(args.rounds):
            a = _round(off, f"off{r}", args.calls)
            b = _round(on, f"on{r}", args.calls)
            ratios.append(b / a)
            print(f"| {r + 1} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
        shadow = on.shadow
        if shadow is None or not shadow.wait_idle(120):
            raise SystemExit("the shadow worker did not finish its queue")
        print(f"median on/off ratio: {statistics.median(ratios):.2f}")
        print(
            f"shadow worker: evaluated {shadow.evaluated}, dropped {shadow.dropped_total}, "
            f"disagreed {shadow.disagreed}, store failures {shadow.store_failures}"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
