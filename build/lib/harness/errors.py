"""One error family for bad input and for "could not judge".

- Owns: `ColobenchError` and its subclasses; each message is one line, `<where>: <what>; <hint>`.
- Does not own: regressions. A regression is a verdict value (see verdict.py), never an exception.
"""

from __future__ import annotations


class ColobenchError(Exception):
    """Bad input or an unusable environment; the CLI prints it as one line and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ScenarioError(ColobenchError):
    """A matrix, models or signatures file that cannot be used as written."""


class HistoryError(ColobenchError):
    """The results history cannot be read or written."""


class LaunchError(ColobenchError):
    """A runner or environment could not be started."""


class EnvError(ColobenchError):
    """A Python environment for a scenario could not be created or found."""


class NotEnoughGpus(LaunchError):
    """This host shows fewer GPUs than a scenario needs: the scenario is skipped, never failed."""
