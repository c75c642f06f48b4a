"""Run one scenario end to end: lease, launch, gather the evidence, judge it, retry infra errors, repeat.

- Owns: the per-scenario pipeline shared by `colobench run`, `pytest suites/`, A/B and bisect, and the run folder
  layout (`<run-dir>/<scenario-id>/`: scenario.json, events.jsonl, *.log, result.json).
- Does not own: starting processes (launch.py), the verdict (judge/verdict.fold), rules (judge/), where baselines
  come from or where results are recorded (session.py), reports.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness import REPO_ROOT, redact
from harness.errors import ColobenchError, NotEnoughGpus
from harness.judge import metrics, milestones, stats, triage
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Evidence, Verdict, fold
from harness.matrix import defaults
from harness.matrix.scenario import Scenario
from harness.report.summary import NOT_RUN
from harness.run import gpus, hostprobe, launch
from harness.runner.spec import RunSpec

READY_LINE = "The server is fired up and ready to roll"  # sglang's own, for external runners without events
BaselineFn = Callable[[Scenario], "list[dict[str, list[float]]]"]  # the baseline's runs: metric samples of each


@dataclass
class Options:
    python: Callable[[Scenario], str] = lambda s: sys.executable
    infra_retries: int = 1
    gpu_wait_s: float = 3600.0
    baseline: BaselineFn | None = None
    on_event: Callable[[Scenario, dict], None] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    ray_address: str | None = None  # attach the runner to this Ray cluster instead of starting its own


def rules_for(scenario: Scenario) -> tuple[list[dict], dict[str, dict]]:
    """Default plus scenario milestone rules and gates."""
    s = scenario.settings
    return defaults.rules_for(bool(s.runner), s.steps, s.milestones, s.metrics)


def warmup_steps(scenario: Scenario) -> int:
    """Steps whose timings are not sampled: the setting, else 1 for the built-in runner and 0 for an external one."""
    value = scenario.settings.warmup_steps
    return value if value is not None else (0 if scenario.settings.runner else 1)


def _argv(scenario: Scenario, scenario_json: Path, run_dir: Path, python: str) -> list[str]:
    runner = scenario.settings.runner
    if not runner:
        return launch.runner_argv(python, scenario_json)
    subst = {"{scenario}": str(scenario_json), "{run_dir}": str(run_dir), "{python}": python, "{repo}": str(REPO_ROOT)}
    out = []
    for arg in runner["command"]:
        for key, value in subst.items():
            arg = arg.replace(key, value)
        out.append(arg)  # one argv item each: never through a shell
    return out


def _isolate(scenario: Scenario, options: Options) -> bool:
    """The built-in runner with a cluster of its own runs in its own network namespace, where the host allows it
    (`network: host` opts out: a scenario that must meet the host's ports)."""
    return (
        scenario.settings.network == "isolated"
        and not scenario.settings.runner
        and options.ray_address is None
        and launch.can_isolate_network()
    )


def _prepare(scenario: Scenario, run_dir: Path, lease: gpus.Lease, ray_address: str | None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=False, mode=0o750)
    doc = scenario.to_json()
    # the runner gets the scenario's env through its process environment; the file keeps no secret of it
    doc["settings"]["env"] = redact.mask_env(doc["settings"].get("env") or {})
    if doc["settings"].get("runner"):
        doc["settings"]["runner"] = {
            **doc["settings"]["runner"],
            "env": redact.mask_env(doc["settings"]["runner"].get("env") or {}),
        }
    doc["runtime"] = {
        "run_dir": str(run_dir),
        "cuda_visible_devices": lease.cuda_visible_devices if scenario.needs_gpu else "",
        "leased_gpus": lease.gpus,
        "ray_address": ray_address,
    }
    if not scenario.settings.runner:
        RunSpec.from_json(doc)  # the built-in runner reads it as its typed spec: a document it cannot read never leaves
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


def timings(events: list[dict], total_s: float) -> dict[str, float]:
    """Engine start, time to the first finished step and the total, in seconds (where the run got that far)."""
    first = {}
    for e in events:
        if e.get("event") in ("engine_ready", "step_done") and e["event"] not in first and stats.finite([e.get("t")]):
            first[e["event"]] = float(e["t"])
    out = {"total_s": round(total_s, 3)}
    if "engine_ready" in first:
        out["engine_start_s"] = first["engine_ready"]
    if "step_done" in first:
        out["first_step_s"] = first["step_done"]
    return out


def evidence(scenario: Scenario, res: launch.LaunchResult) -> Evidence:
    """What the harness saw of the runner's process, before any rule."""
    external = bool(scenario.settings.runner)
    unjudgeable: list[str] = []
    failures: list[str] = []
    engine_up = any(e.get("event") == "engine_ready" for e in res.events) or any(
        READY_LINE in ln.text for ln in res.lines
    )
    if res.malformed_events:
        unjudgeable.append(f"events.jsonl:{res.malformed_events[0]}: not a JSON event (runner/harness contract broken)")
    if not res.events_file_found and not external:
        unjudgeable.append("the runner wrote no events.jsonl (it died before its first event)")
    if res.timed_out:
        last = [e["event"] for e in res.events if e.get("event") != "metric"][-1:] or ["none"]
        msg = f"timed out after {scenario.settings.timeout_s}s; last event: {last[0]}"
        if engine_up:
            failures.append(msg)
        else:
            unjudgeable.append(f"{msg} (before the engine came up)")
    elif res.returncode != 0:
        failures.append(f"runner exited with code {res.returncode}")
    infra = [f"left behind: {'; '.join(res.leaks[:3])}"] if res.leaks else []
    return Evidence(tuple(unjudgeable), tuple(infra), tuple(failures))


def judge(scenario: Scenario, res: launch.LaunchResult) -> ScenarioResult:
    """Turn a finished launch into a verdict (relative gates wait for all repeats). Pure apart from triage's catalog."""
    rules, gates = rules_for(scenario)
    values = metrics.samples(res.events, warmup_steps(scenario), defaults.perf_metrics())
    from_logs = metrics.from_logs(
        scenario.settings.log_metrics, res.lines, warmup_steps(scenario), defaults.perf_metrics()
    )
    for name, found in from_logs.items():
        values[name] = values.get(name, []) + found
    checked = milestones.evaluate(rules, res.events, res.lines)
    gated = metrics.evaluate(metrics.absolute(gates), values, None)
    diag = triage.diagnose(res.lines)
    verdict, reason = fold(evidence(scenario, res), checked, gated, diag, scenario.expected_signature)
    return ScenarioResult(
        scenario_id=scenario.id,
        verdict=verdict,
        reason=reason,
        duration_s=round(res.duration_s, 3),
        metrics=values,
        gates=[g.to_json() for g in gated],
        milestones=[{"name": r.name, "ok": r.ok, "reason": r.reason} for r in checked],
        diagnosis=diag.to_json() if diag.line is not None else None,
        context=_context_event(res.events),
        error_lines=list(diag.context),
        timings=timings(res.events, res.duration_s),
        cv=metrics.spread(values),
    )


def stopped(scenario: Scenario, run_root: Path, in_flight: bool) -> ScenarioResult:
    """After Ctrl-C or SIGTERM: the scenario that was running is `interrupted`, one never started is not run. Saved,
    so its folder says so."""
    verdict, reason = (Verdict.INTERRUPTED, "interrupted while running") if in_flight else (Verdict.SKIPPED, NOT_RUN)
    result = ScenarioResult(
        scenario.id,
        verdict,
        reason,
        run_dir=str(run_root / scenario.id),
        properties={"scenario.source": scenario.source},
    )
    result.save(run_root / scenario.id)
    return result


def run_scenario(scenario: Scenario, run_root: Path, options: Options | None = None) -> ScenarioResult:
    """Run one scenario `repeat` times (each retried on infra errors); always returns a result.

    Relative gates are judged once, after all repeats, on one value per run (the gate's `stat`) against the
    baseline's runs summarised the same way: steps of one run share the run's offset, so they are not independent.
    """
    options = options or Options()
    reps = [_with_retries(scenario, run_root, options, rep) for rep in range(scenario.settings.repeat)]
    runs = [r.metrics for r in reps]  # taken before `final`, one of reps, gets the pooled samples
    final = next((r for r in reps if r.verdict != Verdict.PASS), reps[-1])
    if len(reps) > 1:
        names = dict.fromkeys(name for run in runs for name in run)
        final.metrics = {name: [v for run in runs for v in run.get(name, [])] for name in names}
        final.properties["repeat"] = str(len(reps))
        final.repetitions = runs
        final.duration_s = round(sum(r.duration_s for r in reps), 3)  # the time of all K repetitions
    _, gates = rules_for(scenario)
    relative = metrics.relative(gates)
    if final.verdict == Verdict.PASS and relative and not scenario.expected_signature:
        baseline_runs = options.baseline(scenario) if options.baseline else []
        judged = metrics.evaluate(
            relative,
            metrics.per_run_values(runs, relative),
            metrics.per_run_values(baseline_runs, relative),
            probe_cv=probe_cv(reps),
        )
        final.gates = final.gates + [g.to_json() for g in judged]
        final.verdict, final.reason = fold(Evidence(), [], judged, None, None)
    final.save(run_root / scenario.id)  # the scenario's own folder holds the final word
    return final


def probe_cvs(results: list[ScenarioResult]) -> list[float]:
    """The host probe's CV of each run that took one (result property `host.probe_cv`)."""
    return stats.finite([float(r.properties["host.probe_cv"]) for r in results if "host.probe_cv" in r.properties])


def probe_cv(results: list[ScenarioResult]) -> float | None:
    """The noisiest host probe among these runs, or None where none was taken."""
    return max(probe_cvs(results), default=None)


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
    props = {
        "scenario.source": scenario.source,
        "run_dir": str(run_dir),
        "gpus": str(scenario.gpus),
        **{f"axis.{k}": str(v) for k, v in scenario.axes.items()},
    }
    try:
        lease = gpus.acquire(scenario.gpus_to_lease, scenario.axes["cvd_offset"], timeout_s=options.gpu_wait_s)
    except NotEnoughGpus as exc:
        return ScenarioResult(scenario.id, Verdict.SKIPPED, str(exc), run_dir=str(run_dir), properties=props)
    except ColobenchError as exc:
        return ScenarioResult(scenario.id, Verdict.INFRA_ERROR, str(exc), run_dir=str(run_dir), properties=props)
    with lease:
        try:
            python = options.python(scenario)  # after the lease: a skipped row never builds an environment
            props["python"] = python
            scenario_json = _prepare(scenario, run_dir, lease, options.ray_address)
            env_extra = {**options.extra_env, **{k: str(v) for k, v in scenario.settings.env.items()}}
            runner = scenario.settings.runner or {}
            env_extra.update({k: str(v) for k, v in runner.get("env", {}).items()})
            env = launch.runner_env(
                env_extra, lease.cuda_visible_devices if scenario.needs_gpu else "", run_dir, uuid.uuid4().hex
            )
            argv = _argv(scenario, scenario_json, run_dir, python)
            props["network"] = "host"
            if _isolate(scenario, options):
                argv, props["network"] = launch.isolated(argv), "isolated (own namespace, loopback only)"
            cwd = Path(runner["cwd"]) if runner.get("cwd") else None
            on_event = (lambda e: options.on_event(scenario, e)) if options.on_event else None
            fault = scenario.settings.fault or {}
            probe = hostprobe.measure(fault["factor"] if fault.get("kind") == "noisy_host" else 0.0)
            props.update(probe.properties() if probe else {})
            memory_before = gpus.memory_used_mib(lease.gpus)
            # the scenario's secrets however short; the host's own from LONG_SECRET on (a host's KEY=1 must not
            # blank every "1" of every log)
            secrets = redact.secret_values(env_extra) + redact.secret_values(dict(os.environ), redact.LONG_SECRET)
            res = launch.run(
                argv, env, run_dir, scenario.settings.timeout_s, cwd=cwd, on_event=on_event, secrets=secrets
            )
            settle_start = time.monotonic()
            res.leaks += gpus.memory_leaks(memory_before, gpus.memory_after(memory_before, lease.gpus))
            props["gpu_memory_settle_s"] = f"{time.monotonic() - settle_start:.1f}"  # how long freeing it took
        except (ColobenchError, OSError) as exc:
            msg = str(exc) if isinstance(exc, ColobenchError) else f"{run_dir}: {exc.strerror or exc}"
            return ScenarioResult(scenario.id, Verdict.INFRA_ERROR, msg, run_dir=str(run_dir), properties=props)
        result = judge(scenario, res)
    result.run_dir = str(run_dir)
    props["cuda_visible_devices"] = lease.cuda_visible_devices if scenario.needs_gpu else ""
    if res.stack_dumps:
        props["stack_dumps"] = ",".join(res.stack_dumps)  # py-spy dumps of the stuck processes, in the run folder
    for e in res.events:
        if e.get("event") == "environment":
            props.update({f"version.{k}": str(v) for k, v in (e.get("versions") or {}).items()})
    result.properties = props
    result.save(run_dir)
    return result
