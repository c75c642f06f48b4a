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


def emit(event, **fields):
    path = os.environ.get("COLOBENCH_EVENTS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"t": round(time.time() - T0, 3), "event": event, **fields}) + "\n")


def say(line):
    print(line, flush=True)


def main(mode):
    emit("runner_start")
    say("[2026-05-22 10:00:00] Init torch distributed begin.")
    if mode == "hang-early":
        time.sleep(3600)
    if mode != "miss-milestone":
        say("[2026-05-22 10:00:01] The server is fired up and ready to roll!")
        emit("engine_ready", engine=0)
    for step in (1, 2):
        emit("metric", name="weight_sync_s", value=0.01 * step, unit="s", step=step)
        emit("step_done", step=step)
    if mode == "crash":
        say("[2026-05-22 10:00:02] Capture cuda graph failed: Runtime check failed at "
            "/sgl-workspace/sglang/python/sglang/jit_kernel/include/sgl_kernel/distributed/custom_all_reduce.cuh:37: "
            "CUDA error: invalid argument")
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
    emit("run_done")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pass")
