"""Yellowstone subscription filters, compiled once per ``SubscribeRequest``.

Semantics follow the Yellowstone server (``plugin/filter/filter.rs``): one request holds
named filters per kind; an update goes out when at least one filter of its kind matches,
carrying every matching name in ``filters``. Inside a transaction filter the fields AND
together and the values of one list OR together; an all-empty filter matches every
transaction; ``vote``/``failed`` are tri-state (true = only those, false = none of
those, unset = both). The account set is the static keys plus the ALT-loaded ones.

Validation errors read like a provider's (the server prefixes ``failed to create
filter: ``) but also name the filter and the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass

import based58

from ..proto import geyser_pb2 as pb
from .index import BLOCK_META, SLOT, TX, Record
from .wire import filters_prefix

_UNSUPPORTED = ("accounts", "blocks", "entry")


@dataclass(frozen=True)
class FilterLimits:
    """Per-request limits, as providers configure them (``filter_limits`` in Yellowstone)."""

    max_filters: int = 100
    account_include_max: int = 10_000
    account_exclude_max: int = 10_000
    account_required_max: int = 10_000
    name_max: int = 128


class FilterError(ValueError):
    """A request the server cannot turn into a filter; sent as INVALID_ARGUMENT."""


@dataclass(frozen=True)
class TxFilter:
    name: str
    vote: bool | None
    failed: bool | None
    sig: bytes | None
    include: frozenset[bytes]
    exclude: frozenset[bytes]
    required: frozenset[bytes]

    def matches(self, rec: Record) -> bool:
        if self.vote is not None and self.vote != rec.vote:
            return False
        if self.failed is not None and self.failed != rec.failed:
            return False
        if self.sig is not None and self.sig != rec.sig:
            return False
        keys = rec.keys
        if self.required and not self.required <= keys:
            return False
        if self.include and keys.isdisjoint(self.include):
            return False
        return not (self.exclude and not keys.isdisjoint(self.exclude))


@dataclass(frozen=True)
class SlotFilter:
    name: str
    by_commitment: bool
    interslot: bool


class Filter:
    """A compiled request: ``render(record)`` gives the bytes to send, or None."""

    def __init__(self, tx: list[TxFilter], slots: list[SlotFilter], blocks_meta: list[str],
                 commitment: int, tx_status: list[TxFilter] = ()) -> None:
        self.tx = sorted(tx, key=lambda f: f.name)
        self.tx_status = sorted(tx_status, key=lambda f: f.name)
        # transactions_status: a second, smaller update per matching transaction (after its
        # `transaction` update, as Yellowstone sends them); None when the request has none
        self.render_status = self._render_status if self.tx_status else None
        self.slots = sorted(slots, key=lambda f: f.name)
        self.blocks_meta = tuple(sorted(blocks_meta))
        self.commitment = commitment
        self._prefix: dict[tuple[str, ...], bytes] = {}
        self._meta_prefix = filters_prefix(self.blocks_meta)
        # The common case (one filter that matches every transaction) skips the loop.
        only = self.tx[0] if len(self.tx) == 1 else None
        self._tx_all = only is not None and only.vote is None and only.failed is None and \
            only.sig is None and not (only.include or only.exclude or only.required)
        self._tx_all_prefix = filters_prefix((only.name,)) if only is not None else b""

    @property
    def empty(self) -> bool:
        return not (self.tx or self.slots or self.blocks_meta or self.tx_status)

    def names(self, rec: Record) -> tuple[str, ...]:
        kind = rec.kind
        if kind == TX:
            return tuple(f.name for f in self.tx if f.matches(rec))
        if kind == SLOT:
            return tuple(f.name for f in self.slots
                         if (not f.by_commitment or rec.status == self.commitment)
                         and (f.interslot or rec.status in (0, 1, 2)))
        if kind == BLOCK_META:
            return self.blocks_meta
        return ()

    def render(self, rec: Record) -> bytes | None:
        if rec.kind == TX:
            if self._tx_all:
                return self._tx_all_prefix + rec.body
            if not self.tx:
                return None
        elif rec.kind == BLOCK_META:
            return self._meta_prefix + rec.body if self.blocks_meta else None
        names = self.names(rec)
        return self._prefixed(names) + rec.body if names else None

    def _render_status(self, rec: Record) -> bytes | None:
        names = tuple(f.name for f in self.tx_status if f.matches(rec))
        if not names:
            return None
        body = rec.status_body
        if body is None:
            body = rec.status_body = _status_body(rec.body)
        return self._prefixed(names) + body

    def _prefixed(self, names: tuple[str, ...]) -> bytes:
        """The ``filters`` field naming ``names``, encoded once per set of names."""
        prefix = self._prefix.get(names)
        if prefix is None:
            prefix = self._prefix[names] = filters_prefix(names)
        return prefix


def _status_body(tx_update: bytes) -> bytes:
    """``SubscribeUpdateTransactionStatus`` of a recorded transaction update: slot,
    signature, is_vote, index in block and err, with the record's ``created_at``."""
    u = pb.SubscribeUpdate.FromString(tx_update)
    info = u.transaction.transaction
    out = pb.SubscribeUpdate()
    st = out.transaction_status
    st.slot, st.signature, st.is_vote, st.index = u.transaction.slot, info.signature, info.is_vote, info.index
    if info.meta.HasField("err"):
        st.err.CopyFrom(info.meta.err)
    if u.HasField("created_at"):
        out.created_at.CopyFrom(u.created_at)
    return out.SerializeToString()


def _decode(value: str, size: int, what: str, where: str) -> bytes:
    try:
        raw = based58.b58decode(value.encode())
    except ValueError as e:
        raise FilterError(f'{where} = "{value[:60]}": Invalid Base58 string ({what})') from e
    if len(raw) != size:
        raise FilterError(f'{where} = "{value[:60]}": String is the wrong size '
                          f"({len(raw)} bytes, a {what} is {size})")
    return raw


def _keys(values, limit: int, where: str) -> frozenset[bytes]:
    if len(values) > limit:
        raise FilterError(f"{where}: Max amount of Pubkeys reached, only {limit} allowed "
                          f"(got {len(values)})")
    return frozenset(_decode(v, 32, "pubkey", f"{where}[{i}]") for i, v in enumerate(values))


def _check_names(kind: str, names, limits: FilterLimits) -> None:
    if len(names) > limits.max_filters:
        raise FilterError(f"{kind}: Max amount of filters/data_slices reached, "
                          f"only {limits.max_filters} allowed (got {len(names)})")
    for name in names:
        size = len(name.encode())
        if size > limits.name_max:
            raise FilterError(f"oversized filter name (max allowed size {limits.name_max}), "
                              f"found {size}")


def compile_request(req, limits: FilterLimits = FilterLimits()) -> Filter:
    """Turn a ``SubscribeRequest`` into a ``Filter``, or raise ``FilterError``."""
    for kind in _UNSUPPORTED:
        if len(getattr(req, kind)):
            raise FilterError(f"{kind}: Max amount of filters/data_slices reached, only 0 allowed "
                              "(the replay server serves transactions, slots and blocks_meta)")
    commitment = req.commitment if req.HasField("commitment") else 0
    if commitment not in (0, 1, 2):
        raise FilterError(f"failed to create CommitmentLevel from {commitment}")
    _check_names("transactions", req.transactions, limits)
    _check_names("transactions_status", req.transactions_status, limits)
    _check_names("slots", req.slots, limits)
    _check_names("blocks_meta", req.blocks_meta, limits)
    slots = [SlotFilter(name, f.filter_by_commitment, f.interslot_updates)
             for name, f in req.slots.items()]
    return Filter(_tx_filters(req.transactions, "transactions", limits), slots, list(req.blocks_meta), commitment,
                  _tx_filters(req.transactions_status, "transactions_status", limits))


def _tx_filters(filters, kind: str, limits: FilterLimits) -> list[TxFilter]:
    """``transactions`` and ``transactions_status`` filters: the same fields, the same matching."""
    out = []
    for name, f in filters.items():
        where = f'{kind}["{name}"]'
        if f.HasField("token_accounts"):
            raise FilterError(f"{where}.token_accounts: not supported by the replay server")
        sig = _decode(f.signature, 64, "signature", f"{where}.signature") \
            if f.HasField("signature") else None
        out.append(TxFilter(
            name=name,
            vote=f.vote if f.HasField("vote") else None,
            failed=f.failed if f.HasField("failed") else None,
            sig=sig,
            include=_keys(f.account_include, limits.account_include_max, f"{where}.account_include"),
            exclude=_keys(f.account_exclude, limits.account_exclude_max, f"{where}.account_exclude"),
            required=_keys(f.account_required, limits.account_required_max,
                           f"{where}.account_required"),
        ))
    return out
