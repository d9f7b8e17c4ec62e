"""Parse records cross a process boundary (the runner's parse process pickles them), by
position for speed: every field must survive, in its place, for every record type."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from pocketwatcher.parse import SolTransfer
from pocketwatcher.parse.programs.pumpfun import TokenEvent
from pocketwatcher.parse.swap import Swap


@pytest.mark.parametrize("cls", [Swap, SolTransfer, TokenEvent])
def test_every_field_survives_pickling_in_its_place(cls):
    values = {f.name: (f"value-{i}" if f.name != "fees" else {"protocol": i})
              for i, f in enumerate(dataclasses.fields(cls))}
    original = cls(**values)
    for protocol in (2, 5):
        copy = pickle.loads(pickle.dumps(original, protocol))
        assert type(copy) is cls and copy == original
        assert all(getattr(copy, k) == v for k, v in values.items())
