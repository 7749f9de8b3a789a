"""The hostile suite's sandbox and checker (its fixtures are in conftest.py): every case runs in a folder of its own
(the working directory too), with finished results folders copied in where it needs them, and is held to the same
rules: its exit status, exactly one line on stderr when it fails ("error: ..."), no traceback, nothing outside its
target folder changed, and nothing already in that folder changed (unless the case is a run the environment stopped
mid-way, which may add files)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.engine.threads import one_thread  # noqa: F401 -- the cases train on one thread (shared cores)

#: a small preset run: 3 instances in one group, a fraction of a second per 8 steps
SMOKE = ["LR1", "--scale", "smoke", "--no-progress", "--no-report"]
#: a sweep file's tiny config
TINY = "N = 16\nm = 4\nk = 8\nsteps = 4\nbatch_size = 8\n"




def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's SHA-256, a folder, a link's target, anything else by its kind."""
    found = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = "dir"
            elif stat.S_ISREG(st.st_mode):
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = f"mode:{stat.S_IFMT(st.st_mode)}"
    return found


@dataclass
class Sandbox:
    """One case's folder (also the working directory) and what it may copy into it."""

    root: Path
    sources: dict[str, Path]
    monkeypatch: pytest.MonkeyPatch
    notes: dict = field(default_factory=dict)

    def path(self, name: str) -> str:
        return str(self.root / name)

    def copy(self, name: str = "res", source: str = "em") -> Path:
        """A copy of a finished results folder (its lock file left as a finished run leaves it)."""
        shutil.copytree(self.sources[source], self.root / name, symlinks=True)
        return self.root / name

    def write(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)


def one_error_line(stderr: str) -> str:
    """The one line a failed command ends with (and nothing else on stderr)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def assert_untouched(before: dict[str, str], after: dict[str, str], target: str | None, writes: bool) -> None:
    """Nothing outside ``target`` changed; inside it nothing that was there changed, and nothing new unless
    ``writes`` (a run the environment stopped keeps what it finished)."""
    def inside(rel: str) -> bool:
        return target is not None and (rel == target or rel.startswith(target + os.sep))

    changed = sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))
    outside = [rel for rel in changed if not inside(rel)]
    assert not outside, f"changed outside {target}: {outside}"
    if not writes:
        assert not changed, f"changed in {target}: {changed}"
    else:
        altered = [rel for rel in changed if rel in before and rel != target]
        assert not altered, f"changed what {target} held: {altered}"


@dataclass(frozen=True)
class Case:
    """A command line (built in the sandbox) and what it must end with."""

    id: str
    argv: Callable[[Sandbox], list[str]]
    status: int
    words: tuple[str, ...] = ()
    setup: Callable[[Sandbox], object] | None = None
    target: str | None = "out"  # the folder the command may write (relative to the sandbox)
    writes: bool = False


def check_case(case: Case, sb: Sandbox) -> str:
    """Run ``case`` in-process and hold it to the suite's rules; returns its stderr line (or "")."""
    if case.setup is not None:
        case.setup(sb)
    argv = case.argv(sb)
    assert Path.cwd() == sb.root, f"not in the sandbox: {Path.cwd()}"  # relative paths stay in it
    before = snapshot(sb.root)
    res = CliRunner().invoke(app, argv)
    after = snapshot(sb.root)
    assert res.exit_code == case.status, (res.exit_code, res.stderr, res.stdout[-2000:])
    if case.status != 0:
        line = one_error_line(res.stderr)
    else:
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) <= 1, res.stderr
        line = res.stderr.strip()
    for word in case.words:
        assert word in line, (word, line)
    assert_untouched(before, after, case.target, case.writes)
    return line
