#!/usr/bin/env bash
# Install what the dashboard's browser test (tests/app/test_app_browser.py, marker `browser`) needs:
#   Debian's chromium (Playwright drives it through its executable path: no browser download, no `playwright install`)
#   and the project's `app` and `browser` extras from pyproject.toml (streamlit, plotly, a pinned playwright).
# Idempotent and quick when everything is there already. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # fonts: chromium only recommends them, and the screenshots need text
    $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
"$CHROMIUM" --version 2>/dev/null | head -n 1 || { echo "error: chromium is not usable at $CHROMIUM" >&2; exit 1; }

# pip runs only when an extra's requirement is missing or does not match its pin.
if ! "$PYTHON" - <<'PY'
import importlib.metadata as md, sys, tomllib
from packaging.requirements import Requirement

extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
for spec in extras["app"] + extras["browser"]:
    req = Requirement(spec)
    try:
        have = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(f"{req.name} is not installed")
    if not req.specifier.contains(have, prereleases=True):
        sys.exit(f"{req.name} {have} does not match {req.specifier}")
md.version("toymodels")
PY
then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[app,browser]'
fi
"$PYTHON" -c "import importlib.metadata as md; print(*(f'{p} {md.version(p)}' for p in ('streamlit', 'plotly', 'playwright')), sep=' | ')"
