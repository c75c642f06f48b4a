"""matrix/rules.py: the syntax of milestone rules and gates, checked at load time."""

from harness.matrix import rules


def test_check_gates_messages():
    assert rules.check_gates({"train_step_s": {"max_drop": "5%"}}) is None
    assert "expected a mapping" in rules.check_gates({"train_step_s": 3})


def test_check_gates_refuses_an_unknown_stat():
    assert (
        rules.check_gates({"s": {"max_rise": "5%", "stat": "mean"}})
        == "s.stat: expected one of median, min, got 'mean'"
    )


def test_check_rules_accepts_good_and_names_bad():
    assert rules.check_rules([{"event": "x", "min": 1}, {"forbid": "y"}]) is None
    assert "min: expected a non-negative int" in rules.check_rules([{"event": "x", "min": -1}])
