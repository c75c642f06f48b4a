"""What was run, kept: the SQLite history (history) and what a run ran on (fingerprint)."""

__all__ = ["fingerprint", "history"]
