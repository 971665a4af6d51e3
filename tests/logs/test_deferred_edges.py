"""DeferredHandler edges from review: re-entry, a dead writer, a writer that logs, fork."""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from caseroute.logs.deferred import DeferredHandler


def _record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": msg, "levelno": level, "levelname": "INFO"})


@pytest.fixture
def sink() -> io.StringIO:
    """Where the handler under test writes."""
    return io.StringIO()


@pytest.fixture
def handler(sink: io.StringIO) -> Iterator[DeferredHandler]:
    """A handler writing plain messages to ``sink``, closed after the test."""
    made = DeferredHandler(sink, bound_s=5.0, linger_s=0)
    made.setFormatter(logging.Formatter("%(message)s"))
    yield made
    made.close()


def _lines(sink: io.StringIO) -> list[str]:
    return sink.getvalue().splitlines()


def test_a_line_logged_while_the_same_thread_holds_the_gate_is_written(
    handler: DeferredHandler, sink: io.StringIO
) -> None:
    """A signal handler logging mid-put (the thread holds the gate) neither hangs nor is lost."""
    queue = handler._queue
    nested: list[bool] = []

    class Interrupting:
        def put(self, item: Any) -> None:
            queue.put(item)
            if not nested:  # a signal arrives right after the put, and its handler logs
                nested.append(True)
                handler.handle(_record("from the signal handler"))

        def __getattr__(self, name: str) -> Any:
            return getattr(queue, name)

    handler._queue = Interrupting()  # type: ignore[assignment]
    caller = threading.Thread(target=handler.handle, args=(_record("the call line"),))
    caller.start()
    caller.join(10)
    assert not caller.is_alive()
    handler.flush()
    assert _lines(sink) == ["the call line", "from the signal handler"]


def test_the_writer_outlives_an_error_report_that_itself_fails() -> None:
    """A failed write whose report fails too (stderr closed) leaves the writer writing."""

    class FailingOnce(io.StringIO):
        failed = False

        def write(self, text: str) -> int:
            if not self.failed:
                self.failed = True
                raise OSError("sink gone")
            return super().write(text)

    out = FailingOnce()
    made = DeferredHandler(out, bound_s=5.0, linger_s=0)
    made.setFormatter(logging.Formatter("%(message)s"))

    def report_fails(_record: logging.LogRecord) -> None:
        raise ValueError("I/O operation on closed file")

    made.handleError = report_fails  # type: ignore[method-assign,assignment]
    try:
        made.handle(_record("lost with the sink"))
        made.flush()
        made.handle(_record("written after"))
        made.flush()
        assert (made._writer.is_alive(), out.getvalue()) == (True, "written after\n")
    finally:
        made.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_lines_after_the_writer_ended_are_written_at_once_in_order() -> None:
    """A writer that ended (anything but Exception) no longer queues: lines are written here."""

    class EndsWriter(io.StringIO):
        ended = False

        def write(self, text: str) -> int:
            if not self.ended:
                self.ended = True
                raise SystemExit  # ends the writer thread silently
            return super().write(text)

    out = EndsWriter()
    made = DeferredHandler(out, bound_s=5.0, linger_s=0)
    made.setFormatter(logging.Formatter("%(message)s"))
    try:
        made.handle(_record("ends the writer"))
        made._writer.join(10)
        assert not made._writer.is_alive()
        made.handle(_record("first after"))
        made.handle(_record("second after"))
        made.flush()  # returns at once: nothing is queued for a writer that is gone
        assert out.getvalue() == "first after\nsecond after\n"
    finally:
        made.close()


def test_a_line_the_writer_logs_from_its_own_write_is_written_there() -> None:
    """A sink that logs through the handler (from the writer thread) writes that line directly."""

    class Logging(io.StringIO):
        logged = False

        def write(self, text: str) -> int:
            if not self.logged:
                self.logged = True
                made.handle(_record("logged by the sink"))
            return super().write(text)

    out = Logging()
    made = DeferredHandler(out, capacity=1, bound_s=5.0, linger_s=0)
    made.setFormatter(logging.Formatter("%(message)s"))
    try:
        made.handle(_record("the call line"))
        made.flush()
        assert out.getvalue() == "logged by the sink\nthe call line\n"
    finally:
        made.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_lines_and_not_the_parents_queue() -> None:
    """After fork the child has no writer: its lines are written at once, the parent's never."""
    read_end, write_end = os.pipe()
    parent_out = io.StringIO()
    made = DeferredHandler(parent_out, bound_s=5.0, linger_s=60.0)
    made.setFormatter(logging.Formatter("%(message)s"))
    try:
        made.handle(_record("queued in the parent"))  # lingers: still queued at the fork
        pid = os.fork()
        if pid == 0:  # the child
            child_out = io.StringIO()
            made.stream = child_out
            made.handle(_record("the child's line"))
            made.close()
            os.write(write_end, child_out.getvalue().encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as got:
            child_text = got.read().decode()
        made.flush()
        assert (status, child_text, parent_out.getvalue()) == (
            0,
            "the child's line\n",
            "queued in the parent\n",
        )
    finally:
        made.close()


def test_a_line_after_close_is_written_at_once() -> None:
    """A line logged after close (interpreter exit) is written on the calling thread."""
    out = io.StringIO()
    made = DeferredHandler(out, bound_s=5.0, linger_s=0)
    made.setFormatter(logging.Formatter("%(message)s"))
    made.handle(_record("before close"))
    made.close()
    made.handle(_record("after close"))
    assert out.getvalue() == "before close\nafter close\n"
