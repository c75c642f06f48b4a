"""colobench: end-to-end regression and benchmark harness for colocated SGLang rollout + training.

- `harness/` (this package) is pure Python: it never imports torch, ray or sglang.
- `harness/runner/` runs inside the scenario's environment and never imports the harness modules.

This file stays import-free so that `python -m harness.runner` works in an environment that holds
only the runner's dependencies.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
