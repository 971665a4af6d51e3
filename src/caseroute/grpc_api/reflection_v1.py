"""Server reflection under ``grpc.reflection.v1`` beside grpcio-reflection's ``v1alpha``.

grpcio-reflection 1.85 ships only ``grpc.reflection.v1alpha``. ``grpc.reflection.v1`` is the
same protocol under a new package name: grpc's ``reflection/v1/reflection.proto`` is v1alpha's
file with the package (and the language options) renamed, every message and field number
unchanged. So v1alpha's message classes and servicer answer v1 requests byte for byte, and
this module adds only what a name change needs: the v1 service name to register the same
handlers under, and the v1 file itself, so that a client that lists the services can also
resolve ``grpc.reflection.v1.ServerReflection`` (grpcurl's ``describe`` resolves every listed
service). grpcurl, grpc-go and Postman ask v1 first and fall back to v1alpha.

The v1 file is served from a pool of its own (:func:`reflection_pool`) that answers every other
lookup from the default pool: registering it in the default pool would collide with a future
grpcio-reflection that ships v1 itself, in the same process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
"""The service name of reflection v1 (grpc/grpc src/proto/grpc/reflection/v1)."""
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
"""The v1 file's name, as grpc's repositories and other languages' servers spell it."""

_ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of ``grpc/reflection/v1/reflection.proto``, built from v1alpha's.

    Returns:
        v1alpha's file with the package, type references and file options of v1's file.
    """
    alpha = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(alpha)
    v1.name = V1_FILE_NAME
    v1.package = _V1_PACKAGE
    old, new = f".{_ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in v1.message_type:
        for message_field in message.field:
            if message_field.type_name.startswith(old):
                message_field.type_name = new + message_field.type_name.removeprefix(old)
    for service in v1.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    # The options of grpc's v1 file (v1alpha's name its own, deprecated, packages).
    v1.options.Clear()
    v1.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    v1.options.java_multiple_files = True
    v1.options.java_package = "io.grpc.reflection.v1"
    v1.options.java_outer_classname = "ServerReflectionProto"
    return v1


class _DefaultPoolWithV1:
    """A descriptor database: the default pool's files, plus reflection v1's file.

    The method names are the descriptor-database protocol ``DescriptorPool`` calls on a miss.
    """

    def __init__(self) -> None:
        self._v1 = v1_file_descriptor()
        self._default = descriptor_pool.Default()

    def FindFileByName(self, name: str) -> descriptor_pb2.FileDescriptorProto:  # noqa: N802
        """The file called ``name`` (KeyError when no pool has it)."""
        if name == V1_FILE_NAME:
            return self._v1
        found = self._default.FindFileByName(name)
        return descriptor_pb2.FileDescriptorProto.FromString(found.serialized_pb)

    def FindFileContainingSymbol(self, symbol: str) -> descriptor_pb2.FileDescriptorProto:  # noqa: N802
        """The file that declares ``symbol`` (KeyError when no pool has it)."""
        if symbol == _V1_PACKAGE or symbol.startswith(f"{_V1_PACKAGE}."):
            return self._v1
        found = self._default.FindFileContainingSymbol(symbol)
        return descriptor_pb2.FileDescriptorProto.FromString(found.serialized_pb)


def reflection_pool() -> descriptor_pool.DescriptorPool:
    """A pool for the reflection servicer: everything the default pool has, plus v1's file.

    Returns:
        A new pool that loads files on first lookup, from the default pool or the v1 file.
    """
    return descriptor_pool.DescriptorPool(descriptor_db=_DefaultPoolWithV1())
