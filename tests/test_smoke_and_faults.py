"""The built-in runner for real on CPU: the smoke matrix through `colobench run`, and the fault suite."""

import json
import socket

import pytest
from junitparser import JUnitXml, Properties

from harness import cli
from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute

pytest.importorskip("torch")
pytest.importorskip("ray")

METRICS = (
    "engine_startup_s",
    "rollout_tokens_per_s",
    "engine_rollout_tokens_per_s",
    "train_step_s",
    "release_s",
    "resume_s",
    "weight_sync_s",
    "weight_sync_bytes",
    "weights_match",
    "weights_check_s",
    "logprob_abs_diff",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    reports = tmp_path_factory.mktemp("smoke")
    code = cli.main(["run", "--reports-dir", str(reports), "--run-id", "smoke"])
    return code, reports / "runs" / "smoke"


def test_default_run_is_the_smoke_matrix_and_passes(smoke):
    code, run_dir = smoke
    assert code == 0, (run_dir / "summary.md").read_text()
    cases = {c.name: c for s in JUnitXml.fromfile(str(run_dir / "junit.xml")) for c in s}
    assert len(cases) == 9 and all(c.is_passed for c in cases.values())


def test_junit_carries_the_runner_metrics_as_properties(smoke):
    _, run_dir = smoke
    cases = {c.name: c for s in JUnitXml.fromfile(str(run_dir / "junit.xml")) for c in s}
    for name in ("tiny-llama.tp1.colocate.ref", "tiny-moe.tp1.colocate.ref"):
        props = {p.name: p.value for p in cases[name].child(Properties)}
        for metric in METRICS:
            assert f"metric.{metric}" in props, (name, metric)
        assert props["metric.weights_match"] == "1"
        assert float(props["metric.logprob_abs_diff"]) < 1e-3
        assert props["version.torch"].startswith("2.")
    split = {p.name: p.value for p in cases["tiny-llama.tp1.split.ref"].child(Properties)}
    assert "metric.release_s" not in split and split["metric.weights_match"] == "1"


def test_fault_scenarios_fail_naming_the_tensor_or_the_slow_phase(smoke):
    _, run_dir = smoke
    skip = json.loads((run_dir / "tiny-llama.tp1.colocate.ref.fault-skip" / "result.json").read_text())
    assert "model.layers.0.mlp.down_proj.weight differs" in skip["reason"]
    corrupt = json.loads((run_dir / "tiny-llama.tp1.colocate.ref.fault-corrupt" / "result.json").read_text())
    assert "model.layers.1.self_attn.q_proj.weight differs" in corrupt["reason"]
    assert "(step 2)" in corrupt["reason"]  # weights_check_every: 2 - step 1 was not checked
    checked = [
        e["step"]
        for e in map(json.loads, (run_dir / "tiny-llama.tp1.colocate.ref.fault-corrupt" / "events.jsonl").open())
        if e.get("name") == "weights_match"
    ]
    assert checked == [0, 2]
    slow = json.loads((run_dir / "tiny-llama.tp1.split.ref.fault-slow" / "result.json").read_text())
    assert "weight_sync_s:" in slow["reason"] and "> max 1" in slow["reason"]


def test_the_step_order_is_miles_order(smoke):
    _, run_dir = smoke
    events = [json.loads(line) for line in (run_dir / "tiny-llama.tp1.colocate.ref" / "events.jsonl").open()]
    step1 = [e["name"] if e["event"] == "metric" else e["event"] for e in events if e.get("step") == 1]
    order = [
        "rollout_tokens_per_s",
        "release_s",
        "trainer_wake_s",
        "train_step_s",
        "trainer_sleep_s",
        "weight_sync_s",
        "weights_match",
        "resume_s",
        "step_done",
    ]
    assert [x for x in step1 if x in order] == order


def fault_scenario(write_matrix, extra: str, timeout: int = 120):
    path = write_matrix(f"""
        schema: 1
        defaults: {{engine: reference, model: tiny-llama, timeout_s: {timeout}}}
        include: [{{{extra}}}]
        """)
    return scenario.load(path, models.load()).scenarios[0]


def run(s, tmp_path, retries=0):
    return execute.run_scenario(s, tmp_path / "runs", execute.Options(infra_retries=retries))


def test_runner_killed_mid_step(write_matrix, tmp_path):
    res = run(fault_scenario(write_matrix, "tag: kill, fault: {kind: kill_runner_mid_step}"), tmp_path)
    assert res.verdict == Verdict.REGRESSED and "runner exited with code -9" in res.reason


def test_engine_crash_during_sync(write_matrix, tmp_path):
    res = run(fault_scenario(write_matrix, "tag: crash, fault: {kind: crash_engine_in_sync}"), tmp_path)
    assert res.verdict == Verdict.REGRESSED and "runner exited with code 1" in res.reason
    assert "weight sync" in (tmp_path / "runs" / res.scenario_id / "runner.log").read_text()


def test_hang_mid_step_is_a_timeout_with_the_last_phase(write_matrix, tmp_path):
    res = run(fault_scenario(write_matrix, "tag: hang, fault: {kind: hang}", timeout=45), tmp_path)
    assert res.verdict == Verdict.REGRESSED and "timed out after 45s; last event: generate_done" in res.reason


def test_port_in_use_is_infra_and_retried(write_matrix, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = fault_scenario(write_matrix, f"tag: port, network: host, engine_args: {{port: {port}}}")
        res = run(s, tmp_path, retries=1)
    assert res.verdict == Verdict.INFRA_ERROR and "port-in-use" in res.reason
    assert len(res.attempts) == 1


def test_stale_ray_session_and_address_do_not_leak_in(write_matrix, tmp_path, monkeypatch):
    stale = tmp_path / "ray" / "session_2020-01-01_00-00-00_000000_1"
    stale.mkdir(parents=True)
    (tmp_path / "ray" / "session_latest").symlink_to(stale)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))
    res = run(fault_scenario(write_matrix, "tag: stale"), tmp_path)
    assert res.verdict == Verdict.PASS, res.reason
    assert not list((tmp_path / "ray").glob("session_2*_*_*_*")) or stale.exists()


def test_nothing_of_the_run_listens_outside_loopback(write_matrix, tmp_path):
    """Ray's GCS, raylet and workers bind 0.0.0.0 whatever the node IP; the runner's own network namespace (its only
    interface loopback) keeps every listener of the run off the host's interfaces, shown with ss from inside it."""
    import shutil
    import subprocess
    import threading
    import time

    from harness.run import launch

    if not launch.can_isolate_network() or not (shutil.which("ss") and shutil.which("nsenter")):
        pytest.skip("this host allows no network namespace (unshare/ip missing or not root), or has no ss/nsenter")
    s = fault_scenario(write_matrix, "tag: listen, fault: {kind: hang}", timeout=60)
    done = []
    thread = threading.Thread(target=lambda: done.append(run(s, tmp_path)))
    thread.start()
    folder = tmp_path / "runs" / s.id
    deadline = time.time() + 50
    while time.time() < deadline and "generate_done" not in (
        (folder / "events.jsonl").read_text() if (folder / "events.jsonl").exists() else ""
    ):
        time.sleep(0.5)
    needle = f"COLOBENCH_RUN_DIR={folder}".encode()
    ours = []
    for entry in __import__("pathlib").Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                ours.append(entry.name)
        except OSError:
            pass
    host_view = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    inside = subprocess.run(["nsenter", "-t", ours[0], "-n", "ss", "-ltnpH"], capture_output=True, text=True).stdout
    interfaces = subprocess.run(
        ["nsenter", "-t", ours[0], "-n", "ip", "-o", "addr"], capture_output=True, text=True
    ).stdout
    thread.join()
    assert done and done[0].verdict == Verdict.REGRESSED and "isolated" in done[0].properties["network"]
    assert not any(f"pid={pid}," in host_view for pid in ours)  # nothing of the run on the host's network
    listeners = [line.split()[3] for line in inside.splitlines()]
    assert len(listeners) >= 3, inside  # GCS, raylet, the engine at least
    assert {line.split()[1] for line in interfaces.splitlines()} == {"lo"}, interfaces
