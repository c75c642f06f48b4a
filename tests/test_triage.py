import pytest

from harness.judge import triage
from harness.judge.logs import LogLine
from tests.conftest import DATA

CATALOG = triage.load()


def test_catalog_has_at_least_25_entries_with_layers_and_fixes():
    assert len(CATALOG) >= 25
    assert {s.layer for s in CATALOG} >= {"sglang", "nccl", "ray", "memory-saver", "trainer", "harness", "infra"}


@pytest.mark.parametrize("sig", CATALOG, ids=[s.name for s in CATALOG])
def test_every_signature_example_is_diagnosed_as_itself(sig):
    diag = triage.diagnose([LogLine("x", 1, sig.example, None)], CATALOG)
    if sig.benign:  # a line that only looks like an error: no cause at all
        assert diag.line is None and triage.without_benign([LogLine("x", 1, sig.example, None)], CATALOG) == []
    else:
        assert diag.name == sig.name


def test_a_line_sglang_says_it_ignored_is_no_cause_even_when_it_quotes_one():
    ignored = (
        "[2026-12-03 10:19:30] Ignore import error when loading sglang.srt.models.glm_ocr: No module named "
        "'transformers.models.glm_ocr'"
    )
    died = "RuntimeError: Server process terminated unexpectedly"
    lines = [
        LogLine("engine-0", 1, ignored, 1.0),
        LogLine("engine-0", 2, "CUDA error: an illegal thing", 2.0),
        LogLine("runner", 1, died, 3.0),
    ]
    diag = triage.diagnose(lines, CATALOG)
    assert diag.name != "missing-module" and diag.line.number == 2 and "illegal thing" in diag.line.text
    assert triage.diagnose(lines[:1], CATALOG).line is None


def test_a_benign_entry_must_not_be_a_symptom():
    doc = {
        "schema": 1,
        "signatures": [
            {
                "name": "x",
                "regex": "x",
                "layer": "sglang",
                "benign": True,
                "symptom": True,
                "cause": "c",
                "reference": "r",
                "example": "x",
            }
        ],
    }
    with pytest.raises(triage.ScenarioError, match=r"signatures\[0\]\.benign"):
        triage.parse(doc, "sig.yaml")


def test_reference_002_names_the_custom_all_reduce_capture_failure_not_the_symptom():
    text = (DATA / "ref002_failure.log").read_text().splitlines()
    diag = triage.diagnose([LogLine("engine-0", n, t, None) for n, t in enumerate(text, 1)], CATALOG)
    assert diag.name == "custom-allreduce-capture-invalid-argument"
    assert diag.line.number == 1
    assert "server-terminated-unexpectedly" in diag.symptoms
    assert diag.signature.layer == "sglang" and "SGLANG_OPT_USE_CUSTOM_ALL_REDUCE_V2=0" in diag.signature.fix


def test_capture_failure_in_engine_log_beats_a_later_gloo_timeout_in_trainer_log():
    lines = [
        LogLine("trainer-0", 1, "step 1 start", 1.0),
        LogLine(
            "trainer-0",
            2,
            "RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] "
            "Timed out waiting 1800000ms for recv operation to complete",
            1900.0,
        ),
        LogLine(
            "engine-0",
            1,
            "[2026-05-22 10:00:00] Capture cuda graph failed: Runtime check failed at "
            "x/custom_all_reduce.cuh:37: CUDA error: invalid argument",
            50.0,
        ),
    ]
    diag = triage.diagnose(lines, CATALOG)
    assert diag.name == "custom-allreduce-capture-invalid-argument"
    assert diag.symptoms == ("gloo-timeout",)


def test_unknown_error_before_a_symptom_is_the_lead():
    lines = [
        LogLine("engine-0", 1, "ZeroDivisionError: division by zero", 1.0),
        LogLine("runner", 1, "Exception: Server process terminated unexpectedly.", 2.0),
    ]
    diag = triage.diagnose(lines, CATALOG)
    assert diag.signature is None and diag.line.text.startswith("ZeroDivisionError")
    assert diag.symptoms == ("server-terminated-unexpectedly",)


def test_infra_signatures_are_classed_infra():
    diag = triage.diagnose([LogLine("r", 1, "OSError: [Errno 98] Address already in use", None)], CATALOG)
    assert diag.is_infra


def test_folder_triage_reads_nested_logs(tmp_path):
    (tmp_path / "ray" / "logs").mkdir(parents=True)
    (tmp_path / "ray" / "logs" / "worker-1.out").write_text("ok\nKeyError: 'kv_cache'\n")
    diag = triage.diagnose_folder(tmp_path, CATALOG)
    assert diag.name == "resume-unreleased-tag" and diag.line.source == "ray/logs/worker-1"


def test_stamped_lines_order_across_files_without_capture_times():
    lines = [
        LogLine("a", 1, "[2026-05-22 10:00:09] Timed out waiting 10ms for recv operation (gloo)", None),
        LogLine("b", 1, "[2026-05-22 10:00:01] NCCL WARN Cuda failure 'invalid argument'", None),
    ]
    assert triage.diagnose(lines, CATALOG).name == "nccl-cumem-mismatch"
