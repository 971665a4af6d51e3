"""Server reflection v1 beside v1alpha, with a v1 client that shares no code with the server."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.reflection_v1 import V1_FILE_NAME, reflection_pool, v1_file_descriptor
from caseroute.grpc_api.server import RunningServer
from tests.grpc_api.conftest import serving_reference

# The client's own definition of reflection v1: the messages and field numbers of grpc's
# reflection/v1/reflection.proto that a client needs, written for this test (not the server's
# v1alpha classes), so the server must really answer under the v1 names.
V1_CLIENT_PROTO = """
syntax = "proto3";
package grpc.reflection.v1;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest)
    returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
"""

V1_CLIENT = """
import sys
import grpc
from google.protobuf import descriptor_pb2
from v1client import reflection_pb2 as r

def ask(stub, **request):
    (reply,) = stub(iter([r.ServerReflectionRequest(**request)]), timeout=30)
    return reply

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=r.ServerReflectionRequest.SerializeToString,
        response_deserializer=r.ServerReflectionResponse.FromString,
    )
    listed = ask(stub, list_services="")
    for name in sorted(s.name for s in listed.list_services_response.service):
        print("service", name)
    for symbol in ("caseroute.v1.RoutingService", "grpc.reflection.v1.ServerReflection"):
        found = ask(stub, file_containing_symbol=symbol)
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                 for raw in found.file_descriptor_response.file_descriptor_proto]
        for f in sorted(files, key=lambda f: f.name):
            print(symbol, "in", f.name, *(s.name for s in f.service))
    missing = ask(stub, file_containing_symbol="caseroute.v1.NoSuchThing")
    print("missing", missing.error_response.error_code)
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset loaded."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


def test_a_v1_reflection_client_lists_the_services_and_resolves_files(
    running: RunningServer, tmp_path: Path
) -> None:
    """A client generated from reflection v1's own proto lists our services and resolves files."""
    package = tmp_path / "v1client"  # not grpc/reflection/v1: that would shadow grpc
    package.mkdir(parents=True)
    (package / "reflection.proto").write_text(V1_CLIENT_PROTO)
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"--python_out={tmp_path}",
            "v1client/reflection.proto",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (generated.returncode, generated.stderr) == (0, "")
    (tmp_path / "client.py").write_text(V1_CLIENT)
    done = subprocess.run(
        [sys.executable, "client.py", f"127.0.0.1:{running.port}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "service caseroute.v1.DecisionLog",
        "service caseroute.v1.RoutingService",
        "service caseroute.v1.RulesetAdmin",
        "service grpc.health.v1.Health",
        "service grpc.reflection.v1.ServerReflection",
        "service grpc.reflection.v1alpha.ServerReflection",
        "caseroute.v1.RoutingService in caseroute/v1/routing.proto RoutingService DecisionLog",
        "caseroute.v1.RoutingService in google/protobuf/timestamp.proto",
        f"grpc.reflection.v1.ServerReflection in {V1_FILE_NAME} ServerReflection",
        "missing 5",
    ]


def test_the_v1_file_is_v1alpha_renamed_field_for_field() -> None:
    """v1's messages have v1alpha's names, numbers and types, with v1's package in references."""
    alpha = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    v1 = v1_file_descriptor()

    def shape(file: descriptor_pb2.FileDescriptorProto, package: str) -> list[tuple[object, ...]]:
        return [
            (m.name, f.name, f.number, f.type, f.label, f.type_name.replace(package, "PKG"))
            for m in file.message_type
            for f in m.field
        ]

    assert (v1.name, v1.package, v1.options.java_package) == (
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
        "io.grpc.reflection.v1",
    )
    assert shape(v1, ".grpc.reflection.v1.") == shape(alpha, ".grpc.reflection.v1alpha.")
    method = v1.service[0].method[0]
    assert (method.input_type, method.output_type) == (
        ".grpc.reflection.v1.ServerReflectionRequest",
        ".grpc.reflection.v1.ServerReflectionResponse",
    )


def test_the_reflection_pool_resolves_v1_and_the_default_pool_but_not_unknowns() -> None:
    """The pool finds v1's file by name and symbol, caseroute's files, and KeyError otherwise."""
    pool = reflection_pool()
    assert pool.FindFileByName(V1_FILE_NAME).package == "grpc.reflection.v1"
    assert pool.FindFileContainingSymbol("grpc.reflection.v1alpha.ServerReflection").name == (
        "grpc_reflection/v1alpha/reflection.proto"
    )
    assert pool.FindFileContainingSymbol("caseroute.v1.Case").name == "caseroute/v1/routing.proto"
    with pytest.raises(KeyError):
        pool.FindFileContainingSymbol("caseroute.v1.NoSuchThing")
