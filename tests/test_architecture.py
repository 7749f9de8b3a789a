"""The package's shape, as docs/architecture.md promises it: no import cycles, no hidden imports inside functions,
no private names used across modules, no module over 400 lines, no side effects at import, no dispatch on a
family's name outside the families, and no citation of files users do not have."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "toymodels"
MAX_LINES = 400
# layers that dispatch through the family registry and must never name a family
DISPATCHERS = ["config", "engine", "metrics", "results", "plotting", "running", "report", "app"]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imported_modules(name: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, ast.ImportFrom | ast.Import]]:
    """(package module imported, the import node) for every import of a toymodels module in ``path``."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("toymodels"):
                target = node.module
            else:
                continue
            for cand in [target] + [f"{target}.{a.name}" for a in node.names]:
                if cand in mods:
                    found.append((cand, node))
        elif isinstance(node, ast.Import):
            found += [(a.name, node) for a in node.names if a.name in mods]
    return found


def test_no_import_cycles():
    mods = modules()
    graph = {name: {t for t, _ in imported_modules(name, path, mods)
                    if t != name and not name.startswith(t + ".")}  # a submodule may import its own package
             for name, path in mods.items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack else f"{node}->{nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [])
    assert not cycles, cycles


def test_package_imports_inside_functions_only_defer_a_heavy_dependency_and_say_so():
    mods = modules()
    offenders = []
    for name, path in mods.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("toymodels")):
                    said = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                    if not said:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"package imports inside functions without a comment saying why: {offenders}"


def test_no_private_names_across_modules():
    mods = modules()
    offenders = []
    for name, path in mods.items():
        for target, node in imported_modules(name, path, mods):
            if isinstance(node, ast.ImportFrom):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level
                   for a in n.names if f"{name.rsplit('.', 1)[0]}.{a.name}" in mods or a.name in mods}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_importing_the_package_has_no_process_wide_side_effects():
    code = ("import os, sys; os.umask(0o027); import matplotlib; before = dict.__getitem__(matplotlib.rcParams, 'backend'); "
            "import toymodels, toymodels.cli, toymodels.reproduce; "
            "assert os.umask(0o027) == 0o027, 'umask changed'; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
            "assert dict.__getitem__(matplotlib.rcParams, 'backend') == before, 'backend switched'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_dispatching_layers_never_name_a_family():
    pattern = re.compile(r"""["'](em|tms|quadratic)["']""")
    offenders = []
    for entry in DISPATCHERS:
        paths = sorted((PACKAGE / entry).rglob("*.py"))
        for path in paths:
            for i, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if pattern.search(code) and not code.lstrip().startswith((">>>", "DEFAULT_MODEL = ")):
                    offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_generic_floors_import_nothing_from_a_family_package():
    """config, engine, metrics, results, plotting, running, report and app reach a family only through the generic
    interface (``toymodels.families``, ``families.base``, the registry), never a family's own package: a family's
    figures, report section and dashboard panel come through its hooks."""
    mods = modules()
    families = PACKAGE / "families"
    packages = {f"toymodels.families.{d.name}" for d in families.iterdir() if (d / "__init__.py").exists()}
    offenders = []
    for name, path in mods.items():
        if (name.split(".") + [""])[1] not in DISPATCHERS:  # toymodels.<floor>...
            continue
        for target, node in imported_modules(name, path, mods):
            if any(target == pkg or target.startswith(pkg + ".") for pkg in packages):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} -> {target}")
    assert packages >= {"toymodels.families.em", "toymodels.families.sae"}, packages
    assert not offenders, offenders


def test_nothing_cites_files_users_do_not_have():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py"),
             *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in files if p != Path(__file__)
                 for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"shared/[A-Za-z]", line)]
    assert not offenders, offenders
    cited = {m for p in PACKAGE.rglob("*.py") for m in re.findall(r"docs/papers\.md §([0-9.]+[0-9])", p.read_text())}
    papers = (ROOT / "docs" / "papers.md").read_text()
    missing = sorted(s for s in cited if not re.search(rf"^#+ +§?{re.escape(s)}\b", papers, re.M))
    assert not missing, f"sections cited in the code but not in docs/papers.md: {missing}"


# The floors of docs/architecture.md, bottom first: a module imports only from its own floor or the floors below.
# A module belongs to the floor of its longest prefix.
LAYERS = [
    ["config"],
    ["engine"],
    ["metrics", "results"],
    ["plotting"],
    ["families"],
    ["running"],
    ["report", "app"],
    ["reproduce"],
    ["api", "cli", "__main__", ""],
]


def layer_of(module: str) -> int:
    name = module.removeprefix("toymodels").removeprefix(".")
    best, row = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or (prefix and name.startswith(prefix + "."))) and len(prefix) > best:
                best, row = len(prefix), i
    return row


def test_modules_import_only_from_their_layer_or_below():
    mods = modules()
    unplaced = [name for name in mods if layer_of(name) is None]
    assert not unplaced, f"place these modules in LAYERS here and in docs/architecture.md's table: {unplaced}"
    upward = [f"{name} (row {layer_of(name)}) -> {target} (row {layer_of(target)})"
              for name, path in mods.items() for target, _ in imported_modules(name, path, mods)
              if target != name and not name.startswith(target + ".") and layer_of(target) > layer_of(name)]
    assert not upward, upward


def test_the_top_of_the_package_holds_the_entry_points_and_the_floors_only():
    top = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    files = [name for name in top if not (PACKAGE / name).is_dir()]
    assert files == ["__init__.py", "__main__.py", "api.py", "cli.py", "py.typed"], files  # py.typed: PEP 561
    floors = {prefix.split(".")[0] for row in LAYERS for prefix in row if prefix and "." not in prefix}
    folders = {name for name in top if (PACKAGE / name).is_dir()}
    assert folders == floors - {"api", "cli", "__main__"}, folders ^ (floors - {"api", "cli", "__main__"})
    assert len(LAYERS) <= 9
