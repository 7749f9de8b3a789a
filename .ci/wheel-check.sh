#!/usr/bin/env bash
# CI: the package as users get it, not the editable source tree. Builds the sdist and the wheel (`python -m build`
# builds the wheel from the sdist, as pip does from PyPI, so a file the sdist lacks is missing from the wheel too),
# checks that the wheel holds every file of the package, installs it into a fresh virtual environment and runs
# `toymodels presets`, a smoke sweep and `report` from there, in a folder outside the repository so that the
# source tree cannot be imported by accident. Any missing package file fails here, and so does metadata that PyPI
# would refuse (`twine check --strict`) or a wheel without py.typed (PEP 561: type checkers read the annotations).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
# removed in the background: deleting the venv's ~800 MB of small files takes a minute or more on the CI disk
trap 'nohup nice -n 19 rm -rf "$work" >/dev/null 2>&1 &' EXIT
start=$SECONDS
say() { echo "wheel-check: $*"; }
# quiet LOG CMD...: run CMD with its output in $work/LOG, shown only when it fails (pip is chatty here)
quiet() { local log="$work/$1"; shift; "$@" >"$log" 2>&1 || { tail -n 40 "$log"; say "failed: $*"; exit 1; }; }

quiet pip.log python3 -m pip install build twine
quiet build.log python3 -m build --outdir "$work/dist" "$repo"
sdist=$(ls "$work"/dist/toymodels-*.tar.gz)
wheel=$(ls "$work"/dist/toymodels-*.whl)
say "built $(basename "$sdist") and $(basename "$wheel") ($((SECONDS - start)) s)"
quiet twine.log python3 -m twine check --strict "$sdist" "$wheel"
say "twine check --strict passed: the metadata and the README render as PyPI shows them"

# Every file of the package in the source tree (CI's is a fresh clone) must be in the wheel and the sdist.
python3 - "$repo" "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
from pathlib import Path

repo, wheel, sdist = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
pkg = repo / "src" / "toymodels"
files = {p.relative_to(pkg.parent).as_posix() for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as tar:
    in_sdist = {"/".join(n.split("/")[2:]) for n in tar.getnames() if n.split("/")[1:2] == ["src"]}
missing = sorted(f"{f} (wheel)" for f in files - in_wheel) + sorted(f"{f} (sdist)" for f in files - in_sdist)
missing += [] if "toymodels/py.typed" in in_wheel else ["toymodels/py.typed (wheel: the PEP 561 marker)"]
if missing:
    sys.exit("package files missing from the built distributions (declare them in pyproject.toml "
             "[tool.setuptools.package-data]):\n  " + "\n  ".join(missing))
print(f"wheel-check: all {len(files)} package files are in the wheel and the sdist")
EOF

python3 -m venv "$work/venv"
py="$work/venv/bin/python"
# torch first and pinned: the CI machines carry a local CPU build of exactly 2.13.0, while the wheel's unpinned
# torch>=2.1 would pull a multi-GB CUDA build. --no-compile: precompiling torch's thousands of modules takes
# minutes on the 2-core CI machine; the commands below compile only what they import.
quiet pip.log "$py" -m pip install --no-compile torch==2.13.0
quiet pip.log "$py" -m pip install --no-compile "$wheel"
say "installed the wheel into a fresh venv ($((SECONDS - start)) s)"

cd "$work"  # outside the repository: only the installed package can be imported
where=$("$py" -c 'import toymodels; print(toymodels.__file__)')
case "$where" in
  "$work/venv/"*) say "toymodels imported from $where" ;;
  *) echo "wheel-check: toymodels imported from $where, not from the virtual environment" >&2; exit 1 ;;
esac
export OMP_NUM_THREADS=1  # the CI machine has 2 cores
tm="$work/venv/bin/toymodels"
quiet presets.txt "$tm" presets
grep -q '^LR1 ' "$work/presets.txt" || { echo "wheel-check: 'toymodels presets' does not list LR1" >&2; exit 1; }
quiet run.txt "$tm" run LR1 --scale smoke --out runs/LR1-smoke --no-progress --no-report
quiet report.txt "$tm" report runs/LR1-smoke
test -s runs/LR1-smoke/instances.parquet && test -s runs/LR1-smoke/report.html
ls runs/LR1-smoke/figures/*.png >/dev/null
say "presets, a smoke sweep and report ran from the wheel; passed in $((SECONDS - start)) s"
