#!/bin/bash
# On a lent GPU host, after tools/gpu-host.sh's installs: grow benchmarks/gpu_power.py's pools by up to ROUNDS rounds
# (one run per side in --sides, default A then B) within SECONDS (then SIGTERM: the run in flight ends as
# `interrupted`, and analyze leaves it out), attached to one Ray head on this host (started here unless one answers),
# so no run pays Ray's start. Where $OUT is set (a device call), the pools are tarred into $OUT/pools.tgz after every
# round: a call cut short by its limit still brings back every finished run.
#   tools/gpu-power-pools.sh ROUNDS SECONDS POOLS [gpu_power.py pools options: -k, --b-args, --b-inject, --sides ...]
set -u
source "$(dirname "$0")/gpu-host.sh"
export PYTHONPATH=$PWD:$PYTHONPATH RAY_AUTH_MODE=disabled
rounds=$1 deadline=$((SECONDS + $2)) pools=$3
shift 3
ray_cli() { python3 -c 'import sys; from ray.scripts.scripts import main; sys.argv[0] = "ray"; main()' "$@"; }
ray_cli status --address 127.0.0.1:6379 >/dev/null 2>&1 ||
  ray_cli start --head --port=6379 --num-gpus=1 --include-dashboard=false --disable-usage-stats >/dev/null
for _ in $(seq "$rounds"); do
  left=$((deadline - SECONDS))
  [ "$left" -gt 0 ] || break
  timeout -s TERM "$left" python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml --pairs 1 \
    --out "$pools" --ray-address 127.0.0.1:6379 "$@" || break
  [ -z "${OUT:-}" ] || tar czf "$OUT/pools.tgz" -C "$(dirname "$pools")" "$(basename "$pools")"
done
