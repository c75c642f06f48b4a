"""Human-readable output: scenario tables, the markdown run summary, the launch-context diff, run folders.

- Owns: `summary_markdown` (tabulate; kept under 1 MiB; appended to $GITHUB_STEP_SUMMARY when set),
  `list_table`, `context_diff` (what differs between two launch contexts), reading a finished run back.
- Does not own: JUnit (junit.py), comparisons across runs (compare.py), plots (plots.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness import files
from harness.errors import ColobenchError
from harness.judge import stats
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict, worst
from harness.matrix import defaults
from harness.matrix.scenario import Dropped, Scenario
from harness.report import junit
from harness.store import fingerprint

MAX_SUMMARY_BYTES = 1024 * 1024
ICON = {
    Verdict.PASS: "pass",
    Verdict.REGRESSED: "**REGRESSED**",
    Verdict.INFRA_ERROR: "**infra-error**",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.SKIPPED: "skipped",
    Verdict.INTERRUPTED: "**interrupted**",
}
NOT_RUN = "not run: interrupted"  # the reason of scenarios an interrupt left unstarted (run/session.py)


def list_table(scenarios: list[Scenario], dropped: list[Dropped] | None = None) -> str:
    rows = [
        [
            s.id,
            s.gpus_to_lease or "-",
            ",".join(s.markers[:2]),
            s.settings.expect if s.expected_signature else "pass",
        ]
        for s in scenarios
    ]
    text = tabulate(rows, headers=["scenario", "gpus", "kind", "expect"], tablefmt="simple")
    if dropped:
        text += "\n\ndropped (impossible combinations):\n" + tabulate(
            [[d.id, d.reason] for d in dropped], headers=["scenario", "reason"], tablefmt="simple"
        )
    return text


def _metric_cell(result: ScenarioResult, name: str) -> str:
    values = stats.finite(result.metrics.get(name, []))
    return f"{stats.centre(values):.4g}" if values else ""


def _probe_cell(result: ScenarioResult) -> str:
    value = result.properties.get("host.probe_cv")
    return f"{float(value):.1%}" if value is not None else ""


def _timing_cell(result: ScenarioResult) -> str:
    t = result.timings
    parts = [f"{t[k]:.0f}" if k in t else "-" for k in ("engine_start_s", "first_step_s")]
    return "/".join(parts)


def headline(results: list[ScenarioResult], title: str) -> str:
    """`## title: verdict`, saying how far an interrupted run got."""
    overall = worst([r.verdict for r in results])
    if overall != Verdict.INTERRUPTED:
        return f"## {title}: {overall.value}"
    finished = sum(r.verdict != Verdict.INTERRUPTED and r.reason != NOT_RUN for r in results)
    return f"## {title}: interrupted ({finished} of {len(results)} scenarios finished)"


def context_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, a, b) for every flattened key whose value differs between two launch contexts."""

    def flat(d: Any, prefix: str = "") -> dict[str, str]:
        if isinstance(d, dict):
            out: dict[str, str] = {}
            for k, v in d.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        if isinstance(d, list):
            out = {}
            for i, v in enumerate(d):
                out.update(flat(v, f"{prefix}{i}."))
            return out
        return {prefix.rstrip("."): json.dumps(d) if not isinstance(d, str) else d}

    fa, fb = flat(a), flat(b)
    return fingerprint.changed(fa, fb, "(unset)")


def _pairs_by_launch(results: list[ScenarioResult]) -> list[tuple[ScenarioResult, ScenarioResult]]:
    """Scenario pairs that differ only in the launch axis (standalone vs ray-actor)."""
    by_id = {r.scenario_id: r for r in results}
    pairs = []
    for r in results:
        if ".standalone" in r.scenario_id:
            twin = by_id.get(r.scenario_id.replace(".standalone", ""))
            if twin and r.context and twin.context:
                pairs.append((r, twin))
    return pairs


def summary_markdown(results: list[ScenarioResult], title: str = "colobench run") -> str:
    keys = defaults.key_metrics()
    counts = {v.value: sum(r.verdict == v for r in results) for v in Verdict if any(r.verdict == v for r in results)}
    lines = [headline(results, title), "", ", ".join(f"{n} {k}" for k, n in counts.items()), ""]
    rows = [
        [r.scenario_id, ICON[r.verdict], f"{r.duration_s:.1f}", _timing_cell(r)] + [_metric_cell(r, m) for m in keys]
        for r in results
    ]
    lines.append(tabulate(rows, headers=["scenario", "verdict", "s", "engine/step1 s"] + list(keys), tablefmt="github"))
    spread = [
        [r.scenario_id, _probe_cell(r)] + [f"{r.cv[m]:.1%}" if m in r.cv else "" for m in keys] for r in results if r.cv
    ]
    if spread:
        lines += [
            "",
            "Sample-level CV (sd / mean) of the steady-state samples, beside the host probe's CV (the host's "
            "CPU jitter just before the run):",
            "",
            tabulate(spread, headers=["scenario", "host probe"] + list(keys), tablefmt="github"),
        ]
    problems = [r for r in results if r.verdict != Verdict.PASS or r.reason]
    if problems:
        lines += ["", "### Details"]
        for r in problems:
            lines += ["", f"**{r.scenario_id}** ({r.verdict.value}): {r.reason}"]
            if r.diagnosis:
                d = r.diagnosis
                lines.append(f"- first causal error: `{d['signature']}` [{d.get('layer')}] at `{d.get('where')}`")
                if d.get("cause"):
                    lines.append(f"- cause: {d['cause']}")
                    lines.append(f"- fix: {d['fix']}")
            if r.error_lines:
                lines += ["", "```", *r.error_lines[:12], "```"]
            lines.append(f"- run folder: `{r.run_dir}`")
    for standalone, ray_actor in _pairs_by_launch(results):
        diff = context_diff(standalone.context, ray_actor.context)
        if diff:
            lines += [
                "",
                f"### Launch context: {standalone.scenario_id} vs {ray_actor.scenario_id}",
                "",
                tabulate(
                    [[k, a, b] for k, a, b in diff[:60]], headers=["key", "standalone", "ray-actor"], tablefmt="github"
                ),
            ]
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > MAX_SUMMARY_BYTES:
        text = text.encode()[: MAX_SUMMARY_BYTES - 200].decode(errors="ignore") + "\n\n(summary truncated at 1 MiB)\n"
    return text


def write_summary(results: list[ScenarioResult], path: Path, title: str = "colobench run") -> Path:
    return files.write_text(path, summary_markdown(results, title))


def append_step_summary(text: str) -> None:
    """Append to GitHub's job summary when running in Actions."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text[:MAX_SUMMARY_BYTES])


def load_run(run_dir: Path) -> list[ScenarioResult]:
    """Every result.json of a finished (or interrupted) run folder, in the order they finished (result files are
    checked: one from another format is a one-line error)."""
    if not run_dir.is_dir():
        raise ColobenchError(f"{run_dir}: no such run folder")
    paths = sorted(
        (p for p in run_dir.glob("*/result.json") if ".retry" not in p.parent.name and ".rep" not in p.parent.name),
        key=lambda p: p.stat().st_mtime,
    )
    results = [ScenarioResult.load(p) for p in paths]
    if not results:
        raise ColobenchError(f"{run_dir}: no result.json in any scenario folder")
    return results


def merge(run_dirs: list[Path], out: Path, title: str) -> list[ScenarioResult]:
    """One junit.xml and summary.md in `out` for the results of several run folders (xdist workers, CI shards)."""
    results = [r for d in run_dirs for r in load_run(d)]
    out.mkdir(parents=True, exist_ok=True, mode=0o750)
    write_summary(results, out / "summary.md", title)
    junit.write(results, out / "junit.xml")
    return results
