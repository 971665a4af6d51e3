"""The server's formatter writes exactly what structlog's ProcessorFormatter wrote, with less CPU.

``configure_logging`` installs ``_Formatter``, which formats stdlib records without rebuilding
each through ``LogRecord.__init__``; the reference here is structlog's own formatter with the
processors ``configure_logging`` gave it before that change (fbbb805). Every kind of record
meets both, and the lines must be equal but for the instant each formatter read.
"""

from __future__ import annotations

import io
import logging
import re
import sys

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2
from structlog.typing import Processor

from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.grpc_api.rpc_log import RpcLogListener
from caseroute.logs import configure_logging
from caseroute.logs.setup import _add_pid, _drop_formatter_attributes

INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _reference(log_format: str) -> logging.Formatter:
    """The ProcessorFormatter ``configure_logging`` built before ``_Formatter`` existed."""
    shared: list[Processor] = [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _drop_formatter_attributes,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    tail: list[Processor] = []
    renderer: Processor
    if log_format == "json":
        tail = [structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:
        # Plain tracebacks, as configure_logging's (review R31b F3: no frame locals).
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )


class _Odd:
    """An object JSON cannot encode: rendered by its repr."""

    def __repr__(self) -> str:
        return "<odd \u00e9>"


class _Structlog:
    """An object with its own structlog form."""

    def __structlog__(self) -> str:
        return "own"


class _Capture(logging.Handler):
    """Keeps every record it is handed (formats nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _records() -> list[logging.LogRecord]:
    """One record of each kind a server writes, as the root logger's handlers receive them."""
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        RpcLogListener().call_finished(
            FinishedCall(
                "grpc.health.v1.Health",
                "Check",
                grpc.StatusCode.OK,
                0.0123456,
                health_pb2.HealthCheckRequest(service="caseroute.v1.RoutingService"),
                health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING),
                "ops",
                "ipv4:127.0.0.1:5",
            )
        )
        audit = logging.getLogger("caseroute.audit")
        audit.warning("refused %d write(s) of %r", 2, "r\u00e9q", extra={"ruleset": "r"})
        empty: dict[str, int] = {}
        try:
            empty["k"]
        except KeyError:
            audit.exception("append failed")
        audit.error("with stack", stack_info=True)
        structlog.stdlib.get_logger("caseroute.rpc").info("native", method="Decide", n=1)
        formatted = logging.LogRecord("caseroute.x", logging.INFO, "f.py", 1, "m %s", ("a",), None)
        logging.Formatter("%(asctime)s %(message)s").format(formatted)  # leaves message/asctime
        root.handle(formatted)
        audit.warning(  # extra fields named like the line's own keys, and objects JSON lacks
            "clash",
            extra={"event": "e", "level": "l", "timestamp": "t", "pid": 0, "odd": _Odd()},
        )
        audit.info("own form", extra={"obj": _Structlog(), "raw": b"\x00", "n": [1.5, None]})
        audit.log(25, "a level without a name")
        renamed = logging.LogRecord("caseroute.x", logging.WARNING, "f.py", 1, "w", (), None)
        renamed.levelname = "WARN"  # a level named as structlog renames (warn -> warning)
        root.handle(renamed)
    finally:
        root.removeHandler(capture)
    return capture.records


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_every_kind_of_record_renders_as_structlogs_formatter_rendered_it(
    log_format: str,
) -> None:
    """Call log, %-args, traceback, stack, structlog event, reused record, clashes, odd values."""
    configure_logging(log_format, "info", io.StringIO())
    (ours,) = [h.formatter for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]
    assert ours is not None
    reference = _reference(log_format)
    records = _records()
    assert len(records) == 10
    for record in records:
        before = dict(record.__dict__)
        line = INSTANT.sub("T", ours.format(record))
        assert dict(record.__dict__) == before  # left as it was, for other handlers
        assert INSTANT.sub("T", reference.format(record)) == line


def test_the_call_log_record_names_its_origin_and_respects_the_level() -> None:
    """The rpc record comes from call_finished in rpc_log.py; below the level none is made."""
    capture = _Capture()
    logger = logging.getLogger("caseroute.rpc")
    logger.addHandler(capture)
    level = logger.level
    call = FinishedCall("s", "M", grpc.StatusCode.NOT_FOUND, 0.5, None, None, "", "")
    try:
        logger.setLevel(logging.WARNING)
        RpcLogListener().call_finished(call)
        logger.setLevel(logging.ERROR)
        RpcLogListener().call_finished(call)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    (record,) = capture.records
    module = sys.modules[RpcLogListener.__module__].__file__
    assert (record.levelno, record.getMessage(), record.funcName, record.pathname) == (
        logging.WARNING,
        "rpc",
        "call_finished",
        module,
    )
    assert (record.method, record.code, record.latency_ms) == ("M", "NOT_FOUND", 500.0)  # type: ignore[attr-defined]
