"""The RL step loop, in Miles' order, emitting events and metrics.

Startup: Ray for this run -> placement group -> engine (standalone or from the Ray actor on the trainer's bundle)
-> trainer actor -> initial sync (release all, resume weights, sync, check, resume kv_cache + cuda_graph).
Each step: generate -> engine release_memory_occupation -> trainer wake -> train step -> trainer sleep ->
engine resume(weights) -> weight sync -> check -> engine resume(kv_cache, cuda_graph). Split placement skips
release/resume and sleep/wake (engine and trainer own separate devices) and syncs by broadcast.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.runner import events, placement, tiny_model
from harness.runner.engines import sglang
from harness.runner.engines.client import EngineClient
from harness.runner.engines.process import EngineProcess, make_engine_actor
from harness.runner.faults import Faults
from harness.runner.host import context, free_port
from harness.runner.spec import RunSpec
from harness.runner.trainers.base import TrainerSpec

ALL_TAGS = ["weights", "kv_cache", "cuda_graph"]


class PhaseError(RuntimeError):
    pass


class Run:
    """One scenario's run; `phase()` wraps each step of the loop with its timeout and events."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.axes, self.settings = spec.axes, spec.settings
        self.faults = Faults(self.settings.fault)
        self.run_dir = Path(os.environ.get("COLOBENCH_RUN_DIR") or spec.run_dir)
        self.use_gpus = self.axes.engine == "sglang"
        self.colocate = bool(self.axes.colocate)
        self.phase_timeout = float(self.settings.arg("phase_timeout_s", max(60.0, self.settings.timeout_s / 2)))
        self.engine = None
        self.actor = None
        self.trainers: list = []
        self.copy_gbps = 0.0

    def get(self, ref: Any, phase: str) -> Any:
        import ray

        try:
            return ray.get(ref, timeout=self.phase_timeout)
        except ray.exceptions.GetTimeoutError:
            raise PhaseError(f"colobench: phase {phase} timed out after {self.phase_timeout:.0f}s") from None

    def timed(self, fn, *a, **kw) -> tuple[Any, float]:
        start = time.perf_counter()
        out = fn(*a, **kw)
        return out, time.perf_counter() - start

    # --- startup ------------------------------------------------------------------------------------------
    def launch_engine(self, lay: placement.Layout, pg) -> str:
        """Start the engine server (standalone or from the Ray actor on its bundle's node); returns its URL."""
        bundle = lay.engine_bundles[0][0]
        base = placement.base_gpu_id(lay, 0, str(self.settings.arg("device_mapping", "local")))
        self.base = base
        standalone = self.axes.launch == "standalone"
        host = "127.0.0.1" if standalone else lay.node_ips[bundle]  # the node that owns the server
        port = int(self.settings.arg("port", None) or (free_port() if standalone else lay.ports[bundle][0]))
        argv, env_over = sglang.command_for(self.spec, str(self.model_path), port, base, host, free_port())
        url = f"http://{host}:{port}"
        log_path = str(self.run_dir / "engine-0.log")
        events.emit(
            "engine_launch",
            engine=0,
            base_gpu_id=base,
            launch=self.axes.launch,
            argv=argv,
            env=env_over,
            physical_ids=lay.physical_ids,
            visible=lay.visible[bundle],
            node=host,
        )
        self.engine_started = time.perf_counter()
        if standalone:
            self.engine = EngineProcess(argv, {**os.environ, **env_over}, log_path, url)
            pid = self.engine.start()
            ctx = context("engine-launcher (standalone subprocess)", base, {"server_pid": pid})
            ctx["server_env"] = {k: v for k, v in sorted(self.engine.env.items()) if k in ctx["env"] or k in env_over}
            events.emit("launch_context", **ctx)
        else:
            self.actor = (
                make_engine_actor()
                .options(**placement.actor_options(pg, bundle, placement.ENGINE_SHARE, self.use_gpus))
                .remote()
            )
            self.get(self.actor.start.remote(argv, env_over, log_path, url, base), "engine launch")
        return url

    def wait_engine(self, url: str) -> EngineClient:
        import ray

        budget = float(self.settings.arg("engine_start_timeout_s", self.phase_timeout))
        if self.engine is not None:
            waited = self.engine.wait_healthy(budget)
        else:
            try:
                waited = ray.get(self.actor.wait_healthy.remote(budget))
            except ray.exceptions.RayTaskError as exc:
                raise PhaseError(str(exc.cause) if getattr(exc, "cause", None) else str(exc)) from None
        events.emit("engine_ready", engine=0, url=url, waited_s=round(waited, 3))
        if self.axes.engine == "sglang":  # what the server itself reports (its parsed args)
            info = EngineClient(url).server_info()
            events.emit(
                "launch_context",
                role="engine-server (sglang /server_info)",
                **{
                    k: info.get(k)
                    for k in (
                        "base_gpu_id",
                        "gpu_id_step",
                        "tp_size",
                        "ep_size",
                        "enable_memory_saver",
                        "disable_custom_all_reduce",
                        "mem_fraction_static",
                        "cuda_graph_max_bs",
                        "version",
                    )
                },
            )
        events.metric("engine_startup_s", time.perf_counter() - self.engine_started, "s")
        return EngineClient(url, timeout_s=self.phase_timeout)

    def create_trainer(self, lay: placement.Layout, pg, url: str) -> list:
        """Create the trainer actors, one per rank (their start overlaps the engine's); `ready_trainer` waits."""
        import ray

        megatron = self.axes.trainer == "megatron"
        if megatron:
            from harness.runner.trainers.megatron_trainer import MegatronTrainer as cls
        else:
            from harness.runner.trainers.torch_trainer import TorchTrainer as cls
        bundles = lay.trainer_bundles if megatron else lay.trainer_bundles[:1]  # the torch trainer has one rank
        first = bundles[0]
        self.trainers = []
        for rank, bundle in enumerate(bundles):
            spec = TrainerSpec(
                model_path=str(self.model_path),
                device="cuda" if self.use_gpus else "cpu",
                lr=float(self.settings.arg("lr", 1e-3)),
                seed=int(self.settings.arg("seed", 0)),
                engine_url=url,
                engine_kind=self.axes.engine,
                engine_tp=self.axes.tp,
                colocate=self.colocate,
                fault=self.settings.fault,
                local_rank=placement.local_index(lay, bundle),
                engine_base=self.base,
                rank=rank,
                world=len(bundles),
                master_addr=lay.node_ips[first],
                master_port=lay.ports[first][1],
                tp=self.axes.tp,
                ep=self.axes.ep,
                weights_check=self.settings.weights_check,
            )
            options = placement.actor_options(
                pg,
                bundle,
                placement.TRAINER_SHARE,
                self.use_gpus,
                sglang.trainer_env() if self.axes.engine == "sglang" else None,
            )
            self.trainers.append(ray.remote(cls).options(**options).remote(spec))
        return [t.ping.remote() for t in self.trainers]

    def on_trainers(self, phase: str, method: str, *args) -> Any:
        """Call `method` on every trainer rank (the collectives need them all); rank 0's answer."""
        return self.get([getattr(t, method).remote(*args) for t in self.trainers], phase)[0]

    def ready_trainer(self, pings: list) -> None:
        self.get(pings, "trainer start")
        events.emit("environment", versions=self.get(self.trainers[0].versions.remote(), "trainer versions"))
        for ctx in self.get([t.context.remote() for t in self.trainers], "trainer context"):
            events.emit("launch_context", **ctx)
        self.copy_gbps = self.get(self.trainers[0].copy_bandwidth.remote(), "copy bandwidth")
        events.metric("device_copy_gbps", self.copy_gbps, "GB/s")

    # --- the loop -----------------------------------------------------------------------------------------
    def record_sync(self, info: dict, step: int) -> None:
        # the initial sync (step 0) also pays first-use costs (shared memory setup, NCCL/IPC init): its own metric,
        # never a weight_sync_* sample
        if step:
            gbps = info["bytes"] / max(info["seconds"], 1e-9) / 1e9
            events.metric("weight_sync_s", info["seconds"], "s", step, each=info["seconds_each"])
            events.metric("weight_sync_bytes", info["bytes"], "B", step)
            events.metric("weight_sync_gbps", gbps, "GB/s", step)
            if self.copy_gbps:  # the sync against a plain copy of the same bytes on the trainer's device
                events.metric("weight_sync_copy_fraction", gbps / self.copy_gbps, "fraction", step)
        else:
            events.metric("initial_sync_s", info["seconds"], "s", step)
        if info["weights_match"] is not None:
            events.metric("weights_match", 1.0 if info["weights_match"] else 0.0, "bool", step)
            events.metric("weights_check_s", info["check_seconds"], "s", step)
        events.emit(
            "weight_sync_done",
            step=step,
            tensors=info["tensors"],
            posts=info["buckets"],
            weight_version=info["weight_version"],
            weights_match=info["weights_match"],
        )
        if info["weights_match"] is False:
            raise PhaseError(
                f"colobench: weights mismatch after sync (step {step}): {info['first_mismatch']} differs "
                "between trainer and engine"
            )

    def initial_sync(self, client: EngineClient) -> None:
        if self.colocate:
            client.release_memory_occupation(None)
            self.on_trainers("trainer sleep", "sleep")
            client.resume_memory_occupation(["weights"])
        info = self.on_trainers("initial sync", "sync", 0)
        self.record_sync(info, 0)
        if self.colocate:
            client.resume_memory_occupation(["kv_cache", "cuda_graph"])

    def prompts(self, step: int, vocab: int) -> tuple[list[list[int]], int]:
        batch = self.settings.batch
        rng = random.Random(1000 + step)
        group = 2
        groups = max(1, batch.prompts // group)
        base = [[rng.randrange(3, vocab) for _ in range(batch.prompt_len)] for _ in range(groups)]
        return [p for p in base for _ in range(group)], group

    def step(self, client: EngineClient, step: int, vocab: int) -> None:
        prompts, group = self.prompts(step, vocab)
        max_new = self.settings.batch.max_new_tokens
        busy_before = client.forward_seconds()
        start = time.perf_counter()
        outs = client.generate(prompts, max_new, 1.0, 7 * step)
        busy_after = client.forward_seconds()  # before any injected delay: the engine's time, not the fault's
        self.faults.stretch(start, "rollout", step)  # inside the timed rollout, as a slower engine would be
        gen_s = time.perf_counter() - start
        tokens = sum(len(o["output_ids"]) for o in outs)
        events.metric("rollout_tokens_per_s", tokens / gen_s, "tok/s", step)
        if busy_before is not None and busy_after is not None:
            # how much of the rollout's wall time the engine spent in forward passes: near 1, the GPU sets the pace;
            # low, the host (scheduling, launches, HTTP) does and its noise is what a gate would measure
            events.metric("engine_gpu_busy", (busy_after - busy_before) / gen_s, "fraction", step)
        # the engine's own clock: arrival to finish of the batch's slowest request (meta_info e2e_latency)
        served = largest(o["meta_info"].get("e2e_latency") for o in outs)
        if served:
            events.metric("engine_rollout_tokens_per_s", tokens / served, "tok/s", step)
        events.emit(
            "generate_done",
            step=step,
            sequences=len(outs),
            tokens=tokens,
            weight_version=outs[0]["meta_info"].get("weight_version"),
        )
        self.faults.after_rollout(step)
        if self.colocate:
            _, release_s = self.timed(client.release_memory_occupation, list(ALL_TAGS))
            events.metric("release_s", release_s, "s", step)
            events.metric("trainer_wake_s", self.on_trainers("trainer wake", "wake"), "s", step)
        completions = [o["output_ids"] for o in outs]
        logprobs = [[lp[0] for lp in o["meta_info"]["output_token_logprobs"]] for o in outs]
        train = self.on_trainers("train", "train_step", prompts, completions, logprobs, group, vocab, step)
        for name, unit in (
            ("train_step_s", "s"),
            ("logprob_abs_diff", "nats"),
            ("loss", ""),
            ("grad_norm", ""),
            ("reward_mean", ""),
        ):
            events.metric(name, train[name], unit, step)
        events.emit("train_done", step=step, loss=train["loss"])
        resume_s = 0.0
        if self.colocate:
            events.metric("trainer_sleep_s", self.on_trainers("trainer sleep", "sleep"), "s", step)
            _, resume_s = self.timed(client.resume_memory_occupation, ["weights"])
        if self.faults.crashes_engine(step):
            self.kill_engine()
        every, last = self.settings.weights_check_every, self.settings.steps
        self.record_sync(
            self.on_trainers(
                "weight sync",
                "sync",
                step,
                step % every == 0 or step == last,
                self.settings.sync_repeats,
            ),
            step,
        )
        if self.colocate:
            _, more = self.timed(client.resume_memory_occupation, ["kv_cache", "cuda_graph"])
            events.metric("resume_s", resume_s + more, "s", step)
        events.emit("step_done", step=step)

    def kill_engine(self) -> None:
        if self.engine is not None:
            self.engine.kill()
        elif self.actor is not None:
            import ray

            ray.get(self.actor.kill.remote())

    def stop_engine(self) -> None:
        try:
            if self.engine is not None:
                self.engine.stop()
            elif self.actor is not None:
                import ray

                ray.get(self.actor.stop.remote(), timeout=30)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on; the harness sweeps leftovers
            events.log(f"engine stop failed: {exc}")

    def execute(self) -> None:
        dtype = "bfloat16" if self.use_gpus else "float32"
        self.model_path = tiny_model.ensure(self.spec.model, dtype)
        vocab = int(self.spec.model["config"]["vocab_size"])
        lay = placement.layout(self.colocate, self.spec.engine_gpus, self.spec.trainer_gpus)
        gpus = len(placement.visible_devices()) if self.use_gpus else 0
        with placement.RayCluster(max(4, lay.bundles * 2), gpus, self.spec.ray_address) as cluster:
            pg = cluster.placement_group(lay, self.use_gpus, spread=self.settings.nodes == "spread")
            # every node makes the same tiny model (fixed seed) where its actors will read it
            placement.on_other_nodes(pg, lay, tiny_model.ensure, self.spec.model, dtype)
            events.emit(
                "placement",
                bundles=lay.bundles,
                trainer_bundles=lay.trainer_bundles,
                engine_bundles=lay.engine_bundles,
                physical_ids=lay.physical_ids,
                nodes=lay.node_ips,
                node_ids=lay.node_ids,
                visible=lay.visible,
                attached=bool(self.spec.ray_address),
            )
            try:
                url = self.launch_engine(lay, pg)
                ping = self.create_trainer(lay, pg, url)
                client = self.wait_engine(url)
                self.ready_trainer(ping)
                self.initial_sync(client)
                for step in range(1, self.settings.steps + 1):
                    self.step(client, step, vocab)
            finally:
                self.stop_engine()
                for actor in self.trainers + ([self.actor] if self.actor is not None else []):
                    _kill(actor)
                try:
                    brought = placement.collect_remote(pg, lay, str(self.run_dir))
                    if brought:
                        events.log(f"collected from other nodes: {', '.join(brought)}")
                except Exception as exc:  # noqa: BLE001 - a node gone at the end must not hide the run's own error
                    events.log(f"could not collect the other nodes' logs: {exc}")


def largest(values) -> float | None:
    """The largest positive number among `values` (None when there is none)."""
    found = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return max(found) if found else None


def _kill(actor) -> None:
    """An actor of ours gone (an attached cluster outlives the run); a dead one is fine."""
    import ray

    try:
        ray.kill(actor)
    except Exception as exc:  # noqa: BLE001 - cleanup goes on; the harness sweeps what is left
        events.log(f"could not kill actor: {exc}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.runner scenario.json", file=sys.stderr)
        return 2
    spec = RunSpec.from_json(json.loads(Path(argv[0]).read_text()))
    events.t0()
    events.emit("runner_start", scenario=spec.id, pid=os.getpid())
    events.emit("launch_context", **context("runner (driver)", None))
    try:
        Run(spec).execute()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a logged line, an event and exit 1
        traceback.print_exc()
        events.log(f"{type(exc).__name__}: {exc}")
        events.emit("run_failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
        return 1
    events.emit("run_done")
    return 0
