"""compare (history -> table/markdown/plot) and A/B (interleaved runs of two versions, judged per scenario)."""

import io
import sys

import pytest

from harness.errors import ColobenchError
from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute
from harness.run.session import Session
from harness.store import history
from harness.study import ab, compare
from tests.conftest import FAKE_RUNNER


def fill(store: history.HistoryStore):
    fp_a = {"gpu.name": "H200", "version.sglang": "0.5.11", "env": {"NCCL_NVLS_ENABLE": "0"}}
    fp_b = {"gpu.name": "H200", "version.sglang": "0.5.12", "env": {"NCCL_NVLS_ENABLE": "0"}}
    for i in range(6):
        store.record_run(
            "A",
            "m.tp2.colocate.sglang-0.5.11",
            "0.5.11",
            "b",
            fp_a,
            "pass",
            [{"weight_sync_s": [0.40 + 0.01 * i], "rollout_tokens_per_s": [1000.0 + i]}],
        )
        store.record_run(
            "B",
            "m.tp2.colocate.sglang-0.5.12",
            "0.5.12",
            "b",
            fp_b,
            "pass",
            [{"weight_sync_s": [0.60 + 0.01 * i], "rollout_tokens_per_s": [1001.0 + i]}],
        )


def test_compare_runs_gives_delta_p_and_verdict(store, tmp_path):
    fill(store)
    la, da, fa = compare.side(store, "A")
    lb, db, fb = compare.side(store, "B")
    rows = {r.metric: r for r in compare.rows(da, db)}
    assert rows["weight_sync_s"].verdict == "worse" and rows["weight_sync_s"].p_value < 0.01
    assert rows["rollout_tokens_per_s"].verdict == "same"
    md = compare.markdown(la, lb, list(rows.values()), fa, fb)
    assert "Fingerprint diff" in md and "version.sglang" in md


def test_one_run_a_side_is_inconclusive_however_many_steps(store):
    store.record_run("A1", "m.tp1", None, "b", {}, "pass", [{"weight_sync_s": [0.40, 0.41, 0.40, 0.42] * 10}])
    store.record_run("B1", "m.tp1", None, "b", {}, "pass", [{"weight_sync_s": [0.50, 0.51, 0.50, 0.52] * 10}])
    (row,) = compare.rows(compare.side(store, "A1")[1], compare.side(store, "B1")[1])
    assert (row.verdict, row.p_value, row.runs) == ("inconclusive", None, (1, 1))
    assert "| 1/1    | inconclusive" in compare.table([row], "github")


def test_compare_versions_and_plot(store, tmp_path):
    fill(store)
    _, da, _ = compare.side(store, "version:0.5.11")
    _, db, _ = compare.side(store, "version:0.5.12")
    assert {r.scenario for r in compare.rows(da, db)} == {"m.tp2.colocate.sglang"}
    png = compare.plot_versions(store, "m.tp2.colocate.sglang", "weight_sync_s", tmp_path / "p.png")
    assert png is None or png.stat().st_size > 1000


def test_ab_interleaves_versions_and_decides(tmp_path, write_matrix, monkeypatch):
    monkeypatch.setenv("COLOBENCH_GPUS", "0")  # an sglang scenario leases a GPU
    monkeypatch.setenv("COLOBENCH_GPU_LOCK_DIR", str(tmp_path / "locks"))
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, engine: sglang, sglang: "0.5.11", timeout_s: 20, repeat: 3}}
        include: [{{tag: ab, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "pass"]}}}}]
        """)
    s = scenario.load(path, models.load()).scenarios[0]
    sess = Session(tmp_path / "run", execute.Options(infra_retries=0))
    (tmp_path / "run").mkdir()
    decisions = ab.run_ab(sess, [s], ["0.5.11", "0.5.12"])
    assert len(decisions) == 1 and decisions[0].verdict == Verdict.PASS  # the same runner both times
    runs = [p for p in (tmp_path / "run").iterdir() if p.is_dir() and "-vs-" not in p.name]
    order = sorted(runs, key=lambda p: p.stat().st_mtime)
    versions = [p.name.split("sglang-")[1].split(".ab")[0] for p in order]
    assert versions == ["0.5.11", "0.5.12", "0.5.12", "0.5.11", "0.5.11", "0.5.12"]  # ABBA: pairs are neighbours
    # both sides are runs of `s`: compare version:A version:B pairs them
    assert {ab.with_variant(s, v, 1, "a").identity for v in ("0.5.11", "0.5.12")} == {s.identity}
    assert decisions[0].duration_s > 0 and decisions[0].run_dir.endswith("-vs-0.5.12")


def test_ab_of_an_injected_slowdown_on_any_scenario(tmp_path, write_matrix):
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 20, repeat: 2, metrics: {{weight_sync_s: {{max_rise: 5%}}}}}}
        include: [{{tag: ab, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "pass"]}}}}]
        """)
    s = scenario.load(path, models.load()).scenarios[0]
    a = ab.with_variant(s, "inject:sync_slowdown:0.1", 1, "b")
    assert a.settings.fault == {"kind": "sync_slowdown", "factor": 0.1} and a.id.endswith(".ab1b")
    assert a.identity == s.identity + ".inject-sync_slowdown-0.1"  # not a run of `s`
    with pytest.raises(ColobenchError, match="--ab 'sync_slowdown:fast': 'fast' is not a number"):
        ab.with_variant(s, "inject:sync_slowdown:fast", 1, "b")
    sess = Session(tmp_path / "run", execute.Options(infra_retries=0))
    (tmp_path / "run").mkdir()
    sess.out = io.StringIO()
    decision = ab.run_ab(sess, [s], ["none", "none"])[0]
    # two pairs cannot show their own spread: not a pass, whatever the numbers
    assert decision.verdict == Verdict.INCONCLUSIVE and decision.properties["ab.b"] == "none"
    assert "2 pairs, too few to measure the spread" in decision.reason
    assert "repeat 2 a side gives fewer than 3 pairs" in sess.out.getvalue() and "repeat >= 3" in sess.out.getvalue()


def test_runs_a_side_needed_for_significance():
    from harness.judge.stats import mann_whitney_u, runs_for_significance

    assert runs_for_significance(0.05) == 4 and runs_for_significance(0.01) == 5
    assert mann_whitney_u([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], "less")[1] == pytest.approx(0.05)
