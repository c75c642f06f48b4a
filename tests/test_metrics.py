import math

from harness.judge import metrics
from harness.judge.metrics import GateStatus


def status(results):
    return {r.metric: r.status for r in results}


def test_absolute_and_band_gates():
    res = metrics.evaluate(
        {"weight_sync_s": {"max": 2.0}, "logprob_abs_diff": {"min": 0, "max": 0.05}},
        {"weight_sync_s": [0.4, 2.5], "logprob_abs_diff": [0.01]},
    )
    assert status(res) == {"weight_sync_s": GateStatus.FAIL, "logprob_abs_diff": GateStatus.PASS}
    assert "2.5 > max 2" in res[0].reason


def test_missing_and_non_finite_metrics_are_errors_not_skips():
    res = metrics.evaluate({"a": {"max": 1}, "b": {"max": 1}}, {"b": [math.nan]})
    assert status(res) == {"a": GateStatus.MISSING, "b": GateStatus.ERROR}  # ERROR split: verdict.fold


def test_relative_gate_cold_start_is_inactive_not_fail():
    res = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": [100.0]}, None)
    assert res[0].status == GateStatus.INACTIVE


def test_relative_gate_needs_evidence_not_one_sample():
    base = {"tok": [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]}
    one = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": [80.0]}, base)
    assert one[0].status == GateStatus.INCONCLUSIVE
    many = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": [80.0, 81.0, 79.5, 80.5, 80.2]}, base)
    assert many[0].status == GateStatus.FAIL and "p=" in many[0].reason
    same = metrics.evaluate({"tok": {"max_drop": "5%"}}, {"tok": [99.0, 100.0, 101.0]}, base)
    assert same[0].status == GateStatus.PASS


def test_max_rise_with_floor_ignores_tiny_absolute_changes():
    base = {"s": [0.0010, 0.0011, 0.0010, 0.0012]}
    res = metrics.evaluate({"s": {"max_rise": "10%", "abs_floor": 0.01}}, {"s": [0.0020, 0.0021, 0.0022]}, base)
    assert res[0].status == GateStatus.PASS


def test_samples_come_from_metric_events():
    events = [
        {"event": "metric", "name": "x", "value": 1},
        {"event": "metric", "name": "x", "value": True},
        {"event": "step_done"},
    ]
    assert metrics.samples(events) == {"x": [1.0, 1.0]}


def test_per_run_values_take_each_gates_stat_of_each_run():
    runs = [{"s": [3.0, 1.0, 2.0], "tok": [10.0, 30.0, 20.0]}, {"s": [5.0, 4.0], "tok": [7.0]}]
    gates = {"s": {"max_rise": "5%", "stat": "min"}, "tok": {"max_drop": "5%"}}
    assert metrics.per_run_values(runs, gates) == {"s": [1.0, 4.0], "tok": [20.0, 7.0]}


def test_relative_gate_is_one_sided_in_its_direction():
    base = {"s": [1.00, 1.01, 0.99, 1.02, 0.98]}
    slower = {"s": [1.10, 1.11, 1.09, 1.12, 1.08]}
    res = metrics.evaluate({"s": {"max_rise": "5%", "p": 0.01, "stat": "min"}}, slower, base)
    # complete separation of 5 vs 5: one-sided p = 1/252 < 0.01 (two-sided 2/252 would not be)
    assert res[0].status == GateStatus.FAIL and "p=0.00397" in res[0].reason and "(min per run)" in res[0].reason
