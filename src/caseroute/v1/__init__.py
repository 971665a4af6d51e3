"""caseroute.v1: the published API (protobuf and gRPC code, .ci/gen_protos.py)."""
