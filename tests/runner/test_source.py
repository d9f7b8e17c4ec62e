"""Ingest's sources: the stream parsed in this process or in the parse child process.

Both must give ingest the same items in the same order; the child process must survive
its own death (the next subscription starts a new one) and a close mid-stream.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from pocketwatcher.geyser.client import GeyserClient, GeyserError, build_request
from pocketwatcher.parse.programs.registry import KNOWN_PROGRAMS
from runner.source import InlineSource, ParseProcess

pytestmark = pytest.mark.integration


def _request(from_slot=None):
    return build_request(sorted(KNOWN_PROGRAMS), from_slot=from_slot)


def _comparable(items):
    """Items without the receipt time (a wall clock) and with swaps as their ids."""
    out = []
    for it in items:
        if it[0] == "tx":
            _k, slot, parsed, _rx = it
            if parsed is not None:
                index, swaps, events, transfers = parsed
                parsed = (index, [s.id for s in swaps], [(e.kind, e.mint) for e in events],
                          [(t.signature, t.ix, t.lamports) for t in transfers])
            out.append(("tx", slot, parsed))
        else:
            out.append(it)
    return out


async def _drain(source, until_meta_slots: int | None = None):
    items, metas = [], 0
    async for batch in source:
        items += batch
        metas += sum(1 for it in batch if it[0] == "meta")
        if until_meta_slots is not None and metas >= until_meta_slots:
            break
    await source.close()
    return items


def test_the_parse_process_gives_the_same_items_as_parsing_here(replay_server):
    """The whole sample capture, at full speed: same items, same order, both ways."""
    from conftest import SAMPLE

    from pocketwatcher.geyser.server import ReplayServer

    srv = ReplayServer(SAMPLE, port=0, end_of_stream="close")
    srv.start()
    endpoint = f"http://127.0.0.1:{srv.port}"
    owner = ParseProcess(endpoint, None)
    try:
        async def both():
            client = GeyserClient(endpoint)
            try:
                here = await _drain(InlineSource(client, _request()))
            finally:
                await client.close()
            there = await _drain(owner.subscribe(_request()))
            return here, there

        here, there = asyncio.run(both())
    finally:
        owner.stop()
        srv.stop()
    assert len(here) > 1000 and sum(1 for it in here if it[0] == "tx" and it[2]) > 500
    assert _comparable(there) == _comparable(here)


def test_a_killed_parse_process_ends_the_stream_with_a_retryable_error_and_is_restarted(replay_server):
    srv = replay_server(speed=5.0)
    owner = ParseProcess(f"http://127.0.0.1:{srv.port}", None)

    async def run():
        source = owner.subscribe(_request())
        first = await source.__anext__()
        assert first
        os.kill(owner.proc.pid, signal.SIGKILL)
        with pytest.raises(GeyserError) as err:
            async for _batch in source:
                pass
        assert err.value.retryable and "parse process died" in str(err.value)
        await source.close()
        dead = owner.proc.pid
        # the next subscription starts a new child and streams again
        again = await _drain(owner.subscribe(_request()), until_meta_slots=2)
        assert owner.proc.pid != dead and any(it[0] == "tx" for it in again)

    try:
        asyncio.run(run())
    finally:
        owner.stop()
    assert owner.proc is None


def test_closing_mid_stream_leaves_the_child_ready_for_the_next_subscription(replay_server):
    """close() while the child is streaming (and may be blocked writing a full pipe):
    the child ends that stream and says so, and the same child serves the next one."""
    srv = replay_server()  # as fast as the client reads: the pipe fills up
    owner = ParseProcess(f"http://127.0.0.1:{srv.port}", None)

    async def run():
        source = owner.subscribe(_request())
        await source.__anext__()
        await asyncio.sleep(0.5)  # let the child fill the pipe and block on it
        pid = owner.proc.pid
        await source.close()
        assert owner.proc is not None and owner.proc.pid == pid  # not killed: it answered
        items = await _drain(owner.subscribe(_request()), until_meta_slots=3)
        assert owner.proc.pid == pid and items[0][0] in ("tx", "meta")

    try:
        asyncio.run(run())
    finally:
        owner.stop()


@pytest.mark.parametrize("where", ["process", "inline"])
def test_close_ends_a_reader_waiting_on_a_quiet_stream_at_once(replay_server, where):
    """Shutdown closes the source from another task while ingest waits in ``__anext__`` on
    a stream with nothing to send (the capture is over, only pings): the waiting reader must
    end promptly, not hang until the runner's shutdown deadline cancels it."""
    from conftest import SAMPLE

    from pocketwatcher.geyser.server import ReplayServer

    srv = ReplayServer(SAMPLE, port=0, ping_interval=60)  # idle after the capture: stays open
    srv.start()
    endpoint = f"http://127.0.0.1:{srv.port}"
    owner = ParseProcess(endpoint, None)

    async def run():
        client = GeyserClient(endpoint)
        source = owner.subscribe(_request()) if where == "process" else InlineSource(client, _request())
        got = 0

        async def read():
            nonlocal got
            async for batch in source:
                got += len(batch)

        reader = asyncio.create_task(read())
        deadline = asyncio.get_running_loop().time() + 30
        while source.buffered() or got == 0:  # the whole capture, then the stream goes quiet
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        assert not reader.done()
        t = asyncio.get_running_loop().time()
        await source.close()
        await asyncio.wait_for(reader, 3)  # it hung until cancelled before the fix
        assert asyncio.get_running_loop().time() - t < 3 and got > 1000
        await client.close()

    try:
        asyncio.run(run())
    finally:
        owner.stop()
        srv.stop()
