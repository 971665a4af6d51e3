"""The image's Docker HEALTHCHECK: exit 0 when the local server reports SERVING, else 1.

It imports grpc and the standard health stubs alone, not the caseroute CLI, so a check every
30 s costs a fraction of `caseroute health`. It asks the overall health of 127.0.0.1 on
$CASEROUTE_PORT (default 50051) in plaintext with a 3 s deadline; an argument `HOST:PORT`
overrides the target. Kubernetes does not use it (the Deployment has native gRPC probes).
"""

# ruff: noqa: INP001  (a script copied into the image, not a module of a package)

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEADLINE_S = 3.0


def check(target: str) -> int:
    """Ask ``target`` for its overall health; report anything but SERVING on stderr.

    Args:
        target: ``host:port`` of the server.

    Returns:
        0 when the server answered SERVING, 1 otherwise.
    """
    request = health_pb2.HealthCheckRequest(service="")
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=DEADLINE_S)
    except grpc.RpcError as exc:
        code = getattr(exc, "code", lambda: None)()  # the channel's errors carry a status code
        sys.stderr.write(f"healthcheck: {target} answered {getattr(code, 'name', 'an error')}\n")
        return 1
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        sys.stderr.write(f"healthcheck: {target} is {name}\n")
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Check the target named in ``argv`` or the local server on $CASEROUTE_PORT."""
    target = argv[1] if len(argv) > 1 else f"127.0.0.1:{os.environ.get('CASEROUTE_PORT', '50051')}"
    return check(target)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
