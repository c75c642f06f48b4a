"""What a run ran on: GPUs, driver, CUDA, NCCL, library versions, relevant env vars, pip freeze.

- Owns: collecting the harness-side facts (nvidia-smi, the runner environment's pip freeze, env vars with
  secrets masked), merging the versions the runner reports, the machine `bucket` history groups baselines by,
  and the diff of two fingerprints.
- Does not own: storage (history.py) or rendering (report.py / compare.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from functools import lru_cache
from typing import Any

from harness import redact

ENV_PREFIXES = ("CUDA_", "NCCL_", "SGLANG_", "RAY_", "TORCH_", "NVSHMEM_", "PYTORCH_")
BUCKET_KEYS = ("gpu.name", "gpu.count", "gpu.driver", "cpu.model", "cpu.count")


def _run(argv: list[str], timeout: float = 30) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def gpu_facts() -> dict[str, str]:
    if not shutil.which("nvidia-smi"):
        return {"gpu.count": "0"}
    out = (
        _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
        .strip()
        .splitlines()
    )
    if not out:
        return {"gpu.count": "0"}
    name, driver, mem = (x.strip() for x in out[0].split(","))
    cuda = next(
        (ln.split("CUDA Version:")[1].split()[0] for ln in _run(["nvidia-smi"]).splitlines() if "CUDA Version:" in ln),
        "",
    )
    return {"gpu.name": name, "gpu.driver": driver, "gpu.memory": mem, "gpu.count": str(len(out)), "cuda.driver": cuda}


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=8)
def pip_freeze(python: str) -> tuple[str, ...]:
    """One line per package (`name==1.0`, `name @ file:///...`); pip's comment lines left out."""
    out = _run([python, "-m", "pip", "freeze", "--disable-pip-version-check"], timeout=60)
    return tuple(sorted(line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")))


def relevant_env(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    return redact.mask_env({k: v for k, v in env.items() if k.startswith(ENV_PREFIXES)})


def collect(python: str, runner_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """The fingerprint of one run: host facts + the runner's versions + env + pip freeze."""
    facts: dict[str, Any] = {
        "cpu.model": cpu_model(),
        "cpu.count": str(os.cpu_count()),
        "python": platform.python_version(),
        **gpu_facts(),
    }
    facts.update({f"version.{k}": str(v) for k, v in (runner_versions or {}).items()})
    facts["env"] = relevant_env()
    facts["pip"] = list(pip_freeze(python))
    return facts


def bucket(fp: dict[str, Any]) -> str:
    """Runs comparable for baselines share a bucket: same machine kind (not the same library versions)."""
    key = json.dumps({k: fp.get(k) for k in BUCKET_KEYS}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def changed(a: dict[str, Any], b: dict[str, Any], missing: str = "-") -> list[tuple[str, Any, Any]]:
    """(key, a's value, b's value) for every key whose value differs, sorted; `missing` stands for an absent key."""
    return [(k, a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, a, b) for facts that differ; env vars and pip pins are compared one by one."""

    def flat(fp: dict[str, Any]) -> dict[str, str]:
        out = {k: str(v) for k, v in fp.items() if k not in ("env", "pip")}
        out.update({f"env.{k}": v for k, v in (fp.get("env") or {}).items()})
        for pin in fp.get("pip") or []:
            name, sep, ver = pin.partition("==")
            if not sep:
                name, _, ver = pin.partition(" @ ")
            out[f"pip.{name.strip().lower()}"] = ver.strip() or pin
        return out

    fa, fb = flat(a), flat(b)
    return changed(fa, fb)
