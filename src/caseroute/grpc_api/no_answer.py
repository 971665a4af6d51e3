"""A failed call whose status the caller's own channel made: said as no answer from the target.

gRPC ends a call UNAVAILABLE when nothing listens at the address (or the connection drops),
and DEADLINE_EXCEEDED when the caller's deadline passes, with its own terse text ("failed to
connect to all addresses", "Deadline Exceeded"). Printed as "server answered ..." that named
no address and said nothing to do. A caseroute server sends each status it decides on with a
``google.rpc.Status`` trailer (``grpc_api/status.py``), so a status without one came from the
channel (or a proxy in front): those are said here with the target and the next step.
"""

from __future__ import annotations

import grpc

DETAILS_TRAILER = "grpc-status-details-bin"
"""The trailing metadata key of the ``google.rpc.Status`` a caseroute server sends."""

_CHANNEL_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def made_by_the_channel(call: grpc.Call) -> bool:
    """Whether a failed call's UNAVAILABLE or DEADLINE_EXCEEDED came from no caseroute server.

    Args:
        call: The failed call (grpcio's unary errors are ``grpc.Call`` objects).

    Returns:
        True for those two codes without the trailer every caseroute status carries.
    """
    if call.code() not in _CHANNEL_CODES:
        return False
    trailers = call.trailing_metadata() or ()
    return all(key != DETAILS_TRAILER for key, _value in trailers)


def _health_commands(target: str) -> str:
    """``caseroute health`` for each address of ``target`` (it checks one address at a time).

    Several replicas (``A,B`` or ``ipv4:A,B``) were named in one ``--server A,B``, which health
    reads as one host name ("Misformatted domain name"): the remedy could not work.
    """
    addresses = [address.strip() for address in target.split(",")]
    scheme, colon, first = addresses[0].partition(":")
    if len(addresses) > 1 and colon and scheme in ("ipv4", "ipv6"):
        addresses = [f"{scheme}:{address}" for address in [first, *addresses[1:]]]
    return ", ".join(f"`caseroute health --server {address}`" for address in addresses)


def no_answer_text(
    code: grpc.StatusCode,
    details: str,
    target: str,
    timeout_s: float,
    retry: str,
    *,
    suggest_health: bool = True,
) -> str:
    """What to print for a status the channel made: what happened, where, what to do.

    Args:
        code: UNAVAILABLE or DEADLINE_EXCEEDED.
        details: gRPC's own text for it.
        target: The address (or addresses) called, as the caller gave it.
        timeout_s: The call's deadline in seconds.
        retry: How this caller retries safely, e.g. ``"retry with the same request_id"``.
        suggest_health: Point to ``caseroute health`` (not from that command itself).

    Returns:
        One line, e.g. ``no answer from 127.0.0.1:50051 (UNAVAILABLE: failed to connect ...);
        check that a caseroute server listens there ...``.
    """
    said = f"no answer from {target} ({code.name}: {details})"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return (
            f"{said} within the {timeout_s:g} s timeout, retries included; {retry}, with a "
            "longer timeout, or check the server's load and log"
        )
    health = f" ({_health_commands(target)})" if suggest_health else ""
    return (
        f"{said}; check that a caseroute server listens there and reports SERVING{health}, "
        f"then {retry}"
    )
