"""The runner's SGLang client: the HTTP endpoints and payloads RL frameworks use (sglang-contract.md 5).

The same client drives a real sglang server and the CPU reference engine. stdlib only (urllib).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

FORWARD_COUNTER = "sglang:forward_execution_seconds_total"  # sglang's device timer (0.5.11+), the reference's clock


class EngineHTTPError(RuntimeError):
    pass


def forward_counter(prometheus_text: str) -> float | None:
    """The engine's forward-pass seconds so far: the sum of FORWARD_COUNTER over its labels (decode, extend, ...) in
    a Prometheus text page; None where the page has no such counter."""
    values = []
    for line in prometheus_text.splitlines():
        if line.startswith(FORWARD_COUNTER) and line[len(FORWARD_COUNTER) :][:1] in ("{", " "):
            try:
                values.append(float(line.rsplit(" ", 1)[1]))
            except ValueError:
                continue
    return sum(values) if values else None


class EngineClient:
    def __init__(self, url: str, timeout_s: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout_s) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise EngineHTTPError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        if raw:
            return text
        return json.loads(text) if text.strip() else None

    def healthy(self) -> bool:
        try:
            self._call("GET", "/health_generate", timeout=10, raw=True)
            return True
        except (OSError, EngineHTTPError):
            return False

    def model_info(self) -> dict:
        return self._call("GET", "/model_info")

    def server_info(self) -> dict:
        return self._call("GET", "/server_info")

    def forward_seconds(self) -> float | None:
        """Seconds the engine has spent in forward passes so far, by its own device timer (sglang with
        --enable-metrics and SGLANG_ENABLE_METRICS_DEVICE_TIMER=1: CUDA events around every forward and graph
        replay; the reference engine: its model calls); None where the engine reports none."""
        try:
            return forward_counter(self._call("GET", "/metrics", timeout=10, raw=True))
        except (OSError, EngineHTTPError):
            return None

    def generate(
        self, input_ids: list[list[int]], max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> list[dict]:
        params = {"max_new_tokens": max_new_tokens, "temperature": temperature, "ignore_eos": True}
        if seed is not None:
            params["sampling_seed"] = seed
        out = self._call(
            "POST", "/generate", {"input_ids": input_ids, "sampling_params": params, "return_logprob": True}
        )
        return out if isinstance(out, list) else [out]

    def flush_cache(self) -> None:
        for _ in range(60):
            try:
                self._call("POST", "/flush_cache", {}, raw=True)
                return
            except EngineHTTPError:
                time.sleep(1)
        raise TimeoutError("Timeout while flushing cache: engine kept refusing /flush_cache")

    def release_memory_occupation(self, tags: list[str] | None = None) -> None:
        self.flush_cache()
        self._call("POST", "/release_memory_occupation", {"tags": tags})

    def resume_memory_occupation(self, tags: list[str] | None = None) -> None:
        self._call("POST", "/resume_memory_occupation", {"tags": tags})

    def update_weights_from_tensor(
        self,
        serialized_named_tensors: list[str],
        load_format: str | None = None,
        flush_cache: bool = True,
        weight_version: str | None = None,
    ) -> dict:
        reply = self._call(
            "POST",
            "/update_weights_from_tensor",
            {
                "serialized_named_tensors": serialized_named_tensors,
                "load_format": load_format,
                "flush_cache": flush_cache,
                "weight_version": weight_version,
            },
        )
        if not reply or not reply.get("success", False):
            raise RuntimeError(f"Base model weight sync failed on rollout engine: {reply}")
        return reply

    def init_weights_update_group(
        self, master_address: str, master_port: int, rank_offset: int, world_size: int, group_name: str, backend: str
    ) -> dict:
        return self._call(
            "POST",
            "/init_weights_update_group",
            {
                "master_address": master_address,
                "master_port": master_port,
                "rank_offset": rank_offset,
                "world_size": world_size,
                "group_name": group_name,
                "backend": backend,
            },
        )

    def update_weights_from_distributed(
        self,
        names: list[str],
        dtypes: list[str],
        shapes: list[list[int]],
        group_name: str,
        weight_version: str | None = None,
    ) -> dict:
        return self._call(
            "POST",
            "/update_weights_from_distributed",
            {
                "names": names,
                "dtypes": dtypes,
                "shapes": shapes,
                "group_name": group_name,
                "flush_cache": True,
                "weight_version": weight_version,
            },
        )

    def weights_checker(self, action: str) -> dict:
        """/weights_checker (checksum, snapshot, reset_tensors, compare): the reply; a refused action (a failed
        compare is HTTP 400, the differing tensors in its message) as {"success": False, "message": ...}."""
        try:
            return self._call("POST", "/weights_checker", {"action": action})
        except EngineHTTPError as exc:
            return {"success": False, "message": str(exc)}

    def get_weights_by_name(self, name: str, truncate_size: int = 100) -> list:
        return self._call("POST", "/get_weights_by_name", {"name": name, "truncate_size": truncate_size})
