"""Rosters this replica has not seen, loaded by ``roster_sha256`` from the log replicas share.

A caller may send a roster's ``roster_sha256`` instead of the roster. A replica that does not
hold that roster used to answer FAILED_PRECONDITION (``ROSTER_NOT_CACHED``) at once, and only
the published client resent the roster. With replicas sharing one PostgreSQL decision log, the
roster snapshot is already in that log, stored by whichever replica decided with it first (the
workers of one server share a SQLite log the same way); so
before answering FAILED_PRECONDITION the servicer asks ``RosterLog.load`` for it.

A loaded roster is trusted no more than a sent one: its text is read within bounds (at most
``LOOKUP_MAX_S``, and at most ``LOOKUP_SHARE`` of the time the call has left; no more agents
than the request's limits allow, no more bytes than a request may carry), decoded (not by the
strict reader: see ``_read``), validated by the parser every roster meets in the end
(``parse_roster``, which the strict conversion of a sent Roster message calls, and replay uses on
the same stored text) under the same limits as a sent roster, and used only when its content
hashes to the ``roster_sha256`` asked for. It goes into the roster cache as the same roster
sent would (``RosterCache.keep_loaded``, within the cache's budgets:
``tests/grpc_api/test_roster_log_same_entry.py``). Anything
else, a failure, a timeout or a bug included, answers FAILED_PRECONDITION as before, never
INTERNAL: the caller can still send the roster. Logged by the hash's first 12 characters and the
kind of failure only: a roster is staff data, kept in clear in the log, and its values are never
written to the server's log.

Both stores read snapshots so (``StoredRosters``): a SQLite log is shared by the workers of
one server (and survives its restarts), a PostgreSQL one by replicas too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from caseroute.audit.store import RosterTooLargeError
from caseroute.domain.codec import parse_roster
from caseroute.domain.errors import AuditBusyError, AuditUnavailableError, RequestError
from caseroute.domain.limits import InputLimits
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.wire.convert import KnownRoster

log = logging.getLogger("caseroute.server")

LOOKUP_MAX_S = 1.0
"""Longest one lookup may take, whatever the call's deadline (an indexed read of a manifest and
its chunks takes milliseconds; longer means the database is struggling)."""
LOOKUP_SHARE = 0.5
"""Share of the call's remaining time a lookup may take: the rest is for deciding and recording,
or, when the lookup fails, for the caller to send the roster."""
MIN_LOOKUP_S = 0.05
"""Below this much time for the lookup, none is tried: FAILED_PRECONDITION at once."""
MAX_LOOKUPS = 2
"""Distinct rosters looked up at once per worker; more are answered FAILED_PRECONDITION at once.
Each lookup holds one of the decision log's pooled connections, which its writer needs too.
Calls asking for a roster already being looked up wait for that lookup instead of starting one."""

RESULTS = (
    "loaded",
    "not_stored",
    "unreadable",
    "too_large",
    "refused",
    "edited",
    "busy",
    "no_time",
    "error",
)
"""Each lookup's result, as counted (``caseroute_roster_log_lookups_total{result}``): loaded
and used; no replica stored it; the log could not be read in time; larger than this server
reads; invalid under its limits; its text does not hash to its sha256 (edited in the log);
too many lookups at once, or the log locked by another connection past the lookup's time; too
little of the call's time left; an unexpected failure."""


@runtime_checkable
class StoredRosters(Protocol):
    """A decision log that reads a roster snapshot within bounds (``PostgresAuditSink``)."""

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        """The snapshot's canonical JSON, None when not stored (see ``PostgresAuditSink``).

        Raises:
            RosterTooLargeError: Past ``max_agents`` or ``max_bytes``.
            AuditUnavailableError: If it cannot be read within ``timeout_s``.
        """
        ...  # pragma: no cover - a protocol


@dataclass(slots=True)
class _Flight:
    """One lookup under way; calls asking for the same roster wait for ``done``."""

    done: threading.Event = field(default_factory=threading.Event)
    result: KnownRoster | None = None


def lookup_budget(time_remaining: float | None) -> float:
    """Seconds a lookup may take for a call with ``time_remaining`` (None: no deadline); 0: none.

    Returns:
        ``LOOKUP_SHARE`` of the remaining time, at most ``LOOKUP_MAX_S``; 0 when that is under
        ``MIN_LOOKUP_S``.
    """
    budget = (
        LOOKUP_MAX_S if time_remaining is None else min(LOOKUP_MAX_S, time_remaining * LOOKUP_SHARE)
    )
    return budget if budget >= MIN_LOOKUP_S else 0.0


class RosterLog:
    """Loads rosters by ``roster_sha256`` from a shared decision log into a roster cache."""

    def __init__(
        self,
        source: StoredRosters,
        cache: RosterCache,
        *,
        max_bytes: int,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        """Load from ``source`` into ``cache``.

        Args:
            source: The decision log.
            cache: The servicer's roster cache: a loaded roster is hashed and kept there.
            max_bytes: Most bytes of a snapshot's JSON read (the server's largest request).
            observer: Told each lookup's result, one of ``RESULTS`` (the metrics); must not
                raise.
        """
        self._source = source
        self._observer = observer
        self._cache = cache
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, InputLimits], _Flight] = {}
        self.loaded = 0
        """Rosters loaded and used (counted for tests and operators)."""
        self.refused = 0
        """Lookups that ended without a roster (not stored, failed, refused, too busy)."""

    def load(
        self, sha256: str, limits: InputLimits, time_remaining: float | None
    ) -> KnownRoster | None:
        """The roster ``sha256`` names, from the decision log, validated under ``limits``.

        Args:
            sha256: The ``roster_sha256`` a request sent (already well formed).
            limits: The request's limits (the roster is validated, and cached, under them).
            time_remaining: Seconds the call has left (None: no deadline).

        Returns:
            The roster and its fingerprint, now also in the cache; None when it is not in the
            log or cannot be used in time (the caller answers FAILED_PRECONDITION). Never
            raises.
        """
        if self._cache.max_agents == 0 or self._cache.max_bytes == 0:
            # The cache is off (--roster-cache-agents 0): this server takes rosters as sent.
            return None
        budget = lookup_budget(time_remaining)
        if budget <= 0:
            return self._none(sha256, "no_time", "the call has too little time left")
        key = (sha256, limits)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            busy = leader and len(self._flights) >= MAX_LOOKUPS
            if flight is None and not busy:
                flight = self._flights[key] = _Flight()
        if flight is None:  # busy (``_none`` takes the lock: called outside it)
            return self._none(sha256, "busy", f"{MAX_LOOKUPS} other rosters are being looked up")
        if not leader:
            flight.done.wait(budget)
            return flight.result
        try:
            flight.result = self._read(sha256, limits, budget)
        except Exception as exc:  # noqa: BLE001 - a failed lookup asks for the roster, never INTERNAL
            # The type only: an exception's text may quote the roster's values.
            flight.result = self._none(sha256, "error", f"unexpected {type(exc).__name__}")
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        if flight.result is not None:
            with self._lock:
                self.loaded += 1
            if self._observer is not None:
                self._observer("loaded")
        return flight.result

    def _none(self, sha256: str, result: str, why: str) -> KnownRoster | None:
        """None, after counting (as ``result``, one of ``RESULTS``) and logging ``why``."""
        with self._lock:
            self.refused += 1
        if self._observer is not None:
            self._observer(result)
        # A snapshot edited in the log is tampering, not a miss: operators must see it.
        log.log(
            logging.WARNING if result == "edited" else logging.INFO,
            "roster %s not loaded from the decision log (%s): the caller is asked to send it",
            sha256[:12],
            why,
        )
        return None

    def _read(self, sha256: str, limits: InputLimits, budget: float) -> KnownRoster | None:
        try:
            text = self._source.roster_text(
                sha256, timeout_s=budget, max_agents=limits.max_agents, max_bytes=self._max_bytes
            )
        except AuditBusyError:
            return self._none(
                sha256,
                "busy",
                f"the log was locked by another connection for the lookup's {budget:.2f} s",
            )
        except AuditUnavailableError:
            return self._none(
                sha256, "unreadable", f"the log could not be read within {budget:.2f} s"
            )
        except RosterTooLargeError as exc:
            return self._none(sha256, "too_large", f"too large: {exc}")
        if text is None:
            return self._none(sha256, "not_stored", "no replica has stored it")
        # Not the strict reader callers' JSON gets (duplicate keys, big or non-finite numbers:
        # ~40 % of a lookup): the text counts only if what it parses to hashes to the
        # roster_sha256 asked for (checked below), so no reading of an ambiguous text can give
        # a roster other than the one named. Non-finite constants are refused all the same.
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return self._none(
                sha256,
                "edited",
                "its stored text is not JSON caseroute writes: edited in the log? run "
                "`caseroute audit verify`",
            )
        try:
            roster = parse_roster(data, limits=limits)
        except RequestError as exc:
            # Field paths only (``roster.agents[3].skills``): the messages may quote values.
            first = exc.violations[0].field if exc.violations else "roster"
            return self._none(
                sha256,
                "refused",
                f"refused under this server's limits: {len(exc.violations)} problem(s), the "
                f"first at {first}",
            )
        # One conversion: the roster as parsed goes into the cache as its message would
        # (not through roster_to_proto and the cache's conversion of that message), hashed
        # there, and kept only if it hashes to the roster_sha256 asked for.
        known = self._cache.keep_loaded(roster, sha256, limits=limits)
        if known is None:
            return self._none(
                sha256,
                "edited",
                "its stored text does not hash to its roster_sha256: edited in the log? run "
                "`caseroute audit verify`",
            )
        log.info(
            "roster %s (%d agents) loaded from the decision log",
            sha256[:12],
            len(known.roster.agents),
        )
        return known


def _no_constant(name: str) -> float:
    """``json.loads``' hook for ``NaN`` and the infinities: never in text caseroute writes."""
    raise ValueError(f"{name} is no number caseroute writes")
