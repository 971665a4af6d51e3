"""A server others can reach warns, once, about each service it leaves open (docs/security.md).

``DecisionLog`` and ``RoutingService`` are open unless their policy is configured: right for
a server on loopback (a sidecar, a laptop), not for ``--host 0.0.0.0`` in a container, where
anyone reaching the port could read every recorded decision or route cases into the log.
"""

from pathlib import Path

import pytest

from caseroute.grpc_api.auth import AccessPolicy, listens_beyond_host, open_service_warnings
from tests.serve_process import LOADED, start_serve

OPEN = AccessPolicy()
PROTECTED = AccessPolicy(tokens=(("auditor:ann", b"a" * 32),))
AUDIT_OPEN = "DecisionLog is open to anyone who can reach"
ROUTING_OPEN = "RoutingService is open to anyone who can reach"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the bind address under test


@pytest.mark.parametrize(
    ("host", "beyond"),
    [
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("127.1", False),  # shorthand for 127.0.0.1, as the resolver reads it
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", True),
        ("LocalHost", False),
        (EVERYWHERE, True),
        ("::", True),
        ("[::]", True),
        ("10.1.2.3", True),
        ("caseroute.internal", True),  # a name may resolve to any interface
    ],
)
def test_only_loopback_stays_on_the_machine(host: str, beyond: bool) -> None:
    """Loopback addresses and ``localhost`` stay on the machine; every other host may not."""
    assert listens_beyond_host(host) is beyond


def test_each_open_service_is_named_with_the_flags_that_close_it() -> None:
    """One warning per open service, naming the flags that protect it; none on loopback."""
    both = open_service_warnings(EVERYWHERE, OPEN, OPEN)
    assert len(both) == 2
    assert both[0].startswith(f"{AUDIT_OPEN} {EVERYWHERE}")
    assert "--audit-token-file FILE or --audit-allow IDENTITY" in both[0]
    assert both[1].startswith(f"{ROUTING_OPEN} {EVERYWHERE}")
    assert "--caller-token-file FILE or --caller-allow IDENTITY" in both[1]
    assert open_service_warnings(EVERYWHERE, PROTECTED, OPEN) == both[1:]
    assert open_service_warnings(EVERYWHERE, OPEN, PROTECTED) == both[:1]
    assert open_service_warnings(EVERYWHERE, PROTECTED, PROTECTED) == ()
    assert open_service_warnings("127.0.0.1", OPEN, OPEN) == ()


def _token_file(path: Path) -> Path:
    path.write_text(f"auditor:ann {'t' * 32}\n")
    path.chmod(0o600)
    return path


def test_serve_on_every_interface_warns_once_per_open_service(tmp_path: Path) -> None:
    """Two workers, one warning each: the supervisor checks before it spawns them."""
    with start_serve(tmp_path / "audit.db", workers=2, host=EVERYWHERE) as served:
        logged = "".join(served.seen)
        assert logged.count(AUDIT_OPEN) == 1, logged  # the supervisor's, not each worker's
        assert logged.count(ROUTING_OPEN) == 1, logged
        served.stop()


def test_serve_with_an_audit_policy_warns_only_about_routing(tmp_path: Path) -> None:
    """A protected DecisionLog is not named; the open RoutingService still is."""
    tokens = _token_file(tmp_path / "audit.tokens")
    with start_serve(
        tmp_path / "audit.db", "--audit-token-file", str(tokens), host=EVERYWHERE
    ) as served:
        logged = "".join(served.seen)
        assert AUDIT_OPEN not in logged
        assert logged.count(ROUTING_OPEN) == 1, logged
        served.stop()


def test_serve_on_loopback_does_not_warn(tmp_path: Path) -> None:
    """The default bind address (127.0.0.1) is not reachable by others: nothing to warn."""
    with start_serve(tmp_path / "audit.db") as served:
        logged = "".join(served.seen)
        assert LOADED in logged  # read up to the worker's start, past where a warning goes
        assert AUDIT_OPEN not in logged
        assert ROUTING_OPEN not in logged
        served.stop()
