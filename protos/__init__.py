"""Generated gRPC code for the control plane (`make protos` regenerates it; do not edit).

`control.proto` is the source; `control_pb2*.py` and their `.pyi` stubs are generated from the
repository root so they import as `protos.control_pb2`. tests/clients/test_protos.py fails when
they drift from the .proto or from the installed generator.
"""
