"""Triage reads tracebacks the way an engineer does: the exception line (not the header) is the cause, chains resolve
to their root, Ray's and sglang's wrappers are unwrapped, and the engine's own error beats the runner's symptom.
Logs are written in the libraries' own formats (Python's traceback module, sglang's scheduler, Ray's worker
prefixes, NCCL, torch_memory_saver, faulthandler)."""

import json
import sys
import textwrap

import pytest

from harness.judge import triage
from harness.judge.logs import LogLine
from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute
from tests.conftest import FAKE_RUNNER
from tests.fake_runner import IMPORT_TB, RUNNER_DIED

CATALOG = triage.load()


def lines(source: str, text: str, t: float | None = None) -> list[LogLine]:
    return [LogLine(source, n, line, t) for n, line in enumerate(text.splitlines(), 1)]


def test_import_traceback_in_the_engine_beats_the_runners_engine_died():
    diag = triage.diagnose(lines("runner", RUNNER_DIED) + lines("engine-0", IMPORT_TB), CATALOG)
    assert diag.name == "missing-module" and diag.is_infra
    assert diag.line.source == "engine-0" and diag.line.text == "ModuleNotFoundError: No module named 'xgrammar'"
    assert diag.raised.exc_class == "ModuleNotFoundError"
    assert "server-terminated-unexpectedly" in diag.symptoms
    assert any("xgrammar_backend.py" in c for c in diag.context)  # the innermost frame is the context


def test_triage_verb_and_run_name_the_same_first_cause(tmp_path, run_cli, write_matrix):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "runner.log").write_text(RUNNER_DIED)
    (tmp_path / "logs" / "engine-0.log").write_text(IMPORT_TB)
    code, out, _ = run_cli("triage", tmp_path / "logs", "--json")
    folder = json.loads(out)
    assert code == 1 and folder["signature"] == "missing-module" and folder["where"] == "engine-0:11"
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 20}}
        include: [{{tag: imp, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "import-crash"]}}}}]
        """)
    res = execute.run_scenario(
        scenario.load(path, models.load()).scenarios[0], tmp_path / "run", execute.Options(infra_retries=0)
    )
    assert res.verdict == Verdict.INFRA_ERROR, res.reason
    assert res.diagnosis["signature"] == "missing-module" and res.diagnosis["where"] == "engine-0:11"
    assert "No module named 'xgrammar'" in res.reason and "not the product" in res.reason


def test_a_chain_resolves_to_its_root_and_keeps_the_chain():
    text = textwrap.dedent("""\
        Traceback (most recent call last):
          File "/x/model_runner.py", line 300, in init_memory_pool
            self.token_to_kv_pool = MHATokenToKVPool(size)
        KeyError: 'kv_cache_dtype'

        The above exception was the direct cause of the following exception:

        Traceback (most recent call last):
          File "/x/scheduler.py", line 2410, in run_scheduler_process
            scheduler = Scheduler(server_args, port_args, gpu_id, tp_rank)
        RuntimeError: Scheduler failed to start
        """)
    diag = triage.diagnose(lines("engine-0", text), CATALOG)
    assert diag.signature is None and diag.raised.exc_class == "KeyError"
    assert diag.line.number == 4 and diag.raised.chain == (
        "KeyError: 'kv_cache_dtype'",
        "RuntimeError: Scheduler failed to start",
    )
    assert diag.one_line().startswith("unknown KeyError failure at engine-0:4: KeyError: 'kv_cache_dtype'")
    assert not any("Traceback (most recent call last)" in c and ">" in c.split(" ")[0] for c in diag.context)


def test_during_handling_chains_too():
    text = (
        'Traceback (most recent call last):\n  File "a.py", line 1, in f\nValueError: bad shape\n\n'
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "b.py", line 2, in g\nTypeError: cleanup failed\n'
    )
    diag = triage.diagnose(lines("trainer-0", text), CATALOG)
    assert diag.raised.exc_class == "ValueError" and diag.raised.chain[-1] == "TypeError: cleanup failed"


def test_ray_prefixes_and_the_task_error_wrapper_are_unwrapped():
    text = textwrap.dedent("""\
        (SGLangEngine pid=4242) Traceback (most recent call last):
        (SGLangEngine pid=4242)   File "/x/sglang_engine.py", line 120, in init
        (SGLangEngine pid=4242)     self.launch()
        (SGLangEngine pid=4242) ray.exceptions.RayTaskError(ValueError): ray::SGLangEngine.init() (pid=4242, ip=10.0.0.2)
        (SGLangEngine pid=4242)   File "/x/weights.py", line 9, in load
        (SGLangEngine pid=4242)     raise ValueError("shape mismatch for lm_head.weight")
        (SGLangEngine pid=4242) ValueError: shape mismatch for lm_head.weight
        """)
    diag = triage.diagnose(lines("ray/worker-1", text), CATALOG)
    assert diag.raised.exc_class == "ValueError" and diag.line.number == 7
    assert "weights.py" in " ".join(diag.context)


def test_sglang_scheduler_prefix_and_a_torch_oom():
    text = textwrap.dedent("""\
        [2026-12-02 10:00:05 TP0] Scheduler hit an exception: Traceback (most recent call last):
          File "/x/sglang/srt/managers/scheduler.py", line 2410, in run_scheduler_process
            scheduler.event_loop_overlap()
          File "/x/torch/nn/modules/module.py", line 1775, in _call_impl
            return forward_call(*args, **kwargs)
        torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which 1.02 GiB is free.
        """)
    diag = triage.diagnose(lines("engine-0", text), CATALOG)
    assert diag.name == "cuda-oom" and diag.line.number == 6 and diag.raised.exc_class == "torch.OutOfMemoryError"


def test_three_processes_symptom_first_in_time_cause_in_another_file():
    runner = [
        LogLine(
            "runner",
            1,
            "harness.runner.engines.process.EngineDied: Server process terminated unexpectedly. "
            "(exit code 1; see engine-0.log)",
            5.0,
        )
    ]
    trainer = [
        LogLine(
            "trainer-0",
            1,
            "RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] "
            "Timed out waiting 1800000ms for recv operation to complete",
            12.0,
        )
    ]
    engine = lines(
        "engine-0",
        'Traceback (most recent call last):\n  File "/x/model_loader.py", line 4, in load\n'
        "AssertionError: expert count 128 does not divide ep_size 3\n",
        8.0,
    )
    diag = triage.diagnose(runner + trainer + engine, CATALOG)
    assert diag.line.source == "engine-0" and diag.raised.exc_class == "AssertionError"
    assert set(diag.symptoms) == {"server-terminated-unexpectedly", "gloo-timeout"}


REAL_SHAPED = {
    "memory-saver-cu-mem-create-oom": "CUresult error result=2 file=csrc/torch_memory_saver.cpp func=cu_mem_create line=103",
    "nccl-system-error": "torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/"
    "ProcessGroupNCCL.cpp:3356, unhandled system error (run with NCCL_DEBUG=INFO for details), "
    "NCCL version 2.28.9",
    "nccl-error": "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited "
    "or there was a network error, NCCL version 2.28.9 ncclRemoteError: A call failed possibly due to a "
    "network error or a remote process exiting prematurely.",
    "gloo-timeout": "RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting "
    "1800000ms for recv operation to complete",
    "custom-allreduce-capture-invalid-argument": "Exception: Capture cuda graph failed: Runtime check failed at "
    "/sgl-workspace/sglang/python/sglang/jit_kernel/include/sgl_kernel/distributed/custom_all_reduce.cuh:37: "
    "CUDA error: invalid argument",
    "cuda-graph-capture-failed": "Exception: Capture cuda graph failed: CUDA error: operation not permitted when "
    "stream is capturing",
    "cuda-invalid-argument": "torch.AcceleratorError: CUDA error: invalid argument",
    "cuda-illegal-memory-access": "RuntimeError: CUDA error: an illegal memory access was encountered",
    "port-in-use": "OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 30000): "
    "address already in use",
    "ray-start-failed": "RuntimeError: Failed to start the GCS server, please check the logs in "
    "/tmp/cb-ray-1/session_latest/logs/gcs_server.out",
    "segfault": "Fatal Python error: Segmentation fault",
    "killed-sigkill": "harness.runner.engines.process.EngineDied: Server process terminated unexpectedly. "
    "(exit code -9; see engine-0.log)",
    "missing-module": "ImportError: cannot import name 'FlattenedTensorBucket' from 'sglang.srt.weight_sync.tensor_bucket'",
}


@pytest.mark.parametrize("name", sorted(REAL_SHAPED))
def test_generic_and_specific_classes_from_real_shaped_lines(name):
    tb = f'Traceback (most recent call last):\n  File "/x/y.py", line 3, in f\n    g()\n{REAL_SHAPED[name]}\n'
    text = REAL_SHAPED[name] if name in ("memory-saver-cu-mem-create-oom", "segfault") else tb
    diag = triage.diagnose(lines("engine-0", text), CATALOG)
    assert diag.name == name, diag.one_line()


def test_capture_invalid_argument_is_not_the_generic_one_and_infra_classes_are_infra():
    by = {s.name: s for s in CATALOG}
    assert [s.name for s in CATALOG].index("custom-allreduce-capture-invalid-argument") < [
        s.name for s in CATALOG
    ].index("cuda-invalid-argument")
    assert {
        by[n].klass
        for n in ("missing-module", "nccl-system-error", "ray-start-failed", "port-in-use", "killed-sigkill")
    } == {"infra"}


def test_killed_with_no_traceback_is_the_oom_killer_but_a_traceback_elsewhere_wins():
    died = lines("runner", REAL_SHAPED["killed-sigkill"])
    assert triage.diagnose(died, CATALOG).name == "killed-sigkill"
    assert triage.diagnose(died + lines("engine-0", IMPORT_TB), CATALOG).name == "missing-module"


@pytest.mark.parametrize(
    "prefix",
    [
        "[rank2]: ",
        "[rank0]:",
        "(pid=311) ",
        "(TrainerActor pid=77, ip=10.0.0.2) ",
        "[2026-12-01 10:00:00 TP3] ",
        "(raylet) ",
    ],
)
def test_per_process_prefixes_never_hide_the_exception_line(prefix):
    text = "".join(
        prefix + line + "\n"
        for line in [
            "Traceback (most recent call last):",
            '  File "/x/train.py", line 10, in <module>',
            "    main()",
            '  File "/x/train.py", line 5, in main',
            '    raise ValueError("bad shape 3")',
            "ValueError: bad shape 3",
        ]
    )
    diag = triage.diagnose(lines("trainer-0", text), CATALOG)
    assert diag.raised.exc_class == "ValueError" and diag.line.number == 6
    assert diag.line.text.endswith("ValueError: bad shape 3")
