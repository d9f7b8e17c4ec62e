"""The notebooks are jupytext pairs: each .ipynb holds exactly the cells of its .py, without
outputs, so that reviewing the .py is reviewing the notebook."""

from __future__ import annotations

import tomllib

import jupytext
import nbformat
import pytest
from conftest import REPO

NOTEBOOKS = REPO / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
FIX = "edit the .py, then run `jupytext --sync notebooks/*.py`"


def test_every_notebook_has_its_pair():
    assert NAMES == ["backtest_report", "tune_triggers"]
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == NAMES
    config = tomllib.loads((NOTEBOOKS / "jupytext.toml").read_text())
    assert set(config["formats"].split(",")) == {"ipynb", "py:percent"}


def _cells(nb) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_and_py_hold_the_same_cells(name):
    from_py = jupytext.read(NOTEBOOKS / f"{name}.py")
    from_ipynb = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    assert jupytext.formats.divine_format((NOTEBOOKS / f"{name}.py").read_text()) == "py:percent"
    py, ipynb = _cells(from_py), _cells(from_ipynb)
    for i, (a, b) in enumerate(zip(py, ipynb, strict=False)):
        assert a == b, f"notebooks/{name}: cell {i} differs between the .py and the .ipynb; {FIX}"
    assert len(py) == len(ipynb), f"notebooks/{name}: {len(py)} cells in the .py, {len(ipynb)} in the .ipynb; {FIX}"
    for nb in (from_py, from_ipynb):
        assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in from_py.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", "papermill needs one cell tagged `parameters`"


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not ran, (f"notebooks/{name}.ipynb has outputs in cells {ran}; strip them with "
                     f"`jupyter nbconvert --clear-output --inplace notebooks/{name}.ipynb`")
