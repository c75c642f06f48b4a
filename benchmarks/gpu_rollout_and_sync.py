"""GPU benchmark, one host, one run (issue 4.8): the runner against bare sglang.

(a) rollout tokens/s through the runner (the colocated scenario's `rollout_tokens_per_s`) vs the same prompts sent
    by plain HTTP to a standalone sglang started with the runner's exact argv and env (after one warm-up rollout),
    and vs that server when all its memory is released and resumed before each rollout, as the colocated loop does;
(b) colocated weight-sync GB/s through the runner (`weight_sync_s` of steps >= 1) vs the bare sglang update path:
    the model's tensors on the GPU, sglang's FlattenedTensorBucket + MultiprocessingSerializer, 512 MiB buckets
    POSTed to /update_weights_from_tensor (flush on the last), nothing else - once back to back (the allocator
    reuses the buckets' memory, and the engine's mapping of it) and once with `torch.cuda.empty_cache()` between
    syncs (outside the timing), as a colocated trainer must to give the memory back to the engine, so every sync
    maps fresh buckets; and once inside the colocated cycle (rollout, release all memory, resume weights, bare
    sync, resume kv_cache + cuda_graph), the engine state the runner's syncs meet; all also as a fraction of the
    GPU's device-to-device copy bandwidth (`Tensor.copy_`, 1 GiB).
The runner's first rollout (cold, like the standalone's warm-up) is left out of its median.
Usage (on a GPU host, see tools/gpu-host.sh):
  python3 benchmarks/gpu_rollout_and_sync.py --matrix matrix/bench-gpu.yaml --out /tmp/out/bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from pathlib import Path

from tabulate import tabulate

from harness.matrix import models, scenario
from harness.run import execute, session

BUCKET = 512 * 2**20


def post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip().startswith(("{", "[")) else {}


def start_standalone(launch: dict):
    """The runner's engine argv/env on a fresh port."""
    from harness.runner.engines.process import EngineProcess
    from harness.runner.host import free_port

    argv = list(launch["argv"])
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    url = f"http://127.0.0.1:{port}"
    engine = EngineProcess(argv, {**os.environ, **launch["env"]}, "/tmp/bench-standalone-engine.log", url)
    engine.start()
    engine.wait_healthy(600)
    return engine, url


def standalone_rollout(url: str, scn: dict, steps: int, cycle: bool) -> list[float]:
    """The runner's prompts per step by plain HTTP: tokens/s per step. `cycle`: release and resume all memory
    before each rollout, as the colocated loop does (the memory saver's cost without the runner)."""
    from harness.runner.loop import Run
    from harness.runner.spec import RunSpec

    run, batch = Run(RunSpec.from_json(scn)), scn["settings"]["batch"]
    vocab = int(scn["model"]["config"]["vocab_size"])
    rates = []
    for step in range(1, steps + 1):
        if cycle:
            post(url, "/flush_cache", {})
            post(url, "/release_memory_occupation", {"tags": None})
            post(url, "/resume_memory_occupation", {"tags": None})
        prompts, _ = run.prompts(step, vocab)
        params = {
            "max_new_tokens": batch["max_new_tokens"],
            "temperature": 1.0,
            "ignore_eos": True,
            "sampling_seed": 7 * step,
        }
        t = time.perf_counter()
        outs = post(url, "/generate", {"input_ids": prompts, "sampling_params": params, "return_logprob": True})
        rates.append(sum(len(o["output_ids"]) for o in outs) / (time.perf_counter() - t))
    return rates


def bare_sync(
    url: str, model_path: str, repeats: int, empty_cache: bool, cycle: dict | None = None
) -> tuple[list[float], int]:
    """Seconds per full sync over sglang's own bucket + serializer, and the bytes sent; with `empty_cache`, the
    caching allocator gives its blocks back between syncs (untimed); with `cycle` (the scenario), each sync sits in
    the colocated loop's cycle: a rollout, release of all memory and resume of the weights before it, resume of
    kv_cache + cuda_graph after it (untimed)."""
    import torch
    from safetensors.torch import load_file
    from sglang.srt.utils import MultiprocessingSerializer
    from sglang.srt.utils.patch_torch import monkey_patch_torch_reductions

    from harness.runner.weight_sync import chunks

    try:
        from sglang.srt.weight_sync.tensor_bucket import FlattenedTensorBucket
    except ImportError:
        from sglang.srt.model_executor.model_runner import FlattenedTensorBucket
    monkey_patch_torch_reductions()
    named = [
        (n, t.to("cuda", torch.bfloat16)) for n, t in load_file(str(Path(model_path) / "model.safetensors")).items()
    ]
    total = sum(t.numel() * t.element_size() for _, t in named)
    groups = chunks(named, BUCKET)  # the same 512 MiB grouping; everything after it is sglang's own
    seconds = []
    for _ in range(repeats):
        if cycle is not None:
            standalone_rollout(url, cycle, 1, cycle=False)
            post(url, "/flush_cache", {})
            post(url, "/release_memory_occupation", {"tags": None})
            post(url, "/resume_memory_occupation", {"tags": ["weights"]})
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i, group in enumerate(groups):
            bucket = FlattenedTensorBucket(named_tensors=group)
            payload = MultiprocessingSerializer.serialize(
                {"flattened_tensor": bucket.get_flattened_tensor(), "metadata": bucket.get_metadata()}, output_str=True
            )
            reply = post(
                url,
                "/update_weights_from_tensor",
                {
                    "serialized_named_tensors": [payload],
                    "load_format": "flattened_bucket",
                    "flush_cache": i == len(groups) - 1,
                },
            )
            assert reply.get("success"), reply
        seconds.append(time.perf_counter() - start)
        if cycle is not None:
            post(url, "/resume_memory_occupation", {"tags": ["kv_cache", "cuda_graph"]})
        if empty_cache:
            torch.cuda.empty_cache()
    return seconds, total


def d2d_copy_gbps(repeats: int = 20) -> float:
    import torch

    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    torch.cuda.synchronize()
    return repeats * src.numel() / (time.perf_counter() - start) / 1e9


def draw(figures: dict, out: Path) -> None:
    """rollout.png and sync.png: each arm's median with its min..max over the steps (arms a run lacks stay empty)."""
    from harness.report import plots

    rt, ws = figures["rollout_tokens_per_s"], figures["weight_sync"]
    plots.metric_series(
        ["runner", "standalone", "standalone, release+resume"],
        {"tokens/s": [rt["runner"], rt["standalone"], rt["standalone_release_resume"]]},
        out / "rollout.png",
        f"rollout tokens/s ({figures['gpu']})",
        "tokens/s",
    )
    arms = (
        ("bytes", "runner_s"),
        ("bare_bytes", "bare_s"),
        ("bare_bytes", "bare_empty_cache_s"),
        ("bare_bytes", "bare_in_cycle_s"),
    )
    gbps = [[ws[size] / s / 1e9 for s in ws.get(seconds, [])] for size, seconds in arms]
    plots.metric_series(
        ["runner", "bare sglang", "bare, empty_cache between", "bare, in the colocated cycle"],
        {"GB/s": gbps},
        out / "sync.png",
        f"colocated weight sync GB/s, {ws['bytes'] / 1e9:.2f} GB ({figures['gpu']})",
        "GB/s",
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--matrix", default="matrix/bench-gpu.yaml")
    p.add_argument("--out", required=True)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--figures-only", action="store_true", help="redraw the figures from --out/bench.json")
    args = p.parse_args()
    out = Path(args.out)
    if args.figures_only:
        draw(json.loads((out / "bench.json").read_text()), out)
        return
    out.mkdir(parents=True, exist_ok=True)
    (scn_obj,) = scenario.load(Path(args.matrix), models.load()).scenarios
    sess = session.Session(out, execute.Options(infra_retries=0))
    res = execute.run_scenario(scn_obj, out, sess.options)
    sess.results.append(res)
    sess.write_reports()
    run_dir = out / scn_obj.id
    scn = json.loads((run_dir / "scenario.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").open()]
    launch = next(e for e in events if e["event"] == "engine_launch")
    versions = next((e["versions"] for e in events if e["event"] == "environment"), {})
    runner_tps = res.metrics["rollout_tokens_per_s"][1:]  # step 1 is cold: the standalone's warm-up
    runner_sync = res.metrics["weight_sync_s"]
    sync_bytes = res.metrics["weight_sync_bytes"][-1]
    model_path = launch["argv"][launch["argv"].index("--model-path") + 1]
    (out / "runner.json").write_text(
        json.dumps(
            {
                "rollout_tokens_per_s": runner_tps,
                "weight_sync_s": runner_sync,
                "weight_sync_bytes": sync_bytes,
                "versions": versions,
            }
        )
    )
    engine, url = start_standalone(launch)
    try:
        bare_tps = standalone_rollout(url, scn, len(runner_tps) + 1, cycle=False)[1:]  # the first: warm-up
        cycled_tps = standalone_rollout(url, scn, len(runner_tps), cycle=True)
        bare_s, bare_bytes = bare_sync(url, model_path, args.repeats, empty_cache=False)
        fresh_s, _ = bare_sync(url, model_path, args.repeats, empty_cache=True)
        cycle_s, _ = bare_sync(url, model_path, args.repeats, empty_cache=True, cycle=scn)
    finally:
        engine.stop()
    d2d = d2d_copy_gbps()
    med = statistics.median
    runner_gbps, bare_gbps = sync_bytes / med(runner_sync) / 1e9, bare_bytes / med(bare_s) / 1e9
    fresh_gbps = bare_bytes / med(fresh_s) / 1e9
    cycle_gbps = bare_bytes / med(cycle_s) / 1e9
    figures = {
        "scenario": scn_obj.id,
        "verdict": res.verdict.value,
        "gpu": versions.get("gpu"),
        "versions": versions,
        "rollout_tokens_per_s": {
            "runner": runner_tps,
            "standalone": bare_tps,
            "standalone_release_resume": cycled_tps,
            "ratio_of_medians": med(runner_tps) / med(bare_tps),
            "ratio_to_release_resume": med(runner_tps) / med(cycled_tps),
            "target": 0.98,
        },
        "weight_sync": {
            "bytes": sync_bytes,
            "bare_bytes": bare_bytes,
            "runner_s": runner_sync,
            "bare_s": bare_s,
            "bare_empty_cache_s": fresh_s,
            "bare_empty_cache_gbps": fresh_gbps,
            "bare_in_cycle_s": cycle_s,
            "bare_in_cycle_gbps": cycle_gbps,
            "ratio_to_in_cycle": runner_gbps / cycle_gbps,
            "runner_gbps": runner_gbps,
            "bare_gbps": bare_gbps,
            "ratio": runner_gbps / bare_gbps,
            "ratio_to_empty_cache": runner_gbps / fresh_gbps,
            "target": 0.9,
            "d2d_copy_gbps": d2d,
            "runner_fraction_of_d2d": runner_gbps / d2d,
            "bare_fraction_of_d2d": bare_gbps / d2d,
        },
    }
    (out / "bench.json").write_text(json.dumps(figures, indent=1))
    ws = figures["weight_sync"]
    rt = figures["rollout_tokens_per_s"]
    rows = [
        [
            "rollout tokens/s (median of steps)",
            f"{med(runner_tps):.0f}",
            f"{med(bare_tps):.0f}",
            f"{rt['ratio_of_medians']:.3f}",
            ">= 0.98",
        ],
        [
            "  bare with release/resume before each rollout",
            "",
            f"{med(cycled_tps):.0f}",
            f"{rt['ratio_to_release_resume']:.3f}",
            "",
        ],
        [
            f"weight sync GB/s ({sync_bytes / 1e9:.2f} GB)",
            f"{runner_gbps:.2f}",
            f"{bare_gbps:.2f}",
            f"{ws['ratio']:.3f}",
            ">= 0.9",
        ],
        ["  bare with empty_cache between syncs", "", f"{fresh_gbps:.2f}", f"{ws['ratio_to_empty_cache']:.3f}", ""],
        [
            "  bare in the colocated cycle (rollout, release, resume weights)",
            "",
            f"{cycle_gbps:.2f}",
            f"{ws['ratio_to_in_cycle']:.3f}",
            "",
        ],
        [
            "  as a fraction of D2D copy",
            f"{ws['runner_fraction_of_d2d']:.3f}",
            f"{ws['bare_fraction_of_d2d']:.3f}",
            "",
            f"D2D copy {d2d:.0f} GB/s",
        ],
    ]
    text = "\n".join(
        [
            f"# GPU benchmark: runner vs bare sglang ({figures['gpu']})",
            "",
            f"scenario `{scn_obj.id}` ({res.verdict.value}); {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            tabulate(rows, headers=["", "runner", "bare sglang", "ratio", "target"], tablefmt="github"),
            "",
        ]
    )
    (out / "bench.md").write_text(text)
    print(text)
    draw(figures, out)  # last: a plotting failure loses no figure


if __name__ == "__main__":
    main()
