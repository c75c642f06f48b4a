"""The built-in colocated runner. Runs INSIDE the scenario's environment (torch, ray, sglang, megatron-core);
never imports the harness modules above it. Input: scenario.json. Output: events.jsonl + logs in the run folder.

Modules: loop.py (the RL step loop), placement.py (Ray, bundles, base_gpu_id), engines/ (client, reference
server, sglang launch), trainers/ (torch), weight_sync.py, tiny_model.py, events.py.
"""

__all__: list[str] = []
