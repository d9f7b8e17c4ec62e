"""Truth tables are built from Arrow buffers: the same arrays as ``pa.array``, without importing pandas."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from pocketwatcher.sim.truth import _typed


def test_columns_equal_what_pa_array_builds():
    cols = {"slot": [1, None, 3], "token_amount": [2**64 - 1, 0, 5], "pool": ["a", None, "ünï"],
            "prefunded": [True, False, None], "mint": [], "error": []}
    types = {"slot": pa.int64(), "token_amount": pa.uint64(), "pool": pa.string(), "prefunded": pa.bool_(),
             "mint": pa.string(), "error": pa.int64()}
    for k, arr in _typed(cols).items():
        arr.validate(full=True)
        assert arr.equals(pa.array(cols[k], types[k])), k


def test_simulate_does_not_import_pandas(tmp_path):
    code = ("import sys; from pocketwatcher.sim import simulate; simulate(0.2, 1, sys.argv[1], progress=False); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
