"""Beyond one machine on CPU: a two-node Ray cluster (`ray start`, both nodes on 127.0.0.1) that the runner attaches
to, with engine and trainer split across the nodes (Gloo weight sync), and the cluster left running. The worker
node runs in a mount namespace of its own with a tmpfs over the run folder and the model cache, so it sees its own
disk, as a second machine would: its model is made there and its logs and events are brought back at the end."""

import json
import secrets

import pytest

from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute

ray = pytest.importorskip("ray")
pytest.importorskip("torch")


VIEW = f"/tmp/cb-view-{secrets.token_hex(3)}"  # a folder the worker node sees as its own (private tmpfs)


@pytest.fixture
def two_nodes(monkeypatch):
    """A head and a worker node started with `ray start` on 127.0.0.1, stopped by killing exactly their processes."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from harness.runner.host import free_port

    temp = f"/tmp/cb-ray-test-{secrets.token_hex(3)}"
    port = free_port()
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=3", "--num-gpus=0", "--disable-usage-stats"]
    try:
        subprocess.run(
            [ray_cli, "start", "--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false", *common],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        os.makedirs(VIEW, exist_ok=True)
        monkeypatch.setenv("COLOBENCH_MODEL_CACHE", f"{VIEW}/models")
        own_disk = (
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                'mount -t tmpfs tmpfs "$0" && exec "$@"',
                VIEW,
            ]
            if os.geteuid() == 0 and shutil.which("unshare")
            else []
        )
        subprocess.run(
            [*own_disk, ray_cli, "start", f"--address=127.0.0.1:{port}", *common],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield f"127.0.0.1:{port}"
    finally:
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and temp.encode() in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(VIEW, ignore_errors=True)


def test_split_placement_over_two_nodes_of_an_attached_cluster(two_nodes, write_matrix):
    from pathlib import Path

    tmp_path = Path(VIEW)
    path = write_matrix("""
        schema: 1
        defaults: {engine: reference, model: tiny-llama, colocate: off, timeout_s: 240, nodes: spread}
        include: [{tag: twonode}]
        """)
    (s,) = scenario.load(path, models.load()).scenarios
    res = execute.run_scenario(s, tmp_path / "run", execute.Options(infra_retries=0, ray_address=two_nodes))
    assert res.verdict == Verdict.PASS, res.reason
    events = [json.loads(x) for x in (tmp_path / "run" / s.id / "events.jsonl").open()]
    placed = next(e for e in events if e["event"] == "placement")
    assert placed["attached"] is True and len(set(placed["node_ids"])) == 2  # engine and trainer, one node each
    assert res.metrics["weights_match"] and min(res.metrics["weights_match"]) == 1.0
    log = (tmp_path / "run" / s.id / "runner.log").read_text()
    assert "collected from other nodes" in log and "events.jsonl" in log  # the worker's own disk, brought back
    assert [e["event"] for e in events].count("trainer_ready") == 1  # remote events appended once
    ray.init(address=two_nodes, log_to_driver=False)  # the cluster is still up ...
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        left = [g for g in ray.util.placement_group_table().values() if g["state"] != "REMOVED"]
        assert left == []  # ... with nothing of the run in it
    finally:
        ray.shutdown()


def test_nodes_spread_on_a_colocated_row_is_dropped_with_the_reason(write_matrix):
    path = write_matrix("schema: 1\ndefaults: {nodes: spread}\naxes: {model: [tiny-llama]}\n")
    m = scenario.load(path, models.load())
    assert not m.scenarios and "different nodes" in m.dropped[0].reason
