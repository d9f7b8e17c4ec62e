"""Where ingest's parsed transactions come from: the Geyser stream, parsed here or in a child process.

Ingest consumes *batches of items* in stream order:

- ``("tx", slot, parsed, received_at)``: a transaction update; ``parsed`` is
  ``(tx_index, swaps, events, transfers)``, or None when it holds nothing the runner keeps;
  ``received_at`` is the wall-clock time the update arrived (for the latency metric);
- ``("meta", slot, block_time)``: a BlockMeta update (the end of its slot).

Two sources give the same items:

- :class:`InlineSource` reads and parses in this process (a reader thread receives, the
  event loop parses). Used with ``parse_process=False`` and on one-core machines.
- :class:`ProcessSource` (the default with two or more cores) runs the subscription *and*
  the parser in one long-lived child process and receives pickled batches through a pipe.
  Parsing is two thirds of a transaction's cost in the runner; in the child it runs on the
  other core. The child reads the stream with grpclib on its event loop
  (``pocketwatcher.geyser.h2read``: ~38 µs per update against ~52 through grpcio's
  threaded reader), and keeps stream reading out of the runner's process, where a reader
  thread holds the GIL whenever the event loop returns from a socket call to Redis or
  PostgreSQL. A single child keeps stream order without any reordering. The child is
  started with ``spawn`` (the same on every platform; no fork of a process with threads).

The child answers commands on its pipe: ``("subscribe", request_bytes)`` starts a stream
(it sends ``("batch", items)`` messages, then ``("end", error_or_None, retryable)``),
``("close",)`` ends the current stream, ``("quit",)`` exits. A child that dies (killed,
out of memory) ends the stream with a retryable error, and the next subscription starts a
new one: ingest's reconnect loop resumes from the last slot handed on, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import pickle
import time

from pocketwatcher.geyser.client import GeyserClient, GeyserError
from pocketwatcher.parse import parse_update_full

log = logging.getLogger("pocketwatcher.runner.source")

_MAX_BATCH = 512  # updates per pickled batch (a few hundred KB at most)


def to_items(received) -> list[tuple]:
    """Parse ``(SubscribeUpdate, received_at)`` pairs into ingest items (both sources use this)."""
    out = []
    append = out.append
    for upd, received_at in received:
        which = upd.WhichOneof("update_oneof")
        if which == "transaction":
            res = parse_update_full(upd, transfers=True)
            parsed = None
            if res.view is not None and (res.swaps or res.events or res.transfers):
                parsed = (res.view.index, res.swaps, res.events, res.transfers)
            append(("tx", upd.transaction.slot, parsed, received_at))
        elif which == "block_meta":
            bm = upd.block_meta
            append(("meta", bm.slot, bm.block_time.timestamp))  # 0 when the block has no time
    return out


class InlineSource:
    """One subscription read and parsed in this process; async-iterates batches of items."""

    def __init__(self, client: GeyserClient, request) -> None:
        self.sub = client.subscribe(request)

    def __aiter__(self) -> InlineSource:
        return self

    async def __anext__(self) -> list[tuple]:
        updates = await self.sub.take(_MAX_BATCH)  # all that waits: one wake-up per batch
        now = time.time()
        return to_items([(u, now) for u in updates])

    def buffered(self) -> int:
        return self.sub.buffered()

    async def close(self) -> None:
        await self.sub.close()


class ParseProcess:
    """The long-lived child that subscribes and parses; owned by one ``Ingest``."""

    def __init__(self, endpoint: str, x_token: str | None) -> None:
        self.endpoint, self.x_token = endpoint, x_token
        self.proc: multiprocessing.Process | None = None
        self.conn = None
        self.broken = False  # its pipe failed: replace it before the next subscription

    def ensure_started(self) -> None:
        if self.proc is not None and self.proc.is_alive() and not self.broken:
            return
        self.stop()
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=child_main, args=(child, self.endpoint, self.x_token),
                                name="pocketwatcher-parse", daemon=True)
        self.proc.start()
        child.close()
        self.conn, self.broken = parent, False
        log.info("ingest: parsing in child process %d", self.proc.pid)

    def subscribe(self, request) -> ProcessSource:
        self.ensure_started()
        try:
            return ProcessSource(self, request)
        except OSError:  # it died since (its pipe is closed): one more, new child
            self.broken = True
            self.ensure_started()
            return ProcessSource(self, request)

    def stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(("quit",))
            except (OSError, ValueError):
                pass
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(timeout=5)
            self.proc = None


class ProcessSource:
    """One subscription run by the :class:`ParseProcess`; async-iterates batches of items.

    The pipe is read by the event loop (``add_reader``), not by a thread. When
    ``max_buffered`` batches wait unread, reading pauses: the child then blocks on its
    write, stops reading the gRPC stream, and gRPC flow control slows the server — memory
    stays bounded and nothing is dropped.
    """

    def __init__(self, owner: ParseProcess, request, max_buffered: int = 64) -> None:
        self.owner, self.conn = owner, owner.conn
        self.batches: collections.deque = collections.deque()
        self.max_buffered = max_buffered
        self.waiters: set[asyncio.Future] = set()  # the reader's and close()'s: both are woken
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reading = False
        self.done: tuple | None = None  # ("end", error, retryable) once the stream ended
        self.closed = False
        self.conn.send(("subscribe", request.SerializeToString()))

    def __aiter__(self) -> ProcessSource:
        return self

    def _start_reading(self) -> None:
        if not self.reading and self.done is None:
            self.loop.add_reader(self.conn.fileno(), self._on_readable)
            self.reading = True

    def _stop_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.conn.fileno())
            self.reading = False

    def _on_readable(self) -> None:
        try:
            msg = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as e:
            self.owner.broken = True
            msg = ("end", f"the parse process died ({type(e).__name__}); restarting it", True)
        if msg[0] == "batch":
            self.batches.append(msg[1])
            if len(self.batches) >= self.max_buffered:
                self._stop_reading()  # back-pressure: the child blocks, gRPC slows the server
        else:
            self.done = msg
            self._stop_reading()
        self._wake()

    def _wake(self) -> None:
        for w in self.waiters:
            if not w.done():
                w.set_result(None)
        self.waiters.clear()

    async def _wait(self, timeout: float | None = None) -> None:
        waiter = self.loop.create_future()
        self.waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout) if timeout is not None else await waiter
        finally:
            self.waiters.discard(waiter)

    async def __anext__(self) -> list[tuple]:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._start_reading()
        while True:
            if self.closed:  # close() ran (or runs) while we waited: the stream is over for us
                raise StopAsyncIteration
            if self.batches:
                break
            if self.done is not None:
                _end, error, retryable = self.done
                if error is not None:
                    raise GeyserError(error, retryable=retryable)
                raise StopAsyncIteration
            await self._wait()
        batch = self.batches.popleft()
        if not self.reading and len(self.batches) < self.max_buffered // 4:
            self._start_reading()
        return batch

    def buffered(self) -> int:
        """Batches received and not yet taken (0: the consumer has caught up)."""
        return len(self.batches)

    async def close(self) -> None:
        """End the stream: the child stops it and says so; read until then (or give up
        on a child that does not answer: it is then killed and started anew next time)."""
        if self.closed:
            return
        self.closed = True
        if self.done is None:
            try:
                self.conn.send(("close",))
            except (OSError, ValueError):
                self.owner.broken = True
                self.done = ("end", None, False)
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            self._start_reading()
            deadline = time.monotonic() + 5.0
            while self.done is None and time.monotonic() < deadline:
                self.batches.clear()
                try:
                    await self._wait(max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
            if self.done is None:
                log.warning("ingest: the parse process did not end its stream; restarting it")
                self._stop_reading()
                self.owner.stop()
        self.batches.clear()
        self._wake()  # a reader still waiting in __anext__ ends now


# -- the child process ---------------------------------------------------------------------

def child_main(conn, endpoint: str, x_token: str | None) -> None:
    """Entry point of the parse process (spawned): serve subscriptions until told to quit.

    The stream is read with grpclib on this process's event loop (``geyser.h2read``: no
    thread hand-off per update, unlike grpcio's reader), parsed and sent here. A command
    thread is the pipe's only reader; a close or quit it reads cancels the current stream
    (if the loop is blocked writing a full pipe, the runner drains it, so it gets there).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle: it says quit
    import gc

    # as in the runner: parsing allocates thousands of short-lived objects per slot; the
    # default gen-0 threshold (700) runs a collection every few transactions
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    asyncio.run(_child(conn, endpoint, x_token))


async def _child(conn, endpoint: str, x_token: str | None) -> None:
    import threading

    from pocketwatcher.geyser.h2read import h2_updates
    from pocketwatcher.proto import geyser_pb2 as pb

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue = asyncio.Queue()
    state: dict = {"task": None, "closing": False}

    def on_command(cmd: tuple) -> None:  # on the loop, in the order read
        if cmd[0] == "subscribe":
            state["closing"] = False
        elif cmd[0] in ("close", "quit"):
            state["closing"] = True
            if state["task"] is not None:
                state["task"].cancel()
        commands.put_nowait(cmd)

    def read_commands() -> None:
        while True:
            try:
                cmd = conn.recv()
            except (EOFError, OSError):  # the runner is gone
                cmd = ("quit",)
            try:
                loop.call_soon_threadsafe(on_command, cmd)
            except RuntimeError:  # the loop has ended
                return
            if cmd[0] == "quit":
                return

    threading.Thread(target=read_commands, name="parse-commands", daemon=True).start()
    send = conn.send_bytes

    async def stream(request) -> None:
        batch: list = []
        async for upd in h2_updates(endpoint, x_token, request):
            batch.append((upd, time.time()))
            # One message per slot: ingest hands a slot on at its BlockMeta, never
            # before, so holding its transactions until then costs no latency and
            # saves a pickle, a write and a wake-up per transaction on both sides.
            if len(batch) >= _MAX_BATCH or upd.HasField("block_meta"):
                send(pickle.dumps(("batch", to_items(batch)), 5))
                batch = []
        if batch:
            send(pickle.dumps(("batch", to_items(batch)), 5))

    while True:
        cmd = await commands.get()
        if cmd[0] == "quit":
            return
        if cmd[0] != "subscribe":
            continue  # a close for a stream that already ended
        task = state["task"] = asyncio.create_task(stream(pb.SubscribeRequest.FromString(cmd[1])))
        if state["closing"]:
            task.cancel()
        end: tuple = ("end", None, False)
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # we were cancelled ourselves, not the stream
                raise
        except GeyserError as e:
            end = ("end", str(e), e.retryable)
        except (BrokenPipeError, EOFError):  # the runner is gone
            return
        except Exception as e:  # noqa: BLE001 - reported to the runner, which reconnects
            end = ("end", f"the parse process failed: {type(e).__name__}: {e}", True)
        finally:
            state["task"] = None
        try:
            send(pickle.dumps(end, 5))
        except OSError:
            return
