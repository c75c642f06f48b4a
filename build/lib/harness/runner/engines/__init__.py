"""Rollout engines: `client.py` (the SGLang HTTP protocol, used for both), `reference.py` (the CPU server),
`sglang.py` (a real sglang server's command line per version), `process.py` (starting one, standalone or from a
Ray actor, and waiting for health)."""

__all__: list[str] = []
