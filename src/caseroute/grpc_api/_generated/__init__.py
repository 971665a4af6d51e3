"""Generated protobuf and gRPC modules (see .ci/gen_protos.py)."""
