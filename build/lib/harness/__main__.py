"""`python -m harness ...` is the `colobench` command (for hosts where the package is not installed)."""

from harness.cli import entry

entry()
