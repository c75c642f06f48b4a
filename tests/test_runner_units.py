"""The runner's pieces without Ray: wire format, version rules, device mapping, the reference engine over HTTP."""

import os
import pickle
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from harness.runner import placement, weight_sync  # noqa: E402
from harness.runner.engines import sglang  # noqa: E402
from harness.runner.engines.client import EngineClient, EngineHTTPError  # noqa: E402
from harness.runner.engines.process import EngineProcess  # noqa: E402


def test_flatten_roundtrip_over_shared_memory():
    named = [("a", torch.randn(3, 4)), ("b", torch.arange(6, dtype=torch.int64)), ("c", torch.randn(5))]
    buckets = weight_sync.flatten(named)
    assert len(buckets) == 2  # one per dtype
    back = dict(x for b in buckets for x in weight_sync.unflatten(weight_sync.deserialize(weight_sync.serialize(b))))
    assert all(torch.equal(back[n], t) for n, t in named)


def test_safe_unpickler_blocks_code():
    import base64

    evil = base64.b64encode(pickle.dumps(os.system)).decode()
    with pytest.raises(pickle.UnpicklingError, match="blocked unsafe global"):
        weight_sync.deserialize(evil)


def test_chunks_respect_the_bucket_size():
    named = [(str(i), torch.zeros(256)) for i in range(10)]  # 1 KiB each
    assert [len(c) for c in weight_sync.chunks(named, 3 * 1024)] == [3, 3, 3, 1]


def test_trainer_actors_of_an_sglang_run_match_the_servers_nccl_cumem():
    """sglang runs with NCCL_CUMEM_ENABLE=0; a trainer on NCCL's default failed the first broadcast on 2xH200."""
    pytest.importorskip("ray")
    env = placement.actor_options(None, 0, 0.5, True, sglang.trainer_env())["runtime_env"]["env_vars"]
    assert env["NCCL_CUMEM_ENABLE"] == "0" and env["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] == "1"
    assert "NCCL_CUMEM_ENABLE" not in placement.actor_options(None, 0, 0.5, False)["runtime_env"]["env_vars"]


def command(version, tp=1, base=0, saver=True, allreduce="v2", args=None):
    """sglang.server_command with this file's fixed port numbers and model path."""
    return sglang.server_command(
        "/m",
        version,
        tp=tp,
        ep=1,
        port=1,
        nccl_port=2,
        base_gpu_id=base,
        memory_saver=saver,
        custom_all_reduce=allreduce,
        engine_args=args or {},
    )


@pytest.mark.parametrize(
    "version,flag,absent",
    [
        ((0, 5, 12), "--cuda-graph-max-bs", "--cuda-graph-max-bs-decode"),
        ((0, 5, 15), "--cuda-graph-max-bs-decode", "--disable-piecewise-cuda-graph"),
    ],
)
def test_sglang_flags_follow_the_version(version, flag, absent):
    argv, env = command(version, tp=2, base=1, saver=True, allreduce="v2", args={})
    assert flag in argv and absent not in argv
    assert argv[argv.index("--base-gpu-id") + 1] == "1"
    assert env["SGLANG_MEMORY_SAVER_CUDA_GRAPH"] == "true"
    if version >= (0, 5, 14):
        assert argv[argv.index("--cuda-graph-backend-prefill") + 1] == "disabled"


def test_custom_all_reduce_switch_per_version():
    assert sglang.allreduce_env((0, 5, 11), "v2") == {"SGLANG_USE_JIT_ALL_REDUCE": "true"}
    assert sglang.allreduce_env((0, 5, 12), "v1") == {"SGLANG_OPT_USE_CUSTOM_ALL_REDUCE_V2": "0"}
    argv, _ = command((0, 5, 12), tp=2, base=0, saver=False, allreduce="off", args={})
    assert "--disable-custom-all-reduce" in argv and "--chunked-prefill-size" not in argv
    assert sglang.parse_version("0.5.12.post1") == (0, 5, 12)
    argv, _ = command((0, 5, 17), tp=1, base=0, saver=True, allreduce="v2", args={"chunked_prefill_size": 1024})
    assert argv[argv.index("--chunked-prefill-size") + 1] == "1024"


def test_base_gpu_id_is_the_local_index_under_remapped_visible_devices():
    lay = placement.layout(colocate=True, engine_gpus=2, trainer_gpus=2)
    lay.physical_ids = [1, 0]  # CUDA_VISIBLE_DEVICES=1,0 on the engine's node
    lay.visible = [[1, 0], [1, 0]]
    assert placement.base_gpu_id(lay, 0) == 0
    assert placement.base_gpu_id(lay, 0, mode="physical") == 1
    assert [placement.local_index(lay, b) for b in (0, 1)] == [0, 1]
    split = placement.layout(colocate=False, engine_gpus=1, trainer_gpus=1)
    assert split.engine_bundles == [[1]] and split.trainer_bundles == [0]
    lay4 = placement.layout(True, 4, 4)
    lay4.physical_ids = [1, 2, 3, 4]
    lay4.visible = [[4, 5, 6, 7]] * 4
    with pytest.raises(RuntimeError, match="GPU id 1 is not valid under CUDA_VISIBLE_DEVICES=4,5,6,7"):
        placement.base_gpu_id(lay4, 0)


@pytest.fixture(scope="module")
def reference_server(tmp_path_factory):
    from harness.matrix import models
    from harness.runner import tiny_model

    model = models.load()["tiny-llama"].to_json()
    path = tiny_model.ensure(model, "float32")
    port = 29000 + os.getpid() % 3000
    log = tmp_path_factory.mktemp("eng") / "engine-0.log"
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parent.parent)}
    engine = EngineProcess(
        [sys.executable, "-m", "harness.runner.engines.reference", "--model-path", str(path), "--port", str(port)],
        env,
        str(log),
        f"http://127.0.0.1:{port}",
    )
    engine.start()
    engine.wait_healthy(120)
    yield EngineClient(engine.url), path, log
    engine.stop()


def test_reference_engine_speaks_the_rl_endpoints(reference_server):
    client, path, log = reference_server
    out = client.generate([[5, 6, 7, 8], [5, 6, 7, 8]], max_new_tokens=4, seed=3)
    assert len(out) == 2 and len(out[0]["output_ids"]) == 4
    assert all(lp[0] <= 0 for lp in out[0]["meta_info"]["output_token_logprobs"])
    again = client.generate([[5, 6, 7, 8], [5, 6, 7, 8]], max_new_tokens=4, seed=3)
    assert [o["output_ids"] for o in again] == [o["output_ids"] for o in out]  # seeded sampling
    before = client.weights_checker("checksum")["ranks"][0]["checksums"]
    client.release_memory_occupation(None)
    with pytest.raises(EngineHTTPError, match="KeyError"):
        client.resume_memory_occupation(["nothing-released"])
    client.resume_memory_occupation(["weights"])
    client.resume_memory_occupation(["kv_cache", "cuda_graph"])
    after = client.weights_checker("checksum")["ranks"][0]["checksums"]
    assert after != before  # contents are gone, as in sglang
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    named = [(n, p.detach()) for n, p in model.named_parameters()]
    info = weight_sync.sync_colocated(client, named, "7")
    assert info["buckets"] == 1 and info["bytes"] > 0
    assert client.weights_checker("checksum")["ranks"][0]["checksums"] == before
    assert client.model_info()["weight_version"] == "7"
    text = log.read_text()
    assert "Load weight end." in text and "The server is fired up and ready to roll!" in text


def test_resync_check_passes_a_full_sync_and_names_a_tensor_the_sync_leaves_out(reference_server):
    from harness.runner import verify

    client, path, _ = reference_server
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    named = [(n, p.detach()) for n, p in model.named_parameters()]
    skipped = "model.layers.1.mlp.up_proj.weight"
    weight_sync.sync_colocated(client, named, "8")
    verify.begin_resync(client)
    weight_sync.sync_colocated(client, named, "8")
    assert verify.resync_matches(client) == (True, "")
    verify.begin_resync(client)
    weight_sync.sync_colocated(client, [(n, t) for n, t in named if n != skipped], "8")
    assert verify.resync_matches(client) == (False, skipped)


def test_checksum_and_exact_compares_agree_and_name_a_corrupted_tensor(reference_server):
    from harness.runner import verify

    client, path, _ = reference_server
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    named = [(n, p.detach()) for n, p in model.named_parameters()]
    weight_sync.sync_colocated(client, named, "9")
    assert verify.checksums_match(client, named, "reference") == (True, "")
    assert verify.by_name_matches(client, named) == (True, "")
    bad = "model.layers.0.self_attn.k_proj.weight"
    weight_sync.sync_colocated(client, [(n, t + 1 if n == bad else t) for n, t in named], "10")
    assert verify.checksums_match(client, named, "reference") == (False, bad)
    assert verify.by_name_matches(client, named) == (False, bad)


def test_weights_check_method_follows_the_choice_version_tp_and_layout():
    from harness.runner.verify import method

    assert method("reference", "LlamaForCausalLM") == "checksum"
    assert method("reference", "LlamaForCausalLM", "exact") == "by-name"
    assert method("sglang", "Qwen3MoeForCausalLM", "auto", (0, 5, 12), 1, 151936) == "checksum"
    assert method("sglang", "Qwen3MoeForCausalLM", "auto", (0, 5, 11), 1, 151936) == "resync"
    assert method("sglang", "LlamaForCausalLM", "auto", (0, 5, 17), 2, 1024) == "by-name"
    assert method("sglang", "LlamaForCausalLM", "exact", (0, 5, 17), 1, 1024) == "by-name"
    assert method("sglang", "Qwen3ForCausalLM", "auto", (0, 5, 12), 1, 1000) == "resync"  # padded vocab
    for args, why in [
        (((0, 5, 11), 1, 1024), "no /weights_checker checksum"),
        (((0, 5, 12), 2, 1024), "tp=2"),
        (((0, 5, 12), 1, 1000), "not a multiple of 64"),
    ]:
        with pytest.raises(ValueError, match=why):
            method("sglang", "Qwen3ForCausalLM", "checksum", *args)
    with pytest.raises(ValueError, match="no known sglang layout"):
        method("sglang", "GemmaForCausalLM", "checksum", (0, 5, 12), 1, 1024)


def test_engine_layout_fuses_like_sglang():
    from harness.runner.verify import engine_layout

    t = {
        n: torch.full((2, 3), float(i))
        for i, n in enumerate(
            [
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.k_proj.weight",
                "model.layers.0.self_attn.v_proj.weight",
                "model.layers.0.mlp.experts.1.gate_proj.weight",
                "model.layers.0.mlp.experts.1.up_proj.weight",
                "model.layers.0.mlp.experts.1.down_proj.weight",
                "model.layers.0.mlp.experts.0.gate_proj.weight",
                "model.layers.0.mlp.experts.0.up_proj.weight",
                "model.layers.0.mlp.experts.0.down_proj.weight",
                "model.norm.weight",
            ]
        )
    }
    out = engine_layout(list(t.items()), "sglang")
    assert set(out) == {
        "model.layers.0.self_attn.qkv_proj.weight",
        "model.layers.0.mlp.experts.w13_weight",
        "model.layers.0.mlp.experts.w2_weight",
        "model.norm.weight",
    }
    assert out["model.layers.0.self_attn.qkv_proj.weight"][:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    w13 = out["model.layers.0.mlp.experts.w13_weight"]
    assert w13.shape == (2, 4, 3) and w13[0, :, 0].tolist() == [6, 6, 7, 7] and w13[1, :, 0].tolist() == [3, 3, 4, 4]
    assert out["model.layers.0.mlp.experts.w2_weight"][:, 0, 0].tolist() == [8, 5]
    assert engine_layout(list(t.items()), "reference").keys() == t.keys()


def test_engine_death_is_noticed_while_waiting(tmp_path):
    engine = EngineProcess(
        [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        dict(os.environ),
        str(tmp_path / "e.log"),
        "http://127.0.0.1:9",
    )
    engine.start()
    time.sleep(0.5)
    with pytest.raises(RuntimeError, match="Server process terminated unexpectedly"):
        engine.wait_healthy(10)


def test_harness_never_imports_torch_ray_or_sglang():
    code = (
        "import sys, harness.cli, harness.pytest_plugin, harness.run.execute, harness.study.bisect, harness.study.compare;"
        "bad = [m for m in ('torch', 'ray', 'sglang') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


class RecordingClient:
    def __init__(self) -> None:
        self.posts: list[bool] = []

    def update_weights_from_tensor(self, payloads, load_format=None, flush_cache=True, weight_version=None):
        self.posts.append(flush_cache)


def test_colocated_sync_flushes_with_its_last_post_only():
    import torch

    client = RecordingClient()
    named = [(f"w{i}", torch.ones(256)) for i in range(4)] + [("h", torch.ones(8, dtype=torch.float16))]
    info = weight_sync.sync_colocated(client, named, "1", bucket_bytes=2048)
    assert info["buckets"] == len(client.posts) >= 3
    assert client.posts == [False] * (len(client.posts) - 1) + [True]


SGLANG_SIDE = """
import sys, torch, torch.distributed as dist
from datetime import timedelta
from torch.distributed import distributed_c10d as c10d
port, name = int(sys.argv[1]), sys.argv[2]
store, rank, world = next(c10d.rendezvous(f"tcp://127.0.0.1:{port}", 1, 2, timeout=timedelta(seconds=60)))
store = c10d.PrefixStore(name, store)              # what sglang's init_custom_process_group does
kw = {"group_name": name, "timeout": timedelta(seconds=60)}
pg, _ = c10d._new_process_group_helper(2, 1, [], c10d.Backend("gloo"), store, **kw)
c10d._world.pg_group_ranks[pg] = {0: 0, 1: 1}
t = torch.zeros(4)
dist.broadcast(t, src=0, group=pg)
print(t.tolist(), flush=True)
import os; os._exit(0)             # no teardown of the gloo group (its threads abort an orderly exit)
"""


def test_weight_update_group_meets_a_group_built_the_sglang_way():
    """The split path's group must use sglang's store layout (keys under the group name), or both ends wait."""
    import torch
    import torch.distributed as dist

    from harness.runner.host import free_port

    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-c", SGLANG_SIDE, str(port), "weight_update_group"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    group = weight_sync.custom_group("gloo", "127.0.0.1", port, 0, 2, "weight_update_group", timeout_s=60)
    dist.broadcast(torch.arange(4.0), src=0, group=group)
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err[-1000:]
    assert out.strip() == "[0.0, 1.0, 2.0, 3.0]"


def test_every_built_in_row_crosses_the_boundary_as_the_runners_typed_spec():
    from harness import resources
    from harness.matrix import models, scenario
    from harness.runner.spec import RunSpec

    rows = scenario.load_many(scenario.matrix_files(resources.builtin_matrices()), models.load()).scenarios
    for s in rows:
        doc = s.to_json()
        doc["runtime"] = {"run_dir": "/tmp/x", "ray_address": None}
        spec = RunSpec.from_json(doc)
        assert (spec.id, spec.axes.tp, spec.axes.colocate, spec.settings.steps) == (
            s.id,
            s.axes["tp"],
            s.axes["colocate"],
            s.settings.steps,
        )
        assert spec.settings.batch.max_new_tokens == s.settings.batch["max_new_tokens"]
    perf = next(s for s in rows if s.id.startswith("llama3.1-8b-l10.tp1.colocate.sglang"))
    doc = {**perf.to_json(), "runtime": {}}
    doc["axes"]["sglang"] = "0.5.12"
    argv, env = sglang.command_for(RunSpec.from_json(doc), "/m", 1, 0, "127.0.0.1", 2)
    assert "--enable-metrics" in argv and env["SGLANG_ENABLE_METRICS_DEVICE_TIMER"] == "1"
