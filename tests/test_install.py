"""colobench installed as another repository would install it: the built wheel in a fresh virtual environment, used
from a folder of one's own: `colobench list` (built-in matrix and models as package data), `colobench init`, a CPU
smoke row through `colobench run`, and the same row through `pytest` (the pytest11 entry point).

The fresh environment gets its third-party packages (pyyaml, torch, ray, ...) from this test's own environment through
a .pth file, so nothing is downloaded; colobench itself comes only from the wheel (never the checkout)."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness import REPO_ROOT


def sh(argv, cwd, env=None, timeout=600):
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # setuptools builds in the source tree: a copy keeps build/ out of the checkout
    skip = (".git", ".venv", ".whl*", ".jit", "reports", "build", "dist", "*.egg-info", "__pycache__")
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*skip))
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist"]
    code, out = sh([*wheel_cmd, source], cwd=root)
    assert code == 0, out
    (wheel,) = (root / "dist").glob("colobench-*.whl")
    venv = root / "venv"
    code, out = sh([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    assert code == 0, out
    python = venv / "bin" / "python"
    code, out = sh(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], cwd=root
    )
    assert code == 0, out
    purelib = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = root / "user-repo"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return venv, home, env


def test_the_wheel_lists_its_built_in_matrix_from_any_folder(installed):
    venv, home, env = installed
    code, out = sh([venv / "bin" / "python", "-c", "import harness; print(harness.__file__)"], home, env)
    assert code == 0 and str(venv) in out and str(REPO_ROOT) not in out  # the wheel, not the checkout
    code, out = sh([venv / "bin" / "colobench", "list"], home, env)
    assert code == 0 and "tiny-llama.tp1.colocate.ref" in out and "9 scenarios" in out, out
    code, out = sh([venv / "bin" / "colobench", "list", "--matrix", "bump", "--gpus", "1"], home, env)
    assert code == 0 and "sglang-0.5.12" in out, out
    code, out = sh([venv / "bin" / "colobench", "list", "--matrix", "nope.yaml"], home, env)
    assert code == 2 and out.count("\n") == 1 and "built-in matrices: bench-gpu" in out, out


def test_init_then_a_cpu_row_through_run_and_through_pytest(installed):
    venv, home, env = installed
    code, out = sh([venv / "bin" / "colobench", "init"], home, env)
    assert code == 0 and (home / "matrix" / "colobench.yaml").is_file() and (home / "models.yaml").is_file(), out
    code, out = sh(
        [venv / "bin" / "colobench", "run", "--matrix", "matrix/colobench.yaml", "-k", "colocate", "--no-history"],
        home,
        env,
    )
    assert code == 0 and "colobench: pass" in out, out
    code, out = sh(
        [
            venv / "bin" / "python",
            "-m",
            "pytest",
            "matrix/colobench.yaml",
            "-k",
            "colocate",
            "-q",
            "-p",
            "no:cacheprovider",
            "--reports-dir",
            "pytest-reports",
        ],
        home,
        env,
    )
    assert code == 0 and "1 passed" in out, out
    assert list((home / "pytest-reports" / "runs").glob("*/junit.xml"))
