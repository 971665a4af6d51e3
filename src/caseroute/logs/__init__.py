"""Structured logs: one structlog formatter for every line a server writes, stdlib or not."""

from caseroute.logs.setup import (
    LOG_FORMATS,
    LOG_LEVELS,
    configure_logging,
    host_configured,
    resolve_format,
)

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "configure_logging", "host_configured", "resolve_format"]
