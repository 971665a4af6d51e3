"""The client over several replicas: one round_robin channel, retries landing on a live replica.

The replicas here are real gRPC servers in this process, each serving the RoutingService of one
shared core (one decision log), as replicas share one database; tests/scale/test_replicas.py
runs real `caseroute serve` processes.
"""

import json
import socket
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.cli import main
from caseroute.client import Client
from caseroute.client.channel import replica_target, service_config
from caseroute.grpc_api.server import ROUTING_SERVICE, add_service
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import NOW, audited_core
from tests.client.conftest import NOW_TEXT, case_dict, roster_dict


class Replica(grpc.ServerInterceptor):
    """Notes the request_id of every attempt it serves; optionally answers UNAVAILABLE.

    Attributes:
        seen: The request_id of every attempt that reached this replica, in order.
        lost: The request_id of every attempt decided here whose reply was then lost.
    """

    def __init__(self, *, refuse: bool = False, lose_reply: bool = False) -> None:
        """``refuse``: UNAVAILABLE before deciding; ``lose_reply``: after deciding and recording."""
        self.refuse = refuse
        self.lose_reply = lose_reply
        self.seen: list[str] = []
        self.lost: list[str] = []

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """The handler, wrapped to note (and, if asked, fail) each attempt."""
        handler = continuation(handler_call_details)
        inner = handler.unary_unary

        def noted(request: Any, context: grpc.ServicerContext) -> Any:
            self.seen.append(request.request_id)
            if self.refuse:
                context.abort(grpc.StatusCode.UNAVAILABLE, "draining")
            reply = inner(request, context)
            # Only a decided call's reply can be lost: the servicer answers an error (e.g.
            # ROSTER_NOT_CACHED before this replica held the roster) by setting the status and
            # returning, and turning that into UNAVAILABLE would hide it from the client.
            # (ServicerContext.code() exists since grpcio 1.38; types-grpcio does not list it.)
            code = context.code()  # type: ignore[attr-defined]
            if self.lose_reply and code in (None, grpc.StatusCode.OK):
                self.lost.append(request.request_id)
                context.abort(grpc.StatusCode.UNAVAILABLE, "the reply was lost")
            return reply

        return grpc.unary_unary_rpc_method_handler(
            noted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@pytest.fixture
def core(registry: RulesetRegistry, tmp_path: Path) -> Iterator[RoutingCore]:
    """One core and its decision log, shared by every replica of a test."""
    opened = audited_core(registry, tmp_path)
    yield opened
    opened.audit.close()


def start_replica(started: list[grpc.Server], core: RoutingCore, replica: Replica) -> str:
    """A replica serving ``core``'s RoutingService behind ``replica``, added to ``started``.

    Returns:
        Its address.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[replica])
    add_service(server, ROUTING_SERVICE, RoutingServicer(core))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    started.append(server)
    return f"127.0.0.1:{port}"


@pytest.fixture
def serve(core: RoutingCore) -> Iterator[Callable[[Replica], str]]:
    """Start a replica (the shared core behind an interceptor); returns its address."""
    started: list[grpc.Server] = []
    yield lambda replica: start_replica(started, core, replica)
    for server in started:
        server.stop(None)


def _warm(client: Client, replicas: list[Replica]) -> None:
    """Decide until every replica served a call (both connections ready), at most 50 calls."""
    for i in range(50):
        client.decide(case_dict(f"W-{i}"), roster_dict(), now=NOW)
        if all(r.seen for r in replicas):
            return
    pytest.fail("round_robin never reached every replica in 50 calls")


def test_addresses_become_one_ipv4_target_with_round_robin() -> None:
    """A list or a comma-separated text of IPv4 addresses is one ipv4: target of N addresses."""
    expected = ("ipv4:10.0.0.5:50051,10.0.0.6:50052", 2)
    assert replica_target(["10.0.0.5:50051", "10.0.0.6:50052"]) == expected
    assert replica_target("10.0.0.5:50051, 10.0.0.6:50052") == expected
    assert replica_target("[fd00::5]:1,[fd00::0:6]:2") == ("ipv6:[fd00::5]:1,[fd00::6]:2", 2)


def test_one_target_and_grpc_multi_address_targets_pass_unchanged() -> None:
    """One address (any gRPC target) and ipv4:/ipv6: lists are given to gRPC as written."""
    assert replica_target("caseroute:50051") == ("caseroute:50051", 1)
    assert replica_target(["dns:///caseroute-replicas:50051"]) == (
        "dns:///caseroute-replicas:50051",
        1,
    )
    assert replica_target("ipv4:127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003") == (
        "ipv4:127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003",
        3,
    )


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        pytest.param(
            "localhost:5001,localhost:5002",
            "replica address 'localhost:5001' is not IP:PORT",
            id="host-names",
        ),
        pytest.param("10.0.0.5:50051,10.0.0.6", "replica address '10.0.0.6' is not", id="no-port"),
        pytest.param(
            "10.0.0.5:0,10.0.0.6:1", "replica address '10.0.0.5:0' is not", id="port-zero"
        ),
        pytest.param(
            "10.0.0.5:1,fd00::6:1", "replica address 'fd00::6:1' is not", id="unbracketed-v6"
        ),
        pytest.param(
            "10.0.0.5:1,[10.0.0.6]:1", "replica address '[10.0.0.6]:1' is not", id="bracketed-v4"
        ),
        pytest.param("10.0.0.5:1,", "replica address '' is not", id="empty-entry"),
        pytest.param(
            "10.0.0.5:1,[fd00::6]:1",
            "replica addresses mix IPv4 and IPv6, which one gRPC target cannot: use one family",
            id="mixed",
        ),
        pytest.param(" ", "no server address given: give HOST:PORT", id="blank"),
        pytest.param([], "no server address given: give HOST:PORT", id="empty-list"),
    ],
)
def test_addresses_that_cannot_make_one_target_are_refused(
    servers: str | list[str], message: str
) -> None:
    """Host names, missing or bad ports, mixed families and no address are each refused."""
    with pytest.raises(ValueError, match=r".") as caught:
        replica_target(servers)
    assert str(caught.value).startswith(message)


def test_the_refusal_of_a_host_name_says_what_to_do_instead() -> None:
    """The message names both ways that work: IP addresses, or one DNS name with round_robin."""
    with pytest.raises(ValueError, match=r".") as caught:
        replica_target(["caseroute-0:50051", "caseroute-1:50051"])
    assert str(caught.value) == (
        "replica address 'caseroute-0:50051' is not IP:PORT (e.g. 10.0.0.5:50051 or "
        "[fd00::5]:50051); to balance over a DNS name that resolves to every replica, give "
        "that one name (dns:///caseroute-replicas:50051) with load_balancing='round_robin'"
    )


def test_round_robin_is_in_the_service_config_only_when_asked() -> None:
    """pick_first is gRPC's default (no loadBalancingConfig); round_robin is named."""
    assert "loadBalancingConfig" not in service_config(4)
    assert service_config(4, "round_robin")["loadBalancingConfig"] == [{"round_robin": {}}]
    assert service_config(1, "round_robin") == {
        "methodConfig": [
            {
                "name": [
                    {"service": "caseroute.v1.RoutingService"},
                    {"service": "caseroute.v1.DecisionLog"},
                ]
            }
        ],
        "loadBalancingConfig": [{"round_robin": {}}],
    }


def test_an_unknown_load_balancing_policy_is_refused() -> None:
    """Only round_robin and pick_first are offered; anything else is a ValueError."""
    with pytest.raises(ValueError, match=r".") as caught:
        Client("127.0.0.1:1", load_balancing="grpclb")  # type: ignore[arg-type]
    assert str(caught.value) == "load_balancing must be 'round_robin' or 'pick_first', not 'grpclb'"


def test_calls_alternate_between_two_ready_replicas(
    serve: Callable[[Replica], str],
) -> None:
    """Ready replicas take turns: ten calls are ten attempts, five each (round_robin).

    Each replica caches rosters on its own: the client sends a roster in full to each replica
    in turn before going by hash, so no call is refused ROSTER_NOT_CACHED and resent (in
    lock-step, one replica would miss on every call: twenty attempts).
    """
    replicas = [Replica(), Replica()]
    addresses = [serve(r) for r in replicas]
    with Client(addresses) as client:
        _warm(client, replicas)
        before = [len(r.seen) for r in replicas]
        for i in range(10):
            client.decide(case_dict(f"RR-{i}"), roster_dict(), now=NOW)
    assert [len(r.seen) - b for r, b in zip(replicas, before, strict=True)] == [5, 5]


def test_one_dns_style_target_may_ask_for_round_robin(serve: Callable[[Replica], str]) -> None:
    """load_balancing='round_robin' on one target (a name resolving to the replicas) decides."""
    address = serve(Replica())
    with Client(address, load_balancing="round_robin") as client:
        reply = client.decide(case_dict("DNS-1"), roster_dict(), now=NOW)
    assert (reply.decision.agent_id, reply.replayed) == ("a1", False)


def test_a_replica_answering_unavailable_is_retried_on_the_other(
    serve: Callable[[Replica], str], core: RoutingCore
) -> None:
    """A draining replica refuses every attempt; each call is decided by the other, same id."""
    draining, live = Replica(refuse=True), Replica()
    with Client([serve(draining), serve(live)]) as client:
        replies = [client.decide(case_dict(f"U-{i}"), roster_dict(), now=NOW) for i in range(6)]
    ids = [r.request_id for r in replies]
    assert draining.seen != []
    assert set(draining.seen) <= set(ids)
    assert live.seen == ids  # each request decided once, by the live replica
    assert [r.replayed for r in replies] == [False] * 6
    assert [[d.decision_id for d in core.audit.by_request(i)] for i in ids] == [
        [r.decision.decision_id] for r in replies
    ]


def test_a_reply_lost_on_one_replica_is_replayed_by_the_other(
    serve: Callable[[Replica], str], core: RoutingCore
) -> None:
    """Recorded by one replica, reply lost: the retry on the other returns that decision."""
    losing, live = Replica(lose_reply=True), Replica()
    with Client([serve(losing), serve(live)]) as client:
        replies = [client.decide(case_dict(f"L-{i}"), roster_dict(), now=NOW) for i in range(6)]
    lost = set(losing.lost)
    assert lost != set()
    assert [r.replayed for r in replies] == [r.request_id in lost for r in replies]
    assert [[d.decision_id for d in core.audit.by_request(r.request_id)] for r in replies] == [
        [r.decision.decision_id] for r in replies
    ]


def test_a_replica_address_nothing_listens_on_is_skipped(
    serve: Callable[[Replica], str],
) -> None:
    """A dead replica in the list (connection refused) never fails a call: the live one decides."""
    with socket.socket() as probe:  # a port that was free; nothing listens on it now
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    live = Replica()
    with Client([dead, serve(live)]) as client:
        replies = [client.decide(case_dict(f"D-{i}"), roster_dict(), now=NOW) for i in range(4)]
    assert live.seen == [r.request_id for r in replies]


def test_decide_server_takes_replica_addresses(
    serve: Callable[[Replica], str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caseroute decide --server IP:PORT,IP:PORT` decides through both replicas' client."""
    replicas = [Replica(), Replica()]
    servers = ",".join(serve(r) for r in replicas)
    case, roster = tmp_path / "case.json", tmp_path / "roster.json"
    case.write_text(json.dumps(case_dict("CLI-R")))
    roster.write_text(json.dumps(roster_dict()))
    argv = ["decide", "--case", str(case), "--roster", str(roster), "--now", NOW_TEXT]
    code = main([*argv, "--server", servers, "--json"])
    out = capsys.readouterr().out
    assert (code, '"agent_id": "a1"' in out) == (0, True)
    assert len(replicas[0].seen) + len(replicas[1].seen) >= 1


def test_simulate_server_spreads_its_requests_over_replica_addresses(
    serve: Callable[[Replica], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`caseroute simulate --server IP:PORT,IP:PORT`: every request decided, both replicas used."""
    replicas = [Replica(), Replica()]
    servers = ",".join(serve(r) for r in replicas)
    argv = ["simulate", "--cases", "12", "--agents", "3", "--seed", "5", "--concurrency", "1"]
    code = main([*argv, "--server", servers, "--no-agent-detail"])
    out = capsys.readouterr().out
    assert (code, [len(r.seen) > 0 for r in replicas]) == (0, [True, True])
    lines = out.splitlines()
    assert (lines[1].startswith("ok 6 requests, 12 decisions ("), lines[-1]) == (
        True,
        "refused 0 requests",
    )


@pytest.mark.parametrize("command", ["decide", "simulate"])
def test_a_server_list_of_host_names_is_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """decide/simulate --server with host names in a list exit 2 naming the address."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--server", "localhost:5001,localhost:5002"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "--server: replica address 'localhost:5001' is not IP:PORT" in err
