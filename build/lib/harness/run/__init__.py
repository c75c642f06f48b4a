"""Running scenarios: one scenario end to end (execute), the runner subprocess (launch), GPU leases (gpus), Python
environments per version (envs), and a run of many scenarios with its history and baselines (session)."""

__all__ = ["envs", "execute", "gpus", "launch", "session"]
