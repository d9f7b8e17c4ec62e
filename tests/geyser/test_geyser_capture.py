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
