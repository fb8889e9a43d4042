"""Regenerate everything under gen/ from proto/: messages, gRPC stubs, .pyi stubs
and the descriptor set Envoy loads.

    python scripts/generate_protos.py [--out DIR]

The freshness test runs this into a temporary folder and compares it with gen/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
THIRD_PARTY = ROOT / "third_party" / "googleapis"
DESCRIPTOR_NAME = "xmp_posts_v1.binpb"
# In the descriptor set only: Envoy needs these types to render rich error
# details as JSON; their Python code comes from googleapis-common-protos.
DESCRIPTOR_EXTRAS = ["google/rpc/error_details.proto"]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{THIRD_PARTY}"]
    code = [
        *protoc,
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *proto_files(),
    ]
    descriptors = [
        *protoc,
        f"--descriptor_set_out={out / DESCRIPTOR_NAME}",
        "--include_imports",
        "--include_source_info",
        *proto_files(),
        *DESCRIPTOR_EXTRAS,
    ]
    subprocess.run(code, check=True, cwd=ROOT)
    subprocess.run(descriptors, check=True, cwd=ROOT)
    # Regular packages (not namespace packages) so mypy, wheels and editable
    # installs all see the same tree.
    for package in sorted({p.parent for p in out.rglob("*_pb2.py")}):
        while package != out:
            (package / "__init__.py").touch()
            package = package.parent
    (out / "xmp" / "py.typed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "gen")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
