"""A stand-in for grpc.ServicerContext when a test calls a servicer method directly."""

from __future__ import annotations

from typing import Any

import grpc


class FakeContext:
    """The parts of grpc.ServicerContext the servicer uses, recording how the call ended.

    ``remaining`` is what ``time_remaining`` answers (None: no deadline; 0.0: passed);
    ``active`` what ``is_active`` answers (False: the caller cancelled).
    """

    def __init__(self, remaining: float | None = None, *, active: bool = True) -> None:
        self.remaining = remaining
        self.active = active
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: Any = ()

    def time_remaining(self) -> float | None:
        """The deadline left, in seconds."""
        return self.remaining

    def is_active(self) -> bool:
        """Whether the caller still waits for the reply."""
        return self.active

    def peer_identities(self) -> None:
        """No TLS peer."""
        return

    def invocation_metadata(self) -> tuple[()]:
        """No metadata."""
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        """Record the call's trailing metadata."""
        self.trailing = metadata

    def set_code(self, code: grpc.StatusCode) -> None:
        """Record the call's status code."""
        self.code = code

    def set_details(self, details: str) -> None:
        """Record the call's status details."""
        self.details = details

    def abort_with_status(self, status: Any) -> None:
        """Not offered, as in grpcio-testing: the servicer sets the status and returns instead."""
        raise NotImplementedError
