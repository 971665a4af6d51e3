"""The hand-off between a caller and a decision log's writer thread (``Outcome``, queue)."""

import threading

import pytest

from caseroute.audit.sql_appends import AppendQueue, Outcome
from caseroute.domain.errors import AuditUnavailableError


def test_an_outcome_is_pending_until_settled_with_a_result() -> None:
    """done() is False until set_result; result() then returns it, as often as asked."""
    outcome: Outcome[list[int]] = Outcome()
    assert outcome.done() is False
    outcome.set_result([1, 2])
    assert (outcome.done(), outcome.result(), outcome.result()) == (True, [1, 2], [1, 2])


def test_an_outcome_settled_with_an_error_raises_it() -> None:
    """set_exception: result() raises that very error, each time it is asked."""
    outcome: Outcome[None] = Outcome()
    error = AuditUnavailableError("refused")
    outcome.set_exception(error)
    assert outcome.done() is True
    for _ in range(2):
        with pytest.raises(AuditUnavailableError) as raised:
            outcome.result()
        assert raised.value is error


def test_a_waiting_caller_wakes_when_another_thread_settles() -> None:
    """A caller already waiting in result() gets what the writer thread settles it with."""
    outcome: Outcome[str] = Outcome()
    got: list[str] = []
    waiting = threading.Event()

    def caller() -> None:
        waiting.set()
        got.append(outcome.result())

    waiter = threading.Thread(target=caller)
    waiter.start()
    assert waiting.wait(30)
    outcome.set_result("stored")
    waiter.join(30)
    assert (waiter.is_alive(), got) == (False, ["stored"])


def test_the_append_queue_is_fifo_and_its_put_can_be_wrapped() -> None:
    """Items come out in the order put; tests may wrap put on an instance (it has a __dict__)."""
    queue = AppendQueue()
    seen: list[object] = []
    put = queue.put

    def counted(item: object) -> None:
        seen.append(item)
        put(item)  # type: ignore[arg-type]

    queue.put = counted  # type: ignore[method-assign,assignment]
    queue.put(None)
    assert (seen, queue.get_nowait(), queue.qsize()) == ([None], None, 0)
