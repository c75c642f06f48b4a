"""Hostile input: every malformed matrix or models file is refused at load time by `colobench list` (and so by
`run` and `pytest suites/`, which load the same way) with one line naming the file and the key, exit 2, and
nothing run. Each row: (which file is bad, its text, what the one line must say)."""

import pytest

M = "schema: 1\naxes: {model: [tiny-llama]}\n"          # a good matrix to spoil


def gate(g: str) -> str:
    return f"schema: 1\ndefaults: {{metrics: {g}}}\naxes: {{model: [tiny-llama]}}\n"


def rules(r: str) -> str:
    return f"schema: 1\ndefaults: {{milestones: {r}}}\naxes: {{model: [tiny-llama]}}\n"


def setting(s: str) -> str:
    return f"schema: 1\ndefaults: {{{s}}}\naxes: {{model: [tiny-llama]}}\n"


def runner(r: str) -> str:
    return f"schema: 1\ndefaults: {{model: tiny-llama}}\ninclude: [{{tag: ext, runner: {r}}}]\n"


MODELS_OK = """schema: 1
models:
  tiny-llama:
    kind: tiny
    family: dense
    architecture: LlamaForCausalLM
    config: {vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2}
"""


def models(old: str, new: str) -> str:
    assert old in MODELS_OK
    return MODELS_OK.replace(old, new)


NEST = "schema: 1\naxes: {model: [tiny-llama]}\ndescription: " + "[" * 40 + "]" * 40 + "\n"
BOMB = "schema: 1\naxes: {model: [tiny-llama]}\nx0: &a [1, 1]\n" + "".join(
    f"x{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 9)}]\n" for i in range(1, 14))
HUGE = ("schema: 1\naxes: {model: [tiny-llama], tp: [1, 2, 4, 8], ep: [1, 2, 4, 8], cp: [1, 2, 4, 8], "
        "cvd_offset: [0, 1, 2, 3, 4, 5, 6, 7], custom_all_reduce: [auto, v1, v2, off], colocate: [on, off], "
        "launch: [ray-actor, standalone], trainer: [torch, megatron]}\n")

BAD = [
    # gates
    ("matrix", gate("{nope_s: {max: 1}}"), "nope_s: unknown metric"),
    ("matrix", gate("{rollout_tokens_per_s: {max_drop: 0.05}}"), "max_drop: expected a percentage"),
    ("matrix", gate("{rollout_tokens_per_s: {max_drop: 100%}}"), "would allow dropping everything"),
    ("matrix", gate("{rollout_tokens_per_s: {max_drop: 150%}}"), "would allow dropping everything"),
    ("matrix", gate("{weight_sync_s: {min: 2, max: 1}}"), "weight_sync_s: min 2 > max 1"),
    ("matrix", gate("{weight_sync_s: {max: .nan}}"), "weight_sync_s.max: expected a finite number"),
    ("matrix", gate("{weight_sync_s: {max: .inf}}"), "weight_sync_s.max: expected a finite number"),
    ("matrix", gate("{weight_sync_s: {max_rise: 5%, abs_floor: -1}}"), "abs_floor: expected a non-negative"),
    ("matrix", gate("{weight_sync_s: {max_rise: 5%, p: true}}"), "weight_sync_s.p: expected a probability"),
    ("matrix", gate("{weight_sync_s: {max_rise: 5%, p: 2.0}}"), "weight_sync_s.p: expected a probability"),
    ("matrix", gate("{weight_sync_s: {max_rise: 5%, stat: mean}}"), "weight_sync_s.stat: expected one of"),
    ("matrix", gate("{weight_sync_s: 3}"), "weight_sync_s: expected a mapping"),
    ("matrix", gate("{weight_sync_s: {}}"), "weight_sync_s: expected a mapping"),
    ("matrix", gate("{weight_sync_s: {max_rise: nan%}}"), "weight_sync_s.max_rise: expected a percentage"),
    ("matrix", gate("{weight_sync_s: {max: 1, abs_floor: 0.1}}"), "only a relative gate"),
    ("matrix", gate("{weight_sync_s: {max: true}}"), "weight_sync_s.max: expected a finite number"),
    ("matrix", gate("[weight_sync_s]"), "metrics: expected a mapping"),
    # milestone rules
    ("matrix", rules("[{name: 3, event: x}]"), "[0].name: expected a non-empty string"),
    ("matrix", rules("[{name: a, event: x}, {event: y, after: [a]}]"), "[1].after: expected a non-empty string"),
    ("matrix", rules("[{name: a, event: x}, {name: a, event: y}]"), "[1].name: duplicate rule name 'a'"),
    ("matrix", rules("[{event: x}, {event: y, after: \"event 'x'\"}]"), "only rules with a `name`"),
    ("matrix", rules("[{name: a, event: x, within_s: true}]"), "[0].within_s: expected a positive finite"),
    ("matrix", rules("[{name: a, event: x, within_s: .nan}]"), "[0].within_s: expected a positive finite"),
    ("matrix", rules("[{name: a, event: x, min: 3, max: 2}]"), "[0]: min 3 > max 2"),
    ("matrix", rules("[{event: 5}]"), "[0].event: expected a non-empty string"),
    ("matrix", rules("[{event: x, fields: [1]}]"), "[0].fields: expected a mapping"),
    ("matrix", rules("[{forbid: x, min: 1}]"), "a forbid rule takes only name and source"),
    ("matrix", rules("[{log: '[unclosed'}]"), "[0].log: bad regex"),
    ("matrix", rules("{event: x}"), "milestones: expected a list of rules"),
    ("matrix", rules("[{event: x, log: y}]"), "give exactly one of event, log, forbid"),
    ("matrix", rules("[{event: x, bogus: 1}]"), "[0].bogus: unknown key"),
    ("matrix", rules("[{event: x, source: 7}]"), "[0].source: expected a non-empty string"),
    # expect
    ("matrix", setting("expect: {fail: no-such-signature}"), "names no signature, gate or milestone"),
    ("matrix", setting("expect: {fail: 'gate:nonexistent_s'}"), "names no signature, gate or milestone"),
    ("matrix", setting("expect: {fail: 'milestone:nope'}"), "names no signature, gate or milestone"),
    ("matrix", setting("expect: maybe"), "expect: expected `pass`"),
    ("matrix", setting("expect: {fail: 3}"), "expect: expected `pass`"),
    # top level
    ("matrix", "schema: '1'\naxes: {model: [tiny-llama]}\n", "schema: expected 1"),
    ("matrix", "schema: 1.0\naxes: {model: [tiny-llama]}\n", "schema: expected 1"),
    ("matrix", "schema: true\naxes: {model: [tiny-llama]}\n", "schema: expected 1"),
    ("matrix", "schema: 1\nname: 5\naxes: {model: [tiny-llama]}\n", "name: expected a non-empty string"),
    ("matrix", "schema: 1\nname: ../up\naxes: {model: [tiny-llama]}\n", "name: expected letters"),
    ("matrix", "- 1\n- 2\n", "expected a mapping with schema"),
    ("matrix", "schema: 1\naxes: {model: [tiny-llama]}\naxes: {tp: [1]}\n", "duplicate key 'axes'"),
    # rows whose ids collide
    ("matrix", M + "include: [{model: tiny-llama}]\n", "is defined twice"),
    ("matrix", "schema: 1\ninclude: [{model: tiny-llama, steps: 3}, {model: tiny-llama, steps: 4}]\n", "is defined twice"),
    # env
    ("matrix", setting("env: {'A=B': x}"), "not an environment variable name"),
    ("matrix", setting('env: {A: "a\\0b"}'), "without NUL bytes"),
    ("matrix", setting("env: {A: [1]}"), "A: expected a string or number"),
    ("matrix", setting("env: {1: x}"), "not an environment variable name"),
    ("matrix", setting("env: {A: true}"), "A: expected a string or number"),
    ("matrix", setting("env: {'A B': x}"), "not an environment variable name"),
    # runner
    ("matrix", runner("{command: [1, 2]}"), "runner.command: expected a non-empty list of strings"),
    ("matrix", runner("{command: ['{home}/train.py']}"), "unknown placeholder {home}"),
    ("matrix", runner("{command: [python], cwd: 5}"), "runner.cwd: expected a folder path"),
    ("matrix", runner("{command: [python], env: {'X=1': a}}"), "runner.env"),
    ("matrix", runner("{command: []}"), "runner.command: expected a non-empty list"),
    ("matrix", runner("{command: [python], shell: true}"), "expected {command"),
    ("matrix", runner("{command: python train.py}"), "runner.command: expected a non-empty list"),
    # batch
    ("matrix", setting("batch: {prompts: 4}"), "batch: expected {prompts, prompt_len, max_new_tokens}"),
    ("matrix", setting("batch: {prompts: -4, prompt_len: 8, max_new_tokens: 16}"), "batch: expected"),
    ("matrix", setting("batch: {prompts: true, prompt_len: 8, max_new_tokens: 16}"), "batch: expected"),
    ("matrix", setting("batch: {prompts: 4.5, prompt_len: 8, max_new_tokens: 16}"), "batch: expected"),
    # fault
    ("matrix", setting("fault: {kind: meteor}"), "fault: expected {kind: ...}"),
    ("matrix", setting("fault: {kind: sync_delay, delay_s: -1}"), "fault.delay_s: expected a positive"),
    ("matrix", setting("fault: {kind: sync_delay, delay_s: .inf}"), "fault.delay_s: expected a positive"),
    ("matrix", setting("fault: {kind: hang, step: 0}"), "fault.step: expected an int >= 1"),
    ("matrix", setting("fault: {kind: skip_tensor, tensor: 5}"), "fault.tensor: expected a tensor name"),
    ("matrix", setting("fault: {kind: hang, when: now}"), "fault: valid keys"),
    # engine_args
    ("matrix", setting("engine_args: {port: '8000'}"), "port: expected a port number"),
    ("matrix", setting("engine_args: {port: 70000}"), "port: expected a port number"),
    ("matrix", setting("engine_args: {chunked_prefill_size: 0}"), "chunked_prefill_size: expected a positive int (or -1"),
    ("matrix", setting("weights_check: fast"), "expected auto, checksum or exact"),
    ("matrix", setting("engine_args: {warp_speed: 9}"), "warp_speed: unknown engine argument"),
    ("matrix", setting("engine_args: {mem_fraction_static: 1.5}"), "mem_fraction_static: expected a fraction"),
    ("matrix", setting("engine_args: {cuda_graph_max_bs: -1}"), "cuda_graph_max_bs: expected a positive int"),
    ("matrix", setting("engine_args: {device_mapping: sideways}"), "device_mapping: expected local or physical"),
    ("matrix", setting("engine_args: {attention_backend: 'x; rm -rf /'}"), "attention_backend: expected a backend"),
    # timeouts and counts
    ("matrix", setting("timeout_s: .inf"), "timeout_s: expected a positive number"),
    ("matrix", setting("timeout_s: .nan"), "timeout_s: expected a positive number"),
    ("matrix", setting("timeout_s: true"), "timeout_s: expected a positive number"),
    ("matrix", setting("steps: 1"), "steps: expected an int >= 2"),
    ("matrix", setting("repeat: 0"), "repeat: expected a positive int"),
    ("matrix", setting("weights_check_every: 1.5"), "weights_check_every: expected a positive int"),
    ("matrix", setting("gpus: -2"), "gpus: expected a positive int"),
    # versions and names that would become paths
    ("matrix", "schema: 1\ndefaults: {engine: sglang}\naxes: {model: [tiny-llama], sglang: [0.10]}\n", "quote it"),
    ("matrix", "schema: 1\ndefaults: {engine: sglang, sglang: 0.5}\naxes: {model: [tiny-llama]}\n", "quote it"),
    ("matrix", "schema: 1\ndefaults: {engine: sglang, sglang: ../../etc}\naxes: {model: [tiny-llama]}\n", "expected a version string"),
    ("matrix", "schema: 1\ndefaults: {engine: sglang, sglang: latest}\naxes: {model: [tiny-llama]}\n", "expected a version string"),
    ("matrix", "schema: 1\naxes: {model: [../x]}\n", "axes.model: expected a name"),
    ("matrix", setting("tag: a/b"), "tag: expected letters, digits and dashes"),
    ("matrix", setting("markers: [not-an-identifier]"), "markers: expected a list of marker names"),
    ("matrix", "schema: 1\naxes: {model: [tiny-llama], cvd_offset: [9]}\n", "axes.cvd_offset: got 9"),
    # YAML structure
    ("matrix", b"schema: 1\naxes: {model: [tiny-llama]}\n# caf\xe9\n", "not UTF-8"),
    ("matrix", NEST, "nested deeper than"),
    ("matrix", BOMB, "aliases"),
    ("matrix", HUGE, "more than 5000"),
    # models.yaml
    ("models", models("  tiny-llama:", "  ../evil:"), "(it becomes a path component)"),
    ("models", models("hidden_size: 32", "hidden_size: -1"), "config: hidden_size: expected a positive int"),
    ("models", models("hidden_size: 32", "hidden_size: big"), "config: hidden_size: expected a positive int"),
    ("models", models("hidden_size: 32", "hidden_size: 32, rope_scaling: {type: x}"), "rope_scaling: expected a scalar"),
    ("models", models("schema: 1", "schema: '1'"), "schema: expected 1"),
    ("models", models("architecture: LlamaForCausalLM", "architecture: LlamaForCausalLM\n    min_gpus: 0"), "min_gpus: expected a positive int"),
    ("models", models("architecture: LlamaForCausalLM", "architecture: LlamaForCausalLM\n    gpu_memory_gb: .nan"), "gpu_memory_gb: expected a positive number"),
    ("models", models("kind: tiny", "kind: hf\n    hf_id: ../../x"), "hf_id: expected a Hugging Face id"),
    ("models", models("kind: tiny", "kind: shape\n    hf_id: Qwen"), "hf_id: expected a Hugging Face id"),
    ("models", models("kind: tiny", "kind: shape\n    layers: 2"), "layers: expected an int from 1 to config.num_hidden_layers (1)"),
    ("models", models("kind: tiny", "kind: tiny\n    layers: -1"), "layers: expected an int from 1"),
    ("models", models("kind: tiny", "kind: tiny\n    layers: 1.0"), "layers: expected an int from 1"),
    ("models", models("architecture: LlamaForCausalLM", "architecture: 1bad"), "architecture: expected a class name"),
    ("models", models("kind: tiny", "kind: huge"), "kind: expected one of"),
    ("models", MODELS_OK.encode() + b"# \xff\xfe\n", "not UTF-8"),
]


@pytest.mark.parametrize("which,text,needle", BAD, ids=[f"bad{i:03d}" for i in range(len(BAD))])
def test_malformed_file_is_refused_at_load_in_one_line(which, text, needle, tmp_path, run_cli):
    bad = tmp_path / ("models.yaml" if which == "models" else "matrix.yaml")
    (bad.write_bytes if isinstance(text, bytes) else bad.write_text)(text)
    args = ["list", "--matrix", bad] if which == "matrix" else ["list", "--matrix", tmp_path / "m.yaml", "--models", bad]
    if which == "models":
        (tmp_path / "m.yaml").write_text(M)
    code, out, err = run_cli(*args)
    assert code == 2, out
    assert err.count("\n") == 1 and err.startswith(f"colobench: {bad}"), err
    assert needle in err, err


def test_the_table_holds_at_least_80_hostile_files():
    assert len(BAD) >= 80
