#!/usr/bin/env bash
# CI: a newcomer's first contact. Takes the two set-up commands from the README's first code block and runs each,
# as written, in a fresh virtual environment on a fresh copy of the working tree (the files git tracks or does not
# ignore: what a clone holds). The only change: the main job runs at smoke scale instead of quick, to keep CI short.
# Fails if either command fails; the test command must pass with no extras beyond the ones it installs itself.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
# removed in the background: deleting a venv's ~800 MB of small files takes a minute or more on the CI disk
trap 'nohup nice -n 19 rm -rf "$work" >/dev/null 2>&1 &' EXIT
say() { echo "readme-check: $*"; }

# The README's first fenced block: its lines that are neither comments nor blank are the set-up commands.
mapfile -t commands < <(awk '/^```/ { if (inside) exit; inside = 1; next } inside && NF && $1 !~ /^#/' \
                        "$repo/README.md")
if [ "${#commands[@]}" -ne 2 ]; then
  say "the README's first code block should hold exactly two commands (install and run; test), found ${#commands[@]}"
  exit 1
fi
main_job="${commands[0]/--scale quick/--scale smoke}"
test_command="${commands[1]}"

# run NAME COMMAND: COMMAND in bash, in a fresh venv (activated, as a newcomer's shell would have it), from a fresh
# copy of the tree, without the CI-only switches that make optional tests mandatory.
run() {
  local name=$1 cmd=$2 start=$SECONDS
  local tree="$work/$name/toymodels"
  mkdir -p "$tree"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) \
    | tar -xf - -C "$tree"
  python3 -m venv "$work/$name/venv"
  say "$name: $cmd"
  (
    cd "$tree"
    # shellcheck disable=SC1091
    . "$work/$name/venv/bin/activate"
    env -u TOYMODELS_REQUIRE_BROWSER bash -c "$cmd"
  ) || { say "$name failed: $cmd"; exit 1; }
  say "$name passed in $((SECONDS - start)) s"
}

run main-job "$main_job"
test -s "$work/main-job/toymodels/runs/LR1-smoke/instances.parquet" \
  || { say "the main job left no runs/LR1-smoke/instances.parquet"; exit 1; }
run tests "$test_command"
