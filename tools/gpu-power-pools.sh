#!/bin/bash
# On a lent GPU host, after tools/gpu-host.sh's installs: grow benchmarks/gpu_power.py's pools one run at a time
# within SECONDS, attached to one Ray head on this host (started here unless one answers), so no run pays Ray's start.
# Each run goes to the side with fewer runs so far (A on a tie), so pools grown over several calls stay even (one
# host's: runs of two hosts differ by more than the effects measured). A run starts only while the time left exceeds
# the last run's by a fifth (RUN_S before the first: the time a run is expected to take), since a run cut by the
# deadline is device time lost (warm runs of one host vary by ~15%); a run cut all the same is kept as `interrupted`.
# Where $OUT is set (a device call), the pools are tarred into $OUT/pools.tgz after every run and the host's JIT
# caches into $OUT/jitcache.tgz once (carry it back as .jit/jitcache.tgz; tools/gpu-host.sh unpacks it and says why
# it holds only when the installed files are dated before it).
#   RUN_S=90 tools/gpu-power-pools.sh SECONDS POOLS [gpu_power.py pools options: -k, --steps, --b-args, --b-inject]
set -u
source "$(dirname "$0")/gpu-host.sh"
export PYTHONPATH=$PWD:$PYTHONPATH RAY_AUTH_MODE=disabled
deadline=$((SECONDS + $1)) pools=$2 last=${RUN_S:-0}
shift 2
ray_cli() { python3 -c 'import sys; from ray.scripts.scripts import main; sys.argv[0] = "ray"; main()' "$@"; }
ray_cli status --address 127.0.0.1:6379 >/dev/null 2>&1 ||
  ray_cli start --head --port=6379 --num-gpus=1 --include-dashboard=false --disable-usage-stats >/dev/null
runs() { find "$pools/$1" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
while left=$((deadline - SECONDS)); [ "$left" -gt $((last + last / 5)) ]; do
  side=a
  [ "$(runs a)" -le "$(runs b)" ] || side=b
  started=$SECONDS
  timeout -s TERM "$left" python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml --pairs 1 --sides "$side" \
    --out "$pools" --ray-address 127.0.0.1:6379 "$@" || break
  last=$((SECONDS - started))
  [ -z "${OUT:-}" ] && continue
  tar czf "$OUT/pools.tgz" -C "$(dirname "$pools")" "$(basename "$pools")"
  [ -f "$OUT/jitcache.tgz" ] || tar czf "$OUT/jitcache.tgz" -C /tmp jitcache
done
