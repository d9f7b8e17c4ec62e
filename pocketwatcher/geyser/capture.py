"""The ``.pwcap`` capture format: a stream of Yellowstone ``SubscribeUpdate`` messages.

Layout (all integers little-endian)::

    magic        6 bytes   b"PWCAP\\x00"
    version      u8        1
    compression  u8        1 = zstd (the only one written; 0 = none is readable)
    meta_len     u32       length of the JSON metadata that follows
    meta         meta_len  UTF-8 JSON object (source, created_at, seed, ...)
    body         ...       the record stream, compressed as one zstd frame

    record := varint(len) payload          payload = SubscribeUpdate bytes

A record's pace is its own ``created_at`` (server send time; the simulator sets it
from the slot clock, ``capture`` from the receive time when the server left it empty),
so a replay at speed 1 reproduces the recorded gaps. Reading is streaming: the file is
never loaded whole, and a truncated tail (a capture killed mid-write) ends the stream
cleanly after the last complete record, with ``CaptureReader.truncated`` set.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import zstandard

from .wire import varint as _varint  # one protobuf varint encoder for the package

MAGIC = b"PWCAP\x00"
VERSION = 1
COMP_NONE, COMP_ZSTD = 0, 1
_HEADER = struct.Struct("<6sBBI")
_LEN = tuple(_varint(n) for n in range(1 << 14))  # record lengths below 16 KiB: one lookup


class CaptureError(ValueError):
    """A file that is not a readable capture; the message names the file and the problem."""




class CaptureWriter:
    """Append ``SubscribeUpdate`` messages (or their bytes) to a new capture file."""

    def __init__(self, path: str | Path, meta: dict | None = None, *, level: int = 3) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        meta_b = json.dumps(meta or {}, sort_keys=True).encode()
        self._raw.write(_HEADER.pack(MAGIC, VERSION, COMP_ZSTD, len(meta_b)) + meta_b)
        self._z = zstandard.ZstdCompressor(level=level).stream_writer(self._raw, closefd=False)
        self.count = 0

    def write(self, update) -> None:
        data = update if isinstance(update, bytes | bytearray | memoryview) else update.SerializeToString()
        self._z.write(_varint(len(data)))
        self._z.write(data)
        self.count += 1

    def write_many(self, records: list[bytes]) -> None:
        """Append serialized updates: the same bytes as ``write`` on each, in one compressor call.

        zstd buffers its input up to a block, so how the stream is cut into calls does not
        change the compressed bytes; one call per batch saves the per-record overhead.
        """
        parts: list[bytes] = []
        short = _LEN
        for data in records:
            n = len(data)
            parts.append(short[n] if n < 16384 else _varint(n))
            parts.append(data)
        self._z.write(b"".join(parts))
        self.count += len(records)

    def flush(self) -> None:
        """Make everything written so far readable (ends a zstd block, not the frame)."""
        self._z.flush(zstandard.FLUSH_BLOCK)
        self._raw.flush()

    def close(self) -> None:
        if self._raw.closed:
            return
        self._z.flush(zstandard.FLUSH_FRAME)
        self._z.close()
        self._raw.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CaptureReader:
    """Iterate the raw ``SubscribeUpdate`` bytes of a capture, streaming."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncated = False
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
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            if self._comp == COMP_ZSTD:
                stream = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
            else:
                stream = fh
            buf = io.BufferedReader(stream, buffer_size=1 << 16) if self._comp == COMP_ZSTD else stream
            try:
                yield from self._records(buf)
            except zstandard.ZstdError:
                self.truncated = True  # a capture cut mid-frame: keep what was complete

    def _records(self, buf) -> Iterator[bytes]:
        read = buf.read
        while True:
            shift = 0
            n = 0
            while True:
                b = read(1)
                if not b:
                    if shift:
                        self.truncated = True
                    return
                n |= (b[0] & 0x7F) << shift
                if b[0] < 0x80:
                    break
                shift += 7
                if shift > 63:
                    raise CaptureError(f"{self.path}: corrupt record length")
            data = read(n)
            if len(data) < n:
                self.truncated = True
                return
            yield data

    def updates(self) -> Iterator:
        """The records as parsed ``SubscribeUpdate`` messages."""
        from ..proto import geyser_pb2

        for data in self:
            msg = geyser_pb2.SubscribeUpdate()
            msg.ParseFromString(data)
            yield msg
