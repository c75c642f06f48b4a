"""Ray for one run only, one placement group, bundles for trainer and engine, and the engine's base_gpu_id.

- A Ray cluster started for this run (`ray.init(address="local")` with its own temp dir), torn down at the end
  (also on failure); never a global `ray stop`.
- One PACK placement group. Colocated: trainer and engine share bundles (trainer 0.4, engine launcher 0.2 of a
  bundle, as Miles). Split: the engine's bundles come after the trainer's.
- base_gpu_id is the *local* index of the engine's first device inside CUDA_VISIBLE_DEVICES (the fix of Miles
  PR 1178). `device_mapping: physical` reproduces the old behaviour (the physical id) for experiments.
The CPU path uses the same code with logical device slots instead of GPUs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

NOSET_ENV = {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}
TRAINER_SHARE = 0.4
ENGINE_SHARE = 0.2


@dataclass
class Layout:
    """Which bundles the trainer ranks and each engine use; physical ids per bundle where known."""

    bundles: int
    trainer_bundles: list[int]
    engine_bundles: list[list[int]]
    physical_ids: list[int] = field(default_factory=list)   # bundle -> physical GPU id (slot index on CPU)


def layout(colocate: bool, engine_gpus: int, trainer_gpus: int, engines: int = 1) -> Layout:
    """Bundle indices, Miles' way: colocated engines start at 0, split ones after the trainer."""
    if colocate:
        total = max(engine_gpus * engines, trainer_gpus)
        offset = 0
    else:
        total = trainer_gpus + engine_gpus * engines
        offset = trainer_gpus
    return Layout(total, list(range(trainer_gpus)),
                  [list(range(offset + i * engine_gpus, offset + (i + 1) * engine_gpus)) for i in range(engines)],
                  list(range(total)))


def visible_devices() -> list[int]:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [int(x) for x in value.split(",") if x.strip().isdigit()] if value else []


def base_gpu_id(lay: Layout, engine_index: int, visible: list[int], mode: str = "local") -> int:
    """The engine's base_gpu_id: the local index (inside CUDA_VISIBLE_DEVICES) of its first bundle's device."""
    first_bundle = lay.engine_bundles[engine_index][0]
    physical = lay.physical_ids[first_bundle]
    if mode == "physical":
        return physical                              # the pre-fix behaviour: wrong under remapped visible devices
    if not visible:
        return first_bundle
    if physical not in visible:
        raise RuntimeError(f"GPU id {physical} is not valid under CUDA_VISIBLE_DEVICES={','.join(map(str, visible))}")
    return visible.index(physical)


class RayCluster:
    """A Ray cluster owned by this run: started in `__enter__`, shut down and its temp dir removed in `__exit__`."""

    def __init__(self, num_cpus: int, num_gpus: int) -> None:
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        # Ray's socket paths must stay short: a temp dir per run under /tmp, not the (deep) run folder; the harness
        # names it (COLOBENCH_RAY_TEMP) so that it can remove it after a runner that was killed
        named = os.environ.get("COLOBENCH_RAY_TEMP")
        if named:
            os.makedirs(named, mode=0o700, exist_ok=True)
        self.temp_dir = named or tempfile.mkdtemp(prefix="cb-ray-")

    def __enter__(self) -> "RayCluster":
        import ray
        ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus, _temp_dir=self.temp_dir,
                 _node_ip_address="127.0.0.1",
                 include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        return self

    def __exit__(self, *exc: object) -> None:
        import ray
        try:
            ray.shutdown()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def placement_group(lay: Layout, use_gpus: bool):
    """One PACK placement group of `lay.bundles` bundles; fills `lay.physical_ids` from Ray on GPU hosts."""
    import ray
    from ray.util.placement_group import placement_group as make_pg
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": 1, "GPU": 1} if use_gpus else {"CPU": 1}
    pg = make_pg([dict(bundle) for _ in range(lay.bundles)], strategy="PACK")
    ray.get(pg.ready(), timeout=120)
    if use_gpus:
        @ray.remote(num_gpus=1, num_cpus=0)
        def gpu_of_bundle() -> int:
            return int(ray.get_gpu_ids()[0])      # Ray reports physical ids (Miles' InfoActor)
        ids = ray.get([gpu_of_bundle.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=i)).remote() for i in range(lay.bundles)])
        lay.physical_ids = ids
    return pg


def strategy(pg, bundle_index: int):
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=bundle_index,
                                            placement_group_capture_child_tasks=True)


def actor_options(pg, bundle_index: int, share: float, use_gpus: bool, env: dict[str, str] | None = None) -> dict:
    """Fractional CPU (and GPU) of a bundle, NOSET visible devices (the actor sees every GPU of the node), plus `env`."""
    opts = {"num_cpus": share, "scheduling_strategy": strategy(pg, bundle_index),
            "runtime_env": {"env_vars": {**NOSET_ENV, **(env or {})}}}
    if use_gpus:
        opts["num_gpus"] = share
    return opts
