"""``caseroute simulate``: seeded synthetic traffic, written as JSON lines or sent to a server.

Without ``--server`` the requests go to ``--out`` (or stdout), one per line in the JSON dialect,
each exactly the ``caseroute.v1.DecideRequest`` (one case) or ``DecideBatchRequest`` that
``--server`` would send (``caseroute.wire.json_dialect.simulated_request_to_json``). With
``--server`` they are sent through ``caseroute.client.Client`` (the published client: its
retries on UNAVAILABLE, its error classes) as Decide (one case) and DecideBatch (several) calls,
each with its seeded request id, at most ``--concurrency`` in flight, so the server's decision
log fills with real, audited decisions; a summary follows. Once ``STOP_AFTER_UNAVAILABLE`` calls
in a row are UNAVAILABLE (after the client's retries) it stops sending and says so. Exit codes:
0 every call answered; 1 some call was refused or failed (counted per status code) or the load
stopped early; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from caseroute.cli.options import (
    add_client_tls,
    bearer_token,
    client_tls,
    parse_instant,
    server_targets,
    timeout_seconds,
)
from caseroute.cli.output import EXIT_FAILED, EXIT_OK, UsageError, out
from caseroute.cli.settings import add_settings, setting_source
from caseroute.domain.enums import ExplanationLevel

if TYPE_CHECKING:
    from caseroute.client import BatchDecided, Decided
    from caseroute.domain.case import Case
    from caseroute.domain.decision import Decision
    from caseroute.domain.roster import Roster
    from caseroute.simulate import SimulatedRequest

DEFAULT_CONCURRENCY = 4
"""Calls in flight at once with ``--server`` unless ``--concurrency`` says otherwise."""

OUTCOMES = ("ASSIGN", "ESCALATE", "QUEUE", "EXCEPTION")
"""Outcomes in the order the summary lists them."""

MAX_CONCURRENCY = 64
"""Most calls in flight ``--concurrency`` allows (a load generator, not a flood)."""

STOP_AFTER_UNAVAILABLE = 8
"""Calls in a row answered UNAVAILABLE, each after the client's own retries, after which a load
stops sending: the server is down or not ready, and every further call would only wait out the
same retries (about 1.4 s each) to be refused too."""


def _whole(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number from {low} to {high}, got {text!r}"
            )
        return value

    return parse


class RoutingCalls(Protocol):
    """The calls a load makes: ``caseroute.client.Client``'s (tests pass a fake)."""

    def decide(
        self,
        case: Case,
        roster: Roster,
        *,
        now: datetime,
        ruleset: str | None,
        version: str | None,
        request_id: str,
        explanation_level: ExplanationLevel,
    ) -> Decided:
        """RoutingService.Decide (see ``Client.decide``)."""
        ...

    def decide_batch(
        self,
        cases: Sequence[Case],
        roster: Roster,
        *,
        now: datetime,
        ruleset: str | None,
        version: str | None,
        request_id: str,
        explanation_level: ExplanationLevel,
    ) -> BatchDecided:
        """RoutingService.DecideBatch (see ``Client.decide_batch``)."""
        ...


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """What every call of a load asks for besides its request.

    Attributes:
        ruleset: Ruleset name (None: the server's default).
        version: Ruleset version to pin (None: the active one).
        level: Explanation level asked for.
    """

    ruleset: str | None = None
    version: str | None = None
    level: ExplanationLevel = ExplanationLevel.FULL


@dataclass(slots=True)
class LoadSummary:
    """What a load run did.

    Attributes:
        requests: Calls sent.
        cases: Cases in them.
        ok: Calls answered with decisions.
        decisions: Decisions received.
        outcomes: Decisions per outcome (ASSIGN, ESCALATE, QUEUE, EXCEPTION).
        refused: Calls refused or failed, per gRPC status code name.
        first_error: Per status code name, the message of the first request (in the order
            sent) refused with it.
        seconds: Wall time of the run.
        stopped: True when the load stopped sending early (``STOP_AFTER_UNAVAILABLE``).
    """

    requests: int = 0
    cases: int = 0
    ok: int = 0
    decisions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: bool = False

    def lines(self) -> list[str]:
        """The summary as printed."""
        rate = self.decisions / self.seconds if self.seconds > 0 else 0.0
        refused = sum(self.refused.values())
        lines = [
            f"sent {self.requests} requests ({self.cases} cases) in {self.seconds:.1f} s",
            f"ok {self.ok} requests, {self.decisions} decisions ({rate:.1f} decisions/s)",
            "outcomes: " + ", ".join(f"{o} {self.outcomes[o]}" for o in OUTCOMES),
            f"refused {refused} requests",
        ]
        for code, count in sorted(self.refused.items()):
            first = self.first_error[code].splitlines()[0]
            lines.append(f"  {code}: {count} (first: {first})")
        if self.stopped:
            lines.append(
                f"stopped early: {STOP_AFTER_UNAVAILABLE} calls in a row were UNAVAILABLE after "
                "the client's retries, so the rest was not sent; check the server is up and "
                "ready (caseroute health --server HOST:PORT), then send the same seed again "
                "(decisions already recorded come back as stored)"
            )
        return lines


def _send(client: RoutingCalls, settings: LoadSettings, request: SimulatedRequest) -> list[str]:
    # Invariant: the seeded request id is sent as is (never one derived by the client), so
    # sending the same seed again is an idempotent retry of the same calls.
    if len(request.cases) == 1:
        decisions: Sequence[Decision] = (
            client.decide(
                request.cases[0],
                request.roster,
                now=request.now,
                ruleset=settings.ruleset,
                version=settings.version,
                request_id=request.request_id,
                explanation_level=settings.level,
            ).decision,
        )
    else:
        decisions = client.decide_batch(
            request.cases,
            request.roster,
            now=request.now,
            ruleset=settings.ruleset,
            version=settings.version,
            request_id=request.request_id,
            explanation_level=settings.level,
        ).decisions
    return [decision.outcome.value for decision in decisions]


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    # Quiet when stderr is not a terminal (a pipe, CI log, a test): no escape codes there.
    from rich.console import Console
    from rich.progress import Progress

    with Progress(
        console=Console(stderr=True), disable=not sys.stderr.isatty(), transient=False
    ) as progress:
        task = progress.add_task("deciding", total=total)
        yield lambda n: progress.advance(task, n)


def run_load(
    client: RoutingCalls,
    requests: Iterable[SimulatedRequest],
    concurrency: int,
    total: int,
    settings: LoadSettings | None = None,
) -> LoadSummary:
    """Send every request, at most ``concurrency`` in flight, and count the answers.

    Args:
        client: Where to send (a ``caseroute.client.Client``).
        requests: The requests, in order.
        concurrency: Calls in flight at most.
        total: Cases expected in all (for progress).
        settings: Ruleset, version and explanation level of every call (None: the server's
            ruleset, FULL).

    Returns:
        The counts: a call that raised ``ClientError`` is counted under its status code. After
        ``STOP_AFTER_UNAVAILABLE`` calls in a row refused UNAVAILABLE no more are sent (the
        calls in flight are still counted) and ``stopped`` is set.
    """
    from caseroute.client import ClientError

    chosen = settings or LoadSettings()
    summary = LoadSummary()
    started = time.monotonic()
    pending: dict[futures.Future[list[str]], tuple[int, SimulatedRequest]] = {}
    first_at: dict[str, int] = {}  # status code name -> index of its first refused request
    unavailable_run = 0  # calls in a row (as settled) refused UNAVAILABLE

    def settle(done: Iterable[futures.Future[list[str]]], advance: Callable[[int], None]) -> None:
        nonlocal unavailable_run
        for future in done:
            index, request = pending.pop(future)
            try:
                outcomes = future.result()
            except ClientError as error:
                code = error.code.name
                summary.refused[code] += 1
                unavailable_run = unavailable_run + 1 if code == "UNAVAILABLE" else 0
                # "First" in the order sent, not of completion: the same run prints the same.
                if index < first_at.get(code, index + 1):
                    first_at[code] = index
                    summary.first_error[code] = str(error)
            else:
                unavailable_run = 0
                summary.ok += 1
                summary.decisions += len(outcomes)
                summary.outcomes.update(outcomes)
            advance(len(request.cases))

    with (
        _progress(total) as advance,
        futures.ThreadPoolExecutor(concurrency, thread_name_prefix="simulate") as pool,
    ):
        for index, request in enumerate(requests):
            # Invariant: never more than `concurrency` calls in flight (bounded memory too).
            if len(pending) >= concurrency:
                done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                settle(done, advance)
            if unavailable_run >= STOP_AFTER_UNAVAILABLE:
                summary.stopped = True
                break
            pending[pool.submit(_send, client, chosen, request)] = (index, request)
            summary.requests += 1
            summary.cases += len(request.cases)
        settle(futures.wait(pending).done, advance)
    summary.seconds = time.monotonic() - started
    return summary


def _write_lines(
    requests: Iterable[SimulatedRequest], settings: LoadSettings, stream: IO[str]
) -> None:
    from caseroute.domain.fingerprint import canonical_json
    from caseroute.wire.json_dialect import simulated_request_to_json

    for request in requests:
        line = simulated_request_to_json(
            request,
            level=settings.level,
            ruleset=settings.ruleset or "",
            version=settings.version or "",
        )
        stream.write(canonical_json(line) + "\n")


START_YEARS = (1900, 9000)
"""The years ``--start`` may fall in (licence expiries and contact histories span years)."""


def _cmd_simulate(args: argparse.Namespace) -> int:
    from caseroute.simulate import simulate

    start = parse_instant(args.start, "--start")
    # The simulator dates licence expiries and histories years either side of the day: an
    # instant near the calendar's ends overflowed into a traceback (review R32b F12).
    if start is not None and not START_YEARS[0] <= start.year <= START_YEARS[1]:
        raise UsageError(
            f"--start {args.start} is outside the years {START_YEARS[0]}-{START_YEARS[1]} the "
            "simulator dates around; give an instant in that range, e.g. 2026-11-21T07:00:00Z"
        )
    token_flag = setting_source(args, "token_file").kind == "flag"  # the variable may be set
    if args.server is None and (token_flag or args.tls_ca is not None):
        raise UsageError("--token-file and --tls-* apply only with --server HOST:PORT")
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a directory; give a file name, e.g. traffic.jsonl")

    # Generated afresh for each use rather than held: the same arguments give the same requests.
    def requests() -> Iterator[SimulatedRequest]:
        return simulate(args.cases, args.agents, args.seed, start=start)

    # A line is the very request --server sends (same level and ruleset selector), so a line
    # sent later by grpcurl or `decide --request` is a retry of it, not a conflicting reuse.
    settings = LoadSettings(
        ruleset=args.ruleset_name or None,
        version=args.ruleset_version or None,
        level=ExplanationLevel.SUMMARY if args.no_agent_detail else ExplanationLevel.FULL,
    )
    if args.out is not None:
        try:
            with args.out.open("w", encoding="utf-8") as stream:
                _write_lines(requests(), settings, stream)
        except OSError as exc:
            raise UsageError(
                f"--out: cannot write {args.out}: {exc.strerror or exc}; pick a writable path"
            ) from None
    if args.server is None:
        if args.out is None:
            _write_lines(requests(), settings, sys.stdout)
        return EXIT_OK
    from caseroute.client import Client

    with Client(
        args.server, tls=client_tls(args), token=bearer_token(args), timeout=args.timeout
    ) as client:
        summary = run_load(client, requests(), args.concurrency, args.cases, settings)
    for line in summary.lines():
        out(line)
    return EXIT_FAILED if summary.refused else EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate``."""
    cmd = sub.add_parser(
        "simulate",
        help="seeded synthetic traffic (cases and roster snapshots over a simulated day): "
        "JSON lines, or sent to a server as a bounded load generator",
    )
    cmd.add_argument(
        "--cases", type=_whole("--cases", 1, 10_000_000), required=True, help="cases in all"
    )
    cmd.add_argument(
        "--agents",
        type=_whole("--agents", 1, 20_000),
        required=True,
        help="agents on each roster snapshot",
    )
    cmd.add_argument(
        "--seed",
        type=_whole("--seed", 0, 2**64 - 1),
        required=True,
        help="random seed, 0 to 2**64-1: the same arguments give the same requests",
    )
    cmd.add_argument(
        "--start", help="first instant of the simulated day (default 2026-11-21T07:00:00Z)"
    )
    cmd.add_argument("--out", type=Path, help="write the requests as JSON lines to this file")
    remote = cmd.add_argument_group("load generator (send to a running server)")
    remote.add_argument(
        "--server",
        type=server_targets,
        metavar="HOST:PORT",
        help="send the requests to this server; replicas sharing one decision log: their "
        "IP:PORT addresses separated by commas (calls spread round_robin)",
    )
    remote.add_argument(
        "--concurrency",
        type=_whole("--concurrency", 1, MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        help=f"calls in flight at most (default {DEFAULT_CONCURRENCY}, at most {MAX_CONCURRENCY})",
    )
    remote.add_argument("--ruleset-name", default="", help="ruleset (default: the server's)")
    remote.add_argument("--ruleset-version", default="", help="pin a ruleset version")
    remote.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=30.0,
        help="deadline per call in seconds, retries on UNAVAILABLE included (default 30)",
    )
    add_settings(cmd, ["token_file"], remote)  # your caller bearer token
    remote.add_argument(
        "--no-agent-detail",
        action="store_true",
        help="ask for summary explanations (no per-agent verdicts)",
    )
    add_client_tls(remote)
    cmd.set_defaults(run=_cmd_simulate)
