"""Run one scenario end to end and judge it: lease, launch, milestones, gates, triage, retry, verdict.

- Owns: the per-scenario pipeline shared by `colobench run` and the pytest plugin, the run folder layout
  (`<run-dir>/<scenario-id>/`: scenario.json, events.jsonl, *.log, result.json), and verdict rules:
  infra (retried once by default) vs product failures, expected failures (`expect: {fail: signature}`).
- Does not own: starting processes (launch.py), rules (milestones.py, metrics.py, triage.py), reports.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness import gpus, launch, metrics, milestones, redact, triage, yamlfile
from harness.errors import ColobenchError
from harness.scenario import Scenario
from harness.verdict import ScenarioResult, Verdict

DEFAULTS = yamlfile.load(Path(__file__).resolve().parent / "defaults.yaml")
READY_LINE = "The server is fired up and ready to roll"   # sglang's own, for external runners without events
BaselineFn = Callable[[Scenario], "list[dict[str, list[float]]]"]   # the baseline's runs: metric samples of each


@dataclass
class Options:
    python: Callable[[Scenario], str] = lambda s: sys.executable
    infra_retries: int = 1
    gpu_wait_s: float = 3600.0
    baseline: BaselineFn | None = None
    on_event: Callable[[Scenario, dict], None] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def rules_for(scenario: Scenario) -> tuple[list[dict], dict[str, dict]]:
    """Default plus scenario milestone rules and gates."""
    kind = "external" if scenario.settings.get("runner") else "builtin"
    rules = list(DEFAULTS[kind]["milestones"])
    gates = dict(DEFAULTS[kind]["metrics"])
    if kind == "builtin":
        steps = scenario.settings["steps"]
        rules.append({"name": f"{steps} steps", "event": "step_done", "min": steps, "max": steps})
    rules += list(scenario.settings.get("milestones", ()))
    gates.update(scenario.settings.get("metrics", {}))
    return rules, gates


def _argv(scenario: Scenario, scenario_json: Path, run_dir: Path, python: str) -> list[str]:
    runner = scenario.settings.get("runner")
    if not runner:
        return launch.runner_argv(python, scenario_json)
    subst = {"{scenario}": str(scenario_json), "{run_dir}": str(run_dir), "{python}": python,
             "{repo}": str(launch.REPO_ROOT)}
    out = []
    for arg in runner["command"]:
        arg = str(arg)
        for key, value in subst.items():
            arg = arg.replace(key, value)
        out.append(arg)      # one argv item each: never through a shell
    return out


def _prepare(scenario: Scenario, run_dir: Path, lease: gpus.Lease) -> Path:
    run_dir.mkdir(parents=True, exist_ok=False, mode=0o750)
    doc = scenario.to_json()
    doc["runtime"] = {"run_dir": str(run_dir), "cuda_visible_devices": lease.cuda_visible_devices if scenario.needs_gpu else "",
                      "leased_gpus": lease.gpus}
    path = run_dir / "scenario.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def _context_event(events: list[dict]) -> dict:
    """Launch contexts by process role (runner, engine-launcher, engine-server, trainer), plus versions."""
    ctx: dict = {}
    for e in events:
        if e.get("event") == "launch_context":
            role = str(e.get("role", "?")).split(" ")[0]
            ctx[role] = {k: v for k, v in e.items() if k not in ("event", "t", "pid", "server_pid")}
        elif e.get("event") == "environment":
            ctx["versions"] = e.get("versions", {})
    return ctx


def judge(scenario: Scenario, res: launch.LaunchResult) -> ScenarioResult:
    """Turn a finished launch into a verdict (relative gates wait for all repeats). Pure apart from triage's catalog."""
    rules, gates = rules_for(scenario)
    external = bool(scenario.settings.get("runner"))
    values = metrics.samples(res.events)
    checked = milestones.evaluate(rules, res.events, res.lines)
    gated = metrics.evaluate(gates, values, None)
    diag = triage.diagnose(res.lines)
    failures: list[str] = []
    infra: list[str] = []
    unjudgeable: list[str] = []     # the run's own evidence is missing or broken: infra, whatever else failed
    engine_up = any(e.get("event") == "engine_ready" for e in res.events) or any(
        READY_LINE in ln.text for ln in res.lines)

    if res.malformed_events:
        unjudgeable.append(f"events.jsonl:{res.malformed_events[0]}: not a JSON event (runner/harness contract broken)")
    if not res.events_file_found and not external:
        unjudgeable.append("the runner wrote no events.jsonl (it died before its first event)")
    if res.timed_out:
        last = [e["event"] for e in res.events if e.get("event") != "metric"][-1:] or ["none"]
        msg = f"timed out after {scenario.settings['timeout_s']}s; last event: {last[0]}"
        if engine_up:
            failures.append(msg)
        else:
            unjudgeable.append(f"{msg} (before the engine came up)")
    elif res.returncode != 0:
        failures.append(f"runner exited with code {res.returncode}")
    if res.leaks:
        infra.append(f"processes left behind (killed): {'; '.join(res.leaks[:3])}")
    failures += [f"milestone {r.name}: {r.reason}" for r in checked if not r.ok]
    failures += [g.reason for g in gated if g.status in (metrics.GateStatus.FAIL, metrics.GateStatus.ERROR)]
    unsure = [g.reason for g in gated if g.status == metrics.GateStatus.INCONCLUSIVE]

    if failures and diag.is_infra:
        infra.insert(0, f"{diag.name}: {diag.line.text.strip()[:200] if diag.line else ''}")
    if unjudgeable or infra and (not failures or diag.is_infra):
        verdict, reason = Verdict.INFRA_ERROR, "; ".join(unjudgeable + infra)
    elif failures:   # a leak after a product failure is still named
        verdict, reason = Verdict.REGRESSED, "; ".join(failures[:3] + infra)
    elif unsure:
        verdict, reason = Verdict.INCONCLUSIVE, "; ".join(unsure)
    else:
        verdict, reason = Verdict.PASS, ""

    expected = scenario.expected_signature
    if expected and verdict != Verdict.INFRA_ERROR:
        seen = {diag.name} | {f"gate:{g.metric}" for g in gated if g.status == metrics.GateStatus.FAIL} | {
            f"milestone:{r.name}" for r in checked if not r.ok}
        if verdict == Verdict.REGRESSED and expected in seen:
            why = diag.one_line() if expected == diag.name else next(
                (f for f in failures if expected.split(":", 1)[-1] in f), reason)
            verdict, reason = Verdict.PASS, f"failed as expected ({expected}): {why}"
        elif verdict == Verdict.REGRESSED:
            reason = f"expected failure {expected}, got {diag.name}: {reason}"
        else:
            verdict, reason = Verdict.REGRESSED, f"expected failure {expected} did not occur (the run passed)"
    if verdict in (Verdict.REGRESSED, Verdict.INFRA_ERROR) and diag.line is not None and "triage:" not in reason:
        reason = f"{reason}; triage: {diag.one_line()}"

    return ScenarioResult(
        scenario_id=scenario.id, verdict=verdict, reason=reason, duration_s=round(res.duration_s, 3),
        metrics=values,
        gates=[g.to_json() for g in gated],
        milestones=[{"name": r.name, "ok": r.ok, "reason": r.reason} for r in checked],
        diagnosis=diag.to_json() if diag.line is not None else None,
        context=_context_event(res.events),
        error_lines=list(diag.context),
    )


def run_scenario(scenario: Scenario, run_root: Path, options: Options | None = None) -> ScenarioResult:
    """Run one scenario `repeat` times (each retried once on infra errors); always returns a result.

    Relative gates are judged once, after all repeats, on one value per run (the gate's `stat`) against the
    baseline's runs summarised the same way: steps of one run share the run's offset, so they are not independent.
    """
    options = options or Options()
    reps = [_with_retries(scenario, run_root, options, rep) for rep in range(scenario.settings["repeat"])]
    runs = [r.metrics for r in reps]        # taken before `final`, one of reps, gets the pooled samples
    final = next((r for r in reps if r.verdict != Verdict.PASS), reps[-1])
    if len(reps) > 1:
        names = dict.fromkeys(name for run in runs for name in run)
        final.metrics = {name: [v for run in runs for v in run.get(name, [])] for name in names}
        final.properties["repeat"] = str(len(reps))
        final.repetitions = runs
    baseline_runs = options.baseline(scenario) if options.baseline else []
    if final.verdict == Verdict.PASS:
        _, gates = rules_for(scenario)
        relative = metrics.relative(gates)
        per_run = metrics.per_run_values(runs, relative)
        judged = metrics.evaluate(relative, per_run, metrics.per_run_values(baseline_runs, relative))
        final.gates = [g for g in final.gates if g["metric"] not in relative] + [g.to_json() for g in judged]
        failed = [g.reason for g in judged if g.status in (metrics.GateStatus.FAIL, metrics.GateStatus.ERROR)]
        unsure = [g.reason for g in judged if g.status == metrics.GateStatus.INCONCLUSIVE]
        if failed:
            final.verdict, final.reason = Verdict.REGRESSED, "; ".join(failed)
        elif unsure:
            final.verdict, final.reason = Verdict.INCONCLUSIVE, "; ".join(unsure)
    final.save(run_root / scenario.id)    # the scenario's own folder holds the final word
    return final


def _with_retries(scenario: Scenario, run_root: Path, options: Options, rep: int) -> ScenarioResult:
    attempts: list[ScenarioResult] = []
    for attempt in range(options.infra_retries + 1):
        name = scenario.id + (f".rep{rep + 1}" if rep else "") + (f".retry{attempt}" if attempt else "")
        result = _attempt(scenario, run_root / name, options)
        result.attempts = [a.to_json() for a in attempts]
        attempts.append(result)
        if result.verdict != Verdict.INFRA_ERROR:
            break
    return attempts[-1]


def _attempt(scenario: Scenario, run_dir: Path, options: Options) -> ScenarioResult:
    props = {"scenario.source": scenario.source, "run_dir": str(run_dir), "gpus": str(scenario.gpus),
             **{f"axis.{k}": str(v) for k, v in scenario.axes.items()}}
    try:
        lease = gpus.acquire(scenario.gpus_to_lease, scenario.axes["cvd_offset"], timeout_s=options.gpu_wait_s)
    except ColobenchError as exc:
        return ScenarioResult(scenario.id, Verdict.SKIPPED if "host shows" in str(exc) else Verdict.INFRA_ERROR,
                              str(exc), run_dir=str(run_dir), properties=props)
    with lease:
        try:
            scenario_json = _prepare(scenario, run_dir, lease)
            python = options.python(scenario)
            env_extra = {**options.extra_env, **{k: str(v) for k, v in scenario.settings.get("env", {}).items()}}
            runner = scenario.settings.get("runner") or {}
            env_extra.update({k: str(v) for k, v in runner.get("env", {}).items()})
            env = launch.runner_env(env_extra, lease.cuda_visible_devices if scenario.needs_gpu else "",
                                    run_dir, uuid.uuid4().hex)
            argv = _argv(scenario, scenario_json, run_dir, python)
            cwd = Path(runner["cwd"]) if runner.get("cwd") else None
            on_event = (lambda e: options.on_event(scenario, e)) if options.on_event else None
            memory_before = gpus.memory_used_mib(lease.gpus)
            res = launch.run(argv, env, run_dir, scenario.settings["timeout_s"], cwd=cwd, on_event=on_event)
            res.leaks += gpus.memory_leaks(memory_before, gpus.memory_used_mib(lease.gpus))
        except (ColobenchError, OSError) as exc:
            msg = str(exc) if isinstance(exc, ColobenchError) else f"{run_dir}: {exc.strerror or exc}"
            return ScenarioResult(scenario.id, Verdict.INFRA_ERROR, msg, run_dir=str(run_dir), properties=props)
        result = judge(scenario, res)
    result.run_dir = str(run_dir)
    props["cuda_visible_devices"] = lease.cuda_visible_devices if scenario.needs_gpu else ""
    if res.stack_dumps:
        props["stack_dumps"] = ",".join(res.stack_dumps)      # py-spy dumps of the stuck processes, in the run folder
    for e in res.events:
        if e.get("event") == "environment":
            props.update({f"version.{k}": str(v) for k, v in (e.get("versions") or {}).items()})
    result.properties = props
    redact.scrub_folder(run_dir, redact.secret_values(dict(os.environ) | env_extra))
    result.save(run_dir)
    return result
