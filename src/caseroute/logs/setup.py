"""Configure structlog and stdlib ``logging`` so both write through one renderer.

Every line a server process writes goes through a ``structlog.stdlib.ProcessorFormatter`` on
the root logger: the stdlib ``logging`` calls of the core (engine errors, audit, lifecycle,
auth refusals) and the structlog events of the gRPC call log alike. ``json`` renders one JSON
object per line (for log shippers); ``console`` renders aligned, human-readable lines;
``auto`` picks ``console`` when the stream is a terminal and ``json`` otherwise.

Fields a stdlib call passes in ``extra={...}`` become keys of the line (``ExtraAdder``), so
the core can log structured events without importing structlog. A stdlib line's ``timestamp``
is the instant its record was made. With ``deferred=True`` (what ``caseroute serve`` uses)
the lines are formatted and written by one thread after the calls that made them
(``caseroute.logs.deferred``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog._log_levels import map_method_name
from structlog.typing import EventDict, Processor, WrappedLogger

from caseroute.logs.deferred import DeferredHandler

LOG_FORMATS = ("auto", "json", "console")
"""``--log-format`` values."""

LOG_LEVELS = ("debug", "info", "warning", "error")
"""``--log-level`` values (lowest first)."""


def resolve_format(log_format: str, stream: TextIO) -> str:
    """``json`` or ``console``: what ``log_format`` means on ``stream``.

    Args:
        log_format: One of ``LOG_FORMATS``.
        stream: Where lines go (``auto`` asks whether it is a terminal).

    Returns:
        The concrete format.

    Raises:
        ValueError: If ``log_format`` is not one of ``LOG_FORMATS``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    if log_format != "auto":
        return log_format
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or unusual stream: machines read it
        return "json"


_FORMATTER_ATTRIBUTES = ("message", "asctime")
"""Record attributes a stdlib ``Formatter`` adds while formatting: not ``extra`` fields."""


def _drop_formatter_attributes(
    _logger: WrappedLogger, _name: str, event_dict: EventDict
) -> EventDict:
    """Drop what another handler's formatter left on the record (``ExtraAdder`` would copy it)."""
    if event_dict.get("_record") is not None:
        for key in _FORMATTER_ATTRIBUTES:
            event_dict.pop(key, None)
    return event_dict


def _add_timestamp(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Add the UTC instant as structlog's ISO ``TimeStamper`` writes it, of the record if any.

    A stdlib record is stamped with the instant it was made (``created``), so a line written
    later by ``DeferredHandler``'s thread says when its event happened; a structlog event
    (no record) is stamped now, as it is made.
    """
    record = event_dict.get("_record")
    when = (
        datetime.fromtimestamp(record.created, tz=UTC) if record is not None else datetime.now(UTC)
    )
    event_dict["timestamp"] = when.isoformat().replace("+00:00", "Z")
    return event_dict


def _add_pid(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Add the process id: with several workers, it tells which one wrote the line."""
    event_dict.setdefault("pid", os.getpid())
    return event_dict


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler ``configure_logging`` installs (recognised when it runs again)."""


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ``ProcessorFormatter``, with less CPU for a line from stdlib ``logging``.

    Every line of a server goes through it, among them one per gRPC call (the call log):
    ``ProcessorFormatter.format`` copies each record by building a new ``LogRecord``
    (``logging.makeLogRecord``: ``__init__`` reads the clock, the thread, the process and
    splits the path again, only for every attribute to be overwritten). This runs the same
    steps for a stdlib record, as structlog 26.1 does with this module's settings (message by
    ``getMessage``, no positional args passed on, exception and stack info not kept on the
    record), on a copy made without ``__init__``: the same text, pinned against structlog's
    own formatter by ``tests/logs/test_fast_formatter.py``. structlog's own events take its
    path unchanged.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The line for ``record`` (which is left as it was, for other handlers)."""
        if hasattr(record, "_logger") and hasattr(record, "_name"):  # a structlog event
            return super().format(record)
        copy = logging.LogRecord.__new__(type(record))
        copy.__dict__.update(record.__dict__)
        method = copy.levelname.lower()
        event: Any = {"event": copy.getMessage(), "_record": copy, "_from_structlog": False}
        copy.args = ()
        if copy.exc_info:
            event["exc_info"] = copy.exc_info
        if copy.stack_info:
            event["stack_info"] = copy.stack_info
        for processor in self.foreign_pre_chain or ():
            event = processor(None, method, event)
        copy.exc_text = None
        copy.exc_info = None
        copy.stack_info = None
        for processor in self.processors:
            event = processor(None, method, event)
        copy.msg = event
        return logging.Formatter.format(self, copy)


_RECORD_KEYS = frozenset(
    [
        *logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__,
        *_FORMATTER_ATTRIBUTES,
    ]
)
"""What ``ExtraAdder`` leaves out of a line (a new record's attributes, as it computes them),
and what ``_drop_formatter_attributes`` drops."""


class _JsonFormatter(_Formatter):
    """``_Formatter`` for ``json``, with the common line (no traceback, no stack) in one step.

    For a stdlib record without exception or stack info, the processors ``configure_logging``
    gives the JSON formatter come to: ``event``, ``logger``, ``level``, each ``extra`` field
    (in the record's order; one named like an earlier key takes that key's place), the
    record's UTC instant as ``timestamp`` and the process id as ``pid`` unless an extra field
    gave one, rendered by ``json.dumps`` with structlog's fallback for other objects; the
    record is not touched. That is built here directly, without the copy, the eight
    processor calls and a new ``JSONEncoder`` per line. Any other record takes
    ``_Formatter``'s path. Pinned against structlog's own formatter by
    ``tests/logs/test_fast_formatter.py``.
    """

    # The very function JSONRenderer passes json.dumps as ``default`` (repr, __structlog__).
    _fallback = structlog.processors._json_fallback_handler  # noqa: SLF001
    _encode = json.JSONEncoder(default=_fallback).encode

    def format(self, record: logging.LogRecord) -> str:
        """The line for ``record`` (which is left as it was, for other handlers)."""
        if record.exc_info or record.stack_info or hasattr(record, "_logger"):
            return super().format(record)
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": map_method_name(record.levelname.lower()),
        }
        # In the record's order; an extra field named like a key above takes its place.
        event.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_KEYS})
        stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
        event["timestamp"] = stamp.replace("+00:00", "Z")
        event.setdefault("pid", os.getpid())
        return self._encode(event)


def host_configured() -> bool:
    """True when the root logger has handlers ``configure_logging`` did not install.

    Then something else (a program embedding the server, a test runner) owns the process's
    logging, and ``caseroute serve`` leaves it alone, as ``logging.basicConfig`` would.
    """
    return any(not isinstance(h, _OURS) for h in logging.getLogger().handlers)


_OURS = (_Handler, DeferredHandler)
"""The root handlers ``configure_logging`` installs."""


def configure_logging(
    log_format: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    *,
    deferred: bool = False,
) -> str:
    """Send every log line of this process through one structlog renderer on ``stream``.

    Idempotent: a second call replaces the handler the first installed. Workers are spawned
    (they share no state with the parent), so each calls this itself.

    Args:
        log_format: ``auto``, ``json`` or ``console``.
        level: Lowest level written (``debug``, ``info``, ``warning``, ``error``).
        stream: Where lines go (default: ``sys.stderr`` at the time of the call).
        deferred: Format and write lines on one writer thread, after the calls that made
            them (``DeferredHandler``); otherwise on the calling thread.

    Returns:
        The concrete format used (``json`` or ``console``).

    Raises:
        ValueError: If the format or level is not one of the accepted values.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    target = stream if stream is not None else sys.stderr
    concrete = resolve_format(log_format, target)
    shared: list[Processor] = [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _drop_formatter_attributes,
        _add_timestamp,
        _add_pid,
    ]
    renderer: Processor
    tail: list[Processor]
    if concrete == "json":
        # Tracebacks as one string field: a line stays one JSON object.
        tail = [structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:
        tail = []
        # Plain frames, never their local variables: structlog's default formatter is rich's
        # traceback with show_locals, which printed a call's decoded request (patient names and
        # all) in any logged exception (review R31b F3). The JSON path's frames hold none.
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_terminal(target), exception_formatter=structlog.dev.plain_traceback
        )
    formatter = (_JsonFormatter if concrete == "json" else _Formatter)(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler: logging.Handler = DeferredHandler(target) if deferred else _Handler(target)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OURS)]:
        root.removeHandler(old)
        if isinstance(old, DeferredHandler):
            old.close()  # its queued lines are written to its stream first
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return concrete


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
