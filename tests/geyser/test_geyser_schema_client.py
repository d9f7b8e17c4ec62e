"""A client built only from the .proto files works against the replay server unchanged.

Stubs are generated with grpc_tools.protoc into a temp dir and used from a separate
Python process that never imports pocketwatcher: a plain channel, the generated
GeyserStub, x-token metadata, a filter, a ping — what any Yellowstone client does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from geyser_helpers import PUMP, PUMPSWAP, b58, standard_capture

import pocketwatcher.proto
from pocketwatcher.geyser.server import ReplayServer


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


grpc_tools = pytest.importorskip("grpc_tools", reason="grpcio-tools not installed (pip install -e .[test])")

CLIENT = r'''
import json, sys
import grpc
sys.path.insert(0, sys.argv[1])
import geyser_pb2, geyser_pb2_grpc

target, token, include = sys.argv[2], sys.argv[3], sys.argv[4].split(",")
channel = grpc.insecure_channel(target)
stub = geyser_pb2_grpc.GeyserStub(channel)
md = [("x-token", token)]
req = geyser_pb2.SubscribeRequest(commitment=geyser_pb2.PROCESSED)
req.transactions["swaps"].account_include.extend(include)
req.transactions["swaps"].vote = False
req.transactions["swaps"].failed = False
req.blocks_meta["blocks"].CopyFrom(geyser_pb2.SubscribeRequestFilterBlocksMeta())
ping = geyser_pb2.SubscribeRequest(ping=geyser_pb2.SubscribeRequestPing(id=7))
out = {"updates": []}
call = stub.Subscribe(iter([req, ping]), metadata=md, timeout=20)
for u in call:
    kind = u.WhichOneof("update_oneof")
    item = {"kind": kind, "filters": list(u.filters)}
    if kind == "transaction":
        item["sig0"] = u.transaction.transaction.signature[0]
        item["slot"] = u.transaction.slot
    elif kind == "block_meta":
        item["slot"] = u.block_meta.slot
    elif kind == "pong":
        item["id"] = u.pong.id
    out["updates"].append(item)
    kinds = [x["kind"] for x in out["updates"]]
    if "pong" in kinds and kinds.count("transaction") + kinds.count("block_meta") >= 5:
        call.cancel()  # a live-like stream never ends by itself
        break
out["version"] = json.loads(stub.GetVersion(geyser_pb2.GetVersionRequest(), metadata=md).version)
out["slot"] = stub.GetSlot(geyser_pb2.GetSlotRequest(), metadata=md).slot
out["pong"] = stub.Ping(geyser_pb2.PingRequest(count=5), metadata=md).count
out["pocketwatcher_imported"] = any(m.startswith("pocketwatcher") for m in sys.modules)
print(json.dumps(out))
'''


def generate_stubs(out: Path) -> None:
    from grpc_tools import protoc

    proto_dir = Path(pocketwatcher.proto.__file__).parent
    well_known = resources.files("grpc_tools") / "_proto"
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}",
                      f"--grpc_python_out={out}", "geyser.proto", "solana-storage.proto"])
    assert rc == 0


def test_schema_only_client(tmp_path, capture):
    generate_stubs(tmp_path)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    with ReplayServer(capture, x_token="tok", ping_interval=60) as srv:
        proc = subprocess.run(
            [sys.executable, "-I", str(script), str(tmp_path), f"127.0.0.1:{srv.port}", "tok",
             f"{b58(PUMP)},{b58(PUMPSWAP)}"],
            capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert not out["pocketwatcher_imported"]
    ups = out["updates"]
    assert ups[0]["kind"] == "ping"
    assert [u["id"] for u in ups if u["kind"] == "pong"] == [7]
    txs = [u for u in ups if u["kind"] == "transaction"]
    assert [(u["sig0"], u["slot"], u["filters"]) for u in txs] == [(1, 100, ["swaps"]), (4, 101, ["swaps"])]
    metas = [(u["slot"], u["filters"]) for u in ups if u["kind"] == "block_meta"]
    assert metas == [(100, ["blocks"]), (101, ["blocks"]), (102, ["blocks"])]
    assert out["version"]["version"]["package"] == "pocketwatcher-replay"
    assert (out["slot"], out["pong"]) == (102, 5)  # GetSlot: the newest block_meta
