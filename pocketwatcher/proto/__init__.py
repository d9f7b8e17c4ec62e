"""Yellowstone gRPC (Geyser) stubs generated from the project's own .proto files.

The ``*_pb2*`` modules are generated; edit ``geyser.proto`` / ``solana-storage.proto`` and
run ``python -m pocketwatcher.proto.generate`` instead of editing them.
"""

from . import geyser_pb2, geyser_pb2_grpc, solana_storage_pb2

__all__ = ["geyser_pb2", "geyser_pb2_grpc", "solana_storage_pb2"]
