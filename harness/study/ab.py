"""A/B of two variants on one machine: A B B A A B ... per scenario, then one decision per scenario.

A variant is an sglang version (`0.5.12`), `none` (the scenario as written), changed engine arguments
(`args:cuda_graph_max_bs=8+attention_backend=flashinfer`: a real slowdown to detect) or an injected fault
(`inject:sync_slowdown:0.1`, the gates' self-test).
- Owns: interleaving the two variants' runs in ABBA order (so drift on the host hits both alike) and judging B
  against A, pair by pair, with the scenario's relative gates (or defaults.yaml's `ab:` gates when it has none).
- Does not own: running one scenario (execute.py), the statistics (stats.py via metrics.py).
"""

from __future__ import annotations

import dataclasses

import yaml

from harness.errors import ColobenchError
from harness.judge import metrics
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Evidence, Verdict, fold
from harness.matrix import axes as axes_mod
from harness.matrix import defaults, schema
from harness.matrix.axes import scenario_id, scenario_identity
from harness.matrix.scenario import Scenario
from harness.matrix.schema import fault_from_spec
from harness.run import execute
from harness.run.session import Session


def engine_args_from_spec(spec: str) -> dict:
    """`cuda_graph_max_bs=8+attention_backend=fa3` -> {cuda_graph_max_bs: 8, attention_backend: fa3}, checked."""
    out = {}
    for item in spec.split("+"):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ColobenchError(f"--ab args:{spec}: expected KEY=VALUE[+KEY=VALUE...]")
        out[key] = yaml.safe_load(raw)
    problem = schema.CHECKS["engine_args"](out)
    if problem:
        raise ColobenchError(f"--ab args:{spec}: {problem}")
    return out


def with_variant(s: Scenario, variant: str, rep: int, side: str) -> Scenario:
    """One run of one side. Its id ends in `.ab<rep><side>` (a folder of its own); a version variant changes the
    id's version, an injected fault adds `inject-<kind>-<value>` (a faulted run is not a run of the scenario)."""
    settings = s.settings.replace(repeat=1)
    axes = dict(s.axes)
    tag = s.settings.tag
    if variant.startswith("inject:"):
        settings = settings.replace(fault=fault_from_spec(variant.removeprefix("inject:"), "--ab"))
        tag = ".".join(filter(None, [tag, variant.replace(":", "-")]))
    elif variant.startswith("args:"):
        changed = engine_args_from_spec(variant.removeprefix("args:"))
        settings = settings.replace(engine_args={**settings.engine_args, **changed})
        tag = ".".join(filter(None, [tag, "args-" + "-".join(f"{k}-{v}" for k, v in changed.items())]))
    elif variant != "none":
        try:
            axes["sglang"] = axes_mod.AXES["sglang"].coerce(variant)
        except ValueError as exc:
            raise ColobenchError(f"--ab {variant!r}: {exc}") from None
    sid = scenario_id(axes, tag) + f".ab{rep}{side}"
    return dataclasses.replace(s, id=sid, axes=axes, settings=settings, identity=scenario_identity(axes, tag))


def gates_of(scenario: Scenario, emitted: set[str] | None = None) -> dict[str, dict]:
    """The relative gates an A/B judges: the scenario's own, else defaults.yaml's `ab:` (those for `emitted` metrics
    when given)."""
    own = metrics.relative(scenario.settings.metrics)
    return own or {m: g for m, g in defaults.ab_gates().items() if emitted is None or m in emitted}


def decide(scenario: Scenario, a: str, b: str, ra: list[ScenarioResult], rb: list[ScenarioResult]) -> ScenarioResult:
    """B against A: a failure only B has, else the relative gates (the scenario's own, or defaults.yaml's `ab:` for
    the metrics A emitted) on one value per run; the verdict from the one fold."""
    gates = gates_of(scenario, {m for r in ra for m in r.metrics})
    sa, sb = (
        metrics.per_run_values([r.metrics for r in ra], gates),
        metrics.per_run_values([r.metrics for r in rb], gates),
    )
    name = f"{scenario.identity}.ab-{a}-vs-{b}".replace(":", "-")
    props = {"ab.a": a, "ab.b": b, "repeat": str(len(rb))}
    bad_b = [r for r in rb if r.verdict == Verdict.REGRESSED]
    bad_a = [r for r in ra if r.verdict == Verdict.REGRESSED]
    if bad_b and not bad_a:
        return ScenarioResult(
            name,
            Verdict.REGRESSED,
            f"{b} fails where {a} passes: {bad_b[0].reason}",
            metrics=sb,
            diagnosis=bad_b[0].diagnosis,
            properties=props,
            run_dir=bad_b[0].run_dir,
        )
    if bad_a or any(r.verdict == Verdict.INFRA_ERROR for r in ra + rb):
        return ScenarioResult(
            name,
            Verdict.INCONCLUSIVE,
            "a run of A failed or hit an infra error; no metric decision",
            metrics=sb,
            properties=props,
        )
    judged = metrics.evaluate(gates, sb, sa, paired=True, probe_cv=execute.probe_cv(ra + rb))
    verdict, reason = fold(Evidence(), [], judged, None, None)
    return ScenarioResult(
        name,
        verdict,
        reason or "; ".join(g.reason for g in judged if g.reason),
        metrics=sb,
        properties=props,
        gates=[g.to_json() for g in judged],
    )


def warn_underpowered(sess: Session, s: Scenario) -> None:
    """One line when `repeat` is too small for a decision other than inconclusive: the pairs' spread (what a pass
    must rest on) needs metrics.MIN_RUNS_FOR_SPREAD pairs."""
    need = metrics.MIN_RUNS_FOR_SPREAD
    if s.settings.repeat < need:
        print(
            f"colobench: {s.id}: repeat {s.settings.repeat} a side gives fewer than {need} pairs, too few to "
            f"measure the runs' spread, so --ab can only say inconclusive; use repeat >= {need}",
            file=sess.out,
            flush=True,
        )


def abba_side(number: int) -> str:
    """The side of run `number` (from 0) in ABBA order: A B B A A B ... Runs 2j and 2j+1 are one A/B pair
    (neighbours, each side first as often, so a host that drifts moves both alike and favours neither); runs 2j+1 and
    2j+2 are one side twice (an unchanged pair). `--ab` and benchmarks/gpu_power.py both run in this order."""
    return "ab"[(number + 1) // 2 % 2]


def check_variants(variants: list[str]) -> None:
    """Two variants, each a version, none, args:... or inject:...; a one-line error before anything runs."""
    if len(variants) != 2 or not all(variants):
        raise ColobenchError(f"--ab {','.join(variants)}: expected two variants, A,B")
    for v in variants:
        if v.startswith("inject:"):
            fault_from_spec(v.removeprefix("inject:"), "--ab")
        elif v.startswith("args:"):
            engine_args_from_spec(v.removeprefix("args:"))
        elif v != "none":
            try:
                axes_mod.AXES["sglang"].coerce(v)
            except ValueError as exc:
                raise ColobenchError(f"--ab {v!r}: {exc}") from None


def run_ab(sess: Session, scenarios: list[Scenario], variants: list[str]) -> list[ScenarioResult]:
    check_variants(variants)
    a, b = variants
    is_version = [v != "none" and not v.startswith(("inject:", "args:")) for v in variants]
    targets = [s for s in scenarios if s.axes["engine"] == "sglang"] if any(is_version) else list(scenarios)
    if not targets:
        raise ColobenchError("--ab: versions need sglang-engine scenarios (the reference engine has no versions)")
    decisions = []
    for s in targets:
        warn_underpowered(sess, s)
    for i, s in enumerate(targets):
        ra: list[ScenarioResult] = []
        rb: list[ScenarioResult] = []
        try:
            for rep in range(1, s.settings.repeat + 1):
                for side in (abba_side(2 * rep - 2), abba_side(2 * rep - 1)):
                    variant, sink = (a, ra) if side == "a" else (b, rb)
                    one = with_variant(s, variant, rep, side)
                    sink.append(execute.run_scenario(one, sess.run_dir, sess.options))
                    if sess.record:
                        sess.record(one, sink[-1])
        except KeyboardInterrupt:
            sess.interrupted(targets, i)
            raise
        decision = decide(s, a, b, ra, rb)
        decision.duration_s = sum(r.duration_s for r in ra + rb)
        decision.run_dir = decision.run_dir or str(sess.run_dir / decision.scenario_id)
        decision.save(sess.run_dir / decision.scenario_id)
        decisions.append(decision)
        sess.results.append(decision)
        sess.write_reports()
        print(f"{decision.scenario_id}: {decision.verdict.value} - {decision.reason[:300]}", file=sess.out, flush=True)
    return decisions
