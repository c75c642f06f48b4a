"""Shape models (a real architecture's config, fewer layers, dummy weights) through the built-in runner on CPU, with
both weights checks; models.yaml's shape entries and `layers:` overrides are checked at load."""

import json
import textwrap

import pytest

from harness import cli
from harness.errors import ScenarioError
from harness.matrix import models

pytest.importorskip("torch")
pytest.importorskip("ray")

# the Qwen3-30B-A3B layout (qk-norm, 128 experts top-8) at a width a CPU trains in seconds
SHAPES = """
schema: 1
models:
  mini-moe-shape:
    kind: shape
    family: moe
    architecture: Qwen3MoeForCausalLM
    hf_id: Qwen/Qwen3-30B-A3B
    layers: 2
    config: {vocab_size: 512, hidden_size: 64, intermediate_size: 128, moe_intermediate_size: 32, num_experts: 8,
             num_experts_per_tok: 2, decoder_sparse_step: 1, norm_topk_prob: true, num_hidden_layers: 48,
             num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, max_position_embeddings: 512,
             rope_theta: 1000000.0, tie_word_embeddings: false}
"""


def test_shape_entries_apply_layers_and_refuse_bad_overrides(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(SHAPES)
    entry = models.load(path)["mini-moe-shape"]
    assert entry.to_json()["config"]["num_hidden_layers"] == 2 and entry.config["num_hidden_layers"] == 48
    for bad in ("0", "49", "two", "true"):
        path.write_text(SHAPES.replace("layers: 2", f"layers: {bad}"))
        with pytest.raises(ScenarioError, match=r"models.yaml:\d+: models.mini-moe-shape.layers: expected an int"):
            models.load(path)
    real = models.load()
    for name in ("qwen3-8b-shape", "llama3.1-8b-shape", "qwen3-30b-a3b-shape"):
        assert real[name].kind == "shape" and real[name].layers


def test_shape_model_folder_holds_the_config_only(tmp_path, monkeypatch):
    from harness.runner import tiny_model

    monkeypatch.setenv(tiny_model.CACHE_ENV, str(tmp_path))
    path = tmp_path / "models.yaml"
    path.write_text(SHAPES)
    folder = tiny_model.ensure(models.load(path)["mini-moe-shape"].to_json())
    assert not tiny_model.has_weights(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["architectures"] == ["Qwen3MoeForCausalLM"]
    import torch

    a, b = (tiny_model.load(folder, torch.float32, "cpu", 3) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # seeded


def test_shape_model_trains_and_syncs_with_both_checks_and_both_trainers(tmp_path, monkeypatch):
    monkeypatch.setenv("COLOBENCH_MODEL_CACHE", str(tmp_path / "models"))
    (tmp_path / "models.yaml").write_text(SHAPES)
    (tmp_path / "m.yaml").write_text(
        textwrap.dedent("""
        schema: 1
        name: shapes
        defaults: {engine: reference, model: mini-moe-shape, colocate: on, steps: 2, timeout_s: 240}
        include:
          - {trainer: torch, tag: sum}
          - {trainer: torch, tag: exact, weights_check: exact}
          - {trainer: megatron, tag: sum}
          - tag: corrupt
            fault: {kind: corrupt_tensor, tensor: model.layers.1.mlp.experts.3.up_proj.weight}
            expect: {fail: weights-mismatch-after-sync}
        """)
    )
    code = cli.main(
        [
            "run",
            "--matrix",
            str(tmp_path / "m.yaml"),
            "--models",
            str(tmp_path / "models.yaml"),
            "--reports-dir",
            str(tmp_path),
            "--run-id",
            "r",
            "--no-history",
        ]
    )
    run = tmp_path / "runs" / "r"
    assert code == 0, (run / "summary.md").read_text()

    def methods(sid):
        return [
            e["method"]
            for e in map(json.loads, (run / sid / "events.jsonl").open())
            if e.get("event") == "weights_check_method"
        ]

    assert methods("mini-moe-shape.tp1.colocate.ref.sum") == ["checksum"]
    assert methods("mini-moe-shape.tp1.colocate.ref.exact") == ["by-name"]
    summed = json.loads((run / "mini-moe-shape.tp1.colocate.ref.sum" / "result.json").read_text())
    assert len(summed["metrics"]["weights_check_s"]) == 3 and summed["metrics"]["weights_match"] == [1.0] * 3
    corrupt = json.loads((run / "mini-moe-shape.tp1.colocate.ref.corrupt" / "result.json").read_text())
    assert "model.layers.1.mlp.experts.3.up_proj.weight differs" in corrupt["reason"]
