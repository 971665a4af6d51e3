"""Drive durable_rules' C extension as a stateless leaf-condition matcher.

Every rule here is a guarded leaf probe built by ``durable_codegen.py``. The measured defects of
durable_rules 2.0.28 (``shared/research/durable_rules.md``) shape this module:

* no ``Host`` and no ``durable.lang``: the stock Host's timer threads segfault under load;
  we call ``durable_rules_engine`` directly and drain the agenda ourselves, no Python actions;
* facts, not events, so every true leaf fires;
* sessions and message ids are looked up by a 32-bit FNV-1a hash with no string compare, so
  session ids come from a pool checked against collisions, and the one fact id is fixed;
* at most 1024 live sessions per ruleset, and a session costs ~200 KB to make and free (the
  allocator trims it back each time): one session per shard, kept for the matcher's life
  (``KEPT_SID``); each decision asserts the case fact, drains what fired and retracts it, so
  the session holds only its ``__init`` fact between decisions; any engine failure deletes
  the session and the next decision starts a new one;
* deleting a session in which no action ran can free garbage: every session first asserts
  and drains an ``__init`` fact that each shard's ``__init`` rule catches; a session whose
  ``__init`` action did not run (its assert or drain failed) is never deleted but abandoned:
  the shard's next session takes a spare session id (``SESSION_IDS``, bounded), and
  ``delete_ruleset`` frees the state pool without visiting the abandoned one (safe; its own
  ~200 KB of allocations leak, at most ``MAX_ABANDONED_SESSIONS`` per shard);
* the engine has no locks and holds the GIL: one thread drives it at a time per process
  (processes, not threads, give parallelism), so one session per shard serves every thread;
* ``create_ruleset`` can hang forever on bad definitions: each new definition is first
  created and exercised in a throwaway subprocess with a timeout.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from types import ModuleType
from typing import Any

from caseroute.domain.errors import EngineUnavailableError, EngineValidationError
from caseroute.engine.durable_codegen import FACT_TYPE
from caseroute.engine.durable_json import to_durable_json
from caseroute.engine.facts import Fact

INIT_FACT_ID = "__init"
CASE_FACT_ID = "c"
VALIDATION_TIMEOUT_S = 30.0

ENGINE_LOCK = threading.Lock()
"""Serialises every call into the C engine in this process (it has no locks of its own)."""

_validated: set[str] = set()
_validated_lock = threading.Lock()
_names = itertools.count()


def load_engine_module() -> ModuleType:
    """Import the C extension, or explain how to do without it.

    Returns:
        The ``durable_rules_engine`` module.

    Raises:
        EngineUnavailableError: If it cannot be imported.
    """
    try:
        import durable_rules_engine
    except ImportError as exc:
        raise EngineUnavailableError(
            f"durable_rules cannot be imported ({exc}). Install durable-rules==2.0.28 on "
            "Python 3.11/3.12 (it does not import on 3.13), or select the pure-Python "
            "evaluator with engine = python (CLI: --engine python)"
        ) from None
    module: ModuleType = durable_rules_engine
    return module


def durable_version() -> str:
    """Installed durable-rules version, or ``unknown``."""
    try:
        return metadata.version("durable-rules")
    except metadata.PackageNotFoundError:
        return "unknown"


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash durable_rules indexes sessions and messages by."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def collision_free_sids(count: int) -> list[str]:
    """``count`` session ids (``s0``, ``s1``... skipping collisions), in that order.

    Each sid, its hidden state-fact id (``sid-<sid>``) and the fixed fact ids all hash
    differently, so no fact can be mistaken for another or rejected as already seen.
    """
    taken = {fnv1a32(INIT_FACT_ID), fnv1a32(CASE_FACT_ID)}
    sids: list[str] = []
    for i in itertools.count():
        if len(sids) == count:
            break
        sid = f"s{i}"
        hashes = {fnv1a32(sid), fnv1a32(f"sid-{sid}")}
        if len(hashes) == 2 and not hashes & taken:
            taken |= hashes
            sids.append(sid)
    return sids


class SessionPool:
    """Session ids for concurrent decisions, none of whose engine hashes collide."""

    def __init__(self, size: int = 64) -> None:
        """Pre-compute ``size`` collision-free session ids (``collision_free_sids``)."""
        self._free = collision_free_sids(size)
        self.size = size
        self._lock = threading.Lock()

    def acquire(self) -> str:
        """Take a free session id.

        Raises:
            EngineValidationError: If every id is in use (more concurrent decisions than
                the pool allows; callers bound concurrency well below the engine's 1024).
        """
        with self._lock:
            if not self._free:
                raise EngineValidationError(
                    f"all {self.size} durable_rules sessions are in use; lower concurrency"
                )
            return self._free.pop()

    def release(self, sid: str) -> None:
        """Return a session id to the pool."""
        with self._lock:
            self._free.append(sid)


MAX_ABANDONED_SESSIONS = 8
"""Most sessions a shard abandons (its ``__init`` action did not run) before it gives up.

Each holds one of the engine's 1024 live sessions until the ruleset is deleted, and its own
~200 KB for good (``delete_ruleset`` frees the state pool without visiting its sessions); past
that every call of the matcher fails (an EXCEPTION decision) until a reload."""
SESSION_IDS = tuple(collision_free_sids(1 + MAX_ABANDONED_SESSIONS))
"""The kept sessions' ids: ``KEPT_SID``, then one spare per session a shard may abandon.

Collision-checked like the pool's: each and its hidden state fact's id hash apart from the
others and from the fixed fact ids. Only ever used under ``ENGINE_LOCK``."""
KEPT_SID = SESSION_IDS[0]
"""The session id of every matcher's kept sessions (each shard is its own namespace), unless
a shard abandoned a session (then the next of ``SESSION_IDS``)."""


def _definitions_digest(shards: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(shards).encode()).hexdigest()


def validate_in_subprocess(shards: tuple[str, ...], timeout: float = VALIDATION_TIMEOUT_S) -> None:
    """Create and exercise the shards in a throwaway process before this one touches them.

    Args:
        shards: durable_rules ruleset definitions (JSON text).
        timeout: Seconds before a hung engine is killed.

    Raises:
        EngineValidationError: If the subprocess fails, crashes or times out.
    """
    digest = _definitions_digest(shards)
    with _validated_lock:
        if digest in _validated:
            return
    argv = [sys.executable, "-m", "caseroute.engine.durable_check"]
    try:
        done = subprocess.run(
            argv,
            input=json.dumps(list(shards)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EngineValidationError(
            f"durable_rules did not finish creating this ruleset within {timeout:g}s (the "
            "engine hangs on some definitions); simplify the rules or use engine = python"
        ) from None
    if done.returncode != 0 or done.stdout.strip() != "ok":
        detail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise EngineValidationError(
            f"durable_rules rejected this ruleset in a validation process: {detail}"
        )
    with _validated_lock:
        _validated.add(digest)


_ASSERTED = (0, 1)
"""``assert_fact`` result codes of a fact taken: 0 matched a probe, 1 matched none."""


class DurableSessionError(RuntimeError):
    """A shard's kept session could not be started: its ``__init`` action did not run."""


class DurableStateError(RuntimeError):
    """durable_rules refused the case fact (a result code other than 0 or 1)."""

    def __init__(self, code: int) -> None:
        """The engine's result code (2: a fact with this id is already held)."""
        super().__init__(f"durable_rules refused the case fact: result code {code}")
        self.code = code


def _assert_case(dre: Any, handle: int, body: str) -> int:
    """Assert the case fact into the kept session; its state offset.

    Raises:
        DurableStateError: If the engine refused it. Code 2 means a case fact is still held
            (a cleanup that failed): nothing fired, so the decision cannot be trusted; the
            caller deletes the session and the next decision starts a clean one.
    """
    code, offset = dre.assert_fact(handle, body)
    if code not in _ASSERTED:
        raise DurableStateError(code)
    return int(offset)


def _drain(dre: Any, handle: int, state_offset: int, fired: set[str] | None) -> None:
    result = dre.start_action_for_state(handle, state_offset)
    message = result[1] if result else None
    while message:
        if fired is not None:
            # Agenda messages are '{"<rule name>": {"m": ...}}'; slice the name, no JSON parse.
            fired.add(message[2 : message.index('"', 2)])
        message = dre.complete_and_start_action(handle, state_offset)


_Needed = dict[str, "_Needed | bool"]
"""Field paths as a tree: a key maps to ``True`` (its whole value) or to the keys needed in it."""


def needed_tree(paths: Iterable[str]) -> _Needed:
    """The tree of ``paths`` (dotted); a path whose prefix is needed whole adds nothing."""
    tree: _Needed = {}
    for path in paths:
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if child is True:
                break  # an ancestor is needed whole already
            assert isinstance(child, dict)  # noqa: S101 - the tree holds only dicts and True
            node = child
        else:
            node[last] = True  # whole, even where longer paths asked for parts of it
    return tree


def take_needed(node: dict[str, Any], needed: _Needed) -> dict[str, Any]:
    """The parts of ``node`` that ``needed`` names, in its order; absent keys stay absent.

    Every needed path reads the same value in the result as in ``node``: a value needed in part
    is cut only when it is an object, anything else is kept as it is.
    """
    out: dict[str, Any] = {}
    for key, inner in needed.items():
        if key in node:
            value = node[key]
            if isinstance(inner, dict) and isinstance(value, dict):
                value = take_needed(value, inner)
            out[key] = value
    return out


@lru_cache(maxsize=None)  # noqa: UP033 - keyed by the pool's sids: a fixed, small set
def _init_fact(sid: str) -> str:
    """The session's init fact as the engine reads it: the same text for a sid every call."""
    return to_durable_json({"id": INIT_FACT_ID, "t": "__init", "sid": sid})


class DurableLeafMatcher:
    """Evaluates a compiled ruleset's leaf probes with durable_rules."""

    def __init__(
        self,
        shards: tuple[str, ...],
        label: str,
        *,
        validate: bool = True,
        reads: Iterable[str] | None = None,
    ) -> None:
        """Validate (in a subprocess) and create the shards under unique names.

        Args:
            shards: Definitions from ``durable_codegen`` (``durable_shards(compiled)``).
            label: Human part of the engine-side names (ruleset name and version).
            validate: Skip the subprocess check only for definitions already known good.
            reads: Every field path the shards' probes read (each leaf's ``paths``); only
                those parts of a fact are sent to the engine (a probe reads nothing else, so
                the same leaves hold; less JSON to write and for the engine to parse).
                ``None``: the whole fact.

        Raises:
            EngineUnavailableError: If durable_rules cannot be imported.
            EngineValidationError: If the definitions fail validation.
        """
        self._dre = load_engine_module()
        self.label = f"durable_rules {durable_version()}"
        if validate and shards:
            validate_in_subprocess(shards)
        self._needed = None if reads is None else needed_tree(reads)
        self._handles: list[int] = []
        self._ready: list[bool] = []
        """Per shard: its kept session exists (its ``__init`` fact asserted and drained)."""
        self._acted: list[bool] = []
        """Per shard: its current session exists and an action ran in it (safe to delete)."""
        self._sids: list[int] = []
        """Per shard: its current session's index in ``SESSION_IDS`` (one more per abandoned)."""
        with ENGINE_LOCK:
            # Each load gets fresh names: the engine cannot replace or edit a ruleset.
            serial = next(_names)
            for i, shard in enumerate(shards):
                self._handles.append(
                    self._dre.create_ruleset(f"caseroute.{label}.{serial}.s{i}", shard)
                )
                self._ready.append(False)
                self._acted.append(False)
                self._sids.append(0)

    def true_leaves(self, fact: Fact) -> frozenset[str]:
        """Ids of the leaves durable_rules finds true for the fact.

        Args:
            fact: The case fact (``build_case_fact``).

        Returns:
            True leaf ids.
        """
        fired: set[str] = set()
        if not self._handles:
            return frozenset()
        sent = fact if self._needed is None else take_needed(fact, self._needed)
        body = to_durable_json({"id": CASE_FACT_ID, "sid": KEPT_SID, "t": FACT_TYPE, **sent})
        dre = self._dre
        with ENGINE_LOCK:
            for i, handle in enumerate(self._handles):
                if not self._ready[i]:
                    self._start_session(i, handle)
                sid = SESSION_IDS[self._sids[i]]
                held = body
                if sid != KEPT_SID:  # a shard that abandoned a session (rare)
                    held = to_durable_json({"id": CASE_FACT_ID, "sid": sid, "t": FACT_TYPE, **sent})
                try:
                    _drain(dre, handle, _assert_case(dre, handle, held), fired)
                    # Invariant: between decisions the session holds its __init fact alone.
                    _, offset = dre.retract_fact(handle, held)
                    _drain(dre, handle, offset, None)
                except BaseException:
                    # The session may hold this fact or a half-drained agenda: never reuse it.
                    # Its __init action ran, so deleting it is safe.
                    self._ready[i] = False
                    dre.delete_state(handle, sid)
                    self._acted[i] = False
                    raise
        fired.discard(INIT_FACT_ID)
        return frozenset(fired)

    def _start_session(self, shard: int, handle: int) -> None:
        """Make shard ``shard``'s kept session: assert its ``__init`` fact, run that action.

        A session in which no action ran must not be deleted (research §3.2: it can free
        garbage), so when the ``__init`` action does not run the session is abandoned, never
        deleted, and the shard's next session takes the next of ``SESSION_IDS``. A session
        left by a failed delete (its ``__init`` ran before) is taken as it is, as before.

        Raises:
            DurableSessionError: If the ``__init`` action did not run, or the shard has
                abandoned ``MAX_ABANDONED_SESSIONS`` sessions already.
            Exception: Whatever the engine raised (the session abandoned first).
        """
        index = self._sids[shard]
        if index == len(SESSION_IDS):
            raise DurableSessionError(
                f"durable_rules could not start a session for shard {shard}: its __init action "
                f"did not run in {MAX_ABANDONED_SESSIONS + 1} sessions (left undeleted: deleting "
                "them could crash the engine); reload the ruleset (or restart) to make new ones"
            )
        dre = self._dre
        ran: set[str] = set()
        try:
            _, offset = dre.assert_fact(handle, _init_fact(SESSION_IDS[index]))
            _drain(dre, handle, offset, ran)
        except BaseException:
            if not self._acted[shard]:
                self._sids[shard] = index + 1  # abandoned: no action ran in it
            raise
        if INIT_FACT_ID in ran:
            self._acted[shard] = True
        if not self._acted[shard]:
            self._sids[shard] = index + 1
            raise DurableSessionError(
                f"durable_rules took shard {shard}'s __init fact but the __init action did not "
                "run; the session is left undeleted and the next call makes another"
            )
        self._ready[shard] = True

    def close(self) -> None:
        """Delete the engine-side rulesets (the engine leaks ~0.2 MB per version regardless).

        A kept session is deleted first when ready; an abandoned one (no action ran in it) never
        is: ``delete_ruleset`` frees the state pool without visiting it.
        """
        with ENGINE_LOCK:
            for handle, ready, index in zip(self._handles, self._ready, self._sids, strict=True):
                if ready:
                    self._dre.delete_state(handle, SESSION_IDS[index])
                self._dre.delete_ruleset(handle)
            self._handles.clear()
            self._ready.clear()
            self._acted.clear()
            self._sids.clear()
