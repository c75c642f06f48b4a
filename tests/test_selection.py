"""run/selection.py, `report --merge` and `history export/import`: one selection over N CI runners, merged back."""

import json

import pytest

from harness.errors import ColobenchError
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.run import selection
from harness.store import history
from tests.conftest import REPO


def test_shards_partition_the_selection_and_are_stable(run_cli):
    ids = [f"s{i}" for i in range(23)]
    for n in (1, 2, 3, 7, 30):
        parts = [selection.assign(ids, n, {}) for _ in range(2)]
        assert parts[0] == parts[1]  # stable
        got = [sorted(s for s, k in parts[0].items() if k == j) for j in range(n)]
        assert sorted(x for g in got for x in g) == sorted(ids)  # disjoint, complete
        assert max(map(len, got)) - min(map(len, got)) <= 1  # by count without history
    _, one, _ = run_cli("list", "--matrix", REPO / "matrix" / "bump.yaml", "--ids", "--shard", "1/2")
    _, two, _ = run_cli("list", "--matrix", REPO / "matrix" / "bump.yaml", "--ids", "--shard", "2/2")
    _, every, _ = run_cli("list", "--matrix", REPO / "matrix" / "bump.yaml", "--ids")
    assert set(one.split()) & set(two.split()) == set() and sorted(one.split() + two.split()) == sorted(every.split())


def test_shards_balance_past_durations():
    durations = {"slow": 100.0, "a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0}
    where = selection.assign(list(durations), 2, durations)
    assert [s for s, k in where.items() if k == where["slow"]] == ["slow"]  # the slow one alone


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard_spec_is_one_line(spec):
    with pytest.raises(ColobenchError, match="expected I/N"):
        selection.parse(spec)


def test_report_merge_gives_one_junit_and_summary(tmp_path, run_cli):
    for name, sid in (("s1", "a.tp1.colocate.ref"), ("s2", "b.tp1.colocate.ref")):
        ScenarioResult(sid, Verdict.PASS, "", duration_s=1.0).save(tmp_path / name / sid)
    code, out, _ = run_cli("report", "--merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "all")
    assert code == 0 and "2 pass" in out
    assert (tmp_path / "all" / "junit.xml").read_text().count("<testcase") == 2


def test_history_export_import_round_trips(tmp_path, run_cli):
    src = history.HistoryStore(tmp_path / "a" / "history.sqlite")
    src.record_run(
        "r1",
        "m.tp1.colocate.sglang-0.5.12",
        "0.5.12",
        "b",
        {"x": 1},
        "pass",
        [{"weight_sync_s": [0.1, 0.2]}],
        duration_s=42.0,
    )
    src.promote("r1")
    assert run_cli("history", "export", tmp_path / "h.jsonl", "--reports-dir", tmp_path / "a")[0] == 0
    for _ in range(2):  # a second import adds nothing
        code, out, _ = run_cli("history", "import", tmp_path / "h.jsonl", "--reports-dir", tmp_path / "b")
    dst = history.HistoryStore(tmp_path / "b" / "history.sqlite")
    assert code == 0 and "0 runs imported" in out and len(dst.runs()) == 1
    assert dst.baseline("m.tp1.colocate.sglang", "b") == [{"weight_sync_s": [0.1, 0.2]}]
    assert dst.durations() == {"m.tp1.colocate.sglang": 42.0}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"kind": "meteor"}) + "\n")
    code, _, err = run_cli("history", "import", tmp_path / "bad.jsonl", "--reports-dir", tmp_path / "b")
    assert code == 2 and "not a colobench history export" in err and err.count("\n") == 1
