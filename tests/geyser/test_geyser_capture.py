"""``CaptureWriter`` with ``background=True``: the same bytes as in the foreground, errors reach the caller."""

from __future__ import annotations

import pytest
from geyser_helpers import standard_updates

from pocketwatcher.geyser.capture import CaptureReader, CaptureWriter


def _write(path, background: bool) -> None:
    """Every way in: messages, bytes and buffers one at a time, batches, a flush between."""
    ups = standard_updates()
    raw = [u.SerializeToString() for u in ups]
    with CaptureWriter(path, {"source": "test"}, level=1, background=background) as w:
        for u in ups[:3]:
            w.write(u)
        w.write(bytearray(raw[3]))
        w.write(memoryview(raw[4]))
        w.write_many(raw[5:9])
        w.flush()
        w.write_many([])
        for k in range(9, len(raw), 2):
            w.write_many(raw[k:k + 2])
        w.write_many(raw * 300)  # beyond a zstd block
        assert w.count == 301 * len(raw)


def test_background_writes_the_same_bytes(tmp_path):
    _write(tmp_path / "fg.pwcap", background=False)
    _write(tmp_path / "bg.pwcap", background=True)
    assert (tmp_path / "bg.pwcap").read_bytes() == (tmp_path / "fg.pwcap").read_bytes()
    raw = [u.SerializeToString() for u in standard_updates()]
    assert list(CaptureReader(tmp_path / "bg.pwcap")) == raw * 301


def test_background_flush_makes_the_records_readable(tmp_path):
    path = tmp_path / "open.pwcap"
    raw = [u.SerializeToString() for u in standard_updates()]
    with CaptureWriter(path, background=True) as w:
        w.write_many(raw)
        w.flush()
        assert list(CaptureReader(path)) == raw  # before the frame ends


def test_an_error_on_the_writer_thread_is_raised_in_the_caller(tmp_path):
    w = CaptureWriter(tmp_path / "bad.pwcap", background=True)
    w.write_many([b"fine", "not bytes"])  # queued: fails on the thread, not here
    with pytest.raises(TypeError):
        w.flush()
    with pytest.raises(TypeError):
        w.write(b"more")
    with pytest.raises(TypeError):
        w.close()
    assert not w._thread.is_alive()
    w.close()  # closed already: nothing more to report


def test_the_callers_own_exception_wins_over_the_writer_threads(tmp_path):
    with pytest.raises(KeyError), CaptureWriter(tmp_path / "bad.pwcap", background=True) as w:
        w.write_many(["not bytes"])
        raise KeyError("the caller's")
    assert not w._thread.is_alive()


def _flushed_every(path, raw, every: int) -> list[int]:
    """Write ``raw`` flushing every ``every`` records; the file's size at each flush."""
    sizes = []
    with CaptureWriter(path, level=1) as w:
        for k in range(0, len(raw), every):
            w.write_many(raw[k:k + every])
            w.flush()
            sizes.append(path.stat().st_size)
    return sizes


def test_a_capture_cut_anywhere_reads_every_record_before_the_cut(tmp_path):
    """A capture killed mid-write, or read while it is being written: every record flushed
    before the cut is read back (none lost in a buffer), then the stream ends with
    ``truncated`` set; a cut mid-block gives a prefix, never a wrong record."""
    raw = [u.SerializeToString() for u in standard_updates()] * 400  # ~0.5 MB of records
    full = tmp_path / "full.pwcap"
    sizes = _flushed_every(full, raw, 250)
    data = full.read_bytes()
    cut = tmp_path / "cut.pwcap"
    for k, size in enumerate(sizes[:-1], 1):
        cut.write_bytes(data[:size])
        r = CaptureReader(cut)
        assert list(r) == raw[:250 * k] and r.truncated, k
        cut.write_bytes(data[:(size + sizes[k]) // 2])  # into the next block
        r = CaptureReader(cut)
        got = list(r)
        assert got == raw[:len(got)] and len(got) >= 250 * k and r.truncated, k
    r = CaptureReader(full)
    assert list(r) == raw and not r.truncated


def test_an_unclosed_writers_flushed_records_all_read_back(tmp_path):
    path = tmp_path / "open.pwcap"
    raw = [u.SerializeToString() for u in standard_updates()] * 200
    w = CaptureWriter(path, level=1)
    w.write_many(raw)
    w.flush()  # the frame never ends: as when the recorder is killed
    r = CaptureReader(path)
    assert list(r) == raw and r.truncated
    w.close()
    r = CaptureReader(path)
    assert list(r) == raw and not r.truncated


def test_a_broken_block_ends_the_stream_and_says_so(tmp_path):
    """A garbled block header ends the stream at once with ``damaged`` set. The records
    decoded from the same 32 KiB read are lost with it: zstd gives no partial output."""
    raw = [u.SerializeToString() for u in standard_updates()] * 100
    path = tmp_path / "c.pwcap"
    sizes = _flushed_every(path, raw, 100)
    data = bytearray(path.read_bytes())
    data[sizes[0] + 3:sizes[0] + 40] = b"\xff" * 37  # garble the second block
    path.write_bytes(bytes(data))
    r = CaptureReader(path)
    got = list(r)
    assert got == raw[:len(got)] and len(got) < len(raw) and r.truncated and r.damaged


def test_any_flipped_bit_is_noticed_by_the_end(tmp_path):
    """The frame's checksum: whatever bit is flipped, reading to the end says ``damaged``
    (a bit inside compressed data can decode to wrong records first)."""
    import random

    raw = [u.SerializeToString() for u in standard_updates()] * 300
    path, bad = tmp_path / "whole.pwcap", tmp_path / "flipped.pwcap"
    with CaptureWriter(path, level=3) as w:
        w.write_many(raw)
    data = path.read_bytes()
    head = len(data) - len(data.split(b"\x28\xb5\x2f\xfd", 1)[1]) + 4  # after the zstd magic
    rng = random.Random(7)
    for _ in range(25):
        flipped = bytearray(data)
        i = rng.randrange(head, len(data))
        flipped[i] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(flipped))
        r = CaptureReader(bad)
        list(r)
        assert r.damaged, i
    r = CaptureReader(path)
    assert list(r) == raw and not r.damaged and not r.truncated


def test_a_capture_of_no_records_is_empty_not_truncated(tmp_path):
    path = tmp_path / "empty.pwcap"
    CaptureWriter(path).close()
    r = CaptureReader(path)
    assert list(r) == [] and not r.truncated
