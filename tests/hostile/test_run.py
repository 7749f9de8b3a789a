"""`toymodels run` given hostile input: every case ends with its exit status and one line naming what the user typed
(2: bad input, before any folder is made; 1: the environment), and leaves everything else as it was."""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest
import torch
from hostile.sandbox import SMOKE, TINY, Case, check_case

OUT = ["--out", "out"]


def run(*args: str, out: bool = True):
    """`run` with these arguments (and --out out)."""
    return lambda sb: [a.replace("@", str(sb.root)) for a in ("run", *args, *(OUT if out else []))]


def smoke(*args: str):
    return run(*SMOKE, *args)


def toml(name: str, text: str):
    return lambda sb: sb.write(name, text)


def nested(depth: int, kind: str) -> str:
    return ("N = " + "[" * depth + "]" * depth) if kind == "toml" else ('{"N": ' + "[" * depth + "]" * depth + "}")


def hold_lock(sb) -> None:
    """Another process's lock on the folder (flock locks one open file description; this one stays open)."""
    sb.copy("out")
    fd = os.open(sb.root / "out" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sb.notes["fd"] = fd  # closed with the test's sandbox (the process keeps it until then)


def link_inside(sb) -> None:
    sb.copy("out")
    sb.write("outside.txt", "not the tool's")
    os.symlink(sb.root / "outside.txt", sb.root / "out" / "groups" / "g000" / "extra.txt")


def with_fifo(sb) -> None:
    os.mkfifo(sb.root / "pipe.toml")


def dir_entry(rel: str):
    def setup(sb) -> None:
        sb.copy("out")
        path = sb.root / "out" / rel
        if path.is_file():
            path.unlink()
        path.mkdir(parents=True)
    return setup


def file_entry(rel: str):
    def setup(sb) -> None:
        sb.copy("out")
        shutil.rmtree(sb.root / "out" / rel)
        sb.write(f"out/{rel}", "x")
    return setup


def replace_file(rel: str, content: str):
    def setup(sb) -> None:
        sb.copy("out")
        (sb.root / "out" / rel).write_text(content)
    return setup


RESUME = ("--set", "steps=8", "--resume")

CASES = [
    # ---- values of fields (--set) -------------------------------------------------------------------------------
    Case("lr inf", smoke("--set", "lr=inf"), 2, ("field 'lr'", "finite")),
    Case("lr nan", smoke("--set", "lr=nan"), 2, ("field 'lr'", "finite")),
    Case("lr negative", smoke("--set", "lr=-1"), 2, ("field 'lr'", "greater than 0")),
    Case("lr zero", smoke("--set", "lr=0"), 2, ("field 'lr'",)),
    Case("lr 10**400", smoke("--set", "lr=10**400"), 2, ("field 'lr'", "finite", "10**400")),
    Case("lr -10**400", smoke("--set", "lr=-10**400"), 2, ("field 'lr'", "finite")),
    Case("lr 1e400", smoke("--set", "lr=1e400"), 2, ("field 'lr'", "finite")),
    Case("lr huge fraction", smoke("--set", "lr=" + "9" * 350 + "/1"), 2, ("field 'lr'", "finite")),
    Case("lr 0**-1", smoke("--set", "lr=0**-1"), 2, ("field 'lr'", "number")),
    Case("lr a word", smoke("--set", "lr=fast"), 2, ("field 'lr'", "number", "'fast'")),
    Case("lr empty", smoke("--set", "lr="), 2, ("field 'lr'",)),
    Case("lr 10**-400 is zero", smoke("--set", "lr=10**-400"), 2, ("field 'lr'", "greater than 0")),
    Case("eps zero", smoke("--set", "eps=0"), 2, ("field 'eps'", "greater than 0")),
    Case("eps 1e-300 (the sampler's int64 gaps)", smoke("--set", "eps=1e-300"), 2, ("field 'eps'", "at least")),
    Case("eps 2**-60", smoke("--set", "eps=2**-60"), 2, ("field 'eps'", "at least")),
    Case("eps above 1", smoke("--set", "eps=2"), 2, ("field 'eps'", "less than or equal to 1")),
    Case("eps 1/0", smoke("--set", "eps=1/0"), 2, ("field 'eps'",)),
    Case("eps negative fraction", smoke("--set", "eps=-1/64"), 2, ("field 'eps'",)),
    Case("N zero", smoke("--set", "N=0"), 2, ("field 'N'",)),
    Case("N negative", smoke("--set", "N=-3"), 2, ("field 'N'",)),
    Case("N fractional", smoke("--set", "N=1.5"), 2, ("field 'N'",)),
    Case("N true", smoke("--set", "N=true"), 2, ("field 'N'",)),
    Case("N 10^23", smoke("--set", "N=99999999999999999999999"), 2, ("field 'N'", "at most")),
    Case("N 5000 digits", smoke("--set", "N=" + "9" * 5000), 2, ("field 'N'",)),
    Case("k too big for memory", smoke("--set", "k=100000000"), 2, ("needs about", "k=100000000")),
    Case("steps zero", smoke("--set", "steps=0"), 2, ("field 'steps'",)),
    Case("steps 10^12", smoke("--set", "steps=1000000000000"), 2, ("needs about",)),
    Case("batch_size zero", smoke("--set", "batch_size=0"), 2, ("field 'batch_size'",)),
    Case("seed negative", smoke("--set", "seed=-1"), 2, ("field 'seed'",)),
    Case("m above N", smoke("--set", "m=64", "--set", "N=32"), 2, ("field 'm'", "at most N=32")),
    Case("device gpu", smoke("--set", "device=gpu"), 2, ("field 'device'", "'gpu'")),
    Case("device cuda:99999", smoke("--set", "device=cuda:99999"), 2, ("field 'device'",)),
    Case("device cuda:10^22", smoke("--set", "device=cuda:" + "9" * 22), 2, ("field 'device'",)),
    Case("device mps off a Mac", smoke("--set", "device=mps"), 2, ("field 'device'", "'mps' is not available")),
    Case("device cuda without CUDA", smoke("--device", "cuda"), 2, ("field 'device'", "device=cpu")),
    Case("dtype float8", smoke("--set", "dtype=float8"), 2, ("field 'dtype'",)),
    Case("dtype tf32 on the CPU", smoke("--set", "dtype=tf32"), 2, ("'tf32'",)),
    Case("optimizer misspelt", smoke("--set", "optimizer=adamm"), 2, ("field 'optimizer'", "did you mean 'adam'")),
    Case("schedule misspelt", smoke("--set", "schedule=cosin"), 2, ("field 'schedule'", "did you mean 'cosine'")),
    Case("task unknown", smoke("--set", "task=sort"), 2, ("field 'task'", "'decoder'")),
    Case("model misspelt", smoke("--set", "model=emm"), 2, ("field 'model'", "did you mean 'em'")),
    Case("nonlinearity tanh", smoke("--set", "nonlinearity=tanh"), 2, ("field 'nonlinearity'",)),
    Case("distribution gaussian", smoke("--set", "distribution=gaussian"), 2, ("field 'distribution'",)),
    Case("sampler fast", smoke("--set", "sampler=fast"), 2, ("field 'sampler'",)),
    Case("firing random", smoke("--set", "firing=random"), 2, ("field 'firing'",)),
    Case("threads 10^5 (torch crashes)", smoke("--set", "threads=100000"), 2, ("field 'threads'", "1024")),
    Case("--threads 10^5", smoke("--threads", "100000"), 2, ("field 'threads'",)),
    Case("threads negative", smoke("--set", "threads=-1"), 2, ("field 'threads'",)),
    Case("checkpoint_every negative", smoke("--set", "checkpoint_every=-1"), 2, ("field 'checkpoint_every'",)),
    Case("momentum 1", smoke("--set", "momentum=1"), 2, ("field 'momentum'",)),
    Case("warmup_frac 1", smoke("--set", "warmup_frac=1"), 2, ("field 'warmup_frac'",)),
    Case("lamb_clamp 0", smoke("--set", "lamb_clamp=0"), 2, ("field 'lamb_clamp'",)),
    Case("bias_offset inf", smoke("--set", "bias_offset=inf"), 2, ("field 'bias_offset'", "finite")),
    Case("importance_decay 0", smoke("--set", "importance_decay=0"), 2, ("field 'importance_decay'",)),
    # ---- names of fields, and how they are given ------------------------------------------------------------------
    Case("no = in --set", smoke("--set", "lr"), 2, ("field=value", "'lr'")),
    Case("no name in --set", smoke("--set", "=3"), 2, ("field=value",)),
    Case("unknown field", smoke("--set", "lrr=0.1"), 2, ("unknown field 'lrr'", "did you mean 'lr'")),
    Case("unknown field, any case", smoke("--set", "LR=0.1"), 2, ("unknown field 'LR'", "did you mean 'lr'")),
    Case("unknown field before a bad value", smoke("--set", "eps=2", "--set", "lrr=1"), 2,
         ("unknown field 'lrr'",)),
    Case("unknown --sweep field before a bad --set value", smoke("--set", "eps=2", "--sweep", "stpes=1,2"), 2,
         ("unknown field 'stpes'", "did you mean 'steps'")),
    Case("empty --sweep", smoke("--sweep", "lr="), 2, ("'lr'", "non-empty")),
    Case("a field set twice", smoke("--set", "lr=0.1", "--set", "lr=0.2"), 2, ("field 'lr' is given twice",)),
    Case("a grid value twice", smoke("--sweep", "lr=0.01,1e-2"), 2, ("'lr'", "given twice")),
    Case("--device and --set device", smoke("--device", "cpu", "--set", "device=cpu"), 2, ("field 'device'",)),
    # ---- options ----------------------------------------------------------------------------------------------------
    Case("seeds 0", smoke("--seeds", "0"), 2, ("field 'seeds'",)),
    Case("seeds a word", smoke("--seeds", "abc"), 2, ("'--seeds'",)),
    Case("10^7 seeds", smoke("--seeds", "10000000", "--dry-run"), 2, ("field 'grid'", "at most")),
    Case("scale unknown", smoke("--scale", "huge"), 2, ("field 'scale'", "smoke")),
    Case("backend unknown", smoke("--backend", "cloud"), 2, ("field 'backend'", "local")),
    Case("backend slurm without SLURM", smoke("--backend", "slurm"), 2, ("sbatch",),
         setup=lambda sb: sb.monkeypatch.setenv("PATH", str(sb.root / "no-bin"))),
    Case("a SLURM option on the local backend", smoke("--slurm-partition", "gpu"), 2, ("only with",)),
    Case("an option misspelt", smoke("--seed", "3"), 2, ("--seed", "--seeds")),
    Case("no target", run(out=False), 2, ("Missing argument",), target=None),
    Case("a command misspelt", lambda sb: ["rnu", "LR1"], 2, ("No such command 'rnu'", "'run'"), target=None),
    # ---- the target: presets and sweep files ----------------------------------------------------------------------
    Case("unknown preset", run("LRX", "--scale", "smoke"), 2, ("unknown preset 'LRX'", "did you mean")),
    Case("preset in lower case", run("lr1", "--scale", "smoke"), 2, ("'lr1'", "did you mean 'LR1'")),
    Case("missing sweep file", run("nope.toml"), 2, ("'nope.toml' not found",)),
    Case("a folder as target", run("@"), 2, ("is a folder",)),
    Case("a FIFO as sweep file", run("pipe.toml"), 2, ("not a regular file",), setup=with_fifo),
    Case("yaml file", run("x.yaml"), 2, ("x.yaml", ".toml or .json"), setup=toml("x.yaml", "N: 3")),
    Case("a missing yaml file", run("y.yaml"), 2, ("unknown preset 'y.yaml'",)),
    Case("empty TOML", run("e.toml"), 2, ("e.toml", "sets no field"), setup=toml("e.toml", "")),
    Case("malformed TOML", run("b.toml"), 2, ("b.toml", "not valid TOML"), setup=toml("b.toml", "N = = 3\n")),
    Case("TOML key twice", run("c.toml"), 2, ("c.toml", "not valid TOML"), setup=toml("c.toml", "N = 3\nN = 4\n")),
    Case("JSON key twice", run("i.json"), 2, ("field 'N' is given twice",), setup=toml("i.json", '{"N": 8, "N": 9}')),
    Case("JSON list", run("l.json"), 2, ("must hold an object",), setup=toml("l.json", "[1, 2]")),
    Case("binary junk", run("j.json"), 2, ("not UTF-8",), setup=toml("j.json", b"\xff\xfe\x00\x81junk")),
    Case("JSON true as a size", run("t.json"), 2, ("field 'N'", "must be a number"),
         setup=toml("t.json", '{"N": true}')),
    Case("JSON number of 5000 digits", run("d.json"), 2, ("d.json", "digits"),
         setup=toml("d.json", '{"N": ' + "9" * 5000 + "}")),
    Case("TOML nested 3000 deep", run("n.toml"), 2, ("n.toml", "nested"), setup=toml("n.toml", nested(3000, "toml"))),
    Case("JSON nested 3000 deep", run("n.json"), 2, ("n.json", "nested"), setup=toml("n.json", nested(3000, "json"))),
    Case("JSON nested 100000 deep", run("m.json"), 2, ("nested",), setup=toml("m.json", nested(100000, "json"))),
    Case("JSON nested 40 deep", run("o.json"), 2, ("field 'N'", "nested more than"),
         setup=toml("o.json", nested(40, "json"))),
    Case("TOML: unknown key before a bad value", run("u.toml"), 2, ("unknown field 'lrr'", "did you mean 'lr'"),
         setup=toml("u.toml", "eps = 2\nlrr = 0.1\n")),
    Case("TOML: unknown grid key before a bad value", run("v.toml"), 2, ("unknown field 'stesp'",),
         setup=toml("v.toml", "eps = 2\n[grid]\nstesp = [1, 2]\n")),
    Case("TOML: unknown key in a section", run("w.toml"), 2, ("unknown field 'lrr'",),
         setup=toml("w.toml", "[base.data]\nN = 0\nlrr = 3\n")),
    Case("TOML: misspelt section", run("s.toml"), 2, ("'dta'", "did you mean 'data'"),
         setup=toml("s.toml", "[base.dta]\nN = 8\n[base.optim]\nlr = 0.1\n")),
    Case("TOML: misspelt key of the sweep", run("k.toml"), 2, ("'seed'",),
         setup=toml("k.toml", TINY + "seedz = 3\n")),
    Case("TOML: base is a number", run("bn.toml"), 2, ("field 'base'",), setup=toml("bn.toml", "N = 8\nbase = 3\n")),
    Case("TOML: an empty grid list", run("g.toml"), 2, ("'lr'", "non-empty"),
         setup=toml("g.toml", TINY + "[grid]\nlr = []\n")),
    Case("TOML: a grid value not a list", run("h.toml"), 2, ("'lr'", "list"),
         setup=toml("h.toml", TINY + "[grid]\nlr = 0.1\n")),
    Case("TOML: 10^9 instances", run("big.toml"), 2, ("field 'grid'", "instances"),
         setup=toml("big.toml", TINY + "[grid]\n" + "".join(
             f"{f} = [{', '.join(str(v) for v in range(1, 1001))}]\n" for f in ("seed", "k", "steps")))),
    Case("TOML: seeds negative", run("sn.toml"), 2, ("field 'seeds'",), setup=toml("sn.toml", TINY + "seeds = -1\n")),
    Case("TOML: name leaving runs/", run("dots.toml", out=False), 2, ("field 'name'",),
         setup=toml("dots.toml", TINY + 'name = ".."\n'), target="runs"),
    Case("TOML: name with a slash", run("sl.toml", out=False), 2, ("field 'name'",),
         setup=toml("sl.toml", TINY + 'name = "a/../../b"\n'), target="runs"),
    Case("TOML: lr 10**400 as a string", run("p.toml"), 2, ("field 'lr'", "finite"),
         setup=toml("p.toml", TINY + 'lr = "10**400"\n')),
    Case("TOML: lr inf", run("q.toml"), 2, ("field 'lr'", "finite"), setup=toml("q.toml", TINY + "lr = inf\n")),
    Case("a file name with spaces and accents runs as its name", run("my run é.toml", "--dry-run"), 0,
         ("1 instances",), setup=toml("my run é.toml", TINY)),
    Case("a BOM is fine", run("bom.toml", "--dry-run"), 0, ("1 instances",), setup=toml("bom.toml", "\ufeff" + TINY)),
    # ---- --out -----------------------------------------------------------------------------------------------------
    Case("--out name too long", run(*SMOKE, "--out", "x" * 300, out=False), 2,
         ("a name of 300 bytes", "at most 255"), target=None),
    Case("--out with a long middle name", run(*SMOKE, "--out", "a/" + "y" * 256 + "/b", out=False), 2,
         ("256 bytes",), target="a"),
    Case("--out with a NUL byte", run(*SMOKE, "--out", "a\0b", out=False), 2, ("--out", "null byte"), target=None),
    Case("--out is a file", run(*SMOKE, "--out", "f.txt", out=False), 2, ("is a file, not a folder",),
         setup=toml("f.txt", "x"), target=None),
    Case("--out under a file", run(*SMOKE, "--out", "f.txt/sub", out=False), 2, ("is a file",),
         setup=toml("f.txt", "x"), target=None),
    Case("--out under /proc", run(*SMOKE, "--out", "/proc/toymodels-nope/x", out=False), 2, ("/proc",), target=None),
    Case("--out a folder of other files", smoke(), 2, ("not a toymodels results folder",),
         setup=toml("out/mine.txt", "keep")),
    Case("--out the working folder", run(*SMOKE, "--out", "", out=False), 2, ("not a toymodels results folder",),
         setup=toml("mine.txt", "keep"), target=None),
    # ---- an existing results folder ---------------------------------------------------------------------------------
    Case("existing folder without --resume", smoke("--set", "steps=8"), 2, ("already holds a sweep", "--resume"),
         setup=lambda sb: sb.copy("out")),
    Case("resume of a different sweep", smoke("--set", "steps=16", "--resume"), 2, ("holds a different sweep",),
         setup=lambda sb: sb.copy("out")),
    Case("resume with a bad value", smoke("--set", "lr=inf", "--resume"), 2, ("field 'lr'",),
         setup=lambda sb: sb.copy("out")),
    Case("resume of a folder in use", smoke(*RESUME), 2, ("in use by",), setup=hold_lock),
    Case("resume through a link inside", smoke(*RESUME), 2, ("symbolic link",), setup=link_inside),
    Case("sweep.json is a folder", smoke(*RESUME), 2, ("sweep.json",), setup=dir_entry("sweep.json")),
    Case("sweep.json damaged", smoke(*RESUME), 2, ("sweep.json",), setup=replace_file("sweep.json", "{not json")),
    Case("sweep.json a list", smoke(*RESUME), 2, ("sweep.json",), setup=replace_file("sweep.json", "[]")),
    Case("sweep.json of another format", smoke(*RESUME), 2, ("sweep.json", "format"),
         setup=replace_file("sweep.json", '{"format_version": 99, "sweep": {}}')),
    Case("DONE is a folder", smoke(*RESUME), 2, ("DONE",), setup=dir_entry("groups/g000/DONE")),
    Case("a temporary entry that is a folder", smoke(*RESUME), 2, (".x.tmp",), setup=dir_entry("groups/g000/.x.tmp")),
    Case(".lock is a folder", smoke(*RESUME), 2, (".lock",), setup=dir_entry(".lock")),
    Case("groups is a file", smoke(*RESUME), 2, ("groups",), setup=file_entry("groups")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_run(case, sandbox):
    if "without CUDA" in case.id and torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    if "mps" in case.id and torch.backends.mps.is_available():
        pytest.skip("needs a machine without an Apple GPU")
    try:
        check_case(case, sandbox)
    finally:
        if "fd" in sandbox.notes:
            os.close(sandbox.notes["fd"])
