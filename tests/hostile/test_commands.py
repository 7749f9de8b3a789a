"""`toymodels report`, `status`, `export-sae`, `app` and `reproduce` given hostile input: each case ends with its exit
status and one line naming what the user typed, and leaves every file as it was (none of these cases may write)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest
from hostile.sandbox import Case, check_case


def cli(*args: str):
    return lambda sb: [a.replace("@", str(sb.root)) for a in args]


def copied(*edits):
    """A copy of the finished EM folder as 'res', then each edit(folder)."""
    def setup(sb):
        folder = sb.copy("res")
        for edit in edits:
            edit(folder)
    return setup


def write(rel: str, content: str | bytes):
    def edit(folder):
        path = folder / rel
        if path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return edit


def remove(rel: str):
    def edit(folder):
        path = folder / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return edit


def as_folder(rel: str):
    def edit(folder):
        remove(rel)(folder)
        (folder / rel).mkdir()
    return edit


def truncate(rel: str, size: int):
    def edit(folder):
        with open(folder / rel, "r+b") as f:
            f.truncate(size)
    return edit


def sweep_json_with(**changes):
    def edit(folder):
        meta = json.loads((folder / "sweep.json").read_text())
        meta["sweep"]["base"]["optim"].update(changes)
        (folder / "sweep.json").write_text(json.dumps(meta))
    return edit


def no_streamlit_start(sb):
    """An app case must never start a server: it is refused before."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"streamlit was started: {args}")
    sb.monkeypatch.setattr(subprocess, "Popen", refuse)


def app_case(id: str, args, status: int, words, setup=None) -> Case:
    def prepare(sb):
        no_streamlit_start(sb)
        if setup is not None:
            return setup(sb)
    return Case(id, cli("app", *args), status, words, setup=prepare, target=None)


def port_in_use(sb):
    no_streamlit_start(sb)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sb.notes["socket"] = sock
    sb.notes["port"] = sock.getsockname()[1]


def without(module: str):
    def setup(sb):
        import importlib.util
        real = importlib.util.find_spec
        sb.monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == module else
                               real(name, *rest))
    return setup


DAMAGED = [  # (id, edits, words): a results folder that report and status must refuse in one line
    ("sweep.json is a folder", [as_folder("sweep.json")], ("sweep.json",)),
    ("sweep.json damaged", [write("sweep.json", "{oops")], ("sweep.json", "damaged")),
    ("sweep.json empty", [write("sweep.json", "")], ("sweep.json",)),
    ("sweep.json a list", [write("sweep.json", "[1]")], ("sweep.json",)),
    ("sweep.json binary", [write("sweep.json", b"\xff\xfe\x00")], ("sweep.json",)),
    ("sweep.json of another format", [write("sweep.json", '{"format_version": 2, "sweep": {}}')],
     ("sweep.json", "format")),
    ("sweep.json with lr -1", [sweep_json_with(lr=-1)], ("sweep.json",)),
    ("sweep.json with an unknown field", [sweep_json_with(lrr=1)], ("sweep.json", "lrr")),
    ("sweep.json missing", [remove("sweep.json")], ("sweep.json",)),
    ("groups is a file", [remove("groups"), write("groups", "x")], ("groups",)),
]
REPORT_ONLY = [("figures is a file", [write("figures", "x")], ("figures",))]
#: a finished group whose files no longer match its DONE record is left out of the report, which says so
LEFT_OUT = [
    ("a group table damaged", [write("groups/g000/instances.parquet", b"PAR1junk")]),
    ("a group table missing", [remove("groups/g000/metrics.parquet")]),
    ("the checkpoints cut short", [truncate("groups/g000/checkpoints.safetensors", 100)]),
]

CASES = [
    # ---- report ------------------------------------------------------------------------------------------------------
    Case("report: no folder", cli("report", "nowhere"), 2, ("nowhere", "no such results folder"), target=None),
    Case("report: a file", cli("report", "f.txt"), 2, ("f.txt",), setup=lambda sb: sb.write("f.txt", "x"),
         target=None),
    Case("report: an empty folder", cli("report", "empty"), 2, ("sweep.json",),
         setup=lambda sb: (sb.root / "empty").mkdir(), target=None),
    Case("report: a name too long", cli("report", "r" * 300), 2, ("r" * 20,), target=None),
    Case("report: no argument", cli("report"), 2, ("Missing argument",), target=None),
    *[Case(f"report: {id}", cli("report", "res"), 2, words, setup=copied(*edits), target=None)
      for id, edits, words in DAMAGED + REPORT_ONLY],
    *[Case(f"report: {id} is left out", cli("report", "res"), 0, (), setup=copied(*edits), target="res", writes=True)
      for id, edits in LEFT_OUT],
    # ---- status ------------------------------------------------------------------------------------------------------
    Case("status: no folder", cli("status", "nowhere"), 2, ("nowhere", "no such results folder"), target=None),
    Case("status: a file", cli("status", "f.txt"), 2, ("f.txt", "no such results folder"),
         setup=lambda sb: sb.write("f.txt", "x"), target=None),
    Case("status: a name too long", cli("status", "s" * 300), 2, ("s" * 20,), target=None),
    Case("status: jobs.json damaged", cli("status", "res"), 2, ("jobs.json",),
         setup=copied(write("slurm/jobs.json", "{no")), target=None),
    Case("status: jobs.json a list", cli("status", "res"), 2, ("jobs.json",),
         setup=copied(write("slurm/jobs.json", "[]")), target=None),
    Case("status: jobs.json a folder", cli("status", "res"), 2, ("jobs.json",),
         setup=copied(lambda f: (f / "slurm" / "jobs.json").mkdir(parents=True)), target=None),
    *[Case(f"status: {id}", cli("status", "res"), 2, words, setup=copied(*edits), target=None)
      for id, edits, words in DAMAGED],
    # ---- export-sae --------------------------------------------------------------------------------------------------
    Case("export-sae: no folder", cli("export-sae", "nowhere", "r0000", "x"), 2, ("no such results folder",),
         target=None),
    Case("export-sae: an unknown run id", cli("export-sae", "sae", "r0099", "x"), 2, ("'r0099'",),
         setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: a run id like a path", cli("export-sae", "sae", "../../etc", "x"), 2, ("'../../etc'",),
         setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: a missing checkpoint step", cli("export-sae", "sae", "r0000", "x", "--step", "999"), 2,
         ("999",), setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: a negative step", cli("export-sae", "sae", "r0000", "x", "--step", "-1"), 2, ("-1",),
         setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: a step not a number", cli("export-sae", "sae", "r0000", "x", "--step", "last"), 2,
         ("'--step'",), setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: not an SAE", cli("export-sae", "res", "r0000", "x"), 2, ("model 'sae'",),
         setup=copied(), target=None),
    Case("export-sae: OUT is a file", cli("export-sae", "sae", "r0000", "f.txt"), 2, ("f.txt",),
         setup=lambda sb: (sb.copy("sae", "sae"), sb.write("f.txt", "x")), target=None),
    Case("export-sae: OUT holds files", cli("export-sae", "sae", "r0000", "full"), 2, ("not an empty folder",),
         setup=lambda sb: (sb.copy("sae", "sae"), sb.write("full/keep.txt", "mine")), target=None),
    Case("export-sae: OUT name too long", cli("export-sae", "sae", "r0000", "o" * 300), 2, ("300 bytes",),
         setup=lambda sb: sb.copy("sae", "sae"), target=None),
    Case("export-sae: OUT under a file", cli("export-sae", "sae", "r0000", "f.txt/x"), 2, ("f.txt",),
         setup=lambda sb: (sb.copy("sae", "sae"), sb.write("f.txt", "x")), target=None),
    Case("export-sae: sweep.json damaged", cli("export-sae", "res", "r0000", "x"), 2, ("sweep.json",),
         setup=copied(write("sweep.json", "{")), target=None),
    # ---- app (never starts streamlit) --------------------------------------------------------------------------------
    app_case("app: no folder", ["nowhere"], 2, ("no folder 'nowhere'",)),
    app_case("app: a file", ["f.txt"], 2, ("no folder 'f.txt'",), setup=lambda sb: sb.write("f.txt", "x")),
    app_case("app: port 0", ["@", "--port", "0"], 2, ("'--port'",)),
    app_case("app: port 70000", ["@", "--port", "70000"], 2, ("'--port'", "65535")),
    app_case("app: port -1", ["@", "--port", "-1"], 2, ("'--port'",)),
    app_case("app: port 10^30", ["@", "--port", "1" + "0" * 30], 2, ("'--port'",)),
    app_case("app: port a word", ["@", "--port", "http"], 2, ("'--port'",)),
    app_case("app: host not an address", ["@", "--host", "999.1.1.1"], 2, ("--host '999.1.1.1'",)),
    app_case("app: host not of this machine", ["@", "--host", "192.0.2.1"], 2, ("--host '192.0.2.1'",)),
    app_case("app: host empty", ["@", "--host", ""], 2, ("--host ''",)),
    app_case("app: host with a NUL", ["@", "--host", "a\0b"], 2, ("--host",)),
    app_case("app: without streamlit", ["@"], 2, ("pip install 'toymodels[app]'",), setup=without("streamlit")),
    app_case("app: without plotly", ["@"], 2, ("plotly",), setup=without("plotly")),
    Case("app: a port in use", lambda sb: ["app", str(sb.root), "--port", str(sb.notes["port"])], 1,
         ("in use",), setup=port_in_use, target=None),
    # ---- reproduce (nothing is trained: every case is refused first) ------------------------------------------------
    Case("reproduce: nothing named", cli("reproduce"), 2, ("name the claims",), target=None),
    Case("reproduce: an unknown claim", cli("reproduce", "BOGUS"), 2, ("unknown claim 'BOGUS'",), target=None),
    Case("reproduce: a misspelt claim", cli("reproduce", "lr1"), 2, ("'lr1'", "did you mean 'LR1'"), target=None),
    Case("reproduce: a good and a bad claim", cli("reproduce", "LR1", "LR9"), 2, ("'LR9'",), target=None),
    Case("reproduce: seeds 0", cli("reproduce", "LR1", "--seeds", "0"), 2, ("'--seeds'",), target=None),
    Case("reproduce: seeds a word", cli("reproduce", "LR1", "--seeds", "x"), 2, ("'--seeds'",), target=None),
    Case("reproduce: scale unknown", cli("reproduce", "LR1", "--scale", "huge"), 2, ("field 'scale'",), target=None),
    Case("reproduce: steps a word", cli("reproduce", "LR1", "--steps", "abc"), 2, ("field 'steps'",), target=None),
    Case("reproduce: steps zero", cli("reproduce", "LR1", "--steps", "0"), 2, ("steps",), target=None),
    Case("reproduce: steps of an unknown claim", cli("reproduce", "LR1", "--steps", "4096,LR9=2"), 2, ("LR9",),
         target=None),
    Case("reproduce: --docs a file", cli("reproduce", "LR1", "--docs", "f.txt"), 2, ("--docs 'f.txt'", "a file"),
         setup=lambda sb: sb.write("f.txt", "x"), target=None),
    Case("reproduce: --out a file", cli("reproduce", "LR1", "--out", "f.txt"), 2, ("--out 'f.txt'", "a file"),
         setup=lambda sb: sb.write("f.txt", "x"), target=None),
    Case("reproduce: --docs name too long", cli("reproduce", "LR1", "--docs", "d" * 300), 2, ("--docs",),
         target=None),
    Case("reproduce: --out name too long", cli("reproduce", "LR1", "--out", "o" * 300), 2, ("--out",), target=None),
    Case("reproduce: no claim but --no-train", cli("reproduce", "--no-train"), 2, ("name the claims",), target=None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_command(case, sandbox):
    try:
        check_case(case, sandbox)
    finally:
        if "socket" in sandbox.notes:
            sandbox.notes["socket"].close()
