"""Replay server throughput: transaction updates per second delivered to one client.

    python bench/replay.py [--updates 120000] [--rounds 3] [--capture PATH]

The server runs in its own process (as ``pocketwatcher replay`` does), at speed max,
and one client subscribes with a transactions filter that matches everything, once
per round. The client only counts raw messages (no parsing, see ``count_updates``), so
the figure is the server's delivery rate. Both processes share this machine's cores,
so other load shows up in the figure: best (least disturbed) and median are reported,
with the CPU each side used and the load average. Prints one JSON line.

Target (issue 3): at least 20,000 transaction updates/s to one client.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import grpc.experimental

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pocketwatcher.geyser.capture import CaptureWriter  # noqa: E402
from pocketwatcher.proto import geyser_pb2 as pb  # noqa: E402


def synthetic_capture(path: Path, n: int, seed: int = 7) -> None:
    """``n`` transaction updates about the size of a pump.fun trade (~1 KB), 400 per slot."""
    import random

    rng = random.Random(seed)
    programs = [rng.randbytes(32) for _ in range(8)]
    mints = [rng.randbytes(32) for _ in range(500)]
    template = pb.SubscribeUpdate()
    info = template.transaction.transaction
    msg = info.transaction.message
    msg.header.num_required_signatures = 1
    msg.recent_blockhash = rng.randbytes(32)
    ix = msg.instructions.add()
    ix.program_id_index, ix.accounts, ix.data = 3, bytes(range(10)), rng.randbytes(24)
    meta = info.meta
    meta.fee = 5000
    meta.log_messages.extend(["Program log: Instruction: Buy", "Program data: " + "A" * 200])
    meta.pre_balances.extend(range(10))
    meta.post_balances.extend(range(10))
    t0 = time.time() - n / 1000
    with CaptureWriter(path, {"source": "bench/replay.py", "seed": seed}, level=1) as w:
        for i in range(n):
            u = pb.SubscribeUpdate()
            u.CopyFrom(template)
            tx = u.transaction
            tx.slot = 300_000_000 + i // 400
            sig = rng.randbytes(64)
            tx.transaction.signature = sig
            tx.transaction.index = i % 400
            tx.transaction.transaction.signatures.append(sig)
            tx.transaction.transaction.message.account_keys.extend(
                [rng.randbytes(32), rng.randbytes(32), mints[i % 500], programs[i % 8], *programs[:4]])
            tx.transaction.meta.loaded_readonly_addresses.append(programs[(i + 3) % 8])
            u.created_at.FromNanoseconds(int((t0 + i / 1000) * 1e9))
            w.write(u.SerializeToString())


def _serve(capture: str, port_q, stop_ev) -> None:
    from pocketwatcher.geyser.server import ReplayServer

    srv = ReplayServer(capture, speed=None, end_of_stream="close")
    port_q.put((srv.start(), len(srv.index.records)))
    cpu0 = time.process_time()  # after loading: the serving cost only
    stop_ev.wait()
    port_q.put(time.process_time() - cpu0)
    srv.stop(0)


def count_updates(port: int, request: pb.SubscribeRequest) -> tuple[int, float]:
    """Subscribe and count data messages until the server closes the stream.

    The cheapest client grpcio has: the call is made as unary-stream (one request, then
    half-close; the same bytes on the wire as a Subscribe that never writes again) on a
    channel with the single-threaded unary-stream option, so messages are read in this
    thread without a hand-off, and never parsed. That keeps the client from being what
    is measured.
    """
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.max_receive_message_length", 64 << 20),
        (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)])
    call = channel.unary_stream("/geyser.Geyser/Subscribe",
                                request_serializer=pb.SubscribeRequest.SerializeToString,
                                response_deserializer=None)
    n = 0
    start = None
    for data in call(request):
        if start is None:
            start = time.perf_counter()  # the first message is the server's ping
        if data[:1] == b"\x0a":  # starts with `filters`: a data update (pings carry none)
            n += 1
    elapsed = time.perf_counter() - start
    channel.close()
    return n, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=120_000)
    ap.add_argument("--rounds", type=int, default=3, help="subscriptions in a row; best and median reported")
    ap.add_argument("--capture", type=Path, help="replay this capture instead of a synthetic one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        capture = args.capture
        if capture is None:
            capture = Path(tmp) / "bench.pwcap"
            t = time.perf_counter()
            synthetic_capture(capture, args.updates)
            print(f"generated {args.updates} updates in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        ctx = mp.get_context("spawn")
        port_q, stop_ev = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=_serve, args=(str(capture), port_q, stop_ev))
        proc.start()
        try:
            port, records = port_q.get(timeout=300)
            request = pb.SubscribeRequest()
            request.transactions["all"].SetInParent()
            rounds = []
            cpu0 = time.process_time()
            for _ in range(args.rounds):
                rounds.append(count_updates(port, request))
            client_cpu = (time.process_time() - cpu0) / args.rounds
        finally:
            stop_ev.set()
        server_cpu = port_q.get(timeout=30) / args.rounds
        proc.join(10)
    rates = sorted(n / s for n, s in rounds)
    n, elapsed = max(rounds, key=lambda r: r[0] / r[1])
    print(json.dumps({"bench": "replay", "updates": n, "updates_per_s": round(n / elapsed),
                      "updates_per_s_median": round(statistics.median(rates)), "seconds": round(elapsed, 3),
                      "rounds": args.rounds, "records": records,
                      "server_cpu_s_per_round": round(server_cpu, 2),
                      "client_cpu_s_per_round": round(client_cpu, 2), "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}))


if __name__ == "__main__":
    main()
