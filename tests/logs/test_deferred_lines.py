"""DeferredHandler: the same lines as the calling thread wrote, in order, bounded, none lost."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from caseroute.grpc_api import processes
from caseroute.grpc_api.server import ServerConfig
from caseroute.logs import configure_logging, host_configured
from caseroute.logs.deferred import DeferredHandler, is_plain
from tests.logs.test_fast_formatter import _records


class _Gated(io.StringIO):
    """A sink whose writes wait for ``release``; ``entered`` is set on the first write."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writers: list[str] = []

    def write(self, text: str) -> int:
        self.writers.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(60)
        return super().write(text)


class _Signalled(io.StringIO):
    """A sink that sets ``written`` after each write has landed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        done = super().write(text)
        self.written.set()
        return done


class _Failing(io.StringIO):
    """A sink whose first write raises; later writes land."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            self.failed = True
            raise OSError("sink gone")
        return super().write(text)


class _Unrenderable:
    """A field whose repr raises: its record cannot be formatted."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.fixture
def ours() -> Iterator[logging.Logger]:
    """A logger whose records reach only the handlers a test adds to it."""
    logger = logging.getLogger("caseroute.test.deferred")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def _json_handler(stream: io.StringIO, **settings: float) -> DeferredHandler:
    """A DeferredHandler with the JSON formatter ``configure_logging`` builds."""
    configure_logging("json", "info", io.StringIO())
    (sync,) = [h for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]
    handler = DeferredHandler(stream, **settings)  # type: ignore[arg-type]
    handler.setFormatter(sync.formatter)
    return handler


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_every_kind_of_record_is_written_as_the_synchronous_handler_writes_it() -> None:
    """Call log, %-args, traceback, stack, structlog event...: the same text, in order."""
    sync_stream, deferred_stream = io.StringIO(), io.StringIO()
    configure_logging("json", "info", sync_stream)
    (sync,) = logging.getLogger().handlers[-1:]
    records = _records()
    sync_stream.seek(0)
    sync_stream.truncate()  # the lines the records wrote as they were made
    handler = DeferredHandler(deferred_stream)
    handler.setFormatter(sync.formatter)
    for record in records:
        sync.handle(record)
        handler.handle(record)
    handler.flush()
    assert _lines(deferred_stream) == _lines(sync_stream)
    assert len(_lines(sync_stream)) == 10
    handler.close()


def test_a_plain_record_is_formatted_and_written_by_the_writer_thread_after_the_call() -> None:
    """The caller returns while the sink still blocks; the writer thread writes the line."""
    sink = _Gated()
    handler = _json_handler(sink, linger_s=0)
    record = logging.LogRecord("caseroute.rpc", logging.INFO, "f.py", 1, "rpc", (), None)
    handler.handle(record)
    assert sink.entered.wait(60)
    handler.handle(logging.LogRecord("caseroute.rpc", logging.INFO, "f.py", 1, "two", (), None))
    sink.release.set()  # the second call returned while the first line's write was blocked
    handler.flush()
    assert ([json.loads(line)["event"] for line in _lines(sink)], set(sink.writers)) == (
        ["rpc", "two"],
        {"log-writer"},
    )
    handler.close()


def test_a_warning_ends_the_writers_linger_without_a_flush() -> None:
    """With a minute's linger, a warning is still written at once (the sink sees it)."""
    sink = _Signalled()
    handler = _json_handler(sink, linger_s=60.0)
    handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "info", (), None))
    handler.handle(logging.LogRecord("caseroute.x", logging.WARNING, "f.py", 1, "warn", (), None))
    assert sink.written.wait(60)
    assert [json.loads(line)["event"] for line in _lines(sink)] == ["info", "warn"]
    handler.close()


def test_the_timestamp_is_the_instant_the_record_was_made() -> None:
    """A line written later still says when its event happened (the record's ``created``)."""
    stream = io.StringIO()
    handler = _json_handler(stream)
    record = logging.LogRecord("caseroute.rpc", logging.INFO, "f.py", 1, "rpc", (), None)
    record.created = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC).timestamp()
    handler.handle(record)
    handler.close()
    assert json.loads(stream.getvalue())["timestamp"] == "2026-12-01T09:30:00.123456Z"


def test_the_console_format_stamps_the_records_instant_too() -> None:
    """``console`` lines of stdlib records carry ``created`` as well, not the writer's clock."""
    stream = io.StringIO()
    configure_logging("console", "info", stream, deferred=True)
    record = logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "hello", (), None)
    record.created = datetime(2026, 12, 1, 9, 30, 0, 5, tzinfo=UTC).timestamp()
    logging.getLogger().handle(record)
    logging.getLogger().handlers[-1].flush()
    assert stream.getvalue().startswith("2026-12-01T09:30:00.000005Z [info")


def test_only_records_without_args_exceptions_or_stacks_are_deferred_unrendered() -> None:
    """%-args, exc_info, stack_info and non-text messages are rendered on the calling thread."""

    def record(**fields: object) -> logging.LogRecord:
        made = logging.LogRecord("n", logging.INFO, "f.py", 1, "m", (), None)
        made.__dict__.update(fields)
        return made

    assert [
        is_plain(record()),
        is_plain(record(args=("a",))),
        is_plain(record(exc_info=(ValueError, ValueError("x"), None))),
        is_plain(record(stack_info="Stack")),
        is_plain(record(msg={"event": "structlog"})),
    ] == [True, False, False, False, False]


def test_a_full_queue_makes_the_caller_wait_for_room_and_loses_no_line(
    ours: logging.Logger,
) -> None:
    """Capacity 2, sink stuck: the 4th line waits for the writer to take the queue, then lands."""
    sink = _Gated()
    handler = _json_handler(sink, capacity=2, linger_s=0)
    waited = threading.Event()

    class _Spy(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            waited.set()
            return super().wait(timeout)

    handler._room = _Spy()
    ours.addHandler(handler)
    ours.info("line 1")
    assert sink.entered.wait(60)  # the writer holds line 1, stuck in the sink
    ours.info("line 2")
    ours.info("line 3")
    fourth = threading.Thread(target=ours.info, args=("line 4",))
    fourth.start()
    assert waited.wait(60)
    queued_while_waiting = handler._queue.qsize()
    sink.release.set()
    fourth.join(60)
    handler.flush()
    assert (queued_while_waiting, [json.loads(x)["event"] for x in _lines(sink)]) == (
        2,
        ["line 1", "line 2", "line 3", "line 4"],
    )


def test_close_writes_every_queued_line_before_returning() -> None:
    """A clean stop loses nothing: close drains what the writer had not written yet."""
    stream = io.StringIO()
    handler = _json_handler(stream, linger_s=5.0)
    for n in range(500):
        handler.handle(
            logging.LogRecord("caseroute.rpc", logging.INFO, "f.py", 1, f"l{n}", (), None)
        )
    handler.close()
    assert [json.loads(line)["event"] for line in _lines(stream)] == [f"l{n}" for n in range(500)]


def test_logging_shutdown_drains_the_deferred_root_handler() -> None:
    """At interpreter exit (``logging.shutdown``) the queued lines are written first."""
    stream = io.StringIO()
    configure_logging("json", "info", stream, deferred=True)
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, DeferredHandler)]
    logging.getLogger("caseroute.rpc").info("rpc")
    logging.shutdown([lambda: handler])
    assert [json.loads(line)["event"] for line in _lines(stream)] == ["rpc"]


def test_configuring_again_writes_the_old_handlers_lines_to_its_own_stream() -> None:
    """Replacing a deferred handler closes it: its queued lines reach its stream."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", first, deferred=True)
    logging.getLogger("caseroute.server").info("to the first")
    configure_logging("json", "info", second, deferred=True)
    logging.getLogger("caseroute.server").info("to the second")
    logging.getLogger().handlers[-1].flush()
    assert ([json.loads(x)["event"] for x in _lines(first)], len(_lines(second))) == (
        ["to the first"],
        1,
    )


def test_a_line_after_close_is_written_by_the_caller() -> None:
    """Once closed (the writer gone), a late line is written at once, never dropped."""
    stream = io.StringIO()
    handler = _json_handler(stream)
    handler.close()
    handler.close()  # a second close (logging.shutdown after a stop) does nothing more
    handler.flush()  # nothing to wait for
    handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "late", (), None))
    assert [json.loads(line)["event"] for line in _lines(stream)] == ["late"]


def test_a_record_that_cannot_be_formatted_is_reported_and_the_rest_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad record on either thread goes to handleError; the lines around it are written."""
    stream = io.StringIO()
    handler = _json_handler(stream, linger_s=0)
    bad_plain = logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "bad", (), None)
    bad_plain.field = _Unrenderable()
    bad_args = logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "%d", ("x",), None)
    for record in (
        logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "before", (), None),
        bad_plain,
        bad_args,
        logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "after", (), None),
    ):
        handler.handle(record)
    handler.close()
    assert [json.loads(line)["event"] for line in _lines(stream)] == ["before", "after"]
    assert capsys.readouterr().err.count("--- Logging error ---") == 2


def test_a_failing_sink_is_reported_and_later_lines_still_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A write that raises goes to handleError; the writer lives on for the next batch."""
    sink = _Failing()
    handler = _json_handler(sink, linger_s=0)
    handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "lost", (), None))
    handler.flush()
    handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "kept", (), None))
    handler.close()
    assert [json.loads(line)["event"] for line in _lines(sink)] == ["kept"]
    assert "writing 1 line(s)" in capsys.readouterr().err


def test_a_filtered_record_is_not_written() -> None:
    """The handler's filters still apply (handle skips the lock, not the filters)."""
    stream = io.StringIO()
    handler = _json_handler(stream)
    handler.addFilter(lambda record: record.getMessage() != "hidden")
    for text in ("shown", "hidden"):
        handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, text, (), None))
    handler.close()
    assert [json.loads(line)["event"] for line in _lines(stream)] == ["shown"]


def test_close_returns_within_its_bound_when_the_sink_hangs() -> None:
    """A sink stuck past ``bound_s`` cannot hold the process's exit (flush and close return)."""
    sink = _Gated()
    handler = _json_handler(sink, bound_s=0.05, linger_s=0)
    handler.handle(logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "stuck", (), None))
    assert sink.entered.wait(60)
    handler.flush()
    handler.close()
    still_writing = handler._writer.is_alive()
    sink.release.set()
    handler._writer.join(60)
    assert (still_writing, [json.loads(x)["event"] for x in _lines(sink)]) == (True, ["stuck"])


def test_serve_configures_deferred_lines_and_counts_them_as_its_own() -> None:
    """``serve``'s logging setup installs a DeferredHandler, which is not the host's setup."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        processes._configure_logging(ServerConfig(log_format="json"))
        kinds = [type(h) for h in root.handlers]
        configured_by_host = host_configured()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved
    assert (kinds, configured_by_host) == ([DeferredHandler], False)
