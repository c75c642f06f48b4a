"""colobench: end-to-end regression and benchmark harness for colocated SGLang rollout + training.

- `harness/` (this package) is pure Python: it never imports torch, ray or sglang.
- `harness/runner/` runs inside the scenario's environment and never imports the harness modules.

Stages, each importing only from the ones before it: matrix -> judge -> store -> report -> run -> study -> cli
(plus `errors` and `redact`, which every stage may use, and `pytest_plugin`, a thin entry point like `cli`).
This file imports nothing but pathlib, so that `python -m harness.runner` works in an environment that holds
only the runner's dependencies.
"""

from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
__all__ = ["__version__", "REPO_ROOT"]
