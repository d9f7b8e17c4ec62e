"""JSON-RPC ``getTransaction`` results (json, jsonParsed, base64; legacy and v0) → TxView.

jsonParsed inputs carry transfers only in decoded form; they are re-encoded into the
raw instruction bytes the program would have received, so every decoder sees one
shape whatever the encoding.
"""

from __future__ import annotations

import base64
import struct

import based58

from .programs.registry import SKIP_TOP_LEVEL
from .txview import Ix, LazyBalances, TokenBal, TxError, TxView

TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"

_u64 = struct.Struct("<Q")


def unwrap(obj) -> list[dict]:
    """Yield bare ``getTransaction`` results from an envelope, a list, or a bare result."""
    if isinstance(obj, list):
        out: list[dict] = []
        for item in obj:
            out.extend(unwrap(item))
        return out
    if isinstance(obj, dict):
        if "result" in obj and "transaction" not in obj:
            res = obj["result"]
            return [] if res is None else unwrap(res)
        return [obj]
    raise TxError("not_a_transaction", f"expected an object or a list, got {type(obj).__name__}")


def _b58decode(s: str) -> bytes:
    try:
        return based58.b58decode(s.encode())
    except Exception as e:  # noqa: BLE001 - library raises several types
        raise TxError("bad_base58", repr(s[:20])) from e


def _int(v, what: str) -> int:
    try:
        return int(v)
    except (TypeError, ValueError) as e:
        raise TxError("bad_number", f"{what}={v!r}") from e


def _opt_int(v, what: str) -> int | None:
    if v is None:
        return None
    if v.__class__ is not int:
        raise TxError("malformed", f"{what} must be an integer, got {v!r:.40}")
    return v


def _int_list(v, what: str) -> list[int]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise TxError("malformed", f"{what} must be a list of integers")
    return v


def _logs(v) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list):
        raise TxError("malformed", "logMessages must be a list of text lines")
    return v


def _parsed_to_raw(ix: dict, key_index) -> tuple[list[int], bytes] | None:
    """Re-encode the jsonParsed forms that matter for swaps; None = keep as opaque."""
    parsed = ix.get("parsed")
    pid = ix.get("programId")
    if not isinstance(parsed, dict):
        return [], b""
    typ = parsed.get("type")
    info = parsed.get("info") or {}
    if pid in (TOKEN, TOKEN22):
        auth = info.get("authority") or info.get("multisigAuthority")
        if typ == "transfer":
            amt = _int(info.get("amount"), "amount")
            return ([key_index(info["source"]), key_index(info["destination"]), key_index(auth)],
                    b"\x03" + _u64.pack(amt))
        if typ in ("transferChecked", "transferCheckedWithFee"):
            ta = info.get("tokenAmount") or {}
            amt = _int(ta.get("amount"), "tokenAmount.amount")
            dec = _int(ta.get("decimals", 0), "decimals")
            accs = [key_index(info["source"]), key_index(info["mint"]),
                    key_index(info["destination"]), key_index(auth)]
            if typ == "transferChecked":
                return accs, b"\x0c" + _u64.pack(amt) + bytes([dec])
            fee = _int((info.get("feeAmount") or {}).get("amount", 0), "feeAmount.amount")
            return accs, b"\x1a\x01" + _u64.pack(amt) + bytes([dec]) + _u64.pack(fee)
    elif pid == SYSTEM and typ == "transfer":
        lam = _int(info.get("lamports"), "lamports")
        return ([key_index(info["source"]), key_index(info["destination"])],
                struct.pack("<IQ", 2, lam))
    return [], b""


def view_from_rpc(tx: dict, *, skip_inert: bool = False, alt_resolver=None) -> TxView:
    """Normalize a decoded ``getTransaction`` result.

    ``skip_inert`` leaves out instruction groups whose top-level program can never lead
    to a swap (compute budget, ATA, token, system); the view is then marked incomplete.
    A v0 transaction whose meta lacks ``loadedAddresses`` has them resolved through
    ``alt_resolver`` (see :mod:`pocketwatcher.parse.alt`) when one is given.
    """
    if not isinstance(tx, dict):
        raise TxError("not_a_transaction", f"expected an object, got {type(tx).__name__}")
    meta = tx.get("meta")
    raw_tx = tx.get("transaction")
    if not isinstance(meta, dict) or raw_tx is None:
        raise TxError("not_a_transaction", "missing transaction or meta")
    try:
        return _build(tx, meta, raw_tx, skip_inert, alt_resolver)
    except TxError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, struct.error) as e:
        raise TxError("malformed", f"{type(e).__name__}: {e}") from e


def _loaded(meta: dict, lookups: list, alt_resolver) -> tuple[list[str], list[str]]:
    loaded = meta.get("loadedAddresses")
    if loaded is not None or not lookups:
        loaded = loaded or {}
        return list(loaded.get("writable") or []), list(loaded.get("readonly") or [])
    if alt_resolver is None:
        raise TxError("missing_loaded_addresses",
                      "v0 transaction without meta.loadedAddresses; pass an AltResolver to resolve them")
    try:
        w, r = alt_resolver.resolve(lookups)
    except Exception as e:  # noqa: BLE001 - any resolver failure is one reason
        raise TxError("alt_unresolved", str(e)) from e
    return list(w), list(r)


def _build(tx: dict, meta: dict, raw_tx, skip_inert: bool, alt_resolver) -> TxView:
    lookups: list[tuple[str, bytes, bytes]] = []
    if isinstance(raw_tx, list):  # ["<base64>", "base64"]
        keys, sigs, header, blockhash, top, lookups, version = _from_wire(raw_tx)
        lw, lr = _loaded(meta, lookups, alt_resolver)
        keys = keys + lw + lr
        header = header[:4] + (len(lw),)
    else:
        msg = raw_tx["message"]
        sigs = list(raw_tx.get("signatures") or [])
        blockhash = msg.get("recentBlockhash", "")
        akeys = msg["accountKeys"]
        if akeys and isinstance(akeys[0], dict):
            keys = [k["pubkey"] for k in akeys]
            n_signed = sum(1 for k in akeys if k.get("signer"))
            static = [k for k in akeys if k.get("source", "transaction") == "transaction"]
            n_ro_signed = sum(1 for k in static if k.get("signer") and not k.get("writable"))
            n_ro_unsigned = sum(1 for k in static if not k.get("signer") and not k.get("writable"))
            n_static = len(static)
            n_lw = sum(1 for k in akeys if k.get("source") == "lookupTable" and k.get("writable"))
            header = (n_signed, n_ro_signed, n_ro_unsigned, n_static, n_lw)
            for lk in msg.get("addressTableLookups") or []:
                lookups.append((lk["accountKey"], bytes(lk.get("writableIndexes") or []),
                                bytes(lk.get("readonlyIndexes") or [])))
        else:
            keys = list(akeys)
            h = msg.get("header") or {}
            for lk in msg.get("addressTableLookups") or []:
                lookups.append((lk["accountKey"], bytes(lk.get("writableIndexes") or []),
                                bytes(lk.get("readonlyIndexes") or [])))
            lw, lr = _loaded(meta, lookups, alt_resolver)
            n_static = len(keys)
            keys = keys + lw + lr
            header = (h.get("numRequiredSignatures", 1), h.get("numReadonlySignedAccounts", 0),
                      h.get("numReadonlyUnsignedAccounts", 0), n_static, len(lw))
        version = tx.get("version")
        if version is None:
            version = 0 if "addressTableLookups" in msg else "legacy"
        top = msg["instructions"]

    nkeys = len(keys)
    try:
        "".join(keys)  # C-level check that every key is text
        "".join(sigs)
    except TypeError:
        raise TxError("malformed", "account keys and signatures must be base58 text") from None
    index_of: dict[str, int] | None = None

    def key_index(k: str) -> int:
        nonlocal index_of
        if index_of is None:
            index_of = {key: i for i, key in enumerate(keys)}
        i = index_of.get(k) if isinstance(k, str) else None
        if i is None:
            raise TxError("unknown_account", f"{k} is not among the transaction's account keys")
        return i

    def convert(ix, outer: int, inner: int | None, default_height: int | None) -> Ix:
        if isinstance(ix, Ix):
            if not 0 <= ix.program < nkeys or any(not 0 <= a < nkeys for a in ix.accounts):
                raise TxError("bad_index", f"instruction {outer}")
            return ix
        height = ix.get("stackHeight")
        if height is None:
            height = default_height
        elif height.__class__ is not int:
            raise TxError("malformed", f"instruction {outer}: stackHeight {height!r:.20}")
        p = ix.get("programIdIndex")
        if p is not None:
            accs = ix["accounts"]
            # bytes() validates in C: ints in 0..255 (an account index is a u8)
            accs = bytes(accs) if accs.__class__ is list else _b58decode(accs)
            data = ix.get("data", "")
            if data.__class__ is not str:
                raise TxError("malformed", f"instruction {outer}: data must be base58 text")
            if p.__class__ is not int or not 0 <= p < nkeys or (accs and max(accs) >= nkeys):
                raise TxError("bad_index", f"instruction {outer}" + (f".{inner}" if inner is not None else ""))
            return Ix(p, accs, data, outer, inner, height)
        pid = ix["programId"]
        if "parsed" in ix:
            accs, data = _parsed_to_raw(ix, key_index)
        else:
            accs = [key_index(a) for a in ix.get("accounts", [])]
            data = ix.get("data", "")
            if not isinstance(data, str):
                raise TxError("malformed", f"instruction {outer}: data must be base58 text")
        return Ix(key_index(pid), accs, data, outer, inner, height)

    inner_by_outer: dict[int, list] = {}
    for group in meta.get("innerInstructions") or []:
        inner_by_outer[_opt_int(group["index"], "innerInstructions.index")] = list(group["instructions"])

    ixs: list[Ix] = []
    for i, ix in enumerate(top):
        top_ix = convert(ix, i, None, 1)
        if skip_inert and keys[top_ix.program] in SKIP_TOP_LEVEL:
            continue
        ixs.append(top_ix)
        for j, sub in enumerate(inner_by_outer.get(i, ())):
            ixs.append(convert(sub, i, j, None))

    def balances(lst):
        if lst is None:
            return {}
        if not isinstance(lst, list):
            raise TxError("malformed", "token balances must be a list")
        return LazyBalances(lst, "rpc", _checked_balances)

    def _checked_balances(lst) -> dict[int, TokenBal]:
        try:
            return _eager_balances(lst)
        except TxError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TxError("malformed", f"token balance: {type(e).__name__}: {e}") from e

    def _eager_balances(lst) -> dict[int, TokenBal]:
        out: dict[int, TokenBal] = {}
        for b in lst or ():
            ui = b["uiTokenAmount"]
            idx = b["accountIndex"]
            if not 0 <= idx < nkeys:
                raise TxError("bad_index", f"token balance accountIndex {idx}")
            mint, owner, prog = b["mint"], b.get("owner") or None, b.get("programId") or None
            if not isinstance(mint, str) or not isinstance(owner, str | None) or not isinstance(prog, str | None):
                raise TxError("malformed", f"token balance of account {idx}: mint/owner/programId must be text")
            dec = _int(ui.get("decimals", 0), "decimals")
            if not 0 <= dec <= 255:
                raise TxError("malformed", f"token balance of account {idx}: decimals {dec}")
            out[idx] = TokenBal(mint, owner, _int(ui["amount"], "amount"), dec, prog)
        return out

    err = meta.get("err")
    n_signed, n_ro_signed, n_ro_unsigned, n_static, n_lw = (
        _opt_int(x, "message header") or 0 for x in header)
    return TxView(
        signature=sigs[0] if sigs else "",
        slot=_opt_int(tx.get("slot"), "slot"),
        block_time=_opt_int(tx.get("blockTime"), "blockTime"),
        index=_opt_int(tx.get("transactionIndex"), "transactionIndex"),
        keys=keys,
        num_signers=n_signed,
        ixs=ixs,
        logs=_logs(meta.get("logMessages")),  # lines are checked where read (tree.log_data_by_ix)
        pre_tokens=balances(meta.get("preTokenBalances")),
        post_tokens=balances(meta.get("postTokenBalances")),
        # lamport balances: no decoder reads them, so they are kept as given
        pre_balances=_int_list(meta.get("preBalances"), "preBalances"),
        post_balances=_int_list(meta.get("postBalances"), "postBalances"),
        fee=_opt_int(meta.get("fee"), "fee") or 0,
        failed=err is not None,
        err=err,
        version=version,
        lookups=lookups,
        num_static_keys=n_static,
        num_loaded_writable=n_lw,
        num_readonly_signed=n_ro_signed,
        num_readonly_unsigned=n_ro_unsigned,
        recent_blockhash=blockhash,
        signatures=sigs,
        compute_units=_opt_int(meta.get("computeUnitsConsumed"), "computeUnitsConsumed"),
        complete=not skip_inert,
    )


def _from_wire(raw_tx: list):
    """Deserialize a base64 wire transaction (legacy or v0) with solders."""
    from solders.message import MessageV0
    from solders.transaction import VersionedTransaction

    if len(raw_tx) < 1 or not isinstance(raw_tx[0], str):
        raise TxError("malformed", "base64 transaction must be [data, 'base64']")
    enc = raw_tx[1] if len(raw_tx) > 1 else "base64"
    if enc != "base64":
        raise TxError("unsupported_encoding", str(enc))
    try:
        vt = VersionedTransaction.from_bytes(base64.b64decode(raw_tx[0]))
    except Exception as e:  # noqa: BLE001
        raise TxError("bad_wire_transaction", str(e)[:120]) from e
    msg = vt.message
    h = msg.header
    keys = [str(k) for k in msg.account_keys]
    sigs = [str(s) for s in vt.signatures]
    lookups = []
    version: int | str = "legacy"
    if isinstance(msg, MessageV0):
        version = 0
        for lk in msg.address_table_lookups:
            lookups.append((str(lk.account_key), bytes(lk.writable_indexes), bytes(lk.readonly_indexes)))
    top = [Ix(ci.program_id_index, list(bytes(ci.accounts)), bytes(ci.data), i, None, 1)
           for i, ci in enumerate(msg.instructions)]
    header = (h.num_required_signatures, h.num_readonly_signed_accounts,
              h.num_readonly_unsigned_accounts, len(keys), 0)
    return keys, sigs, header, str(msg.recent_blockhash), top, lookups, version


__all__ = ["unwrap", "view_from_rpc"]
