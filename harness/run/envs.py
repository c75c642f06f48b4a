"""Python environments a scenario's runner runs in: `current`, or one per SGLang version / pinned package set / commit.

- Owns: creating environments (uv when installed, else venv + pip), caching and reusing them under a key of what
  was asked for, recording what was resolved (pip freeze), `--wheelhouse` for offline hosts, inheriting the
  current environment's packages (a .pth file) so only the pinned packages are installed anew, environments for a
  git commit of a package, listing and pruning.
- Does not own: which version a scenario wants (scenario.py) or bisection (bisect.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.errors import EnvError

ENV_DIR_ENV = "COLOBENCH_ENV_DIR"
CURRENT = "current"
PYTHONS_ENV = "COLOBENCH_SGLANG_PYTHONS"  # "0.5.12=/path/to/python,0.5.15=/other/python": preinstalled envs


def root() -> Path:
    path = Path(os.environ.get(ENV_DIR_ENV) or Path.home() / ".cache" / "colobench" / "envs")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Env:
    key: str
    path: Path
    specs: tuple[str, ...]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def meta(self) -> dict:
        try:
            return json.loads((self.path / "colobench-env.json").read_text())
        except (OSError, ValueError):
            return {}


def env_key(specs: list[str], inherit: bool, system_site: bool, extra: str = "") -> str:
    text = json.dumps(
        {
            "specs": sorted(specs),
            "inherit": inherit,
            "system": system_site,
            "python": sys.version_info[:2],
            "extra": extra,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _site_packages(python: str) -> list[str]:
    out = subprocess.run(
        [python, "-c", "import site, sys; print('\\n'.join(site.getsitepackages()))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [p for p in out.stdout.split() if p]


def _install(python: Path, specs: list[str], wheelhouse: Path | None, log: Path) -> None:
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--python", str(python)]
    else:
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if wheelhouse:
        cmd += ["--no-index", "--find-links", str(wheelhouse)]
    if all(Path(s).is_dir() for s in specs):
        cmd += ["--no-build-isolation", "--no-deps"]  # a source tree: build with the inherited setuptools
    with open(log, "ab") as fh:
        res = subprocess.run(cmd + specs, stdout=fh, stderr=subprocess.STDOUT, timeout=3600)
    if res.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise EnvError(f"env: installing {' '.join(specs)} failed ({tail[0][:200]}); log: {log}")


def _freeze(python: Path) -> list[str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True, timeout=120
    )
    return sorted(out.stdout.split())


def create(
    specs: list[str],
    wheelhouse: Path | None = None,
    inherit: bool = True,
    system_site: bool = False,
    extra_key: str = "",
    sources: Callable[[], list[str]] | None = None,
) -> Env:
    """The environment for `specs`, created once and reused (a file lock serialises parallel creators).

    `sources`, when given, is called only if the environment must be built: what to install instead of `specs`
    (which then only name it), e.g. a source tree extracted from a commit.
    """
    key = env_key(specs, inherit, system_site, extra_key)
    path = root() / key
    env = Env(key, path, tuple(specs))
    with open(root() / f"{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / "colobench-env.json").exists():
            os.utime(path / "colobench-env.json")
            return env
        shutil.rmtree(path, ignore_errors=True)
        started = time.monotonic()
        cmd = [sys.executable, "-m", "venv", str(path)] + (["--system-site-packages"] if system_site else [])
        if inherit:
            cmd.append("--without-pip")  # pip and setuptools come from the parent; a bundled old setuptools would win
        if subprocess.run(cmd, capture_output=True, timeout=600).returncode != 0:
            raise EnvError(f"env: cannot create a venv at {path}")
        if inherit:
            own = Path(sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"])
            parents = [p for p in _site_packages(sys.executable) if p != str(own)]
            (own / "_colobench_parent.pth").write_text("\n".join(parents) + "\n")
        log = path / "install.log"
        try:
            to_install = sources() if sources else specs
            if to_install:
                _install(env.python, to_install, wheelhouse, log)
        except (EnvError, subprocess.SubprocessError):
            shutil.rmtree(path, ignore_errors=True)
            raise
        meta = {
            "key": key,
            "specs": specs,
            "inherit": inherit,
            "system_site": system_site,
            "wheelhouse": str(wheelhouse) if wheelhouse else None,
            "created": time.time(),
            "create_s": round(time.monotonic() - started, 2),
            "resolved": _freeze(env.python),
        }
        (path / "colobench-env.json").write_text(json.dumps(meta, indent=1))
    return env


def for_commit(repo: Path, sha: str, subdir: str = "", wheelhouse: Path | None = None) -> Env:
    """An environment with the package at `repo`@`sha` (optionally a subfolder) installed; one per commit."""
    full = subprocess.run(["git", "-C", str(repo), "rev-parse", sha], capture_output=True, text=True)
    if full.returncode != 0:
        raise EnvError(f"env: {repo}: unknown commit {sha!r}")
    sha = full.stdout.strip()
    src = Path(tempfile.mkdtemp(prefix=f"colobench-src-{sha[:8]}-"))

    def extract() -> list[str]:
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha], capture_output=True)
        if archive.returncode != 0:
            raise EnvError(f"env: {repo}@{sha[:10]}: git archive failed")
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
        return [str(src / subdir)]

    try:
        return create([f"{repo.resolve()}@{sha}/{subdir}"], wheelhouse, sources=extract)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def version_specs(version: str) -> list[str]:
    return [f"sglang=={version}"]


def listing() -> list[Env]:
    out = []
    for meta_path in sorted(root().glob("*/colobench-env.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        out.append(Env(meta["key"], meta_path.parent, tuple(meta.get("specs", ()))))
    return out


def prune(older_than_days: float = 30.0) -> list[Env]:
    """Remove environments not used (created or reused) for `older_than_days`; returns the removed ones."""
    removed = []
    cutoff = time.time() - older_than_days * 86400
    for env in listing():
        if (env.path / "colobench-env.json").stat().st_mtime < cutoff:
            shutil.rmtree(env.path, ignore_errors=True)
            removed.append(env)
    return removed


def installed_sglang(python: str) -> str | None:
    out = subprocess.run(
        [python, "-c", "from importlib.metadata import version; print(version('sglang'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or None


def preinstalled() -> dict[str, str]:
    """Version -> python from COLOBENCH_SGLANG_PYTHONS (hosts where environments are made by hand or offline)."""
    pairs = [p.split("=", 1) for p in os.environ.get(PYTHONS_ENV, "").split(",") if "=" in p]
    return {v.strip(): py.strip() for v, py in pairs}


def python_resolver(wheelhouse: Path | None = None, system_site: bool = False) -> Callable:
    """scenario -> the python its runner uses: a preinstalled one, the current one when it already has that sglang
    version, or the version's own (created on first use) environment."""
    known = preinstalled()
    current: list[str | None] = []

    def resolve(scenario) -> str:
        version = scenario.axes.get("sglang")
        if version in (None, CURRENT) or scenario.settings.runner:
            return sys.executable
        if version in known:
            return known[version]
        if not current:
            current.append(installed_sglang(sys.executable))
        if version == current[0]:
            return sys.executable
        return str(create(version_specs(version), wheelhouse, system_site=system_site).python)

    return resolve
