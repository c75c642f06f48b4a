#!/bin/bash
# On a lent GPU host, after tools/gpu-host.sh's installs: grow benchmarks/gpu_power.py's pools one run at a time
# within SECONDS, in ABBA order (A B B A A B ...; the order goes on across calls), attached to one Ray head on this host
# (started here unless one answers), so no run pays Ray's start. Pools never mix hosts: runs of two hosts differ by more
# than the effects measured. The host's first run compiles sglang's JIT kernels (~100 s more): it runs first, outside
# the pools (POOLS-cold, 3 steps), and says whether the scenario passes at all. A run starts only while the time left
# exceeds the last run's by a fifth (RUN_S before the first), since a run cut by the deadline is device time lost; a run
# cut all the same is kept as `interrupted`. Where $OUT is set (a device call), the pools are tarred into
# $OUT/pools.tgz after every run.
#   RUN_S=90 tools/gpu-power-pools.sh SECONDS POOLS -k EXPR [gpu_power.py pools options: --steps, --b-args, --b-inject]
set -u
source "$(dirname "$0")/gpu-host.sh"
export PYTHONPATH=$PWD:$PYTHONPATH RAY_AUTH_MODE=disabled
deadline=$((SECONDS + $1)) pools=$2 last=${RUN_S:-0}
shift 2
ray_cli() { python3 -c 'import sys; from ray.scripts.scripts import main; sys.argv[0] = "ray"; main()' "$@"; }
ray_cli status --address 127.0.0.1:6379 >/dev/null 2>&1 ||
  ray_cli start --head --port=6379 --num-gpus=1 --include-dashboard=false --disable-usage-stats >/dev/null
pool=(python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml --ray-address 127.0.0.1:6379)   # timeout runs no function
save() { [ -n "${OUT:-}" ] && (cd "$(dirname "$pools")" && tar czf "$OUT/pools.tgz" "$(basename "$pools")"*); true; }
if [ "${COLD_RUN:-1}" = 1 ] && [ ! -d "$pools-cold" ]; then
  timeout -s TERM $((deadline - SECONDS)) "${pool[@]}" --runs 1 --out "$pools-cold" --steps 3 "$@" || exit 1
  save
  grep -q '"verdict": "pass"' "$pools"-cold/a/*/result.json || { echo "the cold run did not pass: no pools"; exit 1; }
fi
while left=$((deadline - SECONDS)); [ "$left" -gt $((last + last / 5)) ]; do
  started=$SECONDS
  timeout -s TERM "$left" "${pool[@]}" --runs 1 --out "$pools" "$@" || break
  last=$((SECONDS - started))
  save
done
