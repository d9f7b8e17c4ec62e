"""Regenerate the committed Yellowstone gRPC stubs from the .proto files beside this module.

Usage::

    python -m pocketwatcher.proto.generate          # rewrite the stubs in place
    python -m pocketwatcher.proto.generate --check  # exit 1 if the committed stubs are stale

grpc_tools.protoc emits ``import solana_storage_pb2`` as a top-level module; the stubs are
rewritten to package-relative imports so they work as ``pocketwatcher.proto.geyser_pb2``
without touching ``sys.path``. Output is byte-for-byte deterministic for a given
grpcio-tools version, so ``--check`` can guard against hand edits and forgotten regenerations.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTOS = ("solana-storage.proto", "geyser.proto")
# solana_storage_pb2_grpc.py is left out: the storage schema has no service, so it is empty.
OUTPUTS = (
    "geyser_pb2.py",
    "geyser_pb2.pyi",
    "geyser_pb2_grpc.py",
    "solana_storage_pb2.py",
    "solana_storage_pb2.pyi",
)

_LOCAL = "solana_storage_pb2|geyser_pb2"
_IMPORT_AS = re.compile(rf"^import ({_LOCAL}) as ", re.M)
_FROM_IMPORT = re.compile(rf"^from ({_LOCAL}) import ", re.M)


def _relativize(text: str) -> str:
    text = _IMPORT_AS.sub(r"from . import \1 as ", text)
    return _FROM_IMPORT.sub(r"from .\1 import ", text)


def _protoc(out_dir: Path) -> None:
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed (exit {rc}) on {', '.join(PROTOS)} in {PROTO_DIR}")


def generate(out_dir: Path) -> dict[str, bytes]:
    """Run protoc into a scratch dir and return {file name: final bytes} for OUTPUTS."""
    with tempfile.TemporaryDirectory(prefix="pw-protoc-") as tmp:
        scratch = Path(tmp)
        _protoc(scratch)
        files = {}
        for name in OUTPUTS:
            text = (scratch / name).read_text(encoding="utf-8")
            files[name] = _relativize(text).encode("utf-8")
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return files


def stale_files(target: Path = PROTO_DIR) -> list[str]:
    """Names of stubs in ``target`` that differ from (or are missing against) a fresh generation."""
    with tempfile.TemporaryDirectory(prefix="pw-stubs-") as tmp:
        fresh = generate(Path(tmp))
    stale = []
    for name, data in fresh.items():
        path = target / name
        if not path.is_file() or path.read_bytes() != data:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pocketwatcher.proto.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 listing stale stubs")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale generated stubs in {PROTO_DIR}: {', '.join(stale)}", file=sys.stderr)
            print("fix: python -m pocketwatcher.proto.generate", file=sys.stderr)
            return 1
        print("generated stubs are up to date")
        return 0
    generate(PROTO_DIR)
    print("wrote " + ", ".join(OUTPUTS) + f" to {PROTO_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
