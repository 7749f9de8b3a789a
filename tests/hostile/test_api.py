"""The Python API given hostile input: `tm.run`, `tm.load`, `tm.preset` and the config classes raise our own error
classes (ConfigError, ResultsError) with a one-line message naming what was given, before any folder is made, and
leave every file as it was."""

from __future__ import annotations

import pytest
from hostile.sandbox import snapshot

import toymodels as tm
from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.results.store import ResultsError

TINY = {"N": 16, "m": 4, "k": 8, "steps": 4, "batch_size": 8}


def deep(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def run(cfg, **kwargs):
    return lambda sb: tm.run(cfg, **{"out": "out", "progress": False, "report": False, **kwargs})


CASES = [  # (id, call given the sandbox, error class, words of its message, setup)
    ("tm.run(None)", run(None), ConfigError, ("tm.run needs",), None),
    ("tm.run(3.5)", run(3.5), ConfigError, ("tm.run needs", "float"), None),
    ("tm.run(['LR1'])", run(["LR1"]), ConfigError, ("tm.run needs", "list"), None),
    ("tm.run('LRX')", run("LRX"), ConfigError, ("unknown preset 'LRX'",), None),
    ("tm.run('lr1')", run("lr1"), ConfigError, ("did you mean 'LR1'",), None),
    ("tm.run(unknown field)", run({**TINY, "lrr": 1}), ConfigError, ("unknown field 'lrr'", "did you mean 'lr'"), None),
    ("tm.run(unknown field and a bad value)", run({**TINY, "eps": 2, "lrr": 1}), ConfigError, ("'lrr'",), None),
    ("tm.run(lr 10**400)", run({**TINY, "lr": "10**400"}), ConfigError, ("field 'lr'", "finite"), None),
    ("tm.run(lr inf)", run({**TINY, "lr": float("inf")}), ConfigError, ("field 'lr'", "finite"), None),
    ("tm.run(lr 10**400 as an int)", run({**TINY, "lr": 10**400}), ConfigError, ("field 'lr'",), None),
    ("tm.run(eps 1e-300)", run({**TINY, "eps": 1e-300}), ConfigError, ("field 'eps'", "at least"), None),
    ("tm.run(N nested 1000 deep)", run({**TINY, "N": deep(1000)}), ConfigError, ("field 'N'", "nested"), None),
    ("tm.run(a grid of a number)", run({**TINY, "grid": 3}), ConfigError, ("grid",), None),
    ("tm.run(base a number)", run({**TINY, "base": 3}), ConfigError, ("field 'base'",), None),
    ("tm.run(threads 10**5)", run({**TINY, "threads": 10**5}), ConfigError, ("field 'threads'",), None),
    ("tm.run(device mps)", run({**TINY, "device": "mps"}), ConfigError, ("'mps'",), None),
    ("tm.run(out an int)", run(TINY, out=123), ConfigError, ("out", "int"), None),
    ("tm.run(out too long)", run(TINY, out="x" * 300), ConfigError, ("out", "300 bytes"), None),
    ("tm.run(out a file)", run(TINY, out="f.txt"), ConfigError, ("is a file, not a folder",),
     lambda sb: sb.write("f.txt", "keep")),
    ("tm.run(out holds a sweep)", run(TINY, out="res"), ConfigError, ("already holds a sweep",),
     lambda sb: sb.copy("res")),
    ("tm.preset('LRX')", lambda sb: tm.preset("LRX"), ConfigError, ("unknown preset 'LRX'",), None),
    ("tm.preset(['LR1'])", lambda sb: tm.preset(["LR1"]), ConfigError, ("preset", "list"), None),
    ("tm.preset(scale huge)", lambda sb: tm.preset("LR1", scale="huge"), ConfigError, ("field 'scale'",), None),
    ("tm.preset(seeds 0)", lambda sb: tm.preset("LR1", seeds=0), ConfigError, ("field 'seeds'",), None),
    ("tm.load('nowhere')", lambda sb: tm.load("nowhere"), ResultsError, ("no such results folder",), None),
    ("tm.load(None)", lambda sb: tm.load(None), ResultsError, ("tm.load needs",), None),
    ("tm.load(a file)", lambda sb: tm.load("f.txt"), ResultsError, ("f.txt",), lambda sb: sb.write("f.txt", "x")),
    ("tm.load(damaged sweep.json)", lambda sb: tm.load("res"), ResultsError, ("sweep.json",),
     lambda sb: (sb.copy("res"), (sb.root / "res" / "sweep.json").write_text("{"))),
    ("ExperimentConfig.from_flat(unknown)", lambda sb: ExperimentConfig.from_flat({"stpes": 3}), ConfigError,
     ("did you mean 'steps'",), None),
    ("ExperimentConfig.from_flat(optimizer)", lambda sb: ExperimentConfig.from_flat({"optimizer": "Adam"}),
     ConfigError, ("did you mean 'adam'",), None),
    ("SweepConfig.from_file(yaml)", lambda sb: SweepConfig.from_file("x.yaml"), ConfigError, (".toml or .json",),
     None),
    ("SweepConfig.from_dict(a list)", lambda sb: SweepConfig.from_dict([1]), ConfigError, ("dict",), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_api(case, sandbox):
    _, call, error, words, setup = case
    if setup is not None:
        setup(sandbox)
    before = snapshot(sandbox.root)
    with pytest.raises(error) as caught:
        call(sandbox)
    message = str(caught.value)
    assert type(caught.value) is error or issubclass(type(caught.value), error)
    assert "\n" not in message and message.strip(), message
    for word in words:
        assert word in message, (word, message)
    assert snapshot(sandbox.root) == before
