"""The runner's parse (hot-path view keeping SOL transfers) equals the complete view's,
on every fixture and every transaction of the sample capture: swaps, events, transfers."""

from __future__ import annotations

from conftest import SAMPLE, fixture_files

from pocketwatcher.geyser.capture import CaptureReader
from pocketwatcher.parse import parse_update_full, parse_view, sol_transfers
from pocketwatcher.parse.grpc_view import update_from_view, view_from_update
from pocketwatcher.parse.loaders import load_file
from pocketwatcher.parse.rpc_view import view_from_rpc
from pocketwatcher.parse.txview import TxError


def _complete(update):
    view = view_from_update(update)
    res = parse_view(view)
    return res.swaps, [e.to_dict() for e in res.events], sol_transfers(view)


def _runner(update):
    res = parse_update_full(update, transfers=True)
    return res.swaps, [e.to_dict() for e in res.events], res.transfers


def _updates():
    for path in fixture_files():
        for item in load_file(path):
            if isinstance(item, dict):
                try:
                    item = update_from_view(view_from_rpc(item))
                except (TxError, ValueError, KeyError, TypeError):
                    continue  # unreadable on purpose; the fixture tests cover those
            yield path.name, item
    for u in CaptureReader(SAMPLE).updates():
        if u.WhichOneof("update_oneof") == "transaction":
            yield "sample.pwcap", u


def test_runner_parse_equals_the_complete_view():
    n = transfers = 0
    sample = 0
    for where, u in _updates():
        try:
            want = _complete(u)
        except TxError:
            assert where != "sample.pwcap", "a simulated transaction the parser cannot read"
            continue
        assert _runner(u) == want, where
        n += 1
        sample += where == "sample.pwcap"
        transfers += len(want[2])
    in_sample = sum(u.WhichOneof("update_oneof") == "transaction" for u in CaptureReader(SAMPLE).updates())
    assert sample == in_sample > 4_000, (sample, in_sample)  # every transaction of the sample was compared
    assert n - sample > 100 and transfers > 50, (n, transfers)  # fixtures too; funding transfers really compared
