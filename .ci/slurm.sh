#!/usr/bin/env bash
# Start or stop the single-node SLURM cluster that the slurm tests (tests/running/test_launch.py, marker `slurm`) run
# against, with the scripts in ../shared/slurm/ beside the clone (they need root; start takes ~30-60 s, and installs
# Debian's slurm packages first if they are missing).
#
#   bash .ci/slurm.sh start    before the tests (also installs the `slurm` extra, submitit, if it is missing)
#   bash .ci/slurm.sh stop     after them, also when they failed (e.g. from a trap)
#
# Without ../shared/slurm/ it only prints a notice (and the slurm tests skip themselves: no sbatch on PATH).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/../shared/slurm"

run() {  # run SCRIPT [ARGS...]: the script's exit status, or 0 with a notice if it is not there
  local script="$dir/$1"; shift
  if [ ! -f "$script" ]; then
    echo "[.ci/slurm.sh] $script not found: no SLURM cluster here, the slurm tests will be skipped"
    return 0
  fi
  bash "$script" "$@"
}

start() {
  # the SLURM backend's Python side (submitit, the `slurm` extra), if this environment lacks it
  if ! python3 -c 'import submitit' 2>/dev/null; then
    echo "[.ci/slurm.sh] installing the slurm extra (submitit)"
    python3 -m pip install --quiet -e "$root[slurm]" || return 1
  fi
  run start-slurm.sh
}

case "${1:-}" in
  start) start ;;
  stop) run stop-slurm.sh ;;
  *) echo "usage: bash .ci/slurm.sh start|stop" >&2; exit 2 ;;
esac
