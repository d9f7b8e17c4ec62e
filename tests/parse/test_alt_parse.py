"""A v0 transaction that arrives without its loaded addresses is resolved through the ALT
cache (a real local JSON-RPC server) and gives the same swaps as with them."""

from __future__ import annotations

import copy

import based58
from conftest import fixture_files
from test_alt import RpcState, server  # noqa: F401 - the local JSON-RPC server fixture

from pocketwatcher.parse import STATS, parse_transaction, parse_transaction_full
from pocketwatcher.parse.alt import AltResolver
from pocketwatcher.parse.loaders import load_file

FIXTURE = "0xfnzero-sol-parser-sdk-golang__4WSwDTuvnpcXsFTSjxborTSAUbqmBNiTza9756Jo6N5Wdc7zzz9UdXuDovHkRTeCKaGd44fhtUFksoSbLYTioBFs.json"


def _tx():
    path = next(p for p in fixture_files() if p.name == FIXTURE)
    return load_file(path)[0]


def _serve_tables(state: RpcState, tx: dict) -> None:
    """Put tables on the server whose entries at the message's indexes are the loaded keys."""
    loaded = tx["meta"]["loadedAddresses"]
    w_iter, r_iter = iter(loaded["writable"]), iter(loaded["readonly"])
    for lk in tx["transaction"]["message"]["addressTableLookups"]:
        idx = lk["writableIndexes"] + lk["readonlyIndexes"]
        entries = [bytes(32)] * (max(idx) + 1)
        for i in lk["writableIndexes"]:
            entries[i] = based58.b58decode(next(w_iter).encode())
        for i in lk["readonlyIndexes"]:
            entries[i] = based58.b58decode(next(r_iter).encode())
        state.put(lk["accountKey"], entries)


def test_missing_loaded_addresses_resolved_through_rpc(server):  # noqa: F811
    state: RpcState = server.state
    state.reset()
    tx = _tx()
    assert tx["transaction"]["message"]["addressTableLookups"], "fixture must be v0 with lookups"
    want = parse_transaction(tx)
    assert want
    stripped = copy.deepcopy(tx)
    del stripped["meta"]["loadedAddresses"]
    _serve_tables(state, tx)
    url = f"http://127.0.0.1:{server.server_address[1]}/?api-key=SECRET"
    with AltResolver(url) as resolver:
        got = parse_transaction(stripped, alt_resolver=resolver)
        assert got == want
        again = parse_transaction(stripped, alt_resolver=resolver)  # served from the cache
        assert again == want
    assert len(state.requests) == 1


def test_unresolvable_tables_give_a_reason_not_an_exception(server):  # noqa: F811
    state: RpcState = server.state
    state.reset()  # no tables on the server
    stripped = copy.deepcopy(_tx())
    del stripped["meta"]["loadedAddresses"]
    before = STATS.reasons["alt_unresolved"]
    with AltResolver(f"http://127.0.0.1:{server.server_address[1]}/") as resolver:
        res = parse_transaction_full(stripped, alt_resolver=resolver)
    assert res.swaps == [] and res.reason == "alt_unresolved"
    assert STATS.reasons["alt_unresolved"] == before + 1
