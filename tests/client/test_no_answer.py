"""A call nothing answered says so, naming the address and what to do (not "server answered").

gRPC's own UNAVAILABLE ("failed to connect to all addresses") and DEADLINE_EXCEEDED
("Deadline Exceeded") were printed as `server answered DEADLINE_EXCEEDED: Deadline Exceeded`:
no address, nothing to do. A caseroute server's own statuses keep their words.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.client import Client, DeadlineExceededError, NotFoundError, UnavailableError
from caseroute.testing import REPO_ROOT

from .conftest import NOW_TEXT, case_dict, roster_dict

REQUEST = REPO_ROOT / "examples" / "requests" / "decide-clinical-tx.json"


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (no HTTP/2, no gRPC)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_nothing_listening_names_the_address_and_the_health_check() -> None:
    """UnavailableError's message: no answer from HOST:PORT, check health, same request_id."""
    target = f"127.0.0.1:{_closed_port()}"
    with Client(target, timeout=10) as client, pytest.raises(UnavailableError) as caught:
        client.decide(case_dict(), roster_dict(), now=NOW_TEXT)
    message = str(caught.value)
    assert message.startswith(f"no answer from {target} (UNAVAILABLE: ")
    said = f"(`caseroute health --server {target}`), then retry with the same request_id"
    assert said in message
    assert caught.value.details in message  # gRPC's own words stay in details


@pytest.mark.parametrize("scheme", ["", "ipv4:"])
def test_several_replicas_get_a_health_check_each(
    scheme: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing at two replicas: one `caseroute health --server` per address, each one that runs.

    The check named `--server A,B`, which health reads as one host name and cannot resolve.
    """
    first, second = f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{_closed_port()}"
    target = f"{scheme}{first},{second}"
    with Client(target, timeout=10) as client, pytest.raises(UnavailableError) as caught:
        client.decide(case_dict(), roster_dict(), now=NOW_TEXT)
    checks = [
        f"caseroute health --server ipv4:{a}" if scheme else f"caseroute health --server {a}"
        for a in (first, second)
    ]
    said = f"(`{checks[0]}`, `{checks[1]}`), then retry with the same request_id"
    assert said in str(caught.value)
    for check in checks:  # each runs, to no answer at that one address
        assert main([*check.split()[1:], "--timeout", "5"]) == 1
        assert "failed to connect" in capsys.readouterr().err


def test_a_deadline_with_no_answer_names_the_address_and_the_timeout(silent_port: int) -> None:
    """DeadlineExceededError's message: no answer from HOST:PORT within the timeout, and how."""
    target = f"127.0.0.1:{silent_port}"
    with Client(target) as client, pytest.raises(DeadlineExceededError) as caught:
        client.decide(case_dict(), roster_dict(), now=NOW_TEXT, timeout=0.5)
    message = str(caught.value)
    assert message.startswith(f"no answer from {target} (DEADLINE_EXCEEDED: ")
    said = "within the 0.5 s timeout, retries included; retry with the same request_id"
    assert said in message


def test_a_caseroute_refusal_keeps_the_servers_words(client: Client) -> None:
    """A status the server sent (NOT_FOUND here) is still `server answered CODE: ...`."""
    with pytest.raises(NotFoundError) as caught:
        client.decide(case_dict(), roster_dict(), now=NOW_TEXT, ruleset="no-such-ruleset")
    assert str(caught.value).startswith("server answered NOT_FOUND: unknown ruleset ")


@pytest.mark.parametrize(
    "argv",
    [
        ["decide", "--request", str(REQUEST)],
        ["rules", "list", "--token-file", "TOKEN"],
        ["health"],
    ],
)
def test_the_cli_says_no_answer_from_the_address(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`decide --server`, the admin commands, health: exit 1, the address and what to do."""
    token = tmp_path / "token"
    token.write_text("admin-token-0123456789abcdef\n")
    token.chmod(0o600)
    target = f"127.0.0.1:{_closed_port()}"
    argv = [str(token) if arg == "TOKEN" else arg for arg in argv]
    code = main([*argv, "--server", target, "--timeout", "10"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err.startswith(f"caseroute: no answer from {target} (UNAVAILABLE: ")
    assert "check that a caseroute server listens there and reports SERVING" in captured.err
