"""The CPU reference engine: an HTTP server speaking the sglang RL endpoints, generating with a tiny transformers model.

`python -m harness.runner.engines.reference --model-path DIR --port N [--base-gpu-id K] [--enable-memory-saver]`

Endpoints and payloads follow sglang (sglang-contract.md 5): health, generate (input_ids, return_logprob),
flush_cache, release/resume_memory_occupation with tags (weights lose their contents, as in sglang without CPU
backup), update_weights_from_tensor (flattened buckets over shared memory), init_weights_update_group +
update_weights_from_distributed (Gloo), get_weights_by_name, weights_checker (checksum), model_info, server_info.
It prints sglang-style milestone lines. Plugins (entry point group `colobench.reference_plugins`) may transform
logits before sampling, which is how a dependency can change engine behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from typing import Any

import torch

from harness.runner import events, hf_layout, tiny_model, verify, weight_sync
from harness.runner.engines.client import FORWARD_COUNTER

TAGS = ("weights", "kv_cache", "cuda_graph")


def log(msg: str) -> None:
    events.log(msg)


class Engine:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.busy = 0
        self.weight_version = "default"
        self.released: set[str] = set()
        self.group = None
        self.requests = 0
        self.forward_s = 0.0  # seconds spent in model calls: the CPU analogue of sglang's device timer
        log(f"Load weight begin. model={args.model_path}")
        start = time.monotonic()
        # a shape model has no weights file: dummy weights (seeded unlike the trainer's), as sglang's
        # --load-format dummy
        self.model = tiny_model.load(args.model_path, torch.float32, "cpu", args.seed + 1)
        torch.manual_seed(args.seed)
        self.model.eval()
        self.modules_params = dict(self.model.named_parameters())
        self.snapshot: dict[str, torch.Tensor] = {}  # /weights_checker snapshot
        self.shapes = {n: tuple(t.shape) for n, t in self.modules_params.items()}
        self.params = self._views()  # what a sync names: checkpoint names, views into the parameters
        log(
            f"Load weight end. elapsed={time.monotonic() - start:.2f} s, type={type(self.model).__name__}, "
            f"avail mem=cpu, mem usage={self.weight_bytes() / 2**30:.4f} GB."
        )
        self.kv_tokens = args.kv_tokens
        self.kv_pool = self._kv_alloc()
        log(f"KV Cache is allocated. #tokens: {self.kv_tokens}, K size: {self.kv_pool.numel() * 2 / 2**30:.4f} GB")
        self.plugins = [ep.load() for ep in entry_points(group="colobench.reference_plugins")]
        for plugin in self.plugins:
            log(f"reference plugin loaded: {getattr(plugin, '__name__', plugin)}")

    def _kv_alloc(self) -> torch.Tensor:
        cfg = self.model.config
        per_token = 2 * cfg.num_hidden_layers * getattr(cfg, "num_key_value_heads", 1) * getattr(cfg, "head_dim", 64)
        return torch.zeros(self.kv_tokens * per_token // 2, dtype=torch.float32)

    def _views(self) -> dict[str, torch.Tensor]:
        return hf_layout.checkpoint_views({n: p.detach() for n, p in self.modules_params.items()})

    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.modules_params.values())

    def memory(self) -> dict[str, float]:
        return {"weight": self.weight_bytes() / 2**30, "kvcache": self.kv_pool.numel() * 4 / 2**30, "graph": 0.0}

    # --- generation -------------------------------------------------------------------------------------
    def _logits(self, logits: torch.Tensor) -> torch.Tensor:
        for plugin in self.plugins:
            logits = plugin.process_logits(logits)
        return logits

    def _forward(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.model(**kwargs)
        finally:
            self.forward_s += time.perf_counter() - start

    def metrics_page(self) -> str:
        """/metrics: the forward-time counter in sglang's name and Prometheus text format."""
        return (
            f"# TYPE {FORWARD_COUNTER} counter\n"
            f'{FORWARD_COUNTER}{{category="decode",engine="reference"}} {self.forward_s:.6f}\n'
        )

    def generate(self, body: dict) -> list[dict]:
        if "weights" in self.released or "kv_cache" in self.released:
            raise RuntimeError("generate while memory is released (resume weights and kv_cache first)")
        ids = body["input_ids"]
        batch = ids if ids and isinstance(ids[0], list) else [ids]
        params = body.get("sampling_params") or {}
        max_new = int(params.get("max_new_tokens", 128))
        temperature = float(params.get("temperature", 1.0))
        self.requests += 1
        gen = torch.Generator().manual_seed(int(params.get("sampling_seed", self.args.seed * 1000 + self.requests)))
        start = time.monotonic()
        x = torch.tensor(batch, dtype=torch.long)
        out_ids: list[list[int]] = [[] for _ in batch]
        out_lp: list[list[float]] = [[] for _ in batch]
        with torch.no_grad():
            res = self._forward(input_ids=x, use_cache=True)
            past, logits = res.past_key_values, res.logits[:, -1, :]
            for _ in range(max_new):
                logp = torch.log_softmax(self._logits(logits.float()), dim=-1)
                if temperature <= 0:
                    tok = logp.argmax(-1)
                else:
                    tok = torch.multinomial(torch.softmax(logp / temperature, -1), 1, generator=gen).squeeze(-1)
                chosen = logp.gather(-1, tok[:, None]).squeeze(-1)
                for i in range(len(batch)):
                    out_ids[i].append(int(tok[i]))
                    out_lp[i].append(float(chosen[i]))
                res = self._forward(input_ids=tok[:, None], past_key_values=past, use_cache=True)
                past, logits = res.past_key_values, res.logits[:, -1, :]
        elapsed = time.monotonic() - start
        return [
            {
                "output_ids": out_ids[i],
                "meta_info": {
                    "id": f"req-{self.requests}-{i}",
                    "prompt_tokens": len(batch[i]),
                    "completion_tokens": max_new,
                    "finish_reason": {"type": "length", "length": max_new},
                    "weight_version": self.weight_version,
                    "e2e_latency": elapsed,
                    "output_token_logprobs": [[lp, t, None] for lp, t in zip(out_lp[i], out_ids[i])],
                },
            }
            for i in range(len(batch))
        ]

    # --- memory -------------------------------------------------------------------------------------------
    def release(self, tags: list[str] | None) -> None:
        for tag in tags or TAGS:
            if tag == "weights":
                for p in self.modules_params.values():
                    p.data = torch.empty(0, dtype=p.dtype)  # contents are gone, as in sglang without cpu backup
            elif tag == "kv_cache":
                self.kv_pool = torch.empty(0)
            self.released.add(tag)

    def resume(self, tags: list[str] | None) -> None:
        for tag in tags or TAGS:
            if tag not in self.released:
                raise KeyError(tag)
            if tag == "weights":
                for name, p in self.modules_params.items():
                    p.data = torch.empty(self.shapes[name], dtype=p.dtype)
                self.params = self._views()
            elif tag == "kv_cache":
                self.kv_pool = self._kv_alloc()
            self.released.discard(tag)

    # --- weights ------------------------------------------------------------------------------------------
    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        for name, tensor in named:
            param = self.params.get(name)
            if param is None:
                raise KeyError(f"unknown parameter {name}")
            if tuple(param.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: shape {tuple(tensor.shape)} != {tuple(param.shape)}")
            param.data.copy_(tensor.to(param.dtype))

    def update_from_tensor(self, body: dict) -> None:
        payload = weight_sync.deserialize(body["serialized_named_tensors"][0])
        if body.get("load_format") == "flattened_bucket":
            self.load(weight_sync.unflatten(payload))
        else:
            self.load(list(payload))
        if body.get("weight_version") is not None:
            self.weight_version = str(body["weight_version"])

    def init_group(self, body: dict) -> None:
        backend = body.get("backend", "gloo")
        if backend == "nccl":
            backend = "gloo"  # CPU analogue
        self.group = weight_sync.custom_group(
            backend,
            body["master_address"],
            int(body["master_port"]),
            int(body["rank_offset"]),
            int(body["world_size"]),
            body["group_name"],
        )
        log(
            f"init custom process group: master_address={body['master_address']}, rank={body['rank_offset']}, "
            f"world_size={body['world_size']}"
        )

    def update_from_distributed(self, body: dict) -> None:
        if self.group is None:
            raise RuntimeError(f"group {body.get('group_name')} is not initialized")
        named = []
        for name, dtype, shape in zip(body["names"], body["dtypes"], body["shapes"]):
            t = torch.empty(shape, dtype=getattr(torch, dtype))
            torch.distributed.broadcast(t, src=0, group=self.group)
            named.append((name, t))
        self.load(named)
        if body.get("weight_version") is not None:
            self.weight_version = str(body["weight_version"])

    def check_weights(self, action: str) -> dict:
        """sglang's WeightChecker: checksum (0.5.12's reply: one entry per TP rank), snapshot, reset_tensors (noise
        into every weight), compare."""
        if action == "checksum":
            sums = {n: verify.cpu_hash(p) for n, p in self.params.items()}
            one = {
                "tp_rank": 0,
                "tp_size": 1,
                "dp_rank": 0,
                "dp_size": 1,
                "pp_rank": 0,
                "pp_size": 1,
                "rank": 0,
                "size": 1,
            }
            return {"success": True, "message": "Success.", "ranks": [{"checksums": sums, "parallelism_info": one}]}
        if action == "snapshot":
            self.snapshot = {n: p.detach().clone() for n, p in self.modules_params.items()}
        elif action == "reset_tensors":
            for p in self.modules_params.values():
                p.data.copy_(torch.rand_like(p))
        elif action == "compare":
            bad = [n for n, p in self.modules_params.items() if not torch.equal(p, self.snapshot[n])]
            if bad:
                raise AssertionError("check tensor equality failed:\n" + "\n".join(f"name={n}" for n in bad))
        else:
            raise ValueError(f"Unsupported action={action!r}")
        return {"success": True, "message": "Success."}


class Handler(BaseHTTPRequestHandler):
    engine: Engine

    def log_message(self, fmt: str, *args: Any) -> None:  # keep the log to milestone lines and errors
        pass

    def _reply(self, code: int, body: Any, text: bool = False) -> None:
        data = (body if text else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._route(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._reply(400, {"error": {"message": "body is not JSON"}})
            return
        self._route(body)

    def _route(self, body: dict | None) -> None:
        e = self.engine
        path = self.path.split("?")[0]
        e.busy += 1
        try:
            reply = self._handle(e, path, body or {})
        except (KeyError, ValueError, RuntimeError, AssertionError) as exc:
            log(f"ERROR {path}: {type(exc).__name__}: {exc}")
            reply = (
                400,
                {"success": False, "message": f"{type(exc).__name__}: {exc}", "error": {"message": str(exc)}},
                False,
            )
        finally:
            e.busy -= 1  # before replying: the client's next request must find the server idle
        self._reply(*reply)

    def _handle(self, e: Engine, path: str, body: dict) -> tuple[int, Any, bool]:
        if path in ("/health", "/health_generate"):
            with e.lock:
                if "weights" not in e.released and "kv_cache" not in e.released:
                    e.generate({"input_ids": [0], "sampling_params": {"max_new_tokens": 1}})
            return 200, "", True
        if path in ("/model_info", "/get_model_info"):
            return (
                200,
                {
                    "model_path": e.args.model_path,
                    "weight_version": e.weight_version,
                    "is_generation": True,
                    "architectures": e.model.config.architectures,
                },
                False,
            )
        if path in ("/server_info", "/get_server_info"):
            return (
                200,
                {
                    **vars(e.args),
                    "version": "reference",
                    "internal_states": [{"memory_usage": e.memory()}],
                    "released": sorted(e.released),
                },
                False,
            )
        if path == "/metrics":
            return 200, e.metrics_page(), True
        if path == "/flush_cache":
            if e.busy > 1:
                return 400, "Cache not flushed because there are pending requests.", True
            return 200, "Cache flushed.\nPlease check backend logs for more details.", True
        if path == "/get_weights_by_name":
            return 200, e.params[body["name"]].detach().float()[: int(body.get("truncate_size", 100))].tolist(), False
        if path == "/weights_checker":
            with e.lock:
                return 200, e.check_weights(body.get("action", "checksum")), False
        if path == "/init_weights_update_group":
            e.init_group(body)
            return 200, {"success": True, "message": "Succeeded to initialize custom process group."}, False
        actions = {
            "/generate": lambda: e.generate(body),
            "/release_memory_occupation": lambda: e.release(body.get("tags")),
            "/resume_memory_occupation": lambda: e.resume(body.get("tags")),
            "/update_weights_from_tensor": lambda: (
                e.update_from_tensor(body) or {"success": True, "message": "Succeeded to update model weights."}
            ),
            "/update_weights_from_distributed": lambda: (
                e.update_from_distributed(body) or {"success": True, "message": "Succeeded to update parameter online."}
            ),
        }
        if path not in actions:
            return 404, {"error": {"message": f"no endpoint {path}"}}, False
        if path == "/release_memory_occupation" and e.busy > 1:
            raise AssertionError("release_memory_occupation should be called only when server is idle.")
        with e.lock:
            return 200, actions[path](), False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reference-engine")
    p.add_argument("--model-path", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--base-gpu-id", type=int, default=0)
    p.add_argument("--tp-size", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kv-tokens", type=int, default=4096)
    p.add_argument("--enable-memory-saver", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    engine = Engine(args)
    events.emit(
        "launch_context",
        role="engine-server",
        pid=os.getpid(),
        base_gpu_id=args.base_gpu_id,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        device="cpu",
        env={k: v for k, v in os.environ.items() if k.startswith(("RAY_EXPERIMENTAL_NOSET", "SGLANG_", "NCCL_"))},
    )
    Handler.engine = engine
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    log(f"Uvicorn running on http://{args.host}:{args.port} (reference engine)")
    log("The server is fired up and ready to roll!")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
