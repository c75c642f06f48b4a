from harness.judge import logs, milestones
from harness.judge.logs import LogLine
from tests.conftest import DATA


def lines_of(name: str, source: str = "engine-0", t0: float = 0.0) -> list[LogLine]:
    text = (DATA / name).read_text().splitlines()
    return [LogLine(source, n, line, t0 + n * 0.1) for n, line in enumerate(text, 1)]


def by_name(results):
    return {r.name: r for r in results}


def test_standalone_excerpt_meets_the_graph_milestones_in_order():
    rules = [
        {"name": "ar v2", "log": "Custom allreduce v2 initialized successfully"},
        {"name": "capture begin", "log": "Capture cuda graph bs", "after": "ar v2"},
        {
            "name": "capture end",
            "log": "Capture cuda graph end",
            "after": "capture begin",
            "within_s": 5,
            "from": "ar v2",
        },
        {"name": "no invalid argument", "forbid": "CUDA error: invalid argument"},
    ]
    results = milestones.evaluate(rules, [], lines_of("ref002_standalone.log"))
    assert all(r.ok for r in results), results


def test_failure_excerpt_misses_capture_end_and_shows_the_first_error():
    rules = [
        {"name": "capture end", "log": "Capture cuda graph end"},
        {"name": "no invalid argument", "forbid": "CUDA error: invalid argument"},
    ]
    results = by_name(milestones.evaluate(rules, [], lines_of("ref002_failure.log")))
    assert not results["capture end"].ok
    assert "seen 0 times" in results["capture end"].reason
    assert "first error line: engine-0.log:1: Capture cuda graph failed" in results["capture end"].reason
    assert not results["no invalid argument"].ok and "engine-0.log:3" in results["no invalid argument"].reason


def test_pr_003_verification_lines_hold_as_rules():
    rules = [
        {"name": "v2 init", "log": "Custom allreduce v2 initialized"},
        {"name": "graph end", "log": "Capture cuda graph end"},
    ]
    assert all(r.ok for r in milestones.evaluate(rules, [], lines_of("ref003_excerpt.log")))


def test_counts_order_and_time_budgets_over_events():
    events = [
        {"t": 1.0, "event": "engine_ready"},
        {"t": 2.0, "event": "step_done"},
        {"t": 9.0, "event": "step_done"},
        {"t": 9.5, "event": "step_done"},
    ]
    rules = [
        {"name": "up", "event": "engine_ready", "within_s": 2},
        {"name": "exactly two", "event": "step_done", "min": 2, "max": 2},
        {"name": "fast", "event": "step_done", "within_s": 0.5, "from": "up"},
        {"name": "late", "event": "engine_ready", "after": "exactly two"},
    ]
    r = by_name(milestones.evaluate(rules, events, []))
    assert r["up"].ok
    assert not r["exactly two"].ok and "seen 3 times, expected at most 2" in r["exactly two"].reason
    assert not r["fast"].ok and "budget 0.5s" in r["fast"].reason
    assert not r["late"].ok and "before 'exactly two'" in r["late"].reason


def test_event_fields_must_match():
    events = [{"t": 1, "event": "weight_sync_done", "step": 0}]
    rules = [{"name": "step one", "event": "weight_sync_done", "fields": {"step": 1}}]
    assert not milestones.evaluate(rules, events, [])[0].ok


def test_context_marks_the_line_and_its_neighbours():
    lines = lines_of("ref002_failure.log")
    first = logs.first_error(lines)
    ctx = logs.context(lines, first, radius=2)
    assert ctx[0].startswith("engine-0:1>") and len(ctx) == 3


def test_a_backtracking_pattern_runs_in_linear_time_on_a_long_line():
    # Python's re takes exponential time on this pattern and line; RE2 answers at once
    line = LogLine("engine-0", 1, "a" * 5000 + "!", 0.0)
    (res,) = milestones.evaluate([{"forbid": "(a+)+b"}], [], [line])
    assert res.ok
