"""A/B of two variants on one machine: A B A B ... per scenario, then one decision per scenario.

A variant is an sglang version (`0.5.12`), `none` (the scenario as written) or an injected fault
(`inject:sync_slowdown:0.1`, the gates' self-test).
- Owns: interleaving the two variants' runs (so drift on the host hits both alike) and judging B against A
  with the scenario's relative gates (or AB_GATES when it has none).
- Does not own: running one scenario (execute.py), the statistics (stats.py via metrics.py).
"""

from __future__ import annotations

import dataclasses

from harness import execute, history, metrics
from harness.errors import ColobenchError
from harness.scenario import Scenario, scenario_id
from harness.schema import fault_from_spec
from harness.session import Session
from harness.verdict import ScenarioResult, Verdict

AB_GATES = execute.DEFAULTS["ab"]   # defaults.yaml: the gates for scenarios without relative gates of their own


def with_variant(s: Scenario, variant: str, rep: int, side: str) -> Scenario:
    """One run of one side. Its id ends in `.ab<rep><side>` (a folder of its own); a version variant changes the
    id's version, an injected fault adds `inject-<kind>-<value>` (a faulted run is not a run of the scenario)."""
    settings = {**s.settings, "repeat": 1}
    axes = dict(s.axes)
    tag = s.settings.get("tag")
    if variant.startswith("inject:"):
        settings["fault"] = fault_from_spec(variant.removeprefix("inject:"), "--ab")
        tag = ".".join(filter(None, [tag, variant.replace(":", "-")]))
    elif variant != "none":
        axes["sglang"] = variant
    sid = scenario_id(axes, tag) + f".ab{rep}{side}"
    return dataclasses.replace(s, id=sid, axes=axes, settings=settings)


def decide(scenario: Scenario, a: str, b: str, ra: list[ScenarioResult], rb: list[ScenarioResult]) -> ScenarioResult:
    gates = metrics.relative(scenario.settings.get("metrics", {})) or AB_GATES
    sa, sb = metrics.per_run_values([r.metrics for r in ra], gates), metrics.per_run_values([r.metrics for r in rb], gates)
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
                          gates=[g.to_json() for g in judged])


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
        decision.duration_s = sum(r.duration_s for r in ra + rb)
        decision.run_dir = decision.run_dir or str(sess.run_dir / decision.scenario_id)
        decision.save(sess.run_dir / decision.scenario_id)
        decisions.append(decision)
        sess.results.append(decision)
        sess.write_reports()
        print(f"{decision.scenario_id}: {decision.verdict.value} - {decision.reason[:300]}", file=sess.out, flush=True)
    return decisions
