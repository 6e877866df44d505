"""Lesson notebooks: each `.py` source has its paired `.ipynb`, and every notebook runs offline."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


def test_there_are_lessons():
    assert NOTEBOOKS, "no lesson sources under notebooks/"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_paired_and_runs(source, tmp_path):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"run `jupytext --sync {source}` to write {paired.name}"
    from_py = [c.source for c in jupytext.read(source).cells]
    from_ipynb = [c.source for c in jupytext.read(paired).cells]
    assert from_py == from_ipynb, f"{paired.name} is out of date: run `jupytext --sync {source}`"
    notebook = nbformat.read(paired, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
