"""PHI minimisation: configured field paths are stored as keyed HMAC digests, never in clear.

A masked value becomes ``"hmac-sha256:<hex>"``: equal inputs still match each other (so an
auditor can follow one patient across decisions with the key holder's help), but the value
cannot be read back. Replay cannot use masked fields; ``caseroute rules check`` warns when a
rule reads one.

This module is the one home of masking: the recorded input (``mask_case``: ``Masker.mask``,
then any masked value quoted in an SLA clock name) and the explanation (``mask_decision``:
clause values, data problems, engine error text, matching requirements, clock names) are
masked here, once, before a decision is recorded and returned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from caseroute.domain.decision import (
    AgentVerdict,
    CheckFailure,
    ContinuityTrace,
    Decision,
    Explanation,
    MatchingTrace,
    RankedCandidate,
    RuleResults,
    RuleTrace,
    Signals,
    SlaStatus,
)
from caseroute.domain.errors import Problem, Severity
from caseroute.domain.jurisdiction import SUBDIVISION_EXAMPLE, licensing_code
from caseroute.engine.trace import format_actual
from caseroute.rules.ir import AllOf, AnyOf, Cond, LeafRef, NotOf
from caseroute.rules.model import CompiledRuleset

MASK_PREFIX = "hmac-sha256:"
_DIGEST = re.compile(re.escape(MASK_PREFIX) + "[0-9a-f]{64}")


def is_digest(value: object) -> bool:
    """Whether ``value`` has the exact form ``Masker.digest`` writes (prefix and 64 hex).

    A caller's value that merely starts with the prefix is no digest (review R32b F11).
    """
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def quotes_digest(value: object) -> bool:
    """Whether ``value`` is text holding a digest in its exact form (a masked clock name)."""
    return isinstance(value, str) and _DIGEST.search(value) is not None


FINGERPRINT_LABEL = b"caseroute-key-fingerprint"
SHORT_VALUE_CHARS = 4
"""Masked values shorter than this are replaced in free text only as whole tokens."""

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "case.attributes.patient_name",
    "case.attributes.patient_id",
    "case.attributes.member_id",
    "case.attributes.mrn",
    "case.attributes.nhs_number",
    "case.attributes.date_of_birth",
    "case.attributes.email",
    "case.attributes.phone",
    "case.attributes.address",
    "case.attributes.notes",
    "case.attributes.free_text",
    "case.attributes.subject",
)
"""Patient names and identifiers and free-text fields, by default."""


def key_fingerprint(key: bytes) -> str:
    """Names a masking key without revealing it: HMAC-SHA256(key, label), 16 hex characters.

    The decision log stores it, so a server started with another key is refused instead of
    silently giving the same patient a different digest.
    """
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class _Path:
    """Consecutive masked paths under one parent, split once.

    Attributes:
        parents: The keys walked to the parent mapping.
        parent_text: The parents as dotted text.
        lasts: The last key of each path, in the paths' order (``*``: every key).
    """

    parents: tuple[str, ...]
    parent_text: str
    lasts: tuple[str, ...]


def covered_by(path: str, by: str) -> bool:
    """Whether masking the path ``by`` masks ``path`` too.

    It does when they are the same path, when ``by`` is above it (``case.attributes`` masks
    ``case.attributes.mrn`` with the whole object) and when ``by`` masks every key of a
    mapping above it (``case.attributes.*``).
    """
    if by.endswith(".*"):
        return path.startswith(by[:-1])
    return path == by or path.startswith(by + ".")


def _plan(paths: tuple[str, ...]) -> tuple[_Path, ...]:
    """The paths split, and consecutive ones with the same parents walked once.

    A path written twice, or one another path masks too (``case.attributes.mrn`` beside
    ``case.attributes.*``), is walked once: walked again, it stored the digest of its digest,
    which no other record or the explanation's digest of the same value matched (review
    S42a). Only consecutive ones, so the paths keep their order. The order does not change
    what is masked: a path that masks another's parent (``case.attributes`` masks
    ``case.attributes.mrn`` with the whole object) covers it, and a covered path is never
    walked, so no walked path replaces the mapping another walks into.
    """
    planned: list[_Path] = []
    for index, path in enumerate(paths):
        if path in paths[:index] or any(p != path and covered_by(path, p) for p in paths):
            continue
        *parents, last = path.split(".")
        if planned and planned[-1].parents == tuple(parents):
            previous = planned.pop()
            planned.append(replace(previous, lasts=(*previous.lasts, last)))
        else:
            planned.append(_Path(tuple(parents), ".".join(parents), (last,)))
    return tuple(planned)


@lru_cache(maxsize=16)  # one key per server; tests make a few
def _keyed(key: bytes) -> Any:
    """An HMAC-SHA256 object keyed with ``key`` and fed nothing: copied, never updated itself."""
    return hmac.new(key, digestmod=hashlib.sha256)


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces values at configured paths with keyed digests.

    Attributes:
        key: The HMAC key (keep it outside the audit database).
        paths: Dotted paths into ``{"case": ..., "roster": ...}``; a path may end in ``*`` to
            mask every key under a mapping (``case.attributes.*``).
        fingerprint: ``key_fingerprint(key)``: every record masked here names it (its input's
            ``masked_with``), which anchors the log's key eras in the hash chain.
    """

    key: bytes
    paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    fingerprint: str = field(init=False, compare=False)
    _planned: tuple[_Path, ...] = field(init=False, repr=False, compare=False)
    """``paths`` split once (every recorded case walks them, twice per decision)."""

    def __post_init__(self) -> None:
        """Split the paths and fingerprint the key once."""
        object.__setattr__(self, "fingerprint", key_fingerprint(self.key))
        object.__setattr__(self, "_planned", _plan(self.paths))

    def _hmac_hex(self, data: bytes) -> str:
        # Copying a keyed HMAC skips the key schedule hmac.new runs on every call (~1 us).
        mac = _keyed(self.key).copy()
        mac.update(data)
        hex_digest: str = mac.hexdigest()
        return hex_digest

    def digest(self, value: object) -> str:
        """The masked form of one value."""
        text = value if isinstance(value, str) else repr(value)
        return MASK_PREFIX + self._hmac_hex(text.encode())

    def keyed_hash(self, text: str) -> str:
        """HMAC-SHA256 of ``text`` as hex: a hash over clear values that cannot test guesses.

        An unkeyed sha256 of an input holding a masked date of birth lets anyone with the
        record (and the other, unmasked fields) confirm a guessed value; a keyed one does not.
        """
        return self._hmac_hex(text.encode())

    def mask(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with every configured path masked (absent paths are skipped).

        Only the dicts on a masked path are copied; every other value (a case's lists of
        skills and clocks, unmasked sub-dicts) is shared with ``data``, so neither may be
        changed afterwards (both are read-only JSON data where this is used: the recorder).
        """
        out = dict(data)
        copies = {id(out)}  # the dicts this call made: written in place, never copied again
        for planned in self._planned:
            node: Any = out
            for part in planned.parents:
                child = node.get(part) if isinstance(node, dict) else None
                if isinstance(child, dict) and id(child) not in copies:
                    child = node[part] = dict(child)
                    copies.add(id(child))
                node = child
            if not node or not isinstance(node, dict):  # an empty dict masks nothing either
                continue
            for last in planned.lasts:
                keys = list(node) if last == "*" else [last] if last in node else []
                for key in keys:
                    node[key] = self.digest(node[key])
        return out

    def masked_values(self, data: dict[str, Any]) -> list[tuple[str, Any]]:
        """The concrete ``(path, clear value)`` pairs of ``data`` that ``mask`` replaces."""
        found: list[tuple[str, Any]] = []
        for planned in self._planned:
            node: Any = data
            for part in planned.parents:
                node = node.get(part) if isinstance(node, dict) else None
            if not node or not isinstance(node, dict):  # an empty dict masks nothing either
                continue
            parent = planned.parent_text
            for last in planned.lasts:
                if last == "*":
                    found += [(f"{parent}.{key}", value) for key, value in node.items()]
                elif last in node:
                    found.append((f"{parent}.{last}", node[last]))
        return found

    def covers(self, field_path: str) -> bool:
        """Whether a rule field path (``case.attributes.x``) is masked in the audit record.

        It is when a path masks it, masks an object above it whole (``case.attributes``: no
        ``audit.masked_field`` warning came for a rule reading one of its attributes, review
        S42a) or masks every key of one (``case.attributes.*``).
        """
        return any(covered_by(field_path, p) for p in self.paths)


def _clear_texts(value: Any) -> Iterator[str]:
    """Every way a masked value can be spelled in free text (the value, its repr, its JSON).

    Booleans, nulls and numbers of fewer than ``SHORT_VALUE_CHARS`` characters identify no
    one and would match ordinary text (``true``, ``1``): only their exact forms are masked.
    """
    if isinstance(value, dict | list):
        yield json.dumps(value)
        yield repr(value)
        for item in value.values() if isinstance(value, dict) else value:
            yield from _clear_texts(item)
        return
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, str) and len(str(value)) < SHORT_VALUE_CHARS:
        return
    yield value if isinstance(value, str) else str(value)
    yield repr(value)
    yield json.dumps(value)


@dataclass(frozen=True, slots=True)
class _Spellings:
    """Every spelling of a case's masked values, and what each becomes.

    Attributes:
        replacements: Spelling -> its masked form.
        alternatives: ``(length, spelling, whole_token)`` in the order found; a whole-token
            spelling (a short value) matches only between non-word characters.
    """

    replacements: dict[str, str]
    alternatives: tuple[tuple[int, str, bool], ...]


def _with_members(pairs: list[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Each masked ``(path, value)``, then the members of an object masked whole, each as its own.

    Rules read the members (``case.attributes.age``), not the object: with ``case.attributes``
    masked whole, a clause's ``case.attributes.age = 47`` had no exact form to replace, and a
    value that short is replaced nowhere else, so it came back in clear (review S42a).
    """
    for path, value in pairs:
        yield path, value
        if isinstance(value, dict):
            yield from _with_members([(f"{path}.{key}", item) for key, item in value.items()])


def _derived_texts(path: str, value: Any) -> tuple[str, ...]:
    """Codes a decision's advice derives one-to-one from a masked value, to mask with it.

    A licence check refusing a masked ``case.patient_location`` of ``PR`` advised "send
    US-PR", and one of ``US`` "(e.g. US-TX)": beside the value's digest, they told the value
    (review S43a). Each is shown as the value's digest (the advice then names no place).
    """
    if path != "case.patient_location" or not isinstance(value, str):
        return ()
    return tuple(t for t in (licensing_code(value), SUBDIVISION_EXAMPLE.get(value)) if t)


def _spellings(case: dict[str, Any], masker: Masker) -> _Spellings | None:
    """The spellings of the case's masked values (None when the case holds none).

    Exact forms first: ``path = 'value'`` (a clause trace) and ``path is str 'value'`` (a data
    problem) become ``path = <digest>``, whatever the value's length. Then any other
    occurrence of a value: anywhere for values of ``SHORT_VALUE_CHARS`` or more characters,
    as a whole token for shorter ones (so a masked ``"en"`` does not rewrite ``urgency``).
    """
    replacements: dict[str, str] = {}
    alternatives: list[tuple[int, str, bool]] = []
    for path, value in _with_members(masker.masked_values({"case": case})):
        digest = masker.digest(value)
        exact = {
            format_actual(path, value): f"{path} = {digest}",
            f"{path} is {type(value).__name__} {value!r}": (
                f"{path} is {type(value).__name__} {digest}"
            ),
        }
        for text, masked in exact.items():
            replacements.setdefault(text, masked)
            alternatives.append((len(text), text, False))
        for text in _clear_texts(value):
            if not text or text in replacements:
                continue
            replacements[text] = digest
            alternatives.append((len(text), text, len(text) < SHORT_VALUE_CHARS))
        for text in _derived_texts(path, value):
            if text not in replacements:
                # The value's digest, never the code's: a digest of `US-TX` shown as the
                # example would let any reader match every record of a patient in US-TX.
                replacements[text] = digest
                alternatives.append((len(text), text, len(text) < SHORT_VALUE_CHARS))
    if not alternatives:
        return None
    return _Spellings(replacements, tuple(alternatives))


def _scrubber(spellings: _Spellings, texts: str) -> Callable[[str], str] | None:
    """A function replacing every spelling that occurs in ``texts`` with its masked form.

    One regular expression, one pass: a digest already written is never rewritten. Built only
    from the spellings found in ``texts`` (every text the function will be given, joined): a
    spelling that occurs in none of them matches nowhere, so leaving it out changes no
    result, and a case whose masked values the explanation never quotes (the common case:
    rules rarely read masked fields) compiles no expression at all. Compiling one per case
    cost ~250 us, the values being new every time. None when no spelling occurs.
    """
    folded = texts.casefold()
    present = [
        a for a in spellings.alternatives if (a[1] in texts if a[2] else a[1].casefold() in folded)
    ]
    if not present:
        return None
    # (length, in any letter case, token, masked form). A value of SHORT_VALUE_CHARS or more
    # is found in any letter case too (``rtt-pt-4471`` quotes ``PT-4471`` as surely as
    # ``rtt-PT-4471``); a short one only as written, as a whole token.
    found: list[tuple[int, bool, str, str]] = []
    for length, text, whole_token in present:
        token, masked = re.escape(text), spellings.replacements[text]
        if whole_token:
            found.append((length, False, rf"(?<![\w-]){token}(?![\w-])", masked))
        else:
            found += [(length, False, token, masked), (length, True, f"(?i:{token})", masked)]
    # Longest first, so a value never pre-empts the exact form (or longer value) holding it;
    # of one length, a spelling as written before any other letter case (two values that
    # differ only in case each keep their own digest).
    found.sort(key=lambda f: (-f[0], f[1]))
    pattern = re.compile("|".join(f"({f[2]})" for f in found))
    forms = [f[3] for f in found]  # the masked form of each group, in the pattern's order
    seen: dict[str, str] = {}  # explanations repeat texts (one requirement per agent verdict)

    def masked_form(found: re.Match[str]) -> str:
        return forms[(found.lastindex or 1) - 1]

    def scrub(text: str) -> str:
        done = seen.get(text)
        if done is None:
            done = seen[text] = pattern.sub(masked_form, text)
        return done

    return scrub


def mask_case(case: dict[str, Any], masker: Masker) -> dict[str, Any] | str:
    """The case as the decision log stores it: its masked paths, then its SLA clock names.

    A clock name is the caller's free text and may quote a masked value (``rtt-PT-4471``).
    ``mask_decision`` replaces it in the explanation's clock names; the stored names are
    scrubbed the same way (the same spellings, the same digests), so the record holds no
    masked value in clear and its clock names are its explanation's (review R31b F4). Replay
    reads the masked names: only a rule reading ``sla.name`` could decide otherwise, and
    replay refuses such a record for such a candidate (``masked_field``).

    Args:
        case: The case as JSON data (``case_to_dict``); only read.
        masker: The masking settings.

    Returns:
        ``masker.mask({"case": case})["case"]``, with a new ``sla_clocks`` list when a name
        changed (a digest string when the masker's paths mask the case whole).
    """
    masked: dict[str, Any] | str = masker.mask({"case": case})["case"]
    if not isinstance(masked, dict):
        return masked
    clocks = masked.get("sla_clocks")
    if not isinstance(clocks, list) or not clocks:
        return masked
    names = "\0".join(c["name"] for c in clocks if isinstance(c, dict) and "name" in c)
    # Cheap first: most cases quote no masked value in a clock name, and then no digest of
    # a masked value is computed here (mask_decision computes its own).
    for value in _replaced(case, masked):
        if _may_occur(value, names):
            break
    else:
        return masked
    spellings = _spellings(case, masker)
    scrub = None if spellings is None else _scrubber(spellings, names)
    if scrub is None:
        return masked
    scrubbed = [
        {**c, "name": scrub(c["name"])} if isinstance(c, dict) and "name" in c else c
        for c in clocks
    ]
    return {**masked, "sla_clocks": scrubbed}


def _replaced(clear: dict[str, Any], masked: dict[str, Any]) -> list[Any]:
    """The clear values ``Masker.mask`` replaced, found by identity.

    Invariant (``Masker.mask``): every value it does not replace or copy is shared with the
    clear data, so only the dicts it copied on its paths are walked (a few keys, not a walk
    of its paths again).
    """
    found = []
    for key, value in clear.items():
        other = masked.get(key)
        if other is value:
            continue
        if isinstance(value, dict) and isinstance(other, dict):
            found += _replaced(value, other)
        else:
            found.append(value)
    return found


def _may_occur(value: Any, names: str) -> bool:
    """Whether some spelling of a masked value may occur in clock names (an over-estimate).

    Clock names are codes (no quotes, no spaces): of ``_clear_texts``' spellings only the
    value's own text can occur in one, and a JSON object or list is left to the full check.
    """
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, dict | list):
        return True
    text = value if isinstance(value, str) else str(value)
    return bool(text) and text.casefold() in names.casefold()


def mask_decision(decision: Decision, case: dict[str, Any], masker: Masker) -> Decision:
    """The decision with every masked case value in its explanation replaced by its digest.

    Applied once, before the decision is recorded and returned, so the reply equals the
    stored record and neither carries a masked value in clear. Covered: clause values, data
    problem and engine error text, the rules' stored values (``rule_results.actuals``, the
    same texts as the clause values), matching requirements and expected/actual values of
    agents' failed checks, ranking criterion labels (``<skill> level`` names the case's
    required skill), SLA clock names, the continuity trace's per-agent details (they
    quote the case's location, region and language: ``not licensed in US-CA``);
    input_sha256 becomes a keyed hash. Rule ids, clause texts (the operator's own words),
    reason codes and the relaxation trace (requirement names, the operator's ``why`` and
    instants derived from ``created_at`` or ``waiting_since``, which ``check_masked_fields``
    refuses to mask for that reason) are left alone.

    Args:
        decision: The decision as the engine made it.
        case: The case as JSON data (``case_to_dict``).
        masker: The masking settings.

    Returns:
        The masked decision (the same object when the case holds no masked value).
    """
    spellings = _spellings(case, masker)
    if spellings is None:
        return decision
    derived = "region" in case and masker.covers("case.region")
    e = decision.explanation
    texts: list[str] = []

    def note(text: str) -> str:
        texts.append(text)
        return text

    # Invariant: the same walk collects the texts and scrubs them, so no text is scrubbed
    # with spellings looked for elsewhere ("\0" joins: a spelling spanning two texts only
    # adds an alternative that matches nothing).
    _scrubbed(e, note)
    scrub = _scrubber(spellings, "\0".join(texts))
    if derived and scrub is not None:
        scrub = _with_region_areas(scrub, masker)
    masked = replace(
        e,
        # sha256 over the clear input would confirm guesses of a masked value: keyed here.
        input_sha256=MASK_PREFIX + masker.keyed_hash(e.input_sha256),
        **({} if scrub is None else _scrubbed(e, scrub)),
    )
    return replace(decision, explanation=masked)


DERIVED_PATHS = {"case.region_areas": "case.region"}
"""Fields rules read that are derived from a case field: masked whenever it is."""
_REGION_AREAS_SHOWN = re.compile(r"case\.region_areas = \[[^\]]*\]")


def _with_region_areas(scrub: Callable[[str], str], masker: Masker) -> Callable[[str], str]:
    """``scrub``, after showing ``case.region_areas`` as a digest: a masked region's areas.

    The list holds the region and every area it lies within (its nation, its NHS region):
    with the region masked, its areas would tell what the digest hides, so the whole list
    shown is replaced by the digest of its text.
    """

    def scrubbed(text: str) -> str:
        if "case.region_areas = " in text:
            text = _REGION_AREAS_SHOWN.sub(
                lambda m: f"case.region_areas = {masker.digest(m.group(0)[20:])}", text
            )
        return scrub(text)

    return scrubbed


def _scrubbed(e: Explanation, scrub: Callable[[str], str]) -> dict[str, Any]:
    """The explanation's fields that can quote case values, each text passed to ``scrub``."""
    return {
        "signals": _scrub_signals(e.signals, scrub),
        "data_problems": tuple(scrub(p) for p in e.data_problems),
        "rules": tuple(_scrub_rule(t, scrub) for t in e.rules),
        # The stored form of the rules: the same texts, so the same digests.
        "rule_results": _scrub_results(e.rule_results, scrub),
        "matching": _scrub_matching(e.matching, scrub),
        "continuity": _scrub_continuity(e.continuity, scrub),
    }


def _scrub_rule(t: RuleTrace, scrub: Callable[[str], str]) -> RuleTrace:
    # Most rules read no masked field: keep those traces as they are instead of copying each
    # clause (a 200-rule explanation paid ~0.9 ms for the copies when the case held one).
    actuals = [scrub(c.actual) for c in t.clauses]
    if all(new == c.actual for new, c in zip(actuals, t.clauses, strict=True)):
        return t
    clauses = zip(t.clauses, actuals, strict=True)
    return replace(t, clauses=tuple(replace(c, actual=new) for c, new in clauses))


# Each part below comes back as it was when no text in it changed (the usual case, and
# always in mask_decision's collecting walk): a copy of an equal value would cost ~1-2 us each.


def _scrub_results(r: RuleResults | None, scrub: Callable[[str], str]) -> RuleResults | None:
    if r is None:
        return None
    actuals = tuple((k, scrub(v)) for k, v in r.actuals)
    return r if actuals == r.actuals else replace(r, actuals=actuals)


def _scrub_continuity(
    c: ContinuityTrace | None, scrub: Callable[[str], str]
) -> ContinuityTrace | None:
    if c is None:
        return None
    details = [scrub(p.detail) for p in c.preferred]
    if all(new == p.detail for new, p in zip(details, c.preferred, strict=True)):
        return c
    pairs = zip(c.preferred, details, strict=True)
    return replace(c, preferred=tuple(replace(p, detail=new) for p, new in pairs))


def _scrub_signals(s: Signals, scrub: Callable[[str], str]) -> Signals:
    def clock(c: SlaStatus) -> SlaStatus:
        name = scrub(c.name)
        return c if name == c.name else replace(c, name=name)

    clocks = tuple(clock(c) for c in s.sla_clocks)
    sla = None if s.sla is None else clock(s.sla)
    if sla is s.sla and all(new is old for new, old in zip(clocks, s.sla_clocks, strict=True)):
        return s
    return replace(s, sla_clocks=clocks, sla=sla)


def _scrub_matching(m: MatchingTrace | None, scrub: Callable[[str], str]) -> MatchingTrace | None:
    if m is None:
        return None

    def failure(f: CheckFailure) -> CheckFailure:
        expected, actual = scrub(f.expected), scrub(f.actual)
        if expected == f.expected and actual == f.actual:
            return f
        return replace(f, expected=expected, actual=actual)

    def verdict(v: AgentVerdict) -> AgentVerdict:
        failures = tuple(failure(f) for f in v.failures)
        if all(new is old for new, old in zip(failures, v.failures, strict=True)):
            return v
        return replace(v, failures=failures)

    def ranked(c: RankedCandidate) -> RankedCandidate:
        # A criterion's label can name the case's required skill ("hiv-counselling level"):
        # a masked required skill was stored and returned in clear there (review R34c F1).
        criteria = tuple((scrub(name), value) for name, value in c.criteria)
        return c if criteria == c.criteria else replace(c, criteria=criteria)

    requirements = tuple(_scrub_requirement(r, scrub) for r in m.requirements)
    agents = tuple(verdict(v) for v in m.agents)
    criteria = tuple(scrub(name) for name in m.ranking_criteria)
    ranking = tuple(ranked(c) for c in m.ranking)
    if (
        requirements == m.requirements
        and criteria == m.ranking_criteria
        and all(new is old for new, old in zip(agents, m.agents, strict=True))
        and all(new is old for new, old in zip(ranking, m.ranking, strict=True))
    ):
        return m
    return replace(
        m, requirements=requirements, agents=agents, ranking_criteria=criteria, ranking=ranking
    )


TERRITORY_REQUIREMENT = "territory: covers "
"""How the matching trace's territory requirement begins (``Need.describe``)."""


def _scrub_requirement(text: str, scrub: Callable[[str], str]) -> str:
    """A matching requirement scrubbed; a masked region's areas are dropped with it.

    ``territory: covers GB-KEN (GB-KEN lies within GB-ENG by ISO 3166-2)`` names the areas
    the region lies within: derived from it, so with the region masked they would tell what
    the digest hides (its nation, its NHS region). Only the region's digest is kept then.
    Region codes hold no space, so the region ends at the first `` (``.
    """
    scrubbed = scrub(text)
    if scrubbed == text or not text.startswith(TERRITORY_REQUIREMENT):
        return scrubbed
    head = text.partition(" (")[0]
    return scrub(head) if scrub(head) != head else scrubbed


def _leaf_ids(cond: Cond) -> Iterator[str]:
    if isinstance(cond, LeafRef):
        yield cond.leaf_id
    elif isinstance(cond, AllOf | AnyOf):
        for child in cond.children:
            yield from _leaf_ids(child)
    elif isinstance(cond, NotOf):
        yield from _leaf_ids(cond.child)


def masked_reads(ruleset: CompiledRuleset, masker: Masker) -> list[Problem]:
    """A warning for every rule that reads a field the audit log masks.

    Such a rule still decides correctly when serving, but its explanation (stored and
    returned) shows only the digest, and replay of its recorded decisions sees only the
    digest, so it cannot reproduce them.

    Args:
        ruleset: The compiled ruleset.
        masker: The audit masking settings.

    Returns:
        Warnings (``audit.masked_field``), one per rule and field, located at the rule.
    """
    problems = []
    for rule in ruleset.rules:
        read = sorted(
            {p for leaf_id in _leaf_ids(rule.when) for p in ruleset.leaves[leaf_id].paths}
        )
        problems += [
            Problem(
                "audit.masked_field",
                f"rule reads `{path}`, which is masked: the decision log stores it, and the "
                "explanation (recorded and returned to the caller) shows it, only as a keyed "
                "digest, so readers cannot see the value this rule decided on and replay "
                "cannot reproduce its decisions. Route on a non-identifying field instead, or "
                "stop masking this field (--audit-masked-fields) if it is not PHI",
                ruleset.path,
                rule.line,
                0,
                rule.rule_id,
                Severity.WARNING,
            )
            for path in read
            if masker.covers(path) or (path in DERIVED_PATHS and masker.covers(DERIVED_PATHS[path]))
        ]
    return problems
