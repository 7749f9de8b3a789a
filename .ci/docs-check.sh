#!/usr/bin/env bash
# CI: the documentation site (mkdocs.yml) builds with every warning an error: the README as the home page, the papers,
# the architecture, the reproduction documents, the examples and the API reference generated from the docstrings
# (mkdocstrings). A broken link or anchor, a page missing from the navigation or a docstring griffe cannot read
# fails here. The site goes to a temporary folder, removed on exit: nothing is written into the repository.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
start=$SECONDS

python3 -m pip install --quiet -e "$repo[docs]"
cd "$repo"
# NO_MKDOCS_2_WARNING: mkdocs-material's banner about its successor, not a warning about this site
NO_MKDOCS_2_WARNING=1 python3 -m mkdocs build --strict --site-dir "$site"
echo "docs-check: the site builds with warnings as errors ($((SECONDS - start)) s)"
