#!/bin/bash
# On a lent GPU host, after tools/gpu-host.sh's installs: grow benchmarks/gpu_power.py's pools by up to PAIRS A/B pairs
# within SECONDS (then SIGTERM: the run in flight ends as `interrupted`, and analyze leaves it out), attached to one Ray
# head on this host (started here unless one answers), so no run pays Ray's start.
#   tools/gpu-power-pools.sh PAIRS SECONDS OUT [gpu_power.py pools options: -k, --b-args, --b-inject, --sglang ...]
set -u
source "$(dirname "$0")/gpu-host.sh"
export PYTHONPATH=$PWD:$PYTHONPATH RAY_AUTH_MODE=disabled
pairs=$1 seconds=$2 out=$3
shift 3
ray_cli() { python3 -c 'import sys; from ray.scripts.scripts import main; sys.argv[0] = "ray"; main()' "$@"; }
ray_cli status --address 127.0.0.1:6379 >/dev/null 2>&1 ||
  ray_cli start --head --port=6379 --num-gpus=1 --include-dashboard=false --disable-usage-stats >/dev/null
timeout -s TERM "$seconds" python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml --pairs "$pairs" \
  --out "$out" --ray-address 127.0.0.1:6379 "$@"
