"""Nothing outside a results folder is ever written: links inside a folder are refused before any write, and the
files written in place (the lock, a group's partial checkpoints) are opened without following links."""

from __future__ import annotations

import os

import pytest
from helpers import SMALL_EM
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config import SweepConfig
from toymodels.results.files import open_in_place, refuse_links
from toymodels.results.store import ResultsError
from toymodels.running.sweep import run_sweep


def test_a_link_inside_a_folder_is_refused_naming_it(tmp_path):
    folder, outside = tmp_path / "run", tmp_path / "outside.txt"
    (folder / "groups").mkdir(parents=True)
    outside.write_text("keep me")
    refuse_links(folder)  # a clean folder passes
    (folder / "groups" / "DONE").symlink_to(outside)
    with pytest.raises(ResultsError, match=r"groups/DONE is a symbolic link"):
        refuse_links(folder)
    (folder / "groups" / "DONE").unlink()
    os.link(outside, folder / "groups" / "DONE")
    with pytest.raises(ResultsError, match=r"groups/DONE has another hard link"):
        refuse_links(folder)
    (folder / "groups" / "DONE").unlink()
    (tmp_path / "elsewhere").symlink_to(folder)  # the folder itself may be reached through a link
    refuse_links(tmp_path / "elsewhere")
    (folder / "slurm").mkdir()  # submitit's own folder keeps links of its own
    (folder / "slurm" / ".submission_file_1.sh").symlink_to(outside)
    refuse_links(folder)
    (folder / "slurm").rename(tmp_path / "slurm-elsewhere")
    (folder / "slurm").symlink_to(tmp_path / "slurm-elsewhere")  # but the folder itself is no link
    with pytest.raises(ResultsError, match=r"slurm is a symbolic link"):
        refuse_links(folder)


def test_files_written_in_place_are_never_opened_through_a_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(ResultsError, match="is a symbolic link"):
        open_in_place(tmp_path / "link", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    os.link(outside, tmp_path / "hard")
    with pytest.raises(ResultsError, match="has another hard link"):
        open_in_place(tmp_path / "hard", os.O_RDWR | os.O_TRUNC)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ResultsError, match="is not a regular file"):
        open_in_place(tmp_path / "fifo", os.O_RDWR)
    assert outside.read_text() == "keep me"


@pytest.mark.parametrize("planted", [".lock", "groups/g000/checkpoints.partial.safetensors", "figures"])
def test_run_resume_and_report_refuse_a_folder_with_a_link_in_one_line(tmp_path, planted):
    out, outside, sweep_file = tmp_path / "run", tmp_path / "outside", tmp_path / "small.json"
    sweep = SweepConfig(name="small", base=SMALL_EM.replace(steps=32))
    sweep_file.write_text(sweep.to_json())
    run_sweep(sweep, out, progress=False)
    outside.write_text("keep me")
    target = out / planted
    if target.is_dir():
        os.rename(target, tmp_path / "moved")
    target.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(outside)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (["run", str(sweep_file), "--out", str(out), "--resume", "--no-progress"],
                 ["report", str(out)]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.output.count("\n") == 1 and "is a symbolic link" in res.output and "Traceback" not in res.output
    assert outside.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
