"""judge/verdict.py: the one fold from evidence, milestones, gates, expectation and triage to a verdict."""

from harness.judge import triage
from harness.judge.logs import LogLine
from harness.judge.metrics import GateResult, GateStatus
from harness.judge.milestones import RuleResult
from harness.judge.verdict import EXIT_CODES, Evidence, Verdict, fold

OK = GateResult("weight_sync_s", GateStatus.PASS, "")
NAN = GateResult("logprob_abs_diff", GateStatus.ERROR, "logprob_abs_diff: non-finite value nan", float("nan"))
MISSING = GateResult("rollout_tokens_per_s", GateStatus.MISSING, "rollout_tokens_per_s: metric missing")
UNSURE = GateResult("weight_sync_s", GateStatus.INCONCLUSIVE, "weight_sync_s: +6%, but p=0.2")


def diag(text: str):
    return triage.diagnose([LogLine("engine-0", 1, text, 1.0)])


def test_a_nan_from_the_product_is_regressed_a_missing_metric_is_infra():
    assert fold(Evidence(), [], [OK, NAN], None, None)[0] == Verdict.REGRESSED
    verdict, reason = fold(Evidence(), [], [OK, MISSING], None, None)
    assert verdict == Verdict.INFRA_ERROR and "metric missing" in reason


def test_a_missing_metric_after_a_failure_is_listed_with_the_regression():
    verdict, reason = fold(Evidence(failures=("runner exited with code 1",)), [], [MISSING], None, None)
    assert verdict == Verdict.REGRESSED and "metric missing" in reason


def test_an_environment_fault_is_infra_never_regressed():
    d = diag("ModuleNotFoundError: No module named 'xgrammar'")
    verdict, reason = fold(Evidence(failures=("runner exited with code 1",)), [], [], d, None)
    assert verdict == Verdict.INFRA_ERROR and "not the product" in reason and "xgrammar" in reason


def test_a_run_that_only_left_memory_behind_is_infra_without_a_triage_of_its_log_noise():
    noise = diag("[2026-12-03 10:19:30] Failed to get yes/no token IDs dynamically: error 'NoneType' has no 'encode'")
    leak = "left behind: GPU 0: 0 -> 1052 MiB after the scenario; held by no process listed"
    verdict, reason = fold(Evidence(infra=(leak,)), [], [OK], noise, None)
    assert verdict == Verdict.INFRA_ERROR and reason == leak
    failed, why = fold(Evidence(infra=(leak,), failures=("runner exited with code 1",)), [], [OK], noise, None)
    assert failed == Verdict.REGRESSED and "triage: unknown" in why and leak in why


def test_unjudgeable_evidence_wins_over_everything():
    verdict, _ = fold(
        Evidence(unjudgeable=("events.jsonl:3: not a JSON event",), failures=("x",)), [], [NAN], None, None
    )
    assert verdict == Verdict.INFRA_ERROR


def test_inconclusive_gate_and_failed_milestone():
    assert fold(Evidence(), [], [UNSURE], None, None)[0] == Verdict.INCONCLUSIVE
    assert fold(Evidence(), [RuleResult("engine up", False, "not seen")], [UNSURE], None, None)[0] == Verdict.REGRESSED


def test_expected_failure_passes_only_when_it_happens():
    d = diag(
        "Capture cuda graph failed: Runtime check failed at x/custom_all_reduce.cuh:37: CUDA error: invalid argument"
    )
    name = "custom-allreduce-capture-invalid-argument"
    assert fold(Evidence(failures=("runner exited with code 1",)), [], [], d, name)[0] == Verdict.PASS
    verdict, reason = fold(Evidence(), [], [OK], None, name)
    assert verdict == Verdict.REGRESSED and "did not occur (the run passed)" in reason


def test_exit_codes_a_ci_job_can_branch_on():
    assert [
        EXIT_CODES[v]
        for v in (Verdict.PASS, Verdict.INCONCLUSIVE, Verdict.REGRESSED, Verdict.INFRA_ERROR, Verdict.INTERRUPTED)
    ] == [0, 0, 1, 3, 130]
