"""The v1 wire messages as data: protobuf <-> domain conversion and the one JSON dialect.

Imports protobuf and the generated ``caseroute.v1`` messages, never grpc: the server
(``grpc_api``), the client and the CLI share it.
"""
