"""A/B of two variants on one machine: A B A B ... per scenario, then one decision per scenario.

A variant is an sglang version (`0.5.12`), `none` (the scenario as written) or an injected fault
(`inject:sync_slowdown:0.1`, the gates' self-test).
- Owns: interleaving the two variants' runs (so drift on the host hits both alike) and judging B against A
  with the scenario's relative gates (or AB_GATES when it has none).
- Does not own: running one scenario (execute.py), the statistics (stats.py via metrics.py).
"""

from __future__ import annotations

import dataclasses

from harness import execute, history, metrics, stats
from harness.errors import ColobenchError
from harness.scenario import Scenario, scenario_id
from harness.session import Session
from harness.verdict import ScenarioResult, Verdict

AB_GATES = {"rollout_tokens_per_s": {"max_drop": "5%"}, "weight_sync_s": {"max_rise": "10%", "abs_floor": 0.005},
            "engine_startup_s": {"max_rise": "20%", "abs_floor": 1.0}, "train_step_s": {"max_rise": "10%", "abs_floor": 0.005}}


def with_variant(s: Scenario, variant: str, rep: int, side: str) -> Scenario:
    settings = {**s.settings, "repeat": 1}
    axes = dict(s.axes)
    if variant.startswith("inject:"):
        kind, _, value = variant.removeprefix("inject:").partition(":")
        settings["fault"] = {"kind": kind, **({"factor" if kind == "sync_slowdown" else "delay_s": float(value)} if value else {})}
    elif variant != "none":
        axes["sglang"] = variant
    sid = scenario_id(axes, s.settings.get("tag")) + f".ab{rep}{side}"
    return dataclasses.replace(s, id=sid, axes=axes, settings=settings)


def _per_run(results: list[ScenarioResult]) -> dict[str, list[float]]:
    """One value per run (its median): the unit of evidence, since a run's steps share its offset."""
    out: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.metrics.items():
            finite = [x for x in v if x == x]
            if finite:
                out.setdefault(k, []).append(stats.centre(finite))
    return out


def decide(scenario: Scenario, a: str, b: str, ra: list[ScenarioResult], rb: list[ScenarioResult]) -> ScenarioResult:
    gates = {k: g for k, g in scenario.settings.get("metrics", {}).items() if "max_drop" in g or "max_rise" in g} or AB_GATES
    sa, sb = _per_run(ra), _per_run(rb)
    name = f"{history.identity(scenario.id)}.ab-{a}-vs-{b}".replace(":", "-")
    props = {"ab.a": a, "ab.b": b, "repeat": str(len(rb))}
    bad_b = [r for r in rb if r.verdict == Verdict.REGRESSED]
    bad_a = [r for r in ra if r.verdict == Verdict.REGRESSED]
    if bad_b and not bad_a:
        return ScenarioResult(name, Verdict.REGRESSED, f"{b} fails where {a} passes: {bad_b[0].reason}",
                              metrics=sb, diagnosis=bad_b[0].diagnosis, properties=props, run_dir=bad_b[0].run_dir)
    if bad_a or any(r.verdict == Verdict.INFRA_ERROR for r in ra + rb):
        return ScenarioResult(name, Verdict.INCONCLUSIVE, "a run of A failed or hit an infra error; no metric decision",
                              metrics=sb, properties=props)
    judged = [g for g in metrics.evaluate(gates, sb, sa) if sa.get(g.metric) or g.status != metrics.GateStatus.ERROR]
    failed = [g.reason for g in judged if g.status == metrics.GateStatus.FAIL]
    unsure = [g.reason for g in judged if g.status == metrics.GateStatus.INCONCLUSIVE]
    verdict = Verdict.REGRESSED if failed else Verdict.INCONCLUSIVE if unsure else Verdict.PASS
    reason = "; ".join(failed or unsure) or "; ".join(g.reason for g in judged if g.reason)
    return ScenarioResult(name, verdict, reason, metrics=sb, properties=props,
                          gates=[execute._gate_json(g) for g in judged])


def run_ab(sess: Session, scenarios: list[Scenario], variants: list[str]) -> list[ScenarioResult]:
    if len(variants) != 2 or not all(variants):
        raise ColobenchError(f"--ab {','.join(variants)}: expected two variants, A,B")
    a, b = variants
    is_version = [v != "none" and not v.startswith("inject:") for v in variants]
    targets = [s for s in scenarios if s.axes["engine"] == "sglang"] if any(is_version) else list(scenarios)
    if not targets:
        raise ColobenchError("--ab: versions need sglang-engine scenarios (the reference engine has no versions)")
    decisions = []
    for s in targets:
        ra, rb = [], []
        for rep in range(1, s.settings["repeat"] + 1):
            for variant, side, sink in ((a, "a", ra), (b, "b", rb)):
                one = with_variant(s, variant, rep, side)
                sink.append(execute.run_scenario(one, sess.run_dir, sess.options))
                if sess.record:
                    sess.record(one, sink[-1])
        decision = decide(s, a, b, ra, rb)
        folder = sess.run_dir / decision.scenario_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        decision.save(folder)
        decisions.append(decision)
        sess.results.append(decision)
        sess.write_reports()
        print(f"{decision.scenario_id}: {decision.verdict.value} - {decision.reason[:300]}", file=sess.out, flush=True)
    return decisions
