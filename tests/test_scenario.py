import dataclasses

import pytest

from harness.errors import ScenarioError
from harness.matrix import axes, scenario, schema
from tests.conftest import REPO


def test_smoke_matrix_expands_to_colocate_split_and_faults(known_models):
    m = scenario.load(REPO / "matrix" / "smoke.yaml", known_models)
    ids = [s.id for s in m.scenarios]
    assert "tiny-llama.tp1.colocate.ref" in ids and "tiny-moe.tp1.split.ref" in ids
    assert sum(".fault-" in i for i in ids) == 3
    assert all(s.gpus_to_lease == 0 and "cpu" in s.markers for s in m.scenarios)


def test_colocate_matrix_product_counts_and_readable_ids(known_models):
    m = scenario.load(REPO / "matrix" / "bump.yaml", known_models)
    assert len(m.scenarios) == 99  # (tp1: 2*2*2*2 (v2 only) + tp2: 2*2*2*2*2) x trainer torch/megatron, + 3 MoE rows
    s = next(x for x in m.scenarios if x.id == "tiny-llama.tp2.colocate.arv2.cvd1.sglang-0.5.12")
    assert s.gpus == 2 and s.needs_gpu and s.axes["cvd_offset"] == 1
    split = next(x for x in m.scenarios if x.id == "tiny-llama.tp2.split.arv1.sglang-0.5.15")
    assert split.gpus == 4  # engine 2 + trainer 2
    mcore = next(x for x in m.scenarios if x.id == "tiny-llama.tp2.colocate.arv2.cvd1.mcore.sglang-0.5.12")
    assert mcore.trainer_gpus == 2 and mcore.gpus == 2  # two megatron ranks on the engine's two GPUs


def test_megatron_rows_need_no_context_parallelism_and_take_moe_with_ep(write_matrix, known_models):
    path = write_matrix("""
        schema: 1
        defaults: {engine: reference, trainer: megatron}
        axes: {model: [tiny-llama, tiny-moe], cp: [1, 2]}
        include: [{model: tiny-moe, ep: 2}]
        """)
    m = scenario.load(path, known_models)
    reasons = {d.id: d.reason for d in m.dropped}
    assert [s.id for s in m.scenarios] == [
        "tiny-llama.tp1.colocate.mcore.ref",
        "tiny-moe.tp1.colocate.mcore.ref",
        "tiny-moe.tp1.ep2.colocate.mcore.ref",
    ]
    assert "TransformerEngine" in reasons["tiny-llama.tp1.cp2.colocate.mcore.ref"]
    assert m.scenarios[2].gpus == 2  # two trainer ranks, one expert group each


def test_sglang_option_replaces_the_version_of_sglang_rows(known_models):
    m = scenario.load(REPO / "matrix" / "bump.yaml", known_models, sglang="0.5.13")
    assert {s.axes["sglang"] for s in m.scenarios} == {"0.5.13"}
    assert len(m.scenarios) == 51  # the two versions collapse into one (48), + the 3 MoE rows


def test_impossible_combinations_are_dropped_with_a_reason(write_matrix, known_models):
    path = write_matrix("""
        schema: 1
        defaults: {engine: sglang, sglang: "0.5.12"}
        axes: {model: [tiny-llama, tiny-moe], ep: [1, 2], tp: [1, 2]}
        """)
    m = scenario.load(path, known_models)
    reasons = {d.id: d.reason for d in m.dropped}
    assert "expert parallelism needs a MoE model" in reasons["tiny-llama.tp1.ep2.colocate.sglang-0.5.12"]
    assert "ep=2 > tp=1" in reasons["tiny-moe.tp1.ep2.colocate.sglang-0.5.12"]
    assert "tiny-moe.tp2.ep2.colocate.sglang-0.5.12" in {s.id for s in m.scenarios}


def test_an_impossible_row_asked_for_by_name_is_refused_not_dropped(write_matrix, known_models):
    path = write_matrix("""
        schema: 1
        defaults: {engine: sglang, sglang: "0.5.12"}
        axes: {model: [tiny-llama]}
        include: [{model: tiny-llama, tp: 4, gpus: 2}]
        """)
    with pytest.raises(ScenarioError, match="this include row cannot run: tp.cp=4 is larger than the 2 GPUs"):
        scenario.load(path, known_models)


def test_include_exclude_and_overrides(write_matrix, known_models):
    path = write_matrix("""
        schema: 1
        defaults: {engine: reference}
        axes: {model: [tiny-llama, tiny-moe], colocate: [on, off]}
        exclude: [{model: tiny-moe, colocate: off}]
        include: [{model: tiny-llama, tag: extra, steps: 3}]
        overrides: [{match: {model: tiny-moe}, set: {timeout_s: 42}}]
        """)
    m = scenario.load(path, known_models)
    by_id = {s.id: s for s in m.scenarios}
    assert set(by_id) == {
        "tiny-llama.tp1.colocate.ref",
        "tiny-llama.tp1.split.ref",
        "tiny-moe.tp1.colocate.ref",
        "tiny-llama.tp1.colocate.ref.extra",
    }
    assert by_id["tiny-moe.tp1.colocate.ref"].settings.timeout_s == 42
    assert by_id["tiny-llama.tp1.colocate.ref.extra"].settings.steps == 3


def test_keyword_selection_is_pytest_like(known_models):
    m = scenario.load(REPO / "matrix" / "bump.yaml", known_models)
    picked = scenario.select(m.scenarios, "tp2 and arv2 and not standalone")
    assert picked and all("tp2" in s.id and "arv2" in s.id and "standalone" not in s.id for s in picked)
    assert all(not s.axes["colocate"] for s in scenario.select(m.scenarios, "split"))


BAD = [
    ("schema: 2\naxes: {model: [tiny-llama]}\n", ":1: schema: expected 1, got 2"),
    ("schema: 1\naxes: {model: [tiny-llama]}\nbogus: 1\n", ":3: bogus: unknown key"),
    ("schema: 1\naxes: {modle: [tiny-llama]}\n", ":2: axes.modle: unknown axis"),
    ("schema: 1\naxes: {model: [nope]}\n", ":2: axes.model: unknown model 'nope'"),
    ("schema: 1\naxes: {model: [tiny-llama], tp: [four]}\n", ":2: axes.tp: expected int, got 'four'"),
    ("schema: 1\naxes: {model: [tiny-llama], tp: [3]}\n", "axes.tp: got 3; valid: 1, 2, 4, 8"),
    ("schema: 1\naxes: {model: [tiny-llama], colocate: [maybe]}\n", "axes.colocate: expected on or off"),
    ("schema: 1\naxes: {model: [tiny-llama], custom_all_reduce: [v3]}\n", "axes.custom_all_reduce: got 'v3'"),
    ("schema: 1\naxes: {model: [tiny-llama], launch: [docker]}\n", "axes.launch: got 'docker'"),
    ("schema: 1\naxes: {model: tiny-llama}\n", "axes.model: expected a non-empty list"),
    ("schema: 1\naxes: {model: []}\n", "axes.model: expected a non-empty list"),
    ("schema: 1\naxes: {model: [tiny-llama, tiny-llama]}\n", "axes.model: duplicate values"),
    ("schema: 1\ndefaults: {steps: 1}\naxes: {model: [tiny-llama]}\n", ":2: defaults.steps: expected an int >= 2"),
    (
        "schema: 1\ndefaults: {timeout_s: -3}\naxes: {model: [tiny-llama]}\n",
        "defaults.timeout_s: expected seconds from 1",
    ),
    (
        "schema: 1\ndefaults: {expect: maybe}\naxes: {model: [tiny-llama]}\n",
        "defaults.expect: expected `pass` or {fail",
    ),
    (
        "schema: 1\ndefaults: {metrics: {train_step_s: {max_drop: lots}}}\naxes: {model: [tiny-llama]}\n",
        "train_step_s.max_drop: expected a percentage",
    ),
    (
        "schema: 1\ndefaults: {metrics: {train_step_s: {maxx: 1}}}\naxes: {model: [tiny-llama]}\n",
        "train_step_s.maxx: unknown key",
    ),
    (
        "schema: 1\ndefaults: {milestones: [{name: a}]}\naxes: {model: [tiny-llama]}\n",
        "give exactly one of event, log, forbid",
    ),
    ("schema: 1\ndefaults: {milestones: [{log: '('}]}\naxes: {model: [tiny-llama]}\n", "[0].log: bad regex"),
    (
        "schema: 1\ndefaults: {milestones: [{event: a, after: b}]}\naxes: {model: [tiny-llama]}\n",
        "no earlier rule named 'b'",
    ),
    (
        "schema: 1\ndefaults: {runner: {command: 'train.py --x'}}\naxes: {model: [tiny-llama]}\n",
        "runner.command: expected a non-empty list",
    ),
    (
        "schema: 1\ndefaults: {fault: {kind: meteor}}\naxes: {model: [tiny-llama]}\n",
        "defaults.fault: expected {kind: ...}",
    ),
    (
        "schema: 1\naxes: {model: [tiny-llama]}\ninclude: {model: tiny-llama}\n",
        ":3: include: expected a list of mappings",
    ),
    ("schema: 1\naxes: {model: [tiny-llama]}\nexclude: [{steps: 3}]\n", "exclude[0].steps: unknown key"),
    (
        "schema: 1\naxes: {model: [tiny-llama]}\noverrides: [{match: {tp: 1}}]\n",
        "overrides[0]: expected exactly the keys match and set",
    ),
    ("schema: 1\naxes: {model: [tiny-llama]\n", "invalid YAML"),
    ("schema: 1\naxes: {model: [tiny-llama], model: [tiny-moe]}\n", "duplicate key 'model'"),
    ("schema: 1\n", "no scenarios: give axes or include"),
    ("- just\n- a list\n", "expected a mapping with schema"),
]


@pytest.mark.parametrize("text,expected", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_malformed_matrix_gives_one_line_error_with_file_line_key(text, expected, tmp_path, known_models):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        scenario.load(path, known_models)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_same_id_in_two_files_is_an_error(write_matrix, known_models):
    a = write_matrix("schema: 1\naxes: {model: [tiny-llama]}\n")
    b = write_matrix("schema: 1\naxes: {model: [tiny-llama]}\n")
    with pytest.raises(ScenarioError, match="also defined in"):
        scenario.load_many([a, b], known_models)


def test_settings_are_one_typed_frozen_declaration(known_models):
    """Each setting's default and check live on one field of schema.Settings; the harness reads attributes."""
    assert list(schema.CHECKS) == [f.name for f in dataclasses.fields(schema.Settings)]
    s = scenario.load(REPO / "matrix" / "smoke.yaml", known_models).scenarios[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.settings.steps = 3
    assert s.settings.replace(steps=5).steps == 5 and s.settings.steps != 5
    assert schema.default_settings()["batch"] is not schema.default_settings()["batch"]  # no shared default


def axes_row(changed: dict) -> dict:
    """Every axis at its default, tiny-llama, then `changed`."""
    return {name: a.default for name, a in axes.AXES.items()} | {"model": "tiny-llama"} | changed


@pytest.mark.parametrize(
    ("row", "engine", "trainer", "total"),
    [
        ({}, 1, 1, 1),
        ({"tp": 2}, 2, 2, 2),
        ({"tp": 2, "colocate": False}, 2, 2, 4),
        ({"tp": 2, "cp": 2}, 2, 4, 4),
        ({"tp": 2, "cp": 2, "colocate": False}, 2, 4, 6),
        ({"model": "tiny-moe", "tp": 2, "ep": 4}, 2, 4, 4),
        ({"model": "tiny-moe", "tp": 1, "ep": 2, "cp": 2}, 1, 2, 2),
        ({"model": "tiny-moe", "tp": 1, "ep": 8, "colocate": False}, 1, 8, 9),
    ],
)
def test_device_counts_fold_what_each_axis_asks(row, engine, trainer, total, known_models):
    values = axes_row(row)
    assert axes.device_counts(values, known_models[values["model"]]) == (engine, trainer, total)


def test_a_model_that_needs_more_devices_raises_the_row_count_split_or_not(known_models):
    big = dataclasses.replace(known_models["tiny-llama"], min_gpus=8)
    values = axes_row({})
    assert axes.device_counts(values, big) == (1, 1, 8)
    assert axes.device_counts(values | {"colocate": False}, big) == (1, 1, 8)
