import math
import multiprocessing

import pytest

from harness.errors import HistoryError
from harness.store import history


def record(store, run_id, sid="tiny.tp1.colocate.sglang-0.5.12", values=None, verdict="pass", sglang="0.5.12"):
    reps = values if isinstance(values, list) else [values or {"tok": [1.0, 2.0]}]
    return store.record_run(run_id, sid, sglang, "bucket1", {"gpu.name": "x"}, verdict, reps)


def test_nothing_is_a_baseline_until_promoted_and_revoked_runs_leave(store):
    record(store, "r1")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == []
    store.promote("r1")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == [{"tok": [1.0, 2.0]}]
    store.revoke("r1")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == []


def test_each_repetition_of_a_run_is_its_own_run_in_a_baseline(store):
    record(store, "r1", values=[{"tok": [1.0, 2.0]}, {"tok": [5.0]}])
    record(store, "r2", values={"tok": [7.0]})
    store.promote("r1")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == [{"tok": [1.0, 2.0]}, {"tok": [5.0]}]
    assert store.scenarios_of_run("r2") == {"tiny.tp1.colocate.sglang": [{"tok": [7.0]}]}
    assert store.scenarios_of_version("0.5.12", "bucket1") == {
        "tiny.tp1.colocate.sglang": [{"tok": [1.0, 2.0]}, {"tok": [5.0]}, {"tok": [7.0]}]
    }
    assert store.scenarios_of_version("0.5.12", "other-bucket") == {}


def test_a_file_from_before_repetitions_gains_the_column_and_keeps_its_rows(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(history._SCHEMA_SQL.replace(",\n    rep INTEGER NOT NULL DEFAULT 0", ""))
    db.execute(
        "INSERT INTO runs(run_id, scenario_id, identity, bucket, fingerprint, verdict, recorded)"
        " VALUES ('old', 's', 's', 'b', '{}', 'pass', 0)"
    )
    db.execute("INSERT INTO samples(run_row, metric, value) VALUES (1, 'tok', 3.0)")
    db.commit()
    db.close()
    assert history.HistoryStore(path).scenarios_of_run("old") == {"s": [{"tok": [3.0]}]}


def test_baseline_window_spans_versions_of_the_same_scenario(store):
    record(store, "r1", values={"tok": [1.0]})
    record(store, "r2", sid="tiny.tp1.colocate.sglang-0.5.13", sglang="0.5.13", values={"tok": [3.0]})
    store.promote("r1")
    store.promote("r2")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == [{"tok": [1.0]}, {"tok": [3.0]}]
    assert store.baseline("tiny.tp1.colocate.sglang", "other-bucket") == []


def test_failed_runs_never_enter_the_window(store):
    record(store, "r1", verdict="regressed")
    store.promote("r1")
    assert store.baseline("tiny.tp1.colocate.sglang", "bucket1") == []


def test_non_finite_values_are_refused_at_the_write(store):
    with pytest.raises(HistoryError, match="non-finite"):
        record(store, "r1", values={"tok": [math.inf]})
    assert store.runs() == []


def test_promote_unknown_run_is_a_one_line_error(store):
    with pytest.raises(HistoryError, match="no run 'nope'"):
        store.promote("nope")


def test_the_identity_is_built_from_fields_not_parsed_from_the_id(known_models, write_matrix):
    from harness.matrix import scenario

    path = write_matrix("""
        schema: 1
        defaults: {engine: sglang, model: tiny-llama}
        axes: {sglang: ["0.5.12", "0.5.12.post1"], custom_all_reduce: [v2]}
        include: [{sglang: "0.5.15", tag: fault-x, custom_all_reduce: v2}]
        """)
    found = {s.id: s.identity for s in scenario.load(path, known_models).scenarios}
    assert found == {
        "tiny-llama.tp1.colocate.arv2.sglang-0.5.12": "tiny-llama.tp1.colocate.arv2.sglang",
        "tiny-llama.tp1.colocate.arv2.sglang-0.5.12.post1": "tiny-llama.tp1.colocate.arv2.sglang",
        "tiny-llama.tp1.colocate.arv2.sglang-0.5.15.fault-x": "tiny-llama.tp1.colocate.arv2.sglang.fault-x",
    }


def test_rows_of_a_file_from_before_identity_fields_rejoin_the_window_once_migrated(tmp_path):
    s = history.HistoryStore(tmp_path / "h.sqlite")
    s.record_run("r1", "m.tp1.colocate.sglang-0.5.12.ab3b", "0.5.12", "b", {}, "pass", [{"tok": [1.0]}])
    s.db.execute("UPDATE runs SET identity = 'm.tp1.colocate.sglang.ab-b'")  # as an older colobench wrote it
    s.db.execute("PRAGMA user_version = 0")
    s.promote("r1")
    s.close()
    assert history.HistoryStore(tmp_path / "h.sqlite").baseline("m.tp1.colocate.sglang", "b") == [{"tok": [1.0]}]
    assert history.legacy_identity("m.tp1.colocate.sglang-0.5.15.ab12b") == "m.tp1.colocate.sglang"


def _writer(path, n):
    s = history.HistoryStore(path)
    for i in range(20):
        s.record_run(f"w{n}", f"s{i}", None, "b", {}, "pass", [{"m": [float(i)] * 5}])
    s.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "h.sqlite"
    history.HistoryStore(path).close()
    procs = [multiprocessing.Process(target=_writer, args=(str(path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    s = history.HistoryStore(path)
    assert len(s.runs()) == 80
    assert sum(len(run["m"]) for runs in s.scenarios_of_run("w0").values() for run in runs) == 100
