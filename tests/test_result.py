"""judge/result.py: result.json round-trips, and a file it cannot trust is refused in one line."""

import json

import pytest

from harness.errors import ColobenchError
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict


def test_round_trip_with_timings_and_cv(tmp_path):
    res = ScenarioResult("a.tp1.colocate.ref", Verdict.PASS, "", timings={"total_s": 3.0}, cv={"weight_sync_s": 0.05})
    assert ScenarioResult.load(res.save(tmp_path / "a")) == res


@pytest.mark.parametrize(
    "doc,why",
    [
        ({"schema": 2, "scenario_id": "a", "verdict": "pass", "reason": ""}, "schema 2"),
        ({"schema": 1, "scenario_id": "a", "verdict": "pass"}, "reason: expected a string"),
        ({"schema": 1, "scenario_id": "a", "verdict": "meh", "reason": ""}, "'meh' is not a valid Verdict"),
        (
            {"schema": 1, "scenario_id": "a", "verdict": "pass", "reason": "", "metrics": [1]},
            "metrics: expected a dict",
        ),
        ({"schema": 1, "scenario_id": "a", "verdict": "pass", "reason": "", "bogus": 1}, "unknown key 'bogus'"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_a_result_file_from_elsewhere_is_one_line(doc, why, tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ColobenchError) as info:
        ScenarioResult.load(path)
    assert why in str(info.value) and "\n" not in str(info.value) and str(path) in str(info.value)
