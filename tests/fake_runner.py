"""A stand-in runner for the harness's own tests and the external-runner demo matrix.

`fake_runner.py MODE [--events PATH]`: writes events (to $COLOBENCH_EVENTS) and log lines, then passes, crashes,
hangs, misses a milestone, prints a forbidden pattern, leaks a process, or writes a malformed event, on request.
stdlib only: it stands for a framework's own train.py.
"""

import json
import os
import subprocess
import sys
import time

T0 = time.time()
# an sglang 0.5.17 server that died at import, and the runner's symptom of it (tests/test_triage_tracebacks.py)
IMPORT_TB = """\
[2026-12-02 10:00:01] server_args=ServerArgs(model_path='/tmp/models/tiny', tp_size=1)
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/tmp/site/sglang/launch_server.py", line 7, in <module>
    from sglang.srt.entrypoints.http_server import launch_server
  File "/tmp/site/sglang/srt/entrypoints/http_server.py", line 48, in <module>
    from sglang.srt.constrained.xgrammar_backend import XGrammarGrammarBackend
  File "/tmp/site/sglang/srt/constrained/xgrammar_backend.py", line 22, in <module>
    import xgrammar
ModuleNotFoundError: No module named 'xgrammar'
"""
RUNNER_DIED = """\
[2026-12-02 10:00:00] colobench runner: tiny-llama.tp1.colocate.arv2.sglang-0.5.17
Traceback (most recent call last):
  File "/work/harness/runner/loop.py", line 264, in main
    Run(scn).execute()
  File "/work/harness/runner/engines/process.py", line 48, in wait_healthy
    raise EngineDied(f"Server process terminated unexpectedly. (exit code 1; see {Path(self.log_path).name})")
harness.runner.engines.process.EngineDied: Server process terminated unexpectedly. (exit code 1; see engine-0.log)
[2026-12-02 10:00:09] EngineDied: Server process terminated unexpectedly. (exit code 1; see engine-0.log)
"""


def emit(event, **fields):
    path = os.environ.get("COLOBENCH_EVENTS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"t": round(time.time() - T0, 3), "event": event, **fields}) + "\n")


def say(line):
    print(line, flush=True)


def framework_steps():
    """A framework's own per-step console line (verl's "step:N - key:value - ..." shape), no events at all."""
    for step in (1, 2, 3):
        parts = {
            "timing_s/gen": 0.5 + 0.01 * step,
            "timing_s/update_weights": 0.040,
            "timing_s/update_actor": 0.3,
            "perf/throughput": 1200.0,
            "critic/score/mean": 0.25,
        }
        say(f"step:{step} - " + " - ".join(f"{k}:{v:.3f}" for k, v in parts.items()))
    say("Training finished.")


def main(mode):
    if mode == "framework-log":
        say("[2026-05-22 10:00:01] The server is fired up and ready to roll!")
        framework_steps()
        return
    emit("runner_start")
    if mode == "import-crash":
        with open(os.path.join(os.environ["COLOBENCH_RUN_DIR"], "engine-0.log"), "w") as fh:
            fh.write(IMPORT_TB)
        sys.stdout.write(RUNNER_DIED)
        sys.exit(1)
    say("[2026-05-22 10:00:00] Init torch distributed begin.")
    if mode == "hang-early":
        time.sleep(3600)
    if mode == "ignore-term":
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
    if mode != "miss-milestone":
        say("[2026-05-22 10:00:01] The server is fired up and ready to roll!")
        emit("engine_ready", engine=0)
    for step in (1, 2):
        emit("metric", name="weight_sync_s", value=0.01 * step, unit="s", step=step)
        emit("step_done", step=step)
    if mode == "crash":
        say(
            "[2026-05-22 10:00:02] Capture cuda graph failed: Runtime check failed at "
            "/sgl-workspace/sglang/python/sglang/jit_kernel/include/sgl_kernel/distributed/custom_all_reduce.cuh:37: "
            "CUDA error: invalid argument"
        )
        say("Exception: Server process terminated unexpectedly.")
        sys.exit(1)
    if mode == "hang":
        say("training step 1 ...")
        time.sleep(3600)
    if mode == "forbidden":
        say("WARNING: CUDA error: invalid argument (recovered)")
    if mode == "malformed":
        with open(os.environ["COLOBENCH_EVENTS"], "a") as fh:
            fh.write("this is not json\n")
    if mode == "leak":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    if mode == "argv":
        say("argv: " + json.dumps(sys.argv[2:]))
    if mode == "secret":
        say("using token " + os.environ.get("HF_TOKEN", "") + " and hf_abcdefghijklmnopqrstuvwxyz0123")
        shown = {k: v for k, v in os.environ.items() if k.startswith("T_")}
        say("env " + " ".join(f"{k}={v}" for k, v in sorted(shown.items())))
        emit("launch_context", role="fake (secret)", env=shown)
    emit("run_done")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pass")
