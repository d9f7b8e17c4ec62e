"""The ``.pwcap`` capture format: a stream of Yellowstone ``SubscribeUpdate`` messages.

Layout (all integers little-endian)::

    magic        6 bytes   b"PWCAP\\x00"
    version      u8        1
    compression  u8        1 = zstd (the only one written; 0 = none is readable)
    meta_len     u32       length of the JSON metadata that follows
    meta         meta_len  UTF-8 JSON object (source, created_at, seed, ...)
    body         ...       the record stream, compressed as one zstd frame (with its content checksum)

    record := varint(len) payload          payload = SubscribeUpdate bytes

A record's pace is its own ``created_at`` (server send time; the simulator sets it
from the slot clock, ``capture`` from the receive time when the server left it empty),
so a replay at speed 1 reproduces the recorded gaps. Reading is streaming: the file is
never loaded whole. A capture still being written, or killed mid-write, reads up to its
last complete record (every record the writer flushed is there), then ends with
``CaptureReader.truncated`` set. Damage is noticed where zstd notices it: a broken block
at once, any other flipped bit at the latest at the end of the frame, whose checksum the
writer stores (captures written before it have none). The stream then ends with
``truncated`` and ``damaged`` set; records already read may be wrong, so a consumer that
must be sure reads to the end and checks ``damaged`` before trusting them.
"""

from __future__ import annotations

import json
import queue
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import zstandard

from .wire import varint as _varint  # one protobuf varint encoder for the package

MAGIC = b"PWCAP\x00"
VERSION = 1
COMP_NONE, COMP_ZSTD = 0, 1
_HEADER = struct.Struct("<6sBBI")
_CHUNK = 1 << 15  # compressed bytes read at a time
_LEN = tuple(_varint(n) for n in range(1 << 14))  # record lengths below 16 KiB: one lookup


class CaptureError(ValueError):
    """A file that is not a readable capture; the message names the file and the problem."""




class CaptureWriter:
    """Append ``SubscribeUpdate`` messages (or their bytes) to a new capture file.

    ``background=True`` compresses and writes on a thread of its own, fed through a
    bounded queue: python-zstandard and file writes release the GIL, so a producer that
    keeps one core busy (the simulator) gets the compression done on another. The bytes
    are the same as in the foreground (one compressor, one frame, the same order). An
    error on the thread is raised by the next ``write``, ``write_many``, ``flush`` or
    ``close`` in the caller.
    """

    def __init__(self, path: str | Path, meta: dict | None = None, *, level: int = 3,
                 background: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        meta_b = json.dumps(meta or {}, sort_keys=True).encode()
        self._raw.write(_HEADER.pack(MAGIC, VERSION, COMP_ZSTD, len(meta_b)) + meta_b)
        # One output buffer holds a whole batch's compressed bytes: the writer then calls the
        # file's write (taking the GIL back) once per batch, not once per 128 KiB. A thread
        # that wants the GIL back waits up to the 5 ms switch interval while the simulator
        # runs: with the default buffer the background writer's calls took ~6 s of wall time
        # for ~1 s of compression in a 60-minute simulation (and the producer blocked on a
        # full queue); ~3 s with this one. Same bytes.
        self._z = zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(self._raw, closefd=False,
                                                                      write_size=_WRITE_SIZE)
        self.count = 0
        self._q: queue.Queue | None = None
        self._error: BaseException | None = None
        if background:
            self._q = queue.Queue(maxsize=_QUEUED_BATCHES)
            self._thread = threading.Thread(target=self._drain, name=f"capture {self.path.name}", daemon=True)
            self._thread.start()

    def write(self, update) -> None:
        if not isinstance(update, bytes):  # a message, or a buffer that may change after the call
            update = bytes(update) if isinstance(update, bytearray | memoryview) else update.SerializeToString()
        self.write_many([update])

    def write_many(self, records: list[bytes]) -> None:
        """Append serialized updates: the same bytes as ``write`` on each, in one compressor call.

        zstd buffers its input up to a block, so how the stream is cut into calls does not
        change the compressed bytes; one call per batch saves the per-record overhead. In
        the background the list is compressed later: pass one that no longer changes.
        """
        if self._q is None:
            self._compress(records)
        else:
            self._put(records)
        self.count += len(records)

    def flush(self) -> None:
        """Make everything written so far readable (ends a zstd block, not the frame)."""
        if self._q is None:
            self._flush()
        else:
            self._put(_FLUSH)
            self._q.join()
            self._raise()

    def close(self) -> None:
        if self._raw.closed:
            return
        try:
            if self._q is not None:
                self._q.put(_STOP)
                self._thread.join()
                self._raise()
            self._z.flush(zstandard.FLUSH_FRAME)
            self._z.close()
        finally:
            self._raw.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        try:
            self.close()
        except Exception:
            if exc_type is None:  # else the caller's own exception is the one to see
                raise

    def _compress(self, records: list[bytes]) -> None:
        parts: list[bytes] = []
        short = _LEN
        for data in records:
            n = len(data)
            parts.append(short[n] if n < 16384 else _varint(n))
            parts.append(data)
        self._z.write(b"".join(parts))

    def _flush(self) -> None:
        self._z.flush(zstandard.FLUSH_BLOCK)
        self._raw.flush()

    # ---- background --------------------------------------------------------------------------

    def _put(self, item) -> None:
        self._raise()
        self._q.put(item)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        """The writer thread: compress the queued batches in order until ``_STOP``.

        After an error it keeps taking batches (and drops them), so that a producer never
        blocks on a full queue; the error waits in ``_error`` for the caller.
        """
        q = self._q
        while True:
            item = q.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:
                    if item is _FLUSH:
                        self._flush()
                    else:
                        self._compress(item)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                self._error = e
            finally:
                q.task_done()


_WRITE_SIZE = 4 << 20  # compressor output buffer: a batch of 1,024 simulated updates compresses to ~1 MB
_QUEUED_BATCHES = 8  # a producer ahead of the writer thread waits beyond this many batches
_FLUSH, _STOP = object(), object()


class CaptureReader:
    """Iterate the raw ``SubscribeUpdate`` bytes of a capture, streaming."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncated = False
        self.damaged = False
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    raise CaptureError(f"{self.path}: too short to be a capture ({len(head)} bytes)")
                magic, version, comp, meta_len = _HEADER.unpack(head)
                if magic != MAGIC:
                    raise CaptureError(f"{self.path}: not a .pwcap capture (bad magic {magic!r})")
                if version != VERSION:
                    raise CaptureError(f"{self.path}: capture version {version}, this reader knows {VERSION}")
                if comp not in (COMP_NONE, COMP_ZSTD):
                    raise CaptureError(f"{self.path}: unknown compression {comp}")
                meta_b = fh.read(meta_len)
        except OSError as e:
            raise CaptureError(f"{self.path}: {e.strerror or e}") from e
        try:
            self.meta = json.loads(meta_b or b"{}")
        except ValueError as e:
            raise CaptureError(f"{self.path}: metadata is not JSON ({e})") from e
        self._offset = _HEADER.size + meta_len
        self._comp = comp

    def __iter__(self) -> Iterator[bytes]:
        self.truncated = self.damaged = False
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            yield from self._records(self._chunks(fh))

    def _chunks(self, fh) -> Iterator[bytes]:
        """The decompressed body in pieces. A zstd frame that ends early (a capture still
        being written, or killed) gives up everything decodable before the cut: a
        decompression object returns what each input decodes to, where a reader would
        lose what it had decoded into its buffer when the cut raises."""
        read = fh.read
        if self._comp == COMP_NONE:
            while chunk := read(_CHUNK):
                yield chunk
            return
        dctx = zstandard.ZstdDecompressor()
        dobj, fed = dctx.decompressobj(), False
        try:
            while chunk := read(_CHUNK):
                while chunk:
                    fed = True
                    out = dobj.decompress(chunk)
                    if out:
                        yield out
                    if not dobj.eof:
                        break
                    chunk = dobj.unused_data  # the next frame (a capture appended to)
                    dobj, fed = dctx.decompressobj(), False
        except zstandard.ZstdError:
            self.truncated = self.damaged = True  # corrupt, or the checksum does not match
            return
        if fed and not dobj.eof:
            self.truncated = True  # the last frame never ended

    def _records(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        it = iter(chunks)
        buf, pos = b"", 0
        for chunk in it:
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            pos, end = 0, len(buf)
            last = end - 2  # two bytes of length are there to read directly
            while pos < end:
                if pos < last and buf[pos] < 0x80:  # records under 128 bytes
                    n, p = buf[pos], pos + 1
                elif pos < last and buf[pos + 1] < 0x80:  # under 16 KiB: nearly all
                    n, p = (buf[pos] & 0x7F) | (buf[pos + 1] << 7), pos + 2
                else:
                    n = shift = 0
                    p = pos
                    while p < end:
                        b = buf[p]
                        p += 1
                        n |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                        if shift > 63:
                            raise CaptureError(f"{self.path}: corrupt record length")
                    else:
                        break  # the length continues in the next chunk
                if p + n > end:  # the record continues in the next chunks
                    short = p + n - end
                    if short <= len(chunk):
                        break
                    parts, got = [buf[pos:]], 0  # a long record: gather it, then join once
                    for more in it:
                        parts.append(more)
                        got += len(more)
                        if got >= short:
                            break
                    if not got:
                        break  # the data ends inside it
                    buf, pos = b"".join(parts), 0
                    end = len(buf)
                    last = end - 2
                    continue
                pos = p + n
                yield buf[p:pos]
        if pos < len(buf):
            self.truncated = True  # a record cut short

    def updates(self) -> Iterator:
        """The records as parsed ``SubscribeUpdate`` messages."""
        from ..proto import geyser_pb2

        for data in self:
            msg = geyser_pb2.SubscribeUpdate()
            msg.ParseFromString(data)
            yield msg
