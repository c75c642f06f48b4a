"""Hostile input: every malformed matrix or models file is refused at load time by `colobench list` (and so by
`run` and `pytest suites/`, which load the same way) with one line naming the file and the key, exit 2, and
nothing run. Each row: (which file is bad, its text, what the one line must say)."""

import pytest

M = "schema: 1\naxes: {model: [tiny-llama]}\n"  # a good matrix to spoil


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
    f"x{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 9)}]\n" for i in range(1, 14)
)
HUGE = (
    "schema: 1\naxes: {model: [tiny-llama], tp: [1, 2, 4, 8], ep: [1, 2, 4, 8], cp: [1, 2, 4, 8], "
    "cvd_offset: [0, 1, 2, 3, 4, 5, 6, 7], custom_all_reduce: [auto, v1, v2, off], colocate: [on, off], "
    "launch: [ray-actor, standalone], trainer: [torch, megatron]}\n"
)

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
    (
        "matrix",
        "schema: 1\ninclude: [{model: tiny-llama, steps: 3}, {model: tiny-llama, steps: 4}]\n",
        "is defined twice",
    ),
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
    ("matrix", setting("fault: {kind: sync_delay, delay_s: -1}"), "fault.delay_s: expected a number in (0, 3600]"),
    ("matrix", setting("fault: {kind: sync_delay, delay_s: .inf}"), "fault.delay_s: expected a number"),
    ("matrix", setting("fault: {kind: hang, step: 0}"), "fault.step: expected an int >= 1"),
    ("matrix", setting("fault: {kind: skip_tensor, tensor: 5}"), "fault.tensor: expected a tensor name"),
    ("matrix", setting("fault: {kind: hang, when: now}"), "fault: valid keys"),
    # engine_args
    ("matrix", setting("engine_args: {port: '8000'}"), "port: expected a port number"),
    ("matrix", setting("engine_args: {port: 70000}"), "port: expected a port number"),
    (
        "matrix",
        setting("engine_args: {chunked_prefill_size: 0}"),
        "chunked_prefill_size: expected an int from 1 to 2^20 (or -1",
    ),
    ("matrix", setting("weights_check: fast"), "expected auto, checksum or exact"),
    ("matrix", setting("engine_args: {warp_speed: 9}"), "warp_speed: unknown engine argument"),
    ("matrix", setting("engine_args: {mem_fraction_static: 1.5}"), "mem_fraction_static: expected a fraction"),
    ("matrix", setting("engine_args: {cuda_graph_max_bs: -1}"), "cuda_graph_max_bs: expected an int from 1 to 4096"),
    ("matrix", setting("engine_args: {device_mapping: sideways}"), "device_mapping: expected local or physical"),
    ("matrix", setting("engine_args: {attention_backend: 'x; rm -rf /'}"), "attention_backend: expected a backend"),
    # timeouts and counts
    ("matrix", setting("timeout_s: .inf"), "timeout_s: expected seconds from 1"),
    ("matrix", setting("timeout_s: .nan"), "timeout_s: expected seconds from 1"),
    ("matrix", setting("timeout_s: true"), "timeout_s: expected seconds from 1"),
    ("matrix", setting("steps: 1"), "steps: expected an int >= 2"),
    ("matrix", setting("repeat: 0"), "repeat: expected an int from 1 to 1000"),
    ("matrix", setting("weights_check_every: 1.5"), "weights_check_every: expected an int from 1 to 10000"),
    ("matrix", setting("gpus: -2"), "gpus: expected an int from 1 to 1024"),
    # versions and names that would become paths
    ("matrix", "schema: 1\ndefaults: {engine: sglang}\naxes: {model: [tiny-llama], sglang: [0.10]}\n", "quote it"),
    ("matrix", "schema: 1\ndefaults: {engine: sglang, sglang: 0.5}\naxes: {model: [tiny-llama]}\n", "quote it"),
    (
        "matrix",
        "schema: 1\ndefaults: {engine: sglang, sglang: ../../etc}\naxes: {model: [tiny-llama]}\n",
        "expected a version string",
    ),
    (
        "matrix",
        "schema: 1\ndefaults: {engine: sglang, sglang: latest}\naxes: {model: [tiny-llama]}\n",
        "expected a version string",
    ),
    ("matrix", "schema: 1\naxes: {model: [../x]}\n", "axes.model: expected a name"),
    ("matrix", setting("tag: a/b"), "tag: expected an ASCII letter, then letters, digits and dashes"),
    ("matrix", setting("markers: [not-an-identifier]"), "markers: expected a list of marker names"),
    ("matrix", "schema: 1\naxes: {model: [tiny-llama], cvd_offset: [9]}\n", "axes.cvd_offset: got 9"),
    # YAML structure
    ("matrix", b"schema: 1\naxes: {model: [tiny-llama]}\n# caf\xe9\n", "not UTF-8"),
    ("matrix", NEST, "nested deeper than"),
    ("matrix", BOMB, "aliases"),
    ("matrix", HUGE, "more than 5000"),
    # models.yaml
    ("models", models("  tiny-llama:", "  ../evil:"), "(it becomes a path component)"),
    ("models", models("hidden_size: 32", "hidden_size: -1"), "config: hidden_size: expected an int from 1 to 65536"),
    ("models", models("hidden_size: 32", "hidden_size: big"), "config: hidden_size: expected an int from 1"),
    (
        "models",
        models("hidden_size: 32", "hidden_size: 32, rope_scaling: {type: x}"),
        "rope_scaling: expected a scalar",
    ),
    ("models", models("schema: 1", "schema: '1'"), "schema: expected 1"),
    (
        "models",
        models("architecture: LlamaForCausalLM", "architecture: LlamaForCausalLM\n    min_gpus: 0"),
        "min_gpus: expected a positive int",
    ),
    (
        "models",
        models("architecture: LlamaForCausalLM", "architecture: LlamaForCausalLM\n    gpu_memory_gb: .nan"),
        "gpu_memory_gb: expected a positive number",
    ),
    ("models", models("kind: tiny", "kind: hf\n    hf_id: ../../x"), "hf_id: expected a Hugging Face id"),
    ("models", models("kind: tiny", "kind: shape\n    hf_id: Qwen"), "hf_id: expected a Hugging Face id"),
    (
        "models",
        models("kind: tiny", "kind: shape\n    layers: 2"),
        "layers: expected an int from 1 to config.num_hidden_layers (1)",
    ),
    ("models", models("kind: tiny", "kind: tiny\n    layers: -1"), "layers: expected an int from 1"),
    ("models", models("kind: tiny", "kind: tiny\n    layers: 1.0"), "layers: expected an int from 1"),
    ("models", models("architecture: LlamaForCausalLM", "architecture: 1bad"), "architecture: expected a class name"),
    ("models", models("kind: tiny", "kind: huge"), "kind: expected one of"),
    ("models", MODELS_OK.encode() + b"# \xff\xfe\n", "not UTF-8"),
]

# issue 30: well-formed files that mean something impossible (written against today's schema)
SPLIT = "schema: 1\ndefaults: {{colocate: off, {}}}\naxes: {{model: [tiny-llama]}}\n"
BOMB_IN_FIELDS = (
    "schema: 1\nx0: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(f"x{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n" for i in range(1, 7))
    + "defaults: {milestones: [{event: step_done, fields: {step: *a6}}]}\naxes: {model: [tiny-llama]}\n"
)
MEANING = [
    # gates against the metric's direction or what the row emits
    ("matrix", gate("{weight_sync_s: {max_drop: 5%}}"), "a drop is an improvement; gate a rise"),
    ("matrix", gate("{train_step_s: {max_drop: 1%, p: 0.01}}"), "a drop is an improvement"),
    ("matrix", gate("{rollout_tokens_per_s: {max_rise: 10%}}"), "a rise is an improvement; gate a drop"),
    ("matrix", gate("{weight_sync_gbps: {max_rise: 3 %}}"), "a rise is an improvement"),
    ("matrix", SPLIT.format("metrics: {release_s: {max: 1}}"), "emits release_s only colocated"),
    ("matrix", SPLIT.format("metrics: {trainer_sleep_s: {max_rise: 5%}}"), "only colocated; this row is split"),
    (
        "matrix",
        setting("engine_args: {forward_timer: off}, metrics: {engine_gpu_busy: {min: 0.5}}"),
        "only with the engine's device timer",
    ),
    # rules that can never match, or always do
    ("matrix", rules("[{event: step_dnoe}]"), "emits no event 'step_dnoe'"),
    ("matrix", rules("[{name: ok, event: Run_Done}]"), "emits no event 'Run_Done'"),
    ("matrix", rules("[{event: step_done, fields: {step: '1'}}]"), "fields.step: expected int, got '1'"),
    ("matrix", rules("[{event: weight_sync_done, fields: {weights_match: 1}}]"), "expected bool or null, got 1"),
    ("matrix", rules("[{event: step_done, fields: {stpe: 1}}]"), "event step_done has no field 'stpe'"),
    ("matrix", rules("[{forbid: 'x*'}]"), "matches the empty string"),
    ("matrix", rules("[{forbid: '(?i)|error'}]"), "matches the empty string"),
    ("matrix", rules("[{log: '^'}]"), "matches the empty string"),
    ("matrix", rules("[{forbid: 'CUDA error', source: trainer-7}]"), "no log of a built-in run starts with"),
    ("matrix", rules("[{name: engine ready, event: engine_ready}]"), "a built-in rule's name"),
    ("matrix", rules("[{name: '2 steps', event: step_done}]"), "a built-in rule's name"),
    # regexes that would stall or break the matcher
    ("matrix", rules("[{forbid: '(a+)+$\\1'}]"), "not a regex RE2 can run in linear time"),
    ("matrix", rules("[{log: '(?<=CUDA) error'}]"), "not a regex RE2 can run in linear time"),
    ("matrix", rules("[{log: 'a{1,100000}'}]"), "not a regex RE2 can run in linear time"),
    ("matrix", rules("[{forbid: '(((a{100}){100}){100}){100}'}]"), "[0].forbid: bad regex"),
    ("matrix", rules("[{forbid: '" + "x" * 3000 + "'}]"), "longer than 2000 characters"),
    # rows that cannot be what they say
    ("matrix", "schema: 1\ninclude: [{model: tiny-llama, tp: 2}]\n", "this include row cannot run"),
    ("matrix", "schema: 1\ninclude: [{model: tiny-llama, ep: 2}]\n", "ep=2 on dense model tiny-llama"),
    ("matrix", setting("steps: 3, warmup_steps: 3"), "warmup_steps: 3 leaves no steady step"),
    (
        "matrix",
        setting("batch: {prompts: 2, prompt_len: 1000, max_new_tokens: 100}"),
        "longer than tiny-llama's context",
    ),
    ("matrix", M + "exclude: [{model: tiny-moe}]\n", "exclude[0]: {'model': 'tiny-moe'} matches no row"),
    ("matrix", M + "overrides: [{match: {tp: 4}, set: {steps: 3}}]\n", "overrides[0].match: {'tp': 4} matches no row"),
    ("matrix", setting("engine_args: {seed: 18446744073709551616}"), "seed: expected an int from 0 to 2^63 - 1"),
    ("matrix", setting("repeat: 1000000000"), "repeat: expected an int from 1 to 1000"),
    ("matrix", setting("engine_args: {phase_timeout_s: 1.0e-10}"), "phase_timeout_s: expected seconds from 1"),
    ("matrix", setting("timeout_s: 0.0000001"), "timeout_s: expected seconds from 1"),
    ("matrix", setting("steps: 3, weights_check_every: 4"), "weights_check_every: 4 is past the 3 steps"),
    ("matrix", setting("fault: {kind: slowdown, factor: 1000}"), "fault.factor: expected a number in (0, 10]"),
    ("matrix", setting("fault: {kind: slowdown}"), "slowdown needs a factor"),
    ("matrix", rules("[{event: step_done, within_s: 1.0e+30}]"), "[0].within_s: expected a positive finite number"),
    # models that cannot exist
    (
        "models",
        models("hidden_size: 32", "hidden_size: 33"),
        "hidden_size: 33 is not a multiple of num_attention_heads",
    ),
    (
        "models",
        models("num_attention_heads: 2", "num_attention_heads: 2, num_key_value_heads: 4"),
        "num_key_value_heads: 4 must divide num_attention_heads (2)",
    ),
    (
        "models",
        models(
            "config: {vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, "
            "num_attention_heads: 2}",
            "config: {}",
        ),
        "missing vocab_size, hidden_size",
    ),
    (
        "models",
        models("hidden_size: 32", "hiden_size: 32"),
        "hiden_size: not a config key; a misspelling of hidden_size?",
    ),
    ("models", models("vocab_size: 64", "vocab_size: 1000000000000"), "vocab_size: expected an int from 1 to"),
    ("models", models("kind: tiny", "kind: shape\n    hf_id: /abs/path/model"), "hf_id: expected a Hugging Face id"),
    ("models", models("kind: tiny", "kind: shape\n    hf_id: ./local/model"), "hf_id: expected a Hugging Face id"),
    (
        "models",
        models("architecture: LlamaForCausalLM", "architecture: LlamaForSequenceClassification"),
        "expected a causal LM class",
    ),
    (
        "models",
        models("architecture: LlamaForCausalLM", "architecture: Llama4000ForCausalLM"),
        "the installed transformers has no causal LM 'Llama4000ForCausalLM'",
    ),
    (
        "models",
        models("intermediate_size: 64,", "intermediate_size: 64, num_key_value_head: 1,"),
        "num_key_value_head: not a config key; a misspelling of num_key_value_heads?",
    ),
    (
        "models",
        models("num_hidden_layers: 1,", "num_hidden_layers: 1, num_experts: 2, num_experts_per_tok: 4,"),
        "num_experts_per_tok: 4 is more than the 2 experts",
    ),
    # values YAML would change behind your back
    ("matrix", setting("env: {NCCL_TIMEOUT: 0.10}"), "YAML reads the unquoted 0.10 as 0.1"),
    ("matrix", setting("env: {WINDOW: 20:30}"), "YAML reads the unquoted 20:30 as 1230"),
    ("matrix", setting("env: {UMASK: 0777}"), "YAML reads the unquoted 0777 as 511"),
    ("matrix", setting("env: {BIG: " + "x" * 140000 + "}"), "longer than the 131071 bytes"),
    ("matrix", setting("env: {COLOBENCH_EVENTS: /tmp/x}"), "set by colobench itself"),
    ("matrix", setting("env: {CUDA_VISIBLE_DEVICES: '3'}"), "set by colobench itself"),
    ("matrix", setting("env: {'É': x}"), "not an environment variable name"),
    # ids and history that would collide; markers that change outcomes
    (
        "matrix",
        "schema: 1\ndefaults: {engine: sglang}\naxes: {model: [tiny-llama], sglang: ['٠.٥.١٢']}\n",
        "expected a version string",
    ),
    (
        "matrix",
        "schema: 1\ndefaults: {engine: sglang}\naxes: {model: [tiny-llama], sglang: ['0.5.12', '0.5.12.0']}\n",
        "duplicate values",
    ),
    ("matrix", setting("tag: ab1b"), "reads as a suffix colobench gives ids itself"),
    ("matrix", setting("tag: post1"), "reads as a suffix"),
    ("matrix", setting("tag: rep2"), "reads as a suffix"),
    ("matrix", setting("tag: 7up"), "expected an ASCII letter"),
    ("matrix", setting("markers: [xfail]"), "xfail: pytest's own marker"),
    ("matrix", setting("markers: [nightly, parametrize]"), "parametrize: pytest's own marker"),
    ("matrix", BOMB_IN_FIELDS, "with its aliases expanded"),
    # metrics read from a framework's logs
    (
        "matrix",
        runner("{command: [python]}, log_metrics: {line: '^step', values: {rollout_s: 'gen:[0-9.]+'}}"),
        "values.rollout_s: expected exactly 1 capture group(s), got 0",
    ),
    (
        "matrix",
        runner("{command: [python]}, log_metrics: {line: 'x?', values: {rollout_s: 'gen:([0-9.]+)'}}"),
        "line: 'x?' matches the empty string",
    ),
    (
        "matrix",
        runner("{command: [python]}, log_metrics: {line: '^s', values: {gen_time: 'gen:([0-9.]+)'}}"),
        "values.gen_time: unknown metric",
    ),
    (
        "matrix",
        setting("log_metrics: {line: '^step', values: {rollout_s: 'gen:([0-9.]+)'}}"),
        "log_metrics: only an external runner's logs are read for metrics",
    ),
]
BAD += MEANING


@pytest.mark.parametrize("which,text,needle", BAD, ids=[f"bad{i:03d}" for i in range(len(BAD))])
def test_malformed_file_is_refused_at_load_in_one_line(which, text, needle, tmp_path, run_cli):
    bad = tmp_path / ("models.yaml" if which == "models" else "matrix.yaml")
    (bad.write_bytes if isinstance(text, bytes) else bad.write_text)(text)
    args = (
        ["list", "--matrix", bad] if which == "matrix" else ["list", "--matrix", tmp_path / "m.yaml", "--models", bad]
    )
    if which == "models":
        (tmp_path / "m.yaml").write_text(M)
    code, out, err = run_cli(*args)
    assert code == 2, out
    assert err.count("\n") == 1 and err.startswith(f"colobench: {bad}"), err
    assert needle in err, err


def test_the_table_holds_at_least_80_hostile_files():
    assert len(BAD) >= 80 and len(MEANING) >= 60


UNUSUAL = [
    "\ufeffschema: 1\naxes: {model: [tiny-llama]}\n",  # a BOM
    "schema: 1\r\naxes: {model: [tiny-llama]}\r\n",  # CRLF
    "schema: 1\ndefaults: {metrics: {rollout_tokens_per_s: {max_drop: 5 %}}}\naxes: {model: [tiny-llama]}\n",
    M + "overrides: [{match: {model: tiny-llama}, set: {steps: 3}}]\n",  # matches every row
    "schema: 1\ndefaults: {env: {A: '0.10', B: 8, C: 'true'}}\naxes: {model: [tiny-llama]}\n",
    "schema: 1\ndefaults: {engine: sglang}\naxes: {model: [tiny-llama], sglang: ['0.5.12.0']}\n",
]


@pytest.mark.parametrize("text", UNUSUAL, ids=[f"unusual{i}" for i in range(len(UNUSUAL))])
def test_a_legitimately_unusual_file_still_loads(text, tmp_path, run_cli):
    path = tmp_path / "matrix.yaml"
    path.write_text(text, newline="")
    code, out, err = run_cli("list", "--matrix", path)
    assert code == 0 and err == "", err
    assert "sglang-0.5.12.0" not in out  # one spelling per version
