"""The notebooks of ``examples/`` run from top to bottom, as committed, in a temporary folder, on a kernel of this
interpreter; and they are committed without outputs, with their scale set in one tagged cell at the top."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import need_extra

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: seconds one cell may take (each notebook runs in about a minute on 2 busy cores; a stuck cell fails the test)
CELL_TIMEOUT_S = 300


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_at_least_three_notebooks():
    assert len(NOTEBOOKS) >= 3, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_a_scale_on_top(path):
    book = read(path)
    code = [c for c in book["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), \
        f"{path.name}: clear its outputs before committing (Jupyter: Edit > Clear Outputs of All Cells)"
    assert book["metadata"]["kernelspec"]["name"] == "python3"
    first = code[0]  # the parameters a user edits (papermill's tag): the scale, where results go
    assert "parameters" in first["metadata"].get("tags", []), path.name
    assert "SCALE = " in "".join(first["source"]), path.name


def current_interpreter_kernel(root: Path) -> Path:
    """A ``python3`` kernelspec that starts this interpreter, in a folder put first on JUPYTER_PATH (so no kernel
    of another environment, e.g. one in ~/.local/share/jupyter, is used)."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = need_extra("nbformat", "test")
    nbclient = need_extra("nbclient", "test")
    need_extra("ipykernel", "test")
    monkeypatch.setenv("JUPYTER_PATH", str(current_interpreter_kernel(tmp_path / "jupyter")))
    before = sorted(EXAMPLES.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()

    book = nbformat.read(path, as_version=4)
    book.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))  # which Python ran it
    # figures inline whatever backend the environment names (earlier tests in the same run may leave one set)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    book.cells.insert(0, nbformat.v4.new_code_cell("%matplotlib inline"))
    client = nbclient.NotebookClient(book, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()

    assert book.cells[-1].outputs[0]["text"].strip() == sys.executable
    assert not [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    figures = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} drew no figure"
    assert any((work / "runs").iterdir()), "the notebook wrote no results folder where it ran"
    assert sorted(EXAMPLES.rglob("*")) == before, "running a notebook wrote into examples/"
