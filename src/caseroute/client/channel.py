"""The client's channel: the gRPC service config (retries on UNAVAILABLE) and message sizes.

Retrying is safe because every request carries a request_id (given, or derived from the
request's content): a decision the server recorded before the connection broke comes back as
the stored one (``replayed``), never as a second decision. grpc-core does the retrying, resending
the very bytes of the first attempt, so the request_id cannot change between attempts.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from caseroute.grpc_api.tls import ClientTls
from caseroute.v1 import routing_pb2 as pb

MIB = 1024 * 1024
DEFAULT_MAX_RECEIVE_MB = 64
"""Largest reply accepted, in MiB: the server's own default largest message."""
DEFAULT_MAX_ATTEMPTS = 4
"""Attempts per call on UNAVAILABLE, the first included (gRPC caps it at 5)."""
MAX_ATTEMPTS_CAP = 5
"""gRPC's own ceiling on retryPolicy.maxAttempts (it clamps larger values to this)."""
RETRY_BUFFER_MB = 64
"""Request bytes gRPC keeps per call to resend; over it a call is not retried (gRPC's default
is 256 KiB, smaller than a modest batch). The server accepts at most 64 MiB by default."""

_SERVICES = ("RoutingService", "DecisionLog")


def service_config(max_attempts: int) -> dict[str, Any]:
    """The gRPC service config: retry UNAVAILABLE with exponential back-off.

    Args:
        max_attempts: Attempts per call, 1 (no retry) to 5.

    Returns:
        The service config as a JSON-able dict (gRPC's ``grpc.service_config`` format).
    """
    policy: dict[str, Any] = {
        "name": [{"service": pb.DESCRIPTOR.package + "." + s} for s in _SERVICES]
    }
    if max_attempts > 1:
        policy["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": "0.2s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return {"methodConfig": [policy]}


def channel_options(max_receive_mb: int, max_attempts: int) -> list[tuple[str, Any]]:
    """The channel arguments of a client channel.

    Args:
        max_receive_mb: Largest reply accepted, in MiB.
        max_attempts: Attempts per call on UNAVAILABLE.

    Returns:
        grpcio channel options.
    """
    return [
        ("grpc.max_receive_message_length", max_receive_mb * MIB),
        ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", RETRY_BUFFER_MB * MIB),
        ("grpc.service_config", json.dumps(service_config(max_attempts))),
    ]


def open_client_channel(
    target: str, tls: ClientTls | None, max_receive_mb: int, max_attempts: int
) -> grpc.Channel:
    """A channel to ``target`` (``host:port``): TLS when ``tls`` is given, else plaintext.

    Raises:
        ConfigError: If a TLS file cannot be read.
    """
    options = channel_options(max_receive_mb, max_attempts)
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, tls.credentials(), options=options)
