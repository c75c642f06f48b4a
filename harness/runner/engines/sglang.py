"""The engine servers' command lines: a real sglang server's, chosen by version (sglang-contract.md 2.2-2.3, 3, 8),
and the CPU reference engine's, which takes the same flags.

Only this file knows which flag or env var a given sglang version reads. It is pure (no sglang import), so the
version rules are testable on a machine without sglang.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.runner.spec import RunSpec


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0].replace(".post", "."))[:3])


def installed_version() -> str:
    from importlib.metadata import version

    return version("sglang")


def allreduce_env(version: tuple[int, ...], mode: str) -> dict[str, str]:
    """Env vars that select custom all-reduce v1/v2 the way this version reads them ('off' is a flag instead)."""
    if mode not in ("v1", "v2"):
        return {}
    on = "1" if mode == "v2" else "0"
    if version >= (0, 5, 12):
        return {"SGLANG_OPT_USE_CUSTOM_ALL_REDUCE_V2": on}
    return {"SGLANG_USE_JIT_ALL_REDUCE": "true" if mode == "v2" else "false"}


def trainer_env() -> dict[str, str]:
    """Env the trainer needs to share a weight-update group with the server. sglang's `_set_envs_and_config` sets
    NCCL_CUMEM_ENABLE to int(enable_symm_mem) - 0 here - in every version 0.5.10-0.5.23; a trainer left at NCCL's
    default (1) maps its P2P buffers another way and the first broadcast dies in transport/p2p.cc with
    `Cuda failure 'invalid argument'` (seen on 2xH200 with 0.5.12; OpenRLHF sets the same)."""
    return {"NCCL_CUMEM_ENABLE": "0"}


def reference_command(
    model_path: str,
    *,
    port: int,
    base_gpu_id: int,
    memory_saver: bool,
    seed: int = 0,
    host: str = "127.0.0.1",
    python: str = sys.executable,
) -> tuple[list[str], dict[str, str]]:
    """(argv, env overrides) for the CPU reference engine (engines/reference.py), sglang's flag names."""
    argv = [
        python,
        "-m",
        "harness.runner.engines.reference",
        "--model-path",
        model_path,
        "--host",
        host,
        "--port",
        str(port),
        "--base-gpu-id",
        str(base_gpu_id),
        "--seed",
        str(seed),
    ]
    return argv + (["--enable-memory-saver"] if memory_saver else []), {}


def server_command(
    model_path: str,
    version: tuple[int, ...],
    *,
    tp: int,
    ep: int,
    port: int,
    nccl_port: int,
    base_gpu_id: int,
    memory_saver: bool,
    custom_all_reduce: str,
    engine_args: dict[str, Any],
    seed: int = 0,
    host: str = "127.0.0.1",
    python: str = sys.executable,
) -> tuple[list[str], dict[str, str]]:
    """(argv, env overrides) for `python -m sglang.launch_server`."""
    graph_in_saver = memory_saver and str(engine_args.get("memory_saver_cuda_graph", True)).lower() in ("1", "true")
    argv = [
        python,
        "-m",
        "sglang.launch_server",
        "--model-path",
        model_path,
        "--load-format",
        "dummy",
        "--skip-tokenizer-init",
        "--tp-size",
        str(tp),
        "--ep-size",
        str(ep),
        "--base-gpu-id",
        str(base_gpu_id),
        "--gpu-id-step",
        "1",
        "--mem-fraction-static",
        str(engine_args.get("mem_fraction_static", 0.5)),
        "--host",
        host,
        "--port",
        str(port),
        "--nccl-port",
        str(nccl_port),
        "--log-level",
        "info",
        "--attention-backend",
        str(engine_args.get("attention_backend", "triton")),
        "--sampling-backend",
        str(engine_args.get("sampling_backend", "pytorch")),
        "--random-seed",
        str(seed),
        "--skip-server-warmup",
        "--trust-remote-code",
    ]
    max_bs = str(engine_args.get("cuda_graph_max_bs", 32))
    argv += ["--cuda-graph-max-bs", max_bs] if version <= (0, 5, 13) else ["--cuda-graph-max-bs-decode", max_bs]
    if memory_saver:
        argv.append("--enable-memory-saver")
        if version <= (0, 5, 13):
            argv.append("--disable-piecewise-cuda-graph")  # as the colocated launch of the 0.5.12 report
        elif graph_in_saver:
            argv += ["--cuda-graph-backend-prefill", "disabled"]  # breakable prefill graphs refuse the saver
    if "chunked_prefill_size" in engine_args:
        argv += ["--chunked-prefill-size", str(engine_args["chunked_prefill_size"])]
    if custom_all_reduce == "off":
        argv.append("--disable-custom-all-reduce")
    if str(engine_args.get("disable_cuda_graph", "false")).lower() in ("1", "true"):
        argv.append("--disable-cuda-graph")
    timer = str(engine_args.get("forward_timer", True)).lower() in ("1", "true")
    if timer:  # CUDA events around every forward pass, summed in /metrics (client.FORWARD_COUNTER)
        argv.append("--enable-metrics")
    env = {
        "SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION": "false",
        "NCCL_NVLS_ENABLE": "0",
        "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
        "NVSHMEM_DISABLE_NVLS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **allreduce_env(version, custom_all_reduce),
    }
    if timer:
        env["SGLANG_ENABLE_METRICS_DEVICE_TIMER"] = "1"
    if memory_saver:
        env["SGLANG_MEMORY_SAVER_CUDA_GRAPH"] = "true" if graph_in_saver else "false"
        env["SGLANG_ENABLE_TP_MEMORY_INBALANCE_CHECK"] = "false"
    return argv, env


def command_for(
    spec: RunSpec, model_path: str, port: int, base: int, host: str, nccl_port: int
) -> tuple[list[str], dict[str, str]]:
    """(argv, env overrides) of the engine a run's spec names: the reference engine, or sglang at its version."""
    axes, args = spec.axes, spec.settings.engine_args
    if axes.engine == "reference":
        return reference_command(
            model_path,
            port=port,
            base_gpu_id=base,
            memory_saver=axes.colocate,
            seed=int(args.get("seed", 0)),
            host=host,
        )
    ver = parse_version(installed_version() if axes.sglang in (None, "current") else axes.sglang)
    return server_command(
        model_path,
        ver,
        tp=axes.tp,
        ep=axes.ep,
        port=port,
        nccl_port=nccl_port,
        base_gpu_id=base,
        memory_saver=axes.colocate,
        custom_all_reduce=axes.custom_all_reduce,
        engine_args=args,
        host=host,
    )
