"""Runs the environment stops: a file-size limit (a real one, in a subprocess), a full disk, a read-only folder, the
results folder moved away, a partial checkpoints file cut short, an unexpected error. Each ends in one line and
exit 1 (2 where the input is at fault), changes nothing outside its folder, and what it leaves is resumed to a
complete results folder by the command the line names."""

from __future__ import annotations

import errno
import os
import resource
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import subprocess_env, toymodels_cmd
from hostile.sandbox import SMOKE, assert_untouched, one_error_line, one_thread, snapshot
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.results import store
from toymodels.running import launch

TRAINS = True  # these cases train on purpose (conftest.refused_before_training)


#: two groups (steps is a group field): g000 trains 8 steps, g001 64
TWO_GROUPS = [*SMOKE, "--sweep", "steps=8,64"]


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread, as the subprocesses have (results do not change)."""
    with one_thread():
        yield


def invoke(argv: list[str]):
    """The command in-process, in the sandbox (its relative paths must never reach another folder)."""
    assert Path.cwd().name == "sb", f"not in the sandbox: {Path.cwd()}"
    res = CliRunner().invoke(app, argv)
    return res.exit_code, res.stdout, res.stderr


def resume_argv(line: str) -> list[str]:
    """The command a line ends with ("...; continue with: toymodels run ... --resume"), without `toymodels`."""
    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[0] == "toymodels" and command[-1] == "--resume", command
    return command[1:]


def assert_complete(folder, instances: int = 6) -> None:
    res = store.load(folder)
    assert len(res.instances) == instances and res.complete
    assert set(store.done_groups(folder)) == {"g000", "g001"}


def failing_in_group(monkeypatch, argv: list[str], gid: str, error: BaseException, where: str = "pwrite"):
    """``invoke(argv)`` with the real groups, but ``where`` (os.pwrite: the checkpoint stream; write_parquet: a
    table) raising ``error`` while group ``gid`` trains. Every patch is undone before it returns (the sandbox's
    working directory stays)."""
    real = launch.run_group

    def run_group(folder, group, *args, **kwargs):
        if group != gid:
            return real(folder, group, *args, **kwargs)
        with monkeypatch.context() as inner:
            def fail(*a, **k):
                raise error
            inner.setattr(*((os, "pwrite") if where == "pwrite" else (store, where)), fail)
            return real(folder, group, *args, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(launch, "run_group", run_group)
        return invoke(argv)


def test_a_file_size_limit_mid_run_says_how_to_resume_and_the_resume_finishes(sandbox):
    # a real limit (RLIMIT_FSIZE) in a fresh process: g000's files fit under it, g001's checkpoints file does not;
    # Python ignores SIGXFSZ, so the write fails with EFBIG
    limit = 160_000
    proc = subprocess.run(toymodels_cmd("run", *TWO_GROUPS, "--out", "out"), cwd=sandbox.root, capture_output=True,
                          text=True, env=subprocess_env(), timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert "EFBIG" in line and "what finished is saved" in line, line
    assert store.group_done(sandbox.root / "out", "g000") and not store.group_done(sandbox.root / "out", "g001")
    assert not list((sandbox.root / "out").rglob(".*.tmp"))  # no half-written file left behind
    code, _, err = invoke(resume_argv(line))
    assert code == 0, err
    assert_complete(sandbox.root / "out")


def test_a_full_disk_mid_group_says_how_to_resume_and_the_resume_finishes(sandbox, monkeypatch):
    before = snapshot(sandbox.root)
    code, _, err = failing_in_group(monkeypatch, ["run", *TWO_GROUPS, "--out", "out"], "g001",
                                    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    line = one_error_line(err)
    assert code == 1 and "no space left" in line and "--out out --resume" in line, line
    assert_untouched(before, snapshot(sandbox.root), "out", writes=True)
    code, _, err = invoke(resume_argv(line))
    assert code == 0, err
    assert_complete(sandbox.root / "out")


def test_a_full_disk_writing_a_table_keeps_no_half_file(sandbox, monkeypatch):
    code, _, err = failing_in_group(monkeypatch, ["run", *TWO_GROUPS, "--out", "out"], "g000",
                                    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/groups/g000/x"),
                                    where="write_parquet")
    line = one_error_line(err)
    assert code == 1 and "cannot write 'out/groups/g000/x'" in line and "--resume" in line, line
    code, _, err = invoke(resume_argv(line))
    assert code == 0, err
    assert_complete(sandbox.root / "out")


def _read_only(sandbox, monkeypatch, folder):
    """``folder`` without write permission: chmod, and, for root (whom permissions do not stop), os.access too."""
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    sandbox.notes["restore"] = folder
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: (
            False if mode & os.W_OK and os.path.abspath(path) == str(folder) else real(path, mode, *a, **k)))


@pytest.mark.parametrize("where", ["a read-only results folder (resume)", "a read-only parent (new folder)"])
def test_no_permission_is_the_environment_in_one_line_and_names_the_folder(sandbox, monkeypatch, where):
    if "resume" in where:
        folder = sandbox.copy("out")
        argv, target = ["run", *SMOKE, "--set", "steps=8", "--out", "out", "--resume"], "out"
        words = ("'out' is read-only",)
    else:
        folder = sandbox.root / "ro"
        argv, target = ["run", *SMOKE, "--out", "ro/new"], "ro"
        words = ("no permission", "'ro'")
    _read_only(sandbox, monkeypatch, folder)
    try:
        before = snapshot(sandbox.root)
        code, _, err = invoke(argv)
        after = snapshot(sandbox.root)
    finally:
        folder.chmod(0o755)
    line = one_error_line(err)
    assert code == 1 and all(w in line for w in words), line
    assert "cannot create" not in line
    assert_untouched(before, after, target, writes=False)


def test_a_results_folder_moved_during_the_run_is_not_made_again_and_resumes_from_its_new_place(sandbox,
                                                                                                 monkeypatch):
    real_merge = store.merge_tables

    def merge_then_move(folder, *args, **kwargs):  # after g000 is merged, the user moves the folder away
        out = real_merge(folder, *args, **kwargs)
        if not (sandbox.root / "moved").exists():
            os.rename(folder, sandbox.root / "moved")
        return out
    with monkeypatch.context() as patch:
        patch.setattr(store, "merge_tables", merge_then_move)
        code, _, err = invoke(["run", *TWO_GROUPS, "--out", "out"])
    line = one_error_line(err)
    assert code == 1 and "was moved or deleted" in line and "--out" in line and "--resume" in line, line
    assert not (sandbox.root / "out").exists()  # nothing made again at the old place
    assert store.group_done(sandbox.root / "moved", "g000")
    code, _, err = invoke(["run", *TWO_GROUPS, "--out", "moved", "--resume"])
    assert code == 0, err
    assert_complete(sandbox.root / "moved")


def test_a_partial_checkpoints_file_cut_short_trains_the_group_again_instead_of_failing_every_resume(sandbox,
                                                                                                    monkeypatch):
    real = launch.run_group

    def stop_at_once(folder, gid, insts, **kwargs):  # g001 saves its state after its first step and stops
        return real(folder, gid, insts, **{**kwargs, "should_stop": (lambda: True) if gid == "g001" else
                                           kwargs.get("should_stop")})
    with monkeypatch.context() as patch:
        patch.setattr(launch, "run_group", stop_at_once)
        code, _, err = invoke(["run", *TWO_GROUPS, "--out", "out"])
    assert code == 130 and "continue with:" in err, err
    gdir = sandbox.root / "out" / "groups" / "g001"
    assert (gdir / "state.safetensors").exists()
    with open(gdir / "checkpoints.partial.safetensors", "r+b") as f:  # a crash or a hand cut it short
        f.truncate(100)
    code, _, err = invoke(["run", *TWO_GROUPS, "--out", "out", "--resume"])
    assert code == 0 and "g001: its mid-run state cannot be continued" in err, err
    assert_complete(sandbox.root / "out")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_one_line_and_its_traceback_only_with_toymodels_debug(sandbox, monkeypatch, debug):
    if debug:
        monkeypatch.setenv("TOYMODELS_DEBUG", "1")
    code, _, err = failing_in_group(monkeypatch, ["run", *TWO_GROUPS, "--out", "out"], "g001",
                                    ZeroDivisionError("boom"))
    assert code == 1
    if debug:
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: "), err
        return
    line = one_error_line(err)
    assert "unexpected ZeroDivisionError: boom" in line and "TOYMODELS_DEBUG=1" in line and "--resume" in line


def test_ctrl_c_outside_training_is_one_line_and_exit_130(sandbox, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("toymodels.cli.resolve_sweep", interrupted)
    code, _, err = invoke(["run", *SMOKE, "--out", "out"])
    assert code == 130 and one_error_line(err) == "error: interrupted (Ctrl-C)"
    assert not (sandbox.root / "out").exists()


def test_the_console_entry_point_ends_in_one_line_too(sandbox):
    proc = subprocess.run(toymodels_cmd("run", *SMOKE, "--set", "lr=10**400", "--out", "out"), cwd=sandbox.root,
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 2 and "field 'lr'" in one_error_line(proc.stderr)
    assert not (sandbox.root / "out").exists()
