"""Ray for a run, one placement group, bundles for trainer and engine, and what each bundle's node sees.

- By default a Ray cluster owned by the run (`ray.init(address="local")`, its own temp dir, 127.0.0.1, no
  dashboard), torn down at the end (also on failure); never a global `ray stop`. With an address (`--ray-address`,
  the scenario's `runtime.ray_address`) the run attaches to an existing cluster instead: its own namespace, its
  placement group removed and its actors killed at the end, the cluster itself left running.
- One placement group. Colocated: trainer and engine share bundles (trainer 0.4, engine launcher 0.2 of a bundle,
  as Miles), PACK. Split: the engine's bundles come after the trainer's; `nodes: spread` asks STRICT_SPREAD, one
  node per bundle, so engine and trainer run on different nodes.
- Per bundle, a task on its node reports the node's IP, a free port there, its GPU (physical id) and the node's
  CUDA_VISIBLE_DEVICES (`BundleFacts`): base_gpu_id and the trainer's device index are computed from that node's
  own view, and engine URL, weight-update master and megatron's rendezvous use the owner's node IP, never
  127.0.0.1 across nodes.
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
# what every actor must see wherever it runs: the run's event stream, token and time origin, and the socket
# interfaces NCCL and Gloo should use across nodes
PASSED_ENV = (
    "COLOBENCH_EVENTS",
    "COLOBENCH_RUN_DIR",
    "COLOBENCH_TOKEN",
    "COLOBENCH_T0",
    "COLOBENCH_TRAINER_SITE",
    "COLOBENCH_LOOPBACK",
    "COLOBENCH_MODEL_CACHE",
    "NCCL_SOCKET_IFNAME",
    "GLOO_SOCKET_IFNAME",
    "NCCL_IB_HCA",
    "NCCL_IB_DISABLE",
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS",
    "PYTHONPATH",
)
TRAINER_SHARE = 0.4
ENGINE_SHARE = 0.2


@dataclass
class Layout:
    """Which bundles the trainer ranks and each engine use; physical ids per bundle where known."""

    bundles: int
    trainer_bundles: list[int]
    engine_bundles: list[list[int]]
    physical_ids: list[int] = field(default_factory=list)  # bundle -> physical GPU id (slot index on CPU)
    node_ips: list[str] = field(default_factory=list)  # bundle -> its node's IP
    ports: list[tuple[int, int]] = field(
        default_factory=list
    )  # bundle -> two ports free on its node (engine, rendezvous)
    visible: list[list[int]] = field(default_factory=list)  # bundle -> its node's CUDA_VISIBLE_DEVICES
    node_ids: list[str] = field(default_factory=list)  # bundle -> its Ray node id


def layout(colocate: bool, engine_gpus: int, trainer_gpus: int, engines: int = 1) -> Layout:
    """Bundle indices, Miles' way: colocated engines start at 0, split ones after the trainer."""
    if colocate:
        total = max(engine_gpus * engines, trainer_gpus)
        offset = 0
    else:
        total = trainer_gpus + engine_gpus * engines
        offset = trainer_gpus
    return Layout(
        total,
        list(range(trainer_gpus)),
        [list(range(offset + i * engine_gpus, offset + (i + 1) * engine_gpus)) for i in range(engines)],
        list(range(total)),
        ["127.0.0.1"] * total,
        [(0, 0)] * total,
        [[] for _ in range(total)],
        [""] * total,
    )


def visible_devices() -> list[int]:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [int(x) for x in value.split(",") if x.strip().isdigit()] if value else []


def local_index(lay: Layout, bundle: int) -> int:
    """A bundle's device as a process on its node numbers it (its node's CUDA_VISIBLE_DEVICES; the slot on CPU)."""
    visible, physical = lay.visible[bundle], lay.physical_ids[bundle]
    return visible.index(physical) if physical in visible else physical


def base_gpu_id(lay: Layout, engine_index: int, mode: str = "local") -> int:
    """The engine's base_gpu_id: the local index (inside its node's CUDA_VISIBLE_DEVICES) of its first device."""
    first_bundle = lay.engine_bundles[engine_index][0]
    visible = lay.visible[first_bundle]
    physical = lay.physical_ids[first_bundle]
    if mode == "physical":
        return physical  # the pre-fix behaviour: wrong under remapped visible devices
    if not visible:
        return first_bundle
    if physical not in visible:
        raise RuntimeError(f"GPU id {physical} is not valid under CUDA_VISIBLE_DEVICES={','.join(map(str, visible))}")
    return visible.index(physical)


class RayCluster:
    """Ray for one run: a cluster it owns (started in `__enter__`, shut down and its temp dir removed in `__exit__`),
    or, given an address, an existing cluster it attaches to and leaves running."""

    def __init__(self, num_cpus: int, num_gpus: int, address: str | None = None) -> None:
        self.num_cpus, self.num_gpus, self.address = num_cpus, num_gpus, address
        self.groups: list = []
        self.temp_dir = ""
        if not address:
            # Ray's socket paths must stay short: a temp dir per run under /tmp, not the (deep) run folder; the
            # harness names it (COLOBENCH_RAY_TEMP) so that it can remove it after a runner that was killed
            named = os.environ.get("COLOBENCH_RAY_TEMP")
            if named:
                os.makedirs(named, mode=0o700, exist_ok=True)
            self.temp_dir = named or tempfile.mkdtemp(prefix="cb-ray-")

    def __enter__(self) -> "RayCluster":
        import ray

        if not self.address:
            os.environ["COLOBENCH_LOOPBACK"] = "1"  # host.node_ip(): every address of an owned cluster is local
        env = {"env_vars": {k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
        if self.address:
            ray.init(
                address=self.address,
                namespace=f"colobench-{os.environ.get('COLOBENCH_TOKEN', os.getpid())}",
                runtime_env=env,
                log_to_driver=False,
                logging_level="WARNING",
            )
        else:
            ray.init(
                address="local",
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                _temp_dir=self.temp_dir,
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                log_to_driver=False,
                logging_level="WARNING",
                runtime_env=env,
            )
        return self

    def placement_group(self, lay: Layout, use_gpus: bool, spread: bool = False):
        pg = reserve(lay, use_gpus, spread)
        self.groups.append(pg)
        return pg

    def __exit__(self, *exc: object) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        try:
            for pg in self.groups:  # an attached cluster keeps running: leave nothing of ours in it
                remove_placement_group(pg)
        finally:
            try:
                ray.shutdown()  # the driver disconnects; an owned cluster stops with it
            finally:
                if self.temp_dir:
                    shutil.rmtree(self.temp_dir, ignore_errors=True)


def reserve(lay: Layout, use_gpus: bool, spread: bool = False):
    """One placement group of `lay.bundles` bundles (PACK, or STRICT_SPREAD: one node each); fills the layout's
    per-bundle facts from a task on each bundle's node."""
    import ray
    from ray.util.placement_group import placement_group as make_pg

    bundle = {"CPU": 1, "GPU": 1} if use_gpus else {"CPU": 1}
    pg = make_pg([dict(bundle) for _ in range(lay.bundles)], strategy="STRICT_SPREAD" if spread else "PACK")
    ray.get(pg.ready(), timeout=120)

    @ray.remote(num_cpus=0)
    def bundle_facts(slot: int) -> tuple[str, tuple[int, int], int, list[int], str]:
        from harness.runner.host import free_port, node_ip

        ip = node_ip()
        gpu = int(ray.get_gpu_ids()[0]) if use_gpus else slot  # Ray reports physical ids (Miles' InfoActor)
        first = free_port(host=ip)
        second = next(p for p in iter(lambda: free_port(host=ip), None) if p != first)
        return ip, (first, second), gpu, visible_devices(), ray.get_runtime_context().get_node_id()

    facts = ray.get(
        [
            bundle_facts.options(num_gpus=1 if use_gpus else 0, scheduling_strategy=strategy(pg, i)).remote(i)
            for i in range(lay.bundles)
        ]
    )
    lay.node_ips, lay.ports, lay.physical_ids, lay.visible, lay.node_ids = (list(x) for x in zip(*facts))
    return pg


def on_other_nodes(pg, lay: Layout, fn, *args) -> dict[str, object]:
    """{node id: fn(*args)} run as a task on one bundle of every node other than this one."""
    import ray

    mine = ray.get_runtime_context().get_node_id()
    firsts = {node: i for i, node in reversed(list(enumerate(lay.node_ids))) if node and node != mine}
    task = ray.remote(num_cpus=0)(fn)
    refs = {
        node: task.options(scheduling_strategy=strategy(pg, bundle)).remote(*args) for node, bundle in firsts.items()
    }
    return {node: ray.get(ref, timeout=600) for node, ref in refs.items()}


def _files(folder: str, mark: str) -> dict[str, bytes]:
    """The run folder's events and logs as a node sees them (nothing where the marker shows the folder is shared)."""
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, mark)):
        return {}
    return {
        name: open(os.path.join(folder, name), "rb").read()
        for name in os.listdir(folder)
        if name == "events.jsonl" or name.endswith(".log")
    }


def collect_remote(pg, lay: Layout, run_dir: str) -> list[str]:
    """Bring what actors on other nodes wrote into this node's run folder (its path on their node): logs copied as
    `<node>-<name>`, events appended. A node that shares the folder (the marker file is visible there) has nothing."""
    import secrets

    marker = f".colobench-node-{secrets.token_hex(4)}"
    open(os.path.join(run_dir, marker), "w").close()
    brought = []
    try:
        for node, found in on_other_nodes(pg, lay, _files, run_dir, marker).items():
            for name, data in found.items():
                with open(os.path.join(run_dir, name if name == "events.jsonl" else f"{node[:8]}-{name}"), "ab") as fh:
                    fh.write(data)
                brought.append(f"{node[:8]}:{name}")
    finally:
        os.remove(os.path.join(run_dir, marker))
    return brought


def strategy(pg, bundle_index: int):
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return PlacementGroupSchedulingStrategy(
        pg, placement_group_bundle_index=bundle_index, placement_group_capture_child_tasks=True
    )


def actor_options(pg, bundle_index: int, share: float, use_gpus: bool, env: dict[str, str] | None = None) -> dict:
    """Fractional CPU (and GPU) of a bundle, NOSET visible devices (the actor sees every GPU of the node), plus
    `env`."""
    passed = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    opts = {
        "num_cpus": share,
        "scheduling_strategy": strategy(pg, bundle_index),
        "runtime_env": {"env_vars": {**passed, **NOSET_ENV, **(env or {})}},
    }
    if use_gpus:
        opts["num_gpus"] = share
    return opts
