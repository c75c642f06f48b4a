"""run/hostprobe.py and the noisy-host rule: a noisy host makes an A/B inconclusive, never pass or regressed."""

import io
import sys

from harness.judge import metrics
from harness.judge.metrics import GateStatus
from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute, hostprobe
from harness.run.session import Session
from harness.study import ab
from tests.conftest import FAKE_RUNNER


def test_the_probe_sees_simulated_jitter_and_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("COLOBENCH_HOST_PROBE")
    quiet = min((hostprobe.measure(seed=i) for i in range(3)), key=lambda p: p.cv)
    noisy = hostprobe.measure(jitter=1.0, seed=1)
    assert noisy.cv > quiet.cv and noisy.cv > 0.1 and quiet.median_ms > 0
    assert set(noisy.properties()) == {"host.probe_cv", "host.probe_ms"}
    monkeypatch.setenv("COLOBENCH_HOST_PROBE", "off")
    assert hostprobe.measure() is None


def test_a_noisy_probe_decides_only_where_the_runs_cannot_show_their_spread():
    base, slower, same = [100.0, 101.0], [80.0, 81.0], [100.2, 100.8]
    gate = {"tok": {"max_drop": "5%"}}
    for values in (slower, same):  # two pairs: too few to measure a spread, so the probe is the only word on noise
        (res,) = metrics.evaluate(gate, {"tok": values}, {"tok": base}, paired=True, probe_cv=0.12)
        assert res.status == GateStatus.INCONCLUSIVE and "noisy host (CPU probe CV 12.0% > 5.0%" in res.reason
    (res,) = metrics.evaluate(
        {"tok": {"max_drop": "5%", "max_host_noise": "20%"}}, {"tok": slower}, {"tok": base}, paired=True, probe_cv=0.12
    )
    assert res.status == GateStatus.FAIL  # a gate that accepts more noise
    # four quiet pairs measure their own spread: the probe (a proxy for it) no longer overrules them
    base4 = [100.0, 101.0, 99.0, 100.5]
    for values, status in (([80.0, 81.0, 79.0, 80.5], GateStatus.FAIL), ([100.2, 100.8, 99.1, 100.4], GateStatus.PASS)):
        (res,) = metrics.evaluate(gate, {"tok": values}, {"tok": base4}, paired=True, probe_cv=0.58)
        assert res.status == status and "probe" not in res.reason
    # against a stored baseline, one current run cannot show this host's spread: the probe decides
    (res,) = metrics.evaluate(gate, {"tok": [100.1]}, {"tok": base4}, probe_cv=0.12)
    assert res.status == GateStatus.INCONCLUSIVE and "CPU probe CV 12.0%" in res.reason


def test_current_runs_noisier_than_the_baseline_never_pass():
    base, noisy = [100.0, 100.5, 99.5, 100.2], [104.0, 92.0, 101.0, 108.0]
    (res,) = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": noisy}, {"tok": base})
    assert res.status == GateStatus.INCONCLUSIVE and "smallest change these runs can see" in res.reason


def test_runs_too_spread_to_see_the_threshold_never_pass():
    base, noisy = [100.0, 120.0, 85.0, 110.0], [118.0, 90.0, 112.0, 95.0]
    (res,) = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": noisy}, {"tok": base}, paired=True)
    assert res.status == GateStatus.INCONCLUSIVE and "smallest change these runs can see" in res.reason


def test_an_ab_on_a_simulated_noisy_host_is_inconclusive(tmp_path, write_matrix, monkeypatch):
    monkeypatch.delenv("COLOBENCH_HOST_PROBE")
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 20, repeat: 2, metrics: {{weight_sync_s: {{max_rise: 5%}}}}}}
        include: [{{tag: ab, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "pass"]}}}}]
        """)
    s = scenario.load(path, models.load()).scenarios[0]
    sess = Session(tmp_path / "run", execute.Options(infra_retries=0))
    (tmp_path / "run").mkdir()
    sess.out = io.StringIO()
    (decision,) = ab.run_ab(sess, [s], ["none", "inject:noisy_host:3"])
    assert decision.verdict == Verdict.INCONCLUSIVE and "noisy host (CPU probe CV" in decision.reason
