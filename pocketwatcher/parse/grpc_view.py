"""Yellowstone ``SubscribeUpdate`` protobuf <-> ``TxView``.

``view_from_update`` is on the hot path (every streamed transaction goes through it), so it
reads each protobuf field once into locals, encodes account keys through a bytes->base58
cache (program ids, pools and mints repeat across transactions) and leans on C-level
iteration (``map``, ``list(bytes)``) rather than per-field Python work.

``update_from_view`` is the inverse, so a replay server or a market simulator can put a
``TxView`` on the wire exactly as a Geyser provider would (not performance critical).
``view_from_update(update_from_view(v)) == v`` except that ``block_time`` comes back as
None (Geyser transaction updates carry no time) and ``err`` comes back as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields

import based58
from google.protobuf.message import DecodeError
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from pocketwatcher.parse.programs.registry import INERT_INNER, SKIP_TOP_LEVEL
from pocketwatcher.parse.programs.registry import SYSTEM as _SYSTEM
from pocketwatcher.parse.txview import Ix, LazyBalances, TokenBal, TxError, TxView
from pocketwatcher.proto import geyser_pb2
from pocketwatcher.proto import solana_storage_pb2 as storage

__all__ = ["encode_tx_error", "update_from_view", "view_from_update"]

_SubscribeUpdate = geyser_pb2.SubscribeUpdate
_SubscribeUpdateTransaction = geyser_pb2.SubscribeUpdateTransaction

# bytes -> base58 for 32-byte keys; cleared wholesale when it grows past the bound.
_KEY_CACHE: dict[bytes, str] = {}
_KEY_CACHE_MAX = 200_000
_pubkey_from_bytes = Pubkey.from_bytes
_signature_from_bytes = Signature.from_bytes
_hash_from_bytes = Hash.from_bytes
_b58encode = based58.b58encode
_b58decode = based58.b58decode


# TxView is built positionally (keywords cost ~1 us per call); this guard fails at import
# if txview.py reorders its fields.
_TXVIEW_ORDER = (
    "signature", "slot", "block_time", "index", "keys", "num_signers", "ixs", "logs", "pre_tokens",
    "post_tokens", "pre_balances", "post_balances", "fee", "failed", "err", "version", "lookups",
    "num_static_keys", "num_loaded_writable", "num_readonly_signed", "num_readonly_unsigned",
    "recent_blockhash", "signatures", "compute_units",
)  # fmt: skip
if tuple(f.name for f in fields(TxView))[: len(_TXVIEW_ORDER)] != _TXVIEW_ORDER:
    raise ImportError(
        "pocketwatcher.parse.txview.TxView field order changed; update _TXVIEW_ORDER and view_from_update"
    )


# key -> (skip its top-level group, inner data tags worth keeping or None): one lookup a key
_SPECIAL = {k: (k in SKIP_TOP_LEVEL, INERT_INNER.get(k)) for k in SKIP_TOP_LEVEL | set(INERT_INNER)}


def _key_b58(b: bytes, where: str) -> str:
    s = _KEY_CACHE.get(b)
    if s is None:
        if len(b) != 32:
            raise TxError("bad_key", f"{where} is {len(b)} bytes, a Solana public key is 32")
        if len(_KEY_CACHE) > _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        s = _KEY_CACHE[b] = str(_pubkey_from_bytes(b))
    return s


def _encode_keys(raw: list[bytes], num_static: int, num_w: int) -> list[str]:
    out = list(map(_KEY_CACHE.get, raw))
    if None in out:
        for i, s in enumerate(out):
            if s is None:
                if i < num_static:
                    where = f"message.account_keys[{i}]"
                elif i < num_static + num_w:
                    where = f"meta.loaded_writable_addresses[{i - num_static}]"
                else:
                    where = f"meta.loaded_readonly_addresses[{i - num_static - num_w}]"
                out[i] = _key_b58(raw[i], where)
    return out


def _sig_b58(b: bytes) -> str:
    # solders is ~10x faster than based58 on 64 bytes; based58 only for malformed lengths
    return str(_signature_from_bytes(b)) if len(b) == 64 else _b58encode(b).decode()


def _hash_b58(b: bytes) -> str:
    return str(_hash_from_bytes(b)) if len(b) == 32 else _b58encode(b).decode()


def _token_balances(tbs: list, n: int, where: str) -> dict[int, TokenBal]:
    out = {}
    try:
        for tb in tbs:
            ui = tb.ui_token_amount
            out[tb.account_index] = TokenBal(
                tb.mint, tb.owner or None, int(ui.amount), ui.decimals, tb.program_id or None
            )
    except ValueError:
        raise TxError(
            "bad_token_balance",
            f"meta.{where}[account_index={tb.account_index}]: amount {ui.amount!r} is not an integer",
        ) from None
    if out and max(out) >= n:
        raise TxError("bad_index", f"meta.{where}: account_index {max(out)} but the transaction has {n} keys")
    return out


def _raise_bad_index(path: str, program: int, accounts: bytes, n: int) -> None:
    what, idx = ("program", program) if program >= n else ("account", max(accounts))
    raise TxError("bad_index", f"instruction {path}: {what} index {idx} but the transaction has {n} keys")


def view_from_update(
    update: geyser_pb2.SubscribeUpdate | geyser_pb2.SubscribeUpdateTransaction | bytes,
    *,
    skip_inert: bool = False,
    keep_sol_transfers: bool = False,
) -> TxView:
    """Normalize one Geyser transaction update (message, inner transaction message or raw bytes).

    Raises ``TxError`` with reason ``bad_protobuf``, ``not_a_transaction``, ``bad_index``,
    ``bad_key`` or ``bad_token_balance``. ``skip_inert`` leaves out the instruction groups
    whose top-level program can never lead to a swap (compute budget, ATA, token, system):
    the parser's hot path; the view is then marked incomplete. ``keep_sol_transfers``
    keeps top-level System Program transfers in that view (what ``sol_transfers`` reads).
    """
    # Repeated fields are read with [:] (a C-level copy to a list, ~3x faster than list()).
    if isinstance(update, (bytes, bytearray, memoryview)):
        msg = _SubscribeUpdate()
        try:
            msg.ParseFromString(update)
        except DecodeError as e:
            raise TxError(
                "bad_protobuf", f"{len(update)} bytes are not a geyser.SubscribeUpdate ({e})"
            ) from None
        update = msg
    cls = type(update)
    if cls is _SubscribeUpdate:
        kind = update.WhichOneof("update_oneof")
        if kind != "transaction":
            raise TxError(
                "not_a_transaction", f"SubscribeUpdate carries {kind or 'nothing'}, not a transaction"
            )
        txu = update.transaction
    elif cls is _SubscribeUpdateTransaction:
        txu = update
    else:
        raise TxError("not_a_transaction", f"expected geyser.SubscribeUpdate or bytes, got {cls.__name__}")
    if not txu.HasField("transaction"):
        raise TxError("not_a_transaction", "SubscribeUpdateTransaction has no transaction info")
    info = txu.transaction
    tx = info.transaction
    message = tx.message
    meta = info.meta
    header = message.header

    raw_keys = message.account_keys[:]
    num_static = len(raw_keys)
    loaded_w = meta.loaded_writable_addresses
    num_w = len(loaded_w)
    if num_w:
        raw_keys += loaded_w[:]
    loaded_r = meta.loaded_readonly_addresses
    if loaded_r:
        raw_keys += loaded_r[:]
    keys = _encode_keys(raw_keys, num_static, num_w)
    n = len(keys)

    sig = info.signature
    if skip_inert and sig:  # hot path: the id is all a decoder needs
        signature = _sig_b58(sig)
        sigs = [signature]
    else:
        raw_sigs = tx.signatures[:]
        sigs = [_sig_b58(s) for s in raw_sigs]
        if sigs and sig == raw_sigs[0]:
            signature = sigs[0]
        elif sig:
            signature = _sig_b58(sig)
        else:
            signature = sigs[0] if sigs else ""

    top = message.instructions[:]
    ntop = len(top)
    groups: dict[int, list] = {}
    for group in meta.inner_instructions:
        outer = group.index
        if outer >= ntop:
            raise TxError(
                "bad_index",
                f"meta.inner_instructions index {outer} but there are {ntop} top-level instructions",
            )
        groups.setdefault(outer, []).append(group)

    failed = meta.HasField("err")
    ixs = []
    append = ixs.append
    if skip_inert:
        # per program index: skip its top-level group / which inner data tags to keep
        skip_top = set()
        system = -1  # index of the System Program, when its transfers are kept
        inert: dict[int, frozenset] = {}
        special = _SPECIAL.get
        for idx, k in enumerate(keys):
            r = special(k)
            if r is not None:
                if r[0]:
                    skip_top.add(idx)
                if r[1] is not None:
                    inert[idx] = r[1]
                if keep_sol_transfers and k == _SYSTEM:
                    system = idx
        if failed:
            top = ()  # a failed transaction has no swaps; only its id and error matter
    for i, ci in enumerate(top):
        p = ci.program_id_index
        if p >= n:
            _raise_bad_index(str(i), p, b"", n)
        if skip_inert and p in skip_top and not (p == system and ci.data[:1] == b"\x02"):
            continue
        a = ci.accounts
        if a and max(a) >= n:
            _raise_bad_index(str(i), p, a, n)
        append(Ix(p, a, ci.data, i, None, 1))
        gs = groups.get(i)
        if gs:
            inner = gs[0].instructions if len(gs) == 1 else [x for g in gs for x in g.instructions]
            for j, ii in enumerate(inner):
                p = ii.program_id_index
                if skip_inert and p in inert:
                    d = ii.data
                    if not d or d[0] not in inert[p]:
                        continue  # bookkeeping CPI (account creation, init, close): no decoder reads it
                a = ii.accounts
                if p >= n or (a and max(a) >= n):
                    _raise_bad_index(f"{i}.{j}", p, a, n)
                # stack heights start at 1, so an explicit 0 is treated like an absent one
                append(Ix(p, a, ii.data, i, j, ii.stack_height or None))

    lookups = message.address_table_lookups
    if skip_inert and (num_w or loaded_r):
        lookups = None  # already resolved by the meta: the hot path does not need them
    return TxView(
        signature,
        txu.slot,
        None,
        info.index,
        keys,
        header.num_required_signatures,
        ixs,
        None if meta.log_messages_none else meta.log_messages,  # a sequence view, no copy
        LazyBalances(meta.pre_token_balances, "protobuf",
                     lambda raw: _token_balances(raw[:], n, "pre_token_balances")),
        LazyBalances(meta.post_token_balances, "protobuf",
                     lambda raw: _token_balances(raw[:], n, "post_token_balances")),
        meta.pre_balances,  # sequence views, no copy: decoders never read lamports
        meta.post_balances,
        meta.fee,
        failed,
        meta.err.err if failed else None,
        0 if message.versioned else "legacy",
        [
            (
                _key_b58(lu.account_key, "message.address_table_lookups[].account_key"),
                lu.writable_indexes,
                lu.readonly_indexes,
            )
            for lu in lookups
        ]
        if lookups
        else [],
        num_static,
        num_w,
        header.num_readonly_signed_accounts,
        header.num_readonly_unsigned_accounts,
        "" if skip_inert else _hash_b58(message.recent_blockhash),
        sigs,
        meta.compute_units_consumed if meta.HasField("compute_units_consumed") else None,
        not skip_inert,
    )


# ---- encoding -----------------------------------------------------------------------------

_TX_ERR_INSTRUCTION_ERROR = 8  # TransactionError::InstructionError variant index
_IX_ERR_CUSTOM = 25  # InstructionError::Custom variant index
_TX_ERR_PLACEHOLDER = b"\x00\x00\x00\x00"


def encode_tx_error(err: object) -> bytes:
    """Best-effort bincode of an RPC-JSON TransactionError.

    Only ``{"InstructionError": [idx, {"Custom": n}]}`` is encoded exactly; anything else
    becomes a 4-byte placeholder, which still marks the transaction as failed on the wire.
    """
    if isinstance(err, (bytes, bytearray)):
        return bytes(err)
    if isinstance(err, Mapping) and len(err) == 1 and "InstructionError" in err:
        pair = err["InstructionError"]
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            idx, inner = pair
            if isinstance(inner, Mapping) and len(inner) == 1 and "Custom" in inner:
                code = inner["Custom"]
                if isinstance(idx, int) and 0 <= idx < 256 and isinstance(code, int) and 0 <= code < 2**32:
                    return (
                        _TX_ERR_INSTRUCTION_ERROR.to_bytes(4, "little")
                        + bytes((idx,))
                        + _IX_ERR_CUSTOM.to_bytes(4, "little")
                        + code.to_bytes(4, "little")
                    )
    return _TX_ERR_PLACEHOLDER


_KEY_BYTES: dict[str, bytes] = {}


def _key_bytes(s: str) -> bytes:
    b = _KEY_BYTES.get(s)
    if b is None:
        try:
            b = bytes(Pubkey.from_string(s))
        except ValueError as e:
            raise TxError("bad_key", f"{s!r} is not a base58 public key ({e})") from None
        if len(_KEY_BYTES) > _KEY_CACHE_MAX:
            _KEY_BYTES.clear()
        _KEY_BYTES[s] = b
    return b


def _b58_bytes(s: str, what: str) -> bytes:
    try:
        return _b58decode(s.encode())
    except ValueError as e:
        raise TxError("bad_base58", f"{what} {s!r} is not base58 ({e})") from None


def _ui_amount_string(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + str(frac).rjust(decimals, "0").rstrip("0")


def _token_balance(idx: int, tb: TokenBal) -> storage.TokenBalance:
    return storage.TokenBalance(
        account_index=idx,
        mint=tb.mint,
        ui_token_amount=storage.UiTokenAmount(
            ui_amount=tb.amount / 10**tb.decimals,
            decimals=tb.decimals,
            amount=str(tb.amount),
            ui_amount_string=_ui_amount_string(tb.amount, tb.decimals),
        ),
        owner=tb.owner or "",
        program_id=tb.program or "",
    )


def update_from_view(
    view: TxView, *, filters: Iterable[str] = ("pocketwatcher",)
) -> geyser_pb2.SubscribeUpdate:
    """Encode a ``TxView`` as the ``SubscribeUpdate`` a Geyser server would stream for it.

    ``view.num_static_keys`` splits ``keys`` into static and loaded keys; 0 means "all
    static" and is only accepted when the view has no address-table lookups.
    Things protobuf cannot carry come back differently from ``view_from_update``:
    ``block_time`` -> None, ``slot``/``index`` None -> 0, ``version`` None -> "legacy",
    top-level heights -> 1, an inner height of 0 -> None, ``err`` -> bincode bytes (see
    ``encode_tx_error``). ``signatures`` is written as given (a simulator should fill it).
    """
    if not view.complete:
        raise ValueError("this TxView left out instruction groups (skip_inert); build a complete one to encode")
    keys = view.keys
    num_static = view.num_static_keys
    if not num_static:
        if view.lookups or view.num_loaded_writable:
            raise TxError(
                "bad_view", "num_static_keys is 0 but the view has lookups; set it to the static key count"
            )
        num_static = len(keys)
    split_w = num_static + view.num_loaded_writable
    if split_w > len(keys):
        raise TxError("bad_view", f"num_static_keys + num_loaded_writable = {split_w} > {len(keys)} keys")
    key_bytes = [_key_bytes(k) for k in keys]

    top = []
    inner: dict[int, list[storage.InnerInstruction]] = {}
    for ix in view.ixs:
        if ix.inner is None:
            top.append(
                storage.CompiledInstruction(
                    program_id_index=ix.program, accounts=bytes(ix.accounts), data=ix.data
                )
            )
        else:
            inner.setdefault(ix.outer, []).append(
                storage.InnerInstruction(
                    program_id_index=ix.program,
                    accounts=bytes(ix.accounts),
                    data=ix.data,
                    stack_height=ix.height,
                )
            )

    message = storage.Message(
        header=storage.MessageHeader(
            num_required_signatures=view.num_signers,
            num_readonly_signed_accounts=view.num_readonly_signed,
            num_readonly_unsigned_accounts=view.num_readonly_unsigned,
        ),
        account_keys=key_bytes[:num_static],
        recent_blockhash=_b58_bytes(view.recent_blockhash, "recent_blockhash"),
        instructions=top,
        versioned=view.version == 0,
        address_table_lookups=[
            storage.MessageAddressTableLookup(
                account_key=_key_bytes(table), writable_indexes=bytes(w), readonly_indexes=bytes(r)
            )
            for table, w, r in view.lookups
        ],
    )
    meta = storage.TransactionStatusMeta(
        fee=view.fee,
        pre_balances=view.pre_balances,
        post_balances=view.post_balances,
        inner_instructions=[
            storage.InnerInstructions(index=outer, instructions=group)
            for outer, group in sorted(inner.items())
        ],
        log_messages=view.logs or (),
        log_messages_none=view.logs is None,
        pre_token_balances=[_token_balance(i, tb) for i, tb in view.pre_tokens.items()],
        post_token_balances=[_token_balance(i, tb) for i, tb in view.post_tokens.items()],
        loaded_writable_addresses=key_bytes[num_static:split_w],
        loaded_readonly_addresses=key_bytes[split_w:],
        compute_units_consumed=view.compute_units,
    )
    if view.failed or view.err is not None:
        meta.err.SetInParent()
        meta.err.err = encode_tx_error(view.err)

    info = geyser_pb2.SubscribeUpdateTransactionInfo(
        signature=_b58_bytes(view.signature, "signature"),
        is_vote=False,
        index=view.index or 0,
        transaction=storage.Transaction(
            signatures=[_b58_bytes(s, "signature") for s in view.signatures], message=message
        ),
        meta=meta,
    )
    return geyser_pb2.SubscribeUpdate(
        filters=list(filters),
        transaction=geyser_pb2.SubscribeUpdateTransaction(transaction=info, slot=view.slot or 0),
    )
