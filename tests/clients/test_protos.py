"""The committed generated code is what the .proto and the pinned generator make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ["control_pb2.py", "control_pb2.pyi", "control_pb2_grpc.py", "control_pb2_grpc.pyi"]


def test_generated_code_when_regenerated_then_identical(tmp_path: Path):
    (tmp_path / "protos").mkdir()
    shutil.copy(ROOT / "protos" / "control.proto", tmp_path / "protos" / "control.proto")
    bin_dir = str(Path(sys.executable).parent)  # mypy-protobuf's protoc plugins
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.",
         "--grpc_python_out=.", "--mypy_out=.", "--mypy_grpc_out=.", "protos/control.proto"],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60,
    )
    for name in GENERATED:
        fresh = (tmp_path / "protos" / name).read_text()
        committed = (ROOT / "protos" / name).read_text()
        assert fresh == committed, f"protos/{name} is stale: run `make protos`"


def test_clients_when_imported_then_daemon_not_imported():
    code = ("import sys, clients, clients.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('supervisor', 'actors', 'exchanges')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"
