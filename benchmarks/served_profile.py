"""Where a served warm Decide's CPU goes, across every thread, four ways (issue 13 targets 1-2).

Usage: .venv/bin/python benchmarks/served_profile.py [--tool py-spy|perf|switches|gil-drops|none]
           [--workers 1] [--clients 8] [--seconds 20] [--rate 500] [--top 15] [--gil] [--check]
           [--py-spy PATH] [--raw OUT] [--folded IN --decisions N]

Starts ``caseroute serve --workers N`` as ``grpc_bench.py`` does (reference rulesets, durable_rules,
a real SQLite decision log with fsync, the call log as JSON), warms ``--clients`` client processes
on the 100-agent SUMMARY Decide, then runs them back to back, a new request_id per call, for
``--seconds`` (``--check``: empty health Checks instead, the floor) while the tool watches every
serving process. Figures are per call completed in that window (a "decision"):

- ``py-spy`` (py-spy 0.4, not a project dependency: ``--py-spy`` or ``$PY_SPY``): ``py-spy
  record --threads --format raw``, with ``--native`` (py-spy pauses the process per sample, so
  the rate falls ~3x under it, and it counts threads waiting on a lock as busy), or with
  ``--gil`` (``--gil --nonblocking``: only the thread holding the GIL, Python frames; the
  GIL-held time per call, which bounds one process's rate). The folded stacks are aggregated by
  thread group (read from the stack: ``rpc`` request threads, ``serve`` grpcio's ``_serve``
  loop, ``auditwriter``, ``logwriter``, ``C`` no Python frame, ``other``), then the top
  ``--top`` functions by self time (with the group that spent most of it) and by inclusive time.
  A sample is 1/rate s of one thread: us per call = samples x 1e6 / rate / calls.
- ``perf`` (``/usr/bin/perf``, on-CPU samples only, native frames and the kernel): ``perf
  record -F rate -g``, reported as us of CPU per call by thread name and library, then by
  library and symbol. Python frames show as ``_PyEval_EvalFrameDefault`` (3.11 has no perf
  trampoline): use it for what is not Python (kernel, SQLite, gRPC core, protobuf).
- ``switches``: voluntary and involuntary context switches and CPU per call by thread group
  (``/proc/PID/task/TID/status``; Python thread names from ``py-spy dump``).
- ``gil-drops``: the same, plus GIL releases per call (``Py_BEGIN_ALLOW_THREADS``) counted by a
  uprobe on ``PyEval_SaveThread`` with ``perf stat --per-thread``; the probe is made once per
  machine (``GIL_PROBE`` says how).
- ``none``: the load alone, the rate printed.

``--folded`` aggregates a saved py-spy raw file instead of running anything (``--decisions``
gives the call count). The machine is shared and the profilers cost CPU themselves: read shares
and per-call figures within one run, never the rate under a profiler.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from grpc_health.v1 import health_pb2

from grpc_bench import CHECK, DECIDE, Clients, decide_body, load_average, serve

PERF = "/usr/bin/perf"
DEFAULT_PY_SPY = "py-spy"  # on PATH unless --py-spy / $PY_SPY says where
_GROUP_MARKERS = (
    # (group, a substring of a frame that places the whole stack in the group), first match wins
    ("serve", "_serve (grpc/_server.py"),
    ("auditwriter", "_write_loop (caseroute/audit/"),
    ("logwriter", "logs/deferred.py"),
    ("rpc", "grpc/_server.py"),
    ("rpc", "concurrent/futures/thread.py"),  # a request thread's pool loop between calls
)
_PY_FRAME = re.compile(r"\((?:[\w./-]+\.py):\d+\)$")
_LINE_NO = re.compile(r":\d+\)$")


def group_of(frames: list[str]) -> str:
    """The thread group a stack was sampled in, from its frames (root first)."""
    text = ";".join(frames)
    for group, marker in _GROUP_MARKERS:
        if marker in text:
            return group
    if not any(_PY_FRAME.search(f) for f in frames):
        return "C"
    return "other"


def function_of(frame: str) -> str:
    """A frame without its line number: ``name (file.py)`` / ``symbol (lib.so)``."""
    return _LINE_NO.sub(")", frame)


def parse_folded(text: str) -> list[tuple[list[str], int]]:
    """``(frames root first, samples)`` per line of py-spy's raw (folded) output.

    The ``process ...`` and ``thread (...)`` frames py-spy puts at the root are dropped.
    """
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith(("process ", "thread ", "process:"))
        ]
        stacks.append((frames, int(count)))
    return stacks


def aggregate(stacks: list[tuple[list[str], int]], rate: float, decisions: int, top: int) -> str:
    """The report's tables: groups, top self, top inclusive (us per decision)."""
    per_sample = 1e6 / rate / decisions
    groups: Counter[str] = Counter()
    own: Counter[str] = Counter()
    own_by_group: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        group = group_of(frames)
        groups[group] += count
        if not frames:
            continue
        leaf = function_of(frames[-1])
        own[leaf] += count
        own_by_group[leaf][group] += count
        for name in {function_of(f) for f in frames}:
            inclusive[name] += count
    total = sum(groups.values())
    out = [
        (
            f"{decisions} decisions, {total} samples at {rate:g} Hz: "
            f"{total * per_sample:,.0f} us of server CPU per decision (sampled)"
        ),
        "",
        "| thread group | us per decision | share |",
        "| --- | --- | --- |",
    ]
    for group, count in groups.most_common():
        out.append(f"| {group} | {count * per_sample:,.1f} | {count / total:.1%} |")
    out += ["", "| function (self time) | us per decision | share | thread group |"]
    out.append("| --- | --- | --- | --- |")
    for name, count in own.most_common(top):
        where = own_by_group[name].most_common(1)[0][0]
        out.append(f"| `{name}` | {count * per_sample:,.1f} | {count / total:.1%} | {where} |")
    out += ["", "| function (inclusive) | us per decision | share |", "| --- | --- | --- |"]
    for name, count in inclusive.most_common(top):
        out.append(f"| `{name}` | {count * per_sample:,.1f} | {count / total:.1%} |")
    return "\n".join(out)


def _profile(args: argparse.Namespace) -> tuple[str, int]:
    """Serve, load and sample; the raw folded text and the decisions made while sampling."""
    with serve(args.workers, "durable") as server:
        clients = Clients(server.address, args.clients)
        body = decide_body(100)
        clients.warm(DECIDE, body)
        clients.per_second(DECIDE, body, 1.0, unique=True)  # every worker past its first calls
        if args.check:  # the floor: the same load of empty health checks
            method, body, unique = CHECK, health_pb2.HealthCheckRequest().SerializeToString(), False
            clients.per_second(method, body, 1.0, unique)
        else:
            method, unique = DECIDE, True
        raw = args.raw or Path(tempfile.mkdtemp()) / "raw.txt"
        spy = None
        if args.tool == "py-spy":
            command = [args.py_spy, "record", "--threads", "--rate", str(args.rate)]
            command += ["--format", "raw", "--output", str(raw), "--pid", str(server.pid)]
            command += ["--duration", str(round(args.seconds) + 2)]
            command += ["--gil", "--nonblocking"] if args.gil else ["--native"]
            if args.workers > 1:
                command.append("--subprocesses")
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # py-spy attaching: it gives no event to wait on
        elif args.tool == "perf":
            pids = ",".join(str(p) for p in server.pids)
            command = [PERF, "record", "-F", str(args.rate), "-g", "-p", pids]
            command += ["-o", str(raw.with_suffix(".data")), "--", "sleep", str(args.seconds)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if args.tool in ("switches", "gil-drops"):
            names = thread_names(args.py_spy, server.pids)
            before = task_counters(server.pids)
        if args.tool == "gil-drops":
            command = [PERF, "stat", "--per-thread", "-x", ",", "-e", GIL_PROBE]
            command += ["-p", ",".join(map(str, server.pids)), "--", "sleep", str(args.seconds)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start = time.perf_counter()
        rate = clients.per_second(method, body, args.seconds, unique)
        wall = time.perf_counter() - start
        decisions = round(rate * args.seconds)
        drops: dict[int, int] = {}
        if spy is not None:
            _, err = spy.communicate(timeout=args.seconds + 60)
            if args.tool == "gil-drops":
                drops = per_thread_counts(err.decode())
            if spy.returncode:
                print(f"py-spy failed: {err.decode(errors='replace')[:400]}", file=sys.stderr)
        clients.close()
        print(f"load {load_average()}; {rate:,.0f} decisions/s over {wall:.1f} s", flush=True)
        if args.tool in ("switches", "gil-drops"):
            after = task_counters(server.pids)
            return switch_table(names, before, after, decisions, drops), 0
        if args.tool == "perf":
            return perf_tables(raw.with_suffix(".data"), args.rate, decisions, args.top), 0
        return (raw.read_text() if raw.exists() else ""), decisions


_DUMP_THREAD = re.compile(r'^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]*)"', re.MULTILINE)


def thread_names(py_spy: str, pids: tuple[int, ...]) -> dict[int, str]:
    """Python thread names by native thread id (``py-spy dump``); others are absent."""
    names = {}
    for pid in pids:
        dump = subprocess.run(
            [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
        for tid, name in _DUMP_THREAD.findall(dump):
            names[int(tid, 0)] = name
    return names


def task_counters(pids: tuple[int, ...]) -> dict[int, tuple[int, int, int]]:
    """``(voluntary switches, involuntary switches, CPU ticks)`` of every thread, by id."""
    found = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                status = (task / "status").read_text()
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended while listed
                continue
            counts = dict(
                line.split(":\t") for line in status.splitlines() if "ctxt_switches" in line
            )
            found[int(task.name)] = (
                int(counts["voluntary_ctxt_switches"]),
                int(counts["nonvoluntary_ctxt_switches"]),
                int(stat[11]) + int(stat[12]),
            )
    return found


def _name_group(name: str) -> str:
    """A thread group from a Python thread's name (``C`` for gRPC core's unnamed threads)."""
    if not name:
        return "C"
    if "_serve" in name:
        return "serve"
    return name.rstrip("0123456789_").replace("-", "") or name


GIL_PROBE = "probe_libpython3:PyEval_SaveThread"
"""A uprobe on CPython's GIL release (every ``Py_BEGIN_ALLOW_THREADS``). Made once per machine:
``perf probe -x <libpython3.11.so.1.0> PyEval_SaveThread``."""
_PER_THREAD = re.compile(r"^[^,]*-(\d+),(\d+),")


def per_thread_counts(text: str) -> dict[int, int]:
    """Counts by thread id from ``perf stat --per-thread -x ,`` (``comm-TID,count,...``)."""
    return {
        int(m.group(1)): int(m.group(2)) for m in map(_PER_THREAD.match, text.splitlines()) if m
    }


def switch_table(
    names: dict[int, str],
    before: dict[int, tuple[int, int, int]],
    after: dict[int, tuple[int, int, int]],
    decisions: int,
    drops: dict[int, int] | None = None,
) -> str:
    """Context switches, GIL releases (when counted) and CPU per decision, by thread group."""
    groups: dict[str, list[int]] = {}
    for tid, (vol, invol, ticks) in after.items():
        was = before.get(tid, (0, 0, 0))
        got = groups.setdefault(_name_group(names.get(tid, "")), [0, 0, 0, 0, 0])
        got[0] += 1
        got[1] += vol - was[0]
        got[2] += invol - was[1]
        got[3] += ticks - was[2]
        got[4] += (drops or {}).get(tid, 0)
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    out = [
        f"{decisions} decisions",
        "",
        (
            "| thread group | threads | voluntary switches per decision | involuntary | "
            "GIL releases | CPU us per decision |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = sorted(groups.items(), key=lambda g: -g[1][1])
    for group, (threads, vol, invol, ticks, released) in rows:
        out.append(
            f"| {group} | {threads:.0f} | {vol / decisions:.2f} | {invol / decisions:.2f} | "
            f"{released / decisions:.2f} | {ticks * tick_us / decisions:,.0f} |"
        )
    return "\n".join(out)


_FLAT = ("-g", "none")
_PERF_ROW = re.compile(r"^\s+([\d.]+)%\s+(.*\S)\s*$")
_PERF_SAMPLES = re.compile(r"^# Samples: (\d+)([KM]?)", re.MULTILINE)


def perf_tables(data: Path, rate: int, decisions: int, top: int) -> str:
    """``perf report`` of the server's threads as us of CPU per decision.

    By thread name and library, then by library and symbol (self time, every thread: perf
    samples on-CPU time only).
    """
    out = []
    for sort in ("comm,dso", "dso,sym"):
        report = subprocess.run(
            [PERF, "report", "-i", str(data), "--no-children", "--sort", sort, "--stdio", *_FLAT],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = _PERF_SAMPLES.search(report)
        if found is None:
            return "perf recorded no samples"
        samples = int(found.group(1)) * {"": 1, "K": 1000, "M": 1000000}[found.group(2)]
        per_decision = samples / rate * 1e6 / max(decisions, 1)
        if sort == "comm,dso":
            out.append(
                f"{decisions} decisions, {samples} samples at {rate} Hz: "
                f"{per_decision:,.0f} us of server CPU per decision (perf, on-CPU)"
            )
        out += ["", f"| {sort} (self) | us per decision | share |", "| --- | --- | --- |"]
        rows = [m.groups() for m in map(_PERF_ROW.match, report.splitlines()) if m]
        for share, name in rows[:top]:
            cells = " ".join(name.split())
            out.append(f"| `{cells}` | {float(share) * per_decision / 100:,.1f} | {share}% |")
    return "\n".join(out)


def main() -> None:
    """Profile (or read a saved profile) and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--tool", choices=("py-spy", "perf", "switches", "gil-drops", "none"), default="py-spy"
    )
    parser.add_argument("--check", action="store_true", help="health Checks instead of Decides")
    parser.add_argument("--gil", action="store_true", help="py-spy: only samples holding the GIL")
    parser.add_argument("--py-spy", default=os.environ.get("PY_SPY", DEFAULT_PY_SPY))
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw folded stacks here")
    parser.add_argument("--folded", type=Path, help="aggregate this raw file, run nothing")
    parser.add_argument("--decisions", type=int, default=0, help="with --folded")
    args = parser.parse_args()
    print(f"load {load_average()}", flush=True)
    if args.folded:
        text, decisions = args.folded.read_text(), args.decisions
    else:
        text, decisions = _profile(args)
        if args.tool in ("perf", "switches", "gil-drops"):
            print(text)
            return
        if args.raw:
            args.raw.write_text(text)
    if not text:
        return
    print(aggregate(parse_folded(text), args.rate, max(decisions, 1), args.top))


if __name__ == "__main__":
    main()
