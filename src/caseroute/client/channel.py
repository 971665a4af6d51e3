"""The client's channel: its target, the gRPC service config (balancing, retries) and sizes.

The target is one server or several replicas; the service config picks the load-balancing
policy and retries UNAVAILABLE.

Retrying is safe because every request carries a request_id (given, or derived from the
request's content): a decision the server recorded before the connection broke comes back as
the stored one (``replayed``), never as a second decision. grpc-core does the retrying, resending
the very bytes of the first attempt, so the request_id cannot change between attempts.

Several replica addresses make one channel with gRPC's ``round_robin`` policy: each call (and
each retry attempt) goes to the next replica whose connection is ready, so a retry after a
replica died lands on a live one; replicas share one decision log, so the retried request_id
finds the decision the dead replica may already have stored (docs/scaling.md).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any, Literal

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
_MULTI_SCHEMES = ("ipv4:", "ipv6:")
"""gRPC target schemes that name several addresses separated by commas."""

LoadBalancing = Literal["pick_first", "round_robin"]
"""gRPC's load-balancing policies a client may ask for."""


def _address(text: str) -> tuple[int, str]:
    """``host:port`` with an IP literal host as (IP version, gRPC address text).

    Raises:
        ValueError: If it is not an IPv4 ``a.b.c.d:port`` or IPv6 ``[addr]:port`` address.
    """
    host, sep, port = text.strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
        number = int(port)
    except ValueError:
        ip, number = None, 0
    if not sep or ip is None or not 0 < number < 2**16 or bracketed != (ip.version == 6):
        raise ValueError(
            f"replica address {text.strip()!r} is not IP:PORT (e.g. 10.0.0.5:50051 or "
            "[fd00::5]:50051); to balance over a DNS name that resolves to every replica, give "
            "that one name (dns:///caseroute-replicas:50051) with load_balancing='round_robin'"
        )
    return ip.version, f"[{ip}]:{number}" if ip.version == 6 else f"{ip}:{number}"


def replica_target(servers: str | Sequence[str]) -> tuple[str, int]:
    """The gRPC target of one server or of several replicas, and how many addresses it names.

    Args:
        servers: One gRPC target (``host:port``, ``dns:///name:port``, ``unix:/path``), a
            gRPC multi-address target (``ipv4:10.0.0.5:50051,10.0.0.6:50051``), replica
            addresses separated by commas (``10.0.0.5:50051,10.0.0.6:50051``), or a sequence
            of addresses. Several addresses must be IP literals of one family: gRPC has no
            target naming several host names.

    Returns:
        The target and the number of addresses it names (1 for a single target, even a DNS
        name that may resolve to several).

    Raises:
        ValueError: If no address is given, one is not IP:PORT, or IPv4 and IPv6 are mixed.
    """
    if isinstance(servers, str):
        if "," not in servers:
            if not servers.strip():
                raise ValueError("no server address given: give HOST:PORT")
            return servers, 1
        if servers.startswith(_MULTI_SCHEMES):
            return servers, servers.count(",") + 1
        servers = servers.split(",")
    if len(servers) == 1:
        return replica_target(servers[0])
    addresses = [_address(text) for text in servers]
    if not addresses:
        raise ValueError("no server address given: give HOST:PORT")
    families = {version for version, _ in addresses}
    if len(families) > 1:
        raise ValueError(
            "replica addresses mix IPv4 and IPv6, which one gRPC target cannot: use one family"
        )
    scheme = f"ipv{families.pop()}:"
    return scheme + ",".join(text for _, text in addresses), len(addresses)


def service_config(
    max_attempts: int, load_balancing: LoadBalancing = "pick_first"
) -> dict[str, Any]:
    """The gRPC service config: the load-balancing policy; UNAVAILABLE retried with back-off.

    Args:
        max_attempts: Attempts per call, 1 (no retry) to 5.
        load_balancing: ``pick_first`` (gRPC's default: one connection) or ``round_robin``
            (a connection to every address, calls spread over the ready ones).

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
    config: dict[str, Any] = {"methodConfig": [policy]}
    if load_balancing != "pick_first":
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    return config


def channel_options(
    max_receive_mb: int, max_attempts: int, load_balancing: LoadBalancing = "pick_first"
) -> list[tuple[str, Any]]:
    """The channel arguments of a client channel.

    Args:
        max_receive_mb: Largest reply accepted, in MiB.
        max_attempts: Attempts per call on UNAVAILABLE.
        load_balancing: The gRPC load-balancing policy.

    Returns:
        grpcio channel options.
    """
    config = service_config(max_attempts, load_balancing)
    return [
        ("grpc.max_receive_message_length", max_receive_mb * MIB),
        ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", RETRY_BUFFER_MB * MIB),
        ("grpc.service_config", json.dumps(config)),
    ]


def open_client_channel(
    target: str,
    tls: ClientTls | None,
    max_receive_mb: int,
    max_attempts: int,
    load_balancing: LoadBalancing = "pick_first",
) -> grpc.Channel:
    """A channel to ``target`` (a gRPC target): TLS when ``tls`` is given, else plaintext.

    Raises:
        ConfigError: If a TLS file cannot be read.
    """
    options = channel_options(max_receive_mb, max_attempts, load_balancing)
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, tls.credentials(), options=options)
