"""The built-in colocated runner. Runs INSIDE the scenario's environment (torch, ray, sglang, megatron-core);
never imports the harness modules above it. Input: scenario.json. Output: events.jsonl + logs in the run folder.

Modules: loop.py (the RL step loop), placement.py (Ray owned or attached, bundles and what each bundle's node sees,
base_gpu_id), host.py (node address, free ports, versions, launch context), engines/ (client, reference server,
both servers' command lines in sglang.py, launch from a Ray actor), trainers/ (TrainerSpec, torch, megatron),
weight_sync.py, verify.py, tiny_model.py, hf_layout.py, events.py.
"""

__all__: list[str] = []
