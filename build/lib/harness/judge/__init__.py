"""How a run is judged: log lines and tracebacks (logs), milestone rules (milestones), the first causal error
(triage + signatures.yaml), metric gates (metrics), pure statistics (stats), the one verdict fold (verdict) and the
result record (result)."""

__all__ = ["logs", "metrics", "milestones", "result", "stats", "triage", "verdict"]
