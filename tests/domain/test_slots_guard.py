"""domain.slots' import guard refuses a type its setters would build wrongly, saying what to do.

A value built by ``object.__new__`` plus slot setters skips ``__init__``, ``__post_init__`` and
``__new__``: a check added to any of them later would never run on gRPC input. The guard
(``slot_setters``) refuses such a type at import, as it refuses fields that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import pytest

from caseroute.domain.case import Case
from caseroute.domain.decision import ClauseTrace, RuleTrace
from caseroute.domain.roster import Agent, Licence
from caseroute.domain.slots import check_slot_built, slot_setters


@dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str


@dataclass(frozen=True, slots=True)
class _Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("a must be >= 0")


@dataclass(frozen=True, slots=True)
class _OwnInit:
    a: int

    def __init__(self, a: int) -> None:
        object.__setattr__(self, "a", abs(a))


@dataclass(frozen=True, slots=True, init=False)
class _NoInit:
    a: int


@dataclass(frozen=True, slots=True)
class _OwnNew:
    a: int

    def __new__(cls, a: int) -> Self:  # noqa: ARG004 - a check would read it
        return object.__new__(cls)


class _ExtraSlot(_Plain):
    __slots__ = ("cached",)


class _NotSlotted:
    a: int


@dataclass(frozen=True, slots=True)
class _CheckedBase:
    a: int

    def __post_init__(self) -> None:
        """A check a subclass inherits."""


@dataclass(frozen=True, slots=True)
class _Inherits(_CheckedBase):
    b: int


def test_a_plain_slotted_dataclass_gets_its_setters_in_the_order_named() -> None:
    """No __post_init__, the dataclass __init__, slots = fields: setters for b, then a."""
    set_b, set_a = slot_setters(_Plain, "b a")
    value: _Plain = object.__new__(_Plain)
    set_b(value, "x")
    set_a(value, 1)
    assert _Plain(1, "x") == value


@pytest.mark.parametrize("kind", [Agent, Licence, Case, RuleTrace, ClauseTrace])
def test_every_type_domain_slots_builds_passes_the_guard(kind: type) -> None:
    """The five slot-built domain types pass (as importing domain.slots shows)."""
    check_slot_built(kind, [f.name for f in fields(kind)])


@pytest.mark.parametrize(
    ("kind", "names", "says"),
    [
        (_Checked, "a", "_Checked defines __post_init__"),
        (_Inherits, "a b", "_Inherits defines __post_init__"),
        (_OwnInit, "a", "_OwnInit defines its own __init__"),
        (_NoInit, "a", "_NoInit defines its own __init__"),
        (_OwnNew, "a", "_OwnNew defines its own __new__"),
        (_ExtraSlot, "a b", "_ExtraSlot's slots are not exactly its fields"),
        (_NotSlotted, "a", "_NotSlotted is not a dataclass"),
        (_Plain, "a", "_Plain's fields changed"),
        (_Plain, "a b c", "_Plain's fields changed"),
    ],
)
def test_the_guard_refuses_a_type_the_setters_would_build_wrongly(
    kind: type, names: str, says: str
) -> None:
    """Each refusal names the type and what it defines, and says what to do."""
    with pytest.raises(RuntimeError) as refused:
        slot_setters(kind, names)
    message = str(refused.value)
    assert message.startswith(says)
    assert "update domain.slots" in message


def test_the_refusal_of_a_post_init_says_to_build_the_type_through_its_constructor() -> None:
    """The whole message for a __post_init__: why it matters and the two ways out."""
    with pytest.raises(RuntimeError) as refused:
        check_slot_built(_Checked, ["a"])
    assert str(refused.value) == (
        "_Checked defines __post_init__: values built by domain.slots' setters would skip it "
        "(a check there would never run on gRPC input); update domain.slots: build _Checked "
        "through its constructor (drop its new_* builder and slot_setters call), or move the "
        "check where the builders run it"
    )
