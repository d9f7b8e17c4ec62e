"""Bad input never raises out of the parser: mutated real transactions, both paths."""

from __future__ import annotations

import copy

from conftest import fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocketwatcher.parse import STATS, parse_transaction_full, parse_update_full
from pocketwatcher.parse.grpc_view import update_from_view
from pocketwatcher.parse.loaders import load_file
from pocketwatcher.parse.rpc_view import view_from_rpc

RPC = [it for p in fixture_files() for it in load_file(p) if isinstance(it, dict)]
WIRE = []
for _it in RPC:
    try:
        WIRE.append(update_from_view(view_from_rpc(_it)).SerializeToString())
    except Exception:  # noqa: BLE001 - deliberately broken fixtures
        pass

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(obj, prefix=()):
    """Every (container, key) path inside a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


JUNK = st.one_of(st.none(), st.integers(min_value=-2**70, max_value=2**70), st.text(max_size=30),
                 st.booleans(), st.lists(st.integers(-5, 300), max_size=5), st.just({}), st.just([]),
                 st.floats(allow_nan=True))


@FUZZ
@given(idx=st.integers(min_value=0), picks=st.lists(st.integers(min_value=0), min_size=1, max_size=4),
       junk=st.lists(JUNK, min_size=4, max_size=4), delete=st.booleans())
def test_mutated_json_never_raises(idx, picks, junk, delete):
    tx = copy.deepcopy(RPC[idx % len(RPC)])
    paths = list(_paths(tx))
    for n, pick in enumerate(picks):
        path = paths[pick % len(paths)]
        parent = tx
        try:
            for k in path[:-1]:
                parent = parent[k]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = junk[n]
        except (KeyError, IndexError, TypeError):
            continue
    res = parse_transaction_full(tx)
    assert isinstance(res.swaps, list)
    assert res.reason != "decoder_error", "a decoder crashed on a validated view"
    if not res.swaps and res.reason:
        assert STATS.reasons[res.reason] >= 1


@FUZZ
@given(idx=st.integers(min_value=0), flips=st.lists(st.tuples(st.integers(min_value=0),
                                                               st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(min_value=0)))
def test_mutated_protobuf_never_raises(idx, flips, cut):
    raw = bytearray(WIRE[idx % len(WIRE)])
    for pos, val in flips:
        raw[pos % len(raw)] = val
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    res = parse_update_full(bytes(raw))
    assert isinstance(res.swaps, list)
    assert res.reason != "decoder_error", "a decoder crashed on a validated view"


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    assert isinstance(parse_update_full(data).swaps, list)


def test_garbage_shapes_give_reasons():
    for bad in (None, 1, "x", [], {}, {"transaction": None, "meta": {}}, {"result": None}):
        res = parse_transaction_full(bad)
        assert res.swaps == [] and res.reason
