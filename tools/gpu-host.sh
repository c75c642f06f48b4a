#!/bin/bash
# Source this on a lent GPU host (no internet; torch preinstalled) before running colobench there.
#   source tools/gpu-host.sh; gpu_install .whl /tmp/site     # an offline wheelhouse (tools: shared/tools/gpu-wheelhouse)
#   gpu_install_trainer .whl /tmp/mcore                       # megatron-core, for the trainer only
#   python3 -m harness run --matrix matrix/bump.yaml -k "tp1 and colocate" --reports-dir /tmp/reports
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1   # NVLink multicast stays off
export TVM_FFI_CACHE_DIR=/tmp/jitcache/tvm-ffi TRITON_CACHE_DIR=/tmp/jitcache/triton FLASHINFER_WORKSPACE_BASE=/tmp/jitcache
export SGLANG_CACHE_DIR=/tmp/jitcache/sglang COLOBENCH_MODEL_CACHE=/tmp/models COLOBENCH_ENV_DIR=/tmp/envs
# JIT caches a former host compiled (tools/gpu-power-pools.sh brings them back; carried as .jit/jitcache.tgz).
jit_carried="$(dirname "${BASH_SOURCE[0]}")/../.jit/jitcache.tgz"
[ -f "$jit_carried" ] && [ ! -d /tmp/jitcache ] && tar xzf "$jit_carried" -C /tmp
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
# The engine's packages; megatron-core stays out (it flips torch_memory_saver's hook mode when sglang imports it).
# Byte-compiled once here: the lent hosts do not write bytecode (sys.dont_write_bytecode), so every engine process
# compiled sglang's sources again (median engine start on H200 hosts: 51 s without, 40 s with; 4 and 9 runs).
# Every installed file is dated 2000-01-01 before compiling: pip dates files at install time, so on a fresh host each
# header sglang's and flashinfer's JIT builds depend on is newer than the objects in a carried JIT cache, and ninja
# rebuilds them all (the fifth session's first CUDA-graph batch took 57 s with the cache carried; warm, 1.8 s).
gpu_install() {
  ls "$1"/*.whl | grep -v megatron_core | xargs python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
    --target "${2:-/tmp/site}" || return
  find "${2:-/tmp/site}" -exec touch -h -d @946684800 {} +
  python3 -m compileall -q -j 0 "${2:-/tmp/site}" >/dev/null 2>&1 || true    # a file that does not compile stays source
}
# megatron-core in a folder only the megatron trainer puts on its path (COLOBENCH_TRAINER_SITE).
gpu_install_trainer() {
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "${2:-/tmp/mcore}" "$1"/megatron_core-*.whl
}
export COLOBENCH_TRAINER_SITE=/tmp/mcore
# A python that sees one sglang version's site folder first (for COLOBENCH_SGLANG_PYTHONS).
gpu_python_for() { printf '#!/bin/sh\nPYTHONPATH=%s:/tmp/site exec python3 "$@"\n' "$2" > "$1"; chmod +x "$1"; }
