"""Address lookup table (ALT) decoding and a small TTL cache of table contents.

Why a cache at all: a v0 message names accounts by (table, index) instead of by key.
An *executed* transaction's meta already carries the resolved ``loadedAddresses``
(Geyser ``loaded_writable_addresses`` / ``loaded_readonly_addresses``, RPC
``meta.loadedAddresses``), and that is always the source to prefer. This resolver is
only for sources that deliver a v0 message without that meta (some shred/deshred
streams, hand-built fixtures): there the table accounts must be read over RPC, and
reading them once per transaction would be far too slow, so their contents are kept.

Why it goes stale, and why that is cheap to handle: tables are append-only. An index
never changes value while the table lives, so a cached prefix stays correct; what
changes is that a table *grows*, so a transaction may name an index past the cached
end. That case is refetched once, immediately, not left to the TTL. The TTL (one hour
by default) bounds the other staleness: a table deactivated and closed after we cached
it. Entries appended in slot S are not usable until a later slot; we cannot check that
without the transaction's slot and do not try (the validator already did).
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import based58
import httpx

log = logging.getLogger(__name__)

ALT_PROGRAM_ID = "AddressLookupTab1e1111111111111111111111111"
LOOKUP_TABLE_META_SIZE = 56
LOOKUP_TABLE_MAX_ADDRESSES = 256
U64_MAX = 2**64 - 1
_STATE_LOOKUP_TABLE = 1
_HEADER = struct.Struct("<IQQB")  # state tag, deactivation_slot, last_extended_slot, start index
# Path segments at least this long are treated as credentials by redact_url
# (Alchemy /v2/<key>, QuickNode /<token>/, Triton /<token>, Telegram /bot<token>/).
_SECRET_SEGMENT_LEN = 16


class AltError(ValueError):
    """A lookup table could not be decoded or resolved; the message names the table."""


@dataclass(frozen=True, slots=True)
class LookupTable:
    addresses: list[str]  # base58, in table order
    deactivation_slot: int  # U64_MAX while active
    last_extended_slot: int
    authority: str | None  # None once frozen
    last_extended_slot_start_index: int = 0

    @property
    def active(self) -> bool:
        return self.deactivation_slot == U64_MAX


def _b58(raw: bytes) -> str:
    return based58.b58encode(raw).decode("ascii")


def decode_lookup_table(data: bytes, address: str = "<unknown>") -> LookupTable:
    """Decode the bincode account data of an address lookup table.

    ``address`` is only used to name the table in errors.
    """
    where = f"lookup table {address}"
    if len(data) < LOOKUP_TABLE_META_SIZE:
        raise AltError(
            f"{where}: account data is {len(data)} bytes, shorter than the "
            f"{LOOKUP_TABLE_META_SIZE}-byte metadata header; is this a lookup table account?"
        )
    tag, deactivation_slot, last_extended_slot, start_index = _HEADER.unpack_from(data, 0)
    if tag != _STATE_LOOKUP_TABLE:
        raise AltError(
            f"{where}: state tag is {tag}, expected {_STATE_LOOKUP_TABLE} (LookupTable); "
            "the account is uninitialized or not a lookup table"
        )
    opt = data[21]
    if opt == 0:
        authority = None
    elif opt == 1:
        authority = _b58(data[22:54])
    else:
        raise AltError(f"{where}: authority option tag is {opt}, expected 0 or 1")
    region = len(data) - LOOKUP_TABLE_META_SIZE
    if region % 32:
        raise AltError(
            f"{where}: address region is {region} bytes, not a multiple of 32 "
            "(truncated or corrupt account data)"
        )
    count = region // 32
    if count > LOOKUP_TABLE_MAX_ADDRESSES:
        raise AltError(
            f"{where}: holds {count} addresses, more than the maximum {LOOKUP_TABLE_MAX_ADDRESSES}"
        )
    addresses = [
        _b58(data[off : off + 32]) for off in range(LOOKUP_TABLE_META_SIZE, len(data), 32)
    ]
    return LookupTable(
        addresses=addresses,
        deactivation_slot=deactivation_slot,
        last_extended_slot=last_extended_slot,
        authority=authority,
        last_extended_slot_start_index=start_index,
    )


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` with userinfo, query and fragment removed.

    Providers embed API keys in the URL, so this is the only form of an RPC URL that
    may appear in a message or a log. Path segments of 16+ characters are masked too,
    because several providers put the key in the path rather than the query.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    path = "/".join(
        "***" if len(seg) >= _SECRET_SEGMENT_LEN else seg for seg in parts.path.split("/")
    )
    return f"{parts.scheme}://{netloc}{path}"


class _RedactHttpxUrls(logging.Filter):
    """httpx logs every request URL at INFO; redact those URLs before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


_httpx_filter_lock = threading.Lock()


def _install_httpx_log_filter() -> None:
    with _httpx_filter_lock:
        httpx_log = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactHttpxUrls) for f in httpx_log.filters):
            httpx_log.addFilter(_RedactHttpxUrls())


# (table address, writable indexes, readonly indexes), as in the message
Lookup = tuple[str, bytes | Sequence[int], bytes | Sequence[int]]


class AltResolver:
    """Resolve a v0 message's ``address_table_lookups`` to loaded addresses via RPC.

    One lock serialises ``resolve`` (including its RPC call): meant for one caller at
    a time, safe if a second thread shares it.
    """

    def __init__(
        self,
        rpc_url: str,
        *,
        ttl_s: float = 3600.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        client: httpx.Client | None = None,
        max_tables: int = 10_000,
    ) -> None:
        self._url = rpc_url
        self._safe_url = redact_url(rpc_url)
        self._secrets = _url_secrets(rpc_url)
        self._ttl = ttl_s
        self._timeout = timeout_s
        self._clock = clock
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout_s)
        self._max_tables = max_tables
        self._cache: dict[str, tuple[LookupTable, float]] = {}
        self._lock = threading.Lock()
        self._rpc_id = 0
        self.hits = 0  # tables served from the cache
        self.misses = 0  # tables that had to be fetched (absent, expired or too short)
        self.fetches = 0  # getMultipleAccounts calls made
        _install_httpx_log_filter()

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "fetches": self.fetches,
            "cached_tables": len(self._cache),
        }

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> AltResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, lookups: Sequence[Lookup]) -> tuple[list[str], list[str]]:
        """Return ``(loaded_writable, loaded_readonly)`` in message order.

        Solana's order: the writable indexes of every lookup in turn, then the
        readonly indexes of every lookup in turn.
        """
        norm = [(table, _indexes(table, w), _indexes(table, r)) for table, w, r in lookups]
        if not norm:
            return [], []
        with self._lock:
            need: dict[str, int] = {}  # table -> highest index used
            for table, w, r in norm:
                top = max(w + r, default=-1)
                need[table] = max(need.get(table, -1), top)
            now = self._clock()
            tables: dict[str, LookupTable] = {}
            stale: list[str] = []
            for table, top in need.items():
                cached, fetched_at = self._cache.get(table, (None, 0.0))
                fresh = now - fetched_at < self._ttl
                if cached is not None and fresh and top < len(cached.addresses):
                    tables[table] = cached
                    self.hits += 1
                else:
                    stale.append(table)
                    self.misses += 1
            if stale:
                tables.update(self._fetch(stale, now))
            for table, top in need.items():
                have = len(tables[table].addresses)
                if top >= have:
                    raise AltError(
                        f"lookup table {table}: index {top} is out of range; the table has "
                        f"{have} addresses even after refetching it from {self._safe_url}"
                    )
        writable = [tables[t].addresses[i] for t, w, _ in norm for i in w]
        readonly = [tables[t].addresses[i] for t, _, r in norm for i in r]
        return writable, readonly

    def _fetch(self, addresses: list[str], now: float) -> dict[str, LookupTable]:
        """One ``getMultipleAccounts`` for all of ``addresses``; cache what decodes.

        A v0 transaction fits in 1232 bytes, so it names far fewer than the RPC's
        100-account limit and one call always suffices.
        """
        names = ", ".join(addresses)
        value = self._rpc_get_multiple(addresses, names)
        if len(value) != len(addresses):
            raise AltError(
                f"lookup table(s) {names}: getMultipleAccounts from {self._safe_url} returned "
                f"{len(value)} accounts for {len(addresses)} requested"
            )
        got: dict[str, LookupTable] = {}
        first_error: AltError | None = None
        for address, account in zip(addresses, value, strict=True):
            try:
                table = self._decode_account(address, account)
            except AltError as e:
                self._cache.pop(address, None)
                first_error = first_error or e
                continue
            got[address] = table
            self._cache[address] = (table, now)
        self._prune(now)
        if first_error is not None:
            raise first_error
        return got

    def _rpc_get_multiple(self, addresses: list[str], names: str) -> list[object]:
        self._rpc_id += 1
        body = {
            "jsonrpc": "2.0",
            "id": self._rpc_id,
            "method": "getMultipleAccounts",
            "params": [addresses, {"encoding": "base64", "commitment": "confirmed"}],
        }
        where = f"lookup table(s) {names}: getMultipleAccounts from {self._safe_url}"
        self.fetches += 1
        log.debug("fetching %d lookup table(s) from %s", len(addresses), self._safe_url)
        # Errors are re-raised "from None": httpx exceptions carry the full URL,
        # and a chained traceback in a log would print it.
        try:
            resp = self._client.post(self._url, json=body, timeout=self._timeout)
        except httpx.TimeoutException:
            raise AltError(f"{where} timed out after {self._timeout:g} s") from None
        except httpx.HTTPError as e:
            raise AltError(f"{where} failed: {type(e).__name__}: {self._scrub(str(e))}") from None
        if resp.status_code != 200:
            raise AltError(f"{where} answered HTTP {resp.status_code}") from None
        try:
            payload = resp.json()
        except ValueError:
            raise AltError(f"{where} answered with a body that is not JSON") from None
        if not isinstance(payload, dict):
            raise AltError(f"{where} answered with a JSON {type(payload).__name__}, not an object")
        if payload.get("error") is not None:
            err = payload["error"]
            if isinstance(err, dict):
                detail = f"code {err.get('code')}: {err.get('message')}"
            else:
                detail = str(err)
            raise AltError(f"{where} returned JSON-RPC error {self._scrub(detail)}")
        result = payload.get("result")
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, list):
            raise AltError(f"{where} answered without a result.value list")
        return value

    def _decode_account(self, address: str, account: object) -> LookupTable:
        if account is None:
            raise AltError(
                f"lookup table {address} does not exist (closed, or never created) "
                f"according to {self._safe_url}"
            )
        if not isinstance(account, dict):
            raise AltError(f"lookup table {address}: account is not an object")
        owner = account.get("owner")
        if owner != ALT_PROGRAM_ID:
            raise AltError(
                f"lookup table {address}: account is owned by {owner}, not the "
                f"address lookup table program {ALT_PROGRAM_ID}"
            )
        data = account.get("data")
        if not (isinstance(data, list) and len(data) == 2 and data[1] == "base64"):
            raise AltError(f'lookup table {address}: account data is not ["<b64>", "base64"]')
        try:
            raw = base64.b64decode(data[0], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise AltError(f"lookup table {address}: account data is not valid base64") from None
        return decode_lookup_table(raw, address)

    def _prune(self, now: float) -> None:
        if len(self._cache) <= self._max_tables:
            return
        for address in [a for a, (_, t) in self._cache.items() if now - t >= self._ttl]:
            del self._cache[address]
        while len(self._cache) > self._max_tables:  # dicts keep insertion order: oldest first
            del self._cache[next(iter(self._cache))]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _indexes(table: str, raw: bytes | Sequence[int]) -> list[int]:
    out = list(raw)
    for i in out:
        if not isinstance(i, int) or not 0 <= i <= 255:
            raise AltError(f"lookup table {table}: index {i!r} is not an integer in 0..255")
    return out


def _url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that redact_url drops, longest first, for scrubbing text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.query, parts.fragment, parts.username or "", parts.password or ""]
    found += [seg for seg in parts.path.split("/") if len(seg) >= _SECRET_SEGMENT_LEN]
    found += [kv.split("=", 1)[-1] for kv in parts.query.split("&")]
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)
