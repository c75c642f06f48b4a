"""What every trainer does the same way: the GRPO-style step, sleep/wake, fault injection and the weight sync.

A trainer is one Ray actor per rank. Subclasses build `self.model` and `self.opt` and give `_logprobs` (per-token
log-probs of the completions), `hf_named_tensors` (the full HF-named weights; a collective on multi-rank trainers)
and, with several ranks, `_reduce_grads` and `_grad_norm`. Rank 0 talks to the engine; with several ranks each
encodes its engine rank's payload on that rank's GPU and rank 0 posts them all (Miles' per-rank gather).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.runner import events, verify, weight_sync
from harness.runner.engines.client import EngineClient
from harness.runner.faults import Faults


@dataclass(frozen=True)
class TrainerSpec:
    """Everything one trainer rank is built from (loop.py makes one per rank)."""

    model_path: str
    device: str  # cpu | cuda
    lr: float
    seed: int
    engine_url: str
    engine_kind: str  # reference | sglang
    engine_tp: int
    colocate: bool
    fault: dict | None = None
    local_rank: int = 0  # this rank's device index as this process numbers them
    engine_base: int = 0  # the engine's base_gpu_id
    rank: int = 0
    world: int = 1
    master_addr: str = "127.0.0.1"  # torch.distributed rendezvous of several ranks (megatron): rank 0's node
    master_port: int = 0
    tp: int = 1
    ep: int = 1
    weights_check: str = "auto"  # auto | checksum | exact (verify.py)


class Trainer:
    name = "trainer"

    def __init__(self, spec: TrainerSpec) -> None:
        device, seed, local_rank = spec.device, spec.seed, spec.local_rank
        engine_tp, engine_base = spec.engine_tp, spec.engine_base
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        self.device = torch.device(device if device == "cpu" else f"cuda:{local_rank}")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dtype = torch.float32 if self.device.type == "cpu" else torch.bfloat16
        self.rank, self.world = spec.rank, spec.world
        self.client = EngineClient(spec.engine_url)
        self.engine_kind, self.engine_tp, self.colocate = spec.engine_kind, engine_tp, spec.colocate
        # the engine's TP ranks' devices as this process numbers them (NOSET: both see the same visible devices)
        self.engine_devices = (
            [torch.device("cuda", engine_base + r) for r in range(engine_tp)] if self.device.type == "cuda" else []
        )
        self.faults = Faults(spec.fault)
        self.broadcast: weight_sync.BroadcastSync | None = None
        self.ranks: weight_sync.RankGather | None = None
        self.version = 0
        self._pinned: dict = {}  # sleep's host buffers, one per tensor, reused every step
        hf = json.loads((Path(spec.model_path) / "config.json").read_text())
        self.architecture = hf["architectures"][0]  # with the vocab, picks the weights check (verify.method)
        self.vocab = int(hf["vocab_size"])
        self.weights_check = spec.weights_check
        self.model: torch.nn.Module
        self.opt: torch.optim.Optimizer

    def context(self) -> dict:
        from harness.runner.host import context

        return context(f"{self.name} rank {self.rank} (ray actor)", None, {"device": str(self.device)})

    # --- what a subclass gives ----------------------------------------------------------------------------
    def _logprobs(self, sequences: torch.Tensor, prompt_len: int) -> torch.Tensor:
        raise NotImplementedError

    def hf_named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """Every weight under its HF name, on this trainer's device (copied from host memory while asleep)."""
        raise NotImplementedError

    def _reduce_grads(self) -> None:
        """Combine the ranks' gradients before clipping (one rank: nothing to combine)."""

    def _grad_norm(self) -> float:
        """Clip to 1.0; the total norm before clipping."""
        return float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0))

    # --- the step -----------------------------------------------------------------------------------------
    def train_step(
        self,
        prompts: list[list[int]],
        completions: list[list[int]],
        rollout_logprobs: list[list[float]],
        group_size: int,
        vocab: int,
        step: int = 1,
    ) -> dict[str, Any]:
        start = time.perf_counter()
        seq = torch.tensor([p + c for p, c in zip(prompts, completions)], device=self.device)
        prompt_len = len(prompts[0])
        rollout = torch.tensor(rollout_logprobs, device=self.device, dtype=torch.float32)
        rewards = torch.tensor([sum(t < vocab // 2 for t in c) / len(c) for c in completions], device=self.device)
        grouped = rewards.view(-1, group_size)
        adv = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-6)).view(-1, 1)
        self.model.train()
        with torch.no_grad():
            old = self._logprobs(seq, prompt_len)
        new = self._logprobs(seq, prompt_len)
        ratio = torch.exp(new - old)
        loss = -torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self._reduce_grads()
        grad_norm = self._grad_norm()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.faults.stretch(start, "train", step)  # inside the timed step, as a slower trainer would be
        diff = (old - rollout).abs()
        return {
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "reward_mean": float(rewards.mean()),
            "logprob_abs_diff": float(diff.mean()),
            "logprob_max_abs_diff": float(diff.max()),
            "train_step_s": time.perf_counter() - start,
        }

    # --- memory -------------------------------------------------------------------------------------------
    def _slots(self):
        """(key, tensor, put) for every tensor that sleeps: parameters, buffers and the optimizer's state."""

        def put_data(owner):
            return lambda t: setattr(owner, "data", t)

        for t in list(self.model.parameters()) + list(self.model.buffers()):
            yield id(t), t.data, put_data(t)
        for state in self.opt.state.values():
            for k, v in state.items():
                if torch.is_tensor(v):
                    yield (id(state), k), v, (lambda t, state=state, k=k: state.__setitem__(k, t))

    def sleep(self) -> float:
        """Gradients dropped; model and optimizer state copied into pinned host buffers kept across steps (a
        pageable copy of a multi-GB state costs seconds per step), then the cache emptied for the engine."""
        start = time.perf_counter()
        if self.device.type == "cuda":
            self.opt.zero_grad(set_to_none=True)
            for key, t, put in self._slots():
                if t.device.type != "cuda":
                    continue
                host = self._pinned.get(key)
                if host is None or host.shape != t.shape or host.dtype != t.dtype:
                    host = self._pinned[key] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                host.copy_(t, non_blocking=True)
                put(host)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        return time.perf_counter() - start

    def wake(self) -> float:
        """Back to the GPU: what sleep put in host memory (a tensor on the host with a buffer of its own; the
        optimizer's step counters live on the host from the start and stay there)."""
        start = time.perf_counter()
        if self.device.type == "cuda":
            for key, t, put in self._slots():
                if t.device.type == "cpu" and key in self._pinned:
                    put(t.to(self.device, non_blocking=True))
            torch.cuda.synchronize()
        return time.perf_counter() - start

    # --- weights ------------------------------------------------------------------------------------------
    def _codec(self) -> weight_sync.Codec:
        if self.world > 1 and self.rank >= self.engine_tp:  # more trainer ranks than engine ranks (EP on CPU)
            return weight_sync.no_payload_codec
        if self.engine_kind != "sglang":
            return weight_sync.reference_codec
        from harness.runner.engines.sglang_wire import sglang_codec

        # one trainer rank: every engine rank's payload; several: this rank's engine rank only (gathered to rank 0)
        devices = self.engine_devices if self.world == 1 else [self.engine_devices[self.rank]]
        return lambda named: sglang_codec(named, devices)

    def _transfer(self, sent: list[tuple[str, torch.Tensor]]) -> dict[str, Any]:
        """One weight transfer to the engine (every rank takes part)."""
        if self.colocate:
            if self.world > 1 and self.ranks is None:
                self.ranks = weight_sync.RankGather()
            return weight_sync.sync_colocated(self.client, sent, str(self.version), self._codec(), ranks=self.ranks)
        if self.rank == 0:
            if self.broadcast is None:
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                self.broadcast = weight_sync.BroadcastSync(self.client, self.engine_tp, backend)
            return self.broadcast.sync(sent, str(self.version))
        return {"bytes": 0, "buckets": 0}

    @functools.cached_property
    def check_method(self) -> str:
        """verify.method for this run (decided at the first check, announced once as an event)."""
        from harness.runner.engines import sglang

        version = sglang.parse_version(sglang.installed_version()) if self.engine_kind == "sglang" else ()
        how = verify.method(
            self.engine_kind, self.architecture, self.weights_check, version, self.engine_tp, self.vocab
        )
        events.emit("weights_check_method", method=how, choice=self.weights_check)
        return how

    def _exact(
        self, named: list[tuple[str, torch.Tensor]], sent: list[tuple[str, torch.Tensor]], how: str
    ) -> tuple[bool | None, str]:
        """The exact compare: 'by-name' on rank 0; 'resync' sends `sent` again on every rank."""
        if how == "by-name":
            return verify.by_name_matches(self.client, named) if self.rank == 0 else (None, "")
        if self.rank == 0:
            verify.begin_resync(self.client)
        self._transfer(sent)
        return verify.resync_matches(self.client) if self.rank == 0 else (None, "")

    def _check(
        self, named: list[tuple[str, torch.Tensor]], sent: list[tuple[str, torch.Tensor]]
    ) -> tuple[bool | None, str]:
        """Rank 0's verdict on the engine's weights (see verify.py). A checksum disagreement on one rank is settled
        by the exact compare; where it passes, the checksum layout was wrong, not the weights."""
        how = self.check_method
        if how != "checksum":
            return self._exact(named, sent, how)
        if self.rank:
            return None, ""
        ok, bad = verify.checksums_match(self.client, named, self.engine_kind)
        if ok or self.world > 1:
            return ok, bad
        exact_ok, exact_bad = self._exact(named, sent, verify.method(self.engine_kind, self.architecture, "exact"))
        if exact_ok:
            events.emit("weights_checksum_disagreed", tensor=bad)
        return exact_ok, exact_bad

    def sync(self, step: int, check: bool = True, repeats: int = 1) -> dict[str, Any]:
        """Send every weight to the engine (colocated: IPC buckets; split: broadcast from rank 0) `repeats` times
        back to back, the same weights each time: `seconds` is the median transfer, `seconds_each` all of them (a
        sync of tens of milliseconds is launch-bound, so one transfer a step leaves its timing to host jitter). Then,
        with `check`, rank 0 compares the engine's weights with the trainer's (`weights_match` None where not
        checked)."""
        self.version += 1
        named = self.hf_named_tensors()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        sent = self.faults.payload(named, step)
        each = []
        for _ in range(repeats):
            start = time.perf_counter()
            info = self._transfer(sent)
            self.faults.stretch(start, "transfer", step)  # inside the timed transfer
            each.append(time.perf_counter() - start)
        info["seconds"], info["seconds_each"] = statistics.median(each), [round(s, 6) for s in each]
        checked = time.perf_counter()
        ok, bad = self._check(named, sent) if check else (None, "")
        info.update(
            {
                "weights_match": ok,
                "first_mismatch": bad,
                "weight_version": str(self.version),
                "tensors": len(sent),
                "check_seconds": time.perf_counter() - checked if check else None,
            }
        )
        del named, sent
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return info

    def copy_bandwidth(self, mib: int = 1024, rounds: int = 10) -> float:
        """GB/s of a plain copy on this trainer's device (bytes copied per second, the unit of weight_sync_gbps):
        what a weight sync of the same bytes is compared with. A smaller buffer on the CPU."""
        n = (mib if self.device.type == "cuda" else 64) * 2**20
        src = torch.empty(n, dtype=torch.uint8, device=self.device).random_(0, 255)
        dst = torch.empty_like(src)
        times = []
        for _ in range(rounds + 2):  # the first two warm the copy path up
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            dst.copy_(src)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        del src, dst
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return n / statistics.median(times[2:]) / 1e9

    def versions(self) -> dict[str, str]:
        from harness.runner.host import versions

        return versions()

    def ping(self) -> bool:
        events.emit("trainer_ready", pid=os.getpid(), rank=self.rank)
        return True
