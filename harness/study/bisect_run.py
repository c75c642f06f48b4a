"""A bisection run: environments per candidate, a probe (a real run of the scenario) per step of the search, the
good end's runs as the metric's reference, and the report (bisect.md, bisect.png) of what was found.

- Owns: `run(Request)` -> (result, markdown): the study `colobench bisect` asks for.
- Does not own: the search and the classification of a probe (bisect.py), running a scenario (run/), parsing
  options (cli/bisect.py).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from harness.errors import ColobenchError, EnvError
from harness.judge import stats
from harness.matrix.scenario import Scenario
from harness.report import plots
from harness.run import envs, session
from harness.study import bisect


@dataclass(frozen=True)
class Request:
    scenario: Scenario
    good: str
    bad: str
    reports: Path
    versions: list[str] | None = None  # candidate versions (None: the package index)
    repo: Path | None = None  # bisect commits of this repository instead of released versions
    subdir: str = ""
    metric: str | None = None  # a change of this metric instead of a failure
    max_drop: float | None = None
    max_rise: float | None = None
    wheelhouse: Path | None = None
    system_site: bool = False


def render(res: bisect.BisectResult, label, diffs: dict, triage_line: str, figure: Path | None, title: str) -> str:
    rows = [
        [
            label(p.candidate),
            p.outcome,
            p.result.verdict.value if p.result else "-",
            p.note[:80],
            f"{p.result.duration_s:.1f}" if p.result else "-",
        ]
        for p in res.probes
    ]
    out = [f"## {title}", ""]
    if res.first_bad:
        out.append(
            f"first bad: **{label(res.first_bad)}**, last good: **{label(res.last_good)}** "
            f"({len(res.probes)} probes over {len(res.candidates)} candidates; "
            f"bound {bisect.max_probes(len(res.candidates))})"
        )
    else:
        out.append(f"ambiguous (skipped probes): first bad is one of {', '.join(map(label, res.ambiguous))}")
    out += ["", tabulate(rows, headers=["candidate", "outcome", "verdict", "note", "s"], tablefmt="github")]
    if triage_line:
        out += ["", f"first bad's triage: {triage_line}"]
    for name, rows_ in diffs.items():
        if rows_:
            out += [
                "",
                f"### {name} diff (last good -> first bad)",
                "",
                tabulate([list(r) for r in rows_], headers=["key", "last good", "first bad"], tablefmt="github"),
            ]
    if figure:
        out += ["", f"![metric per probe]({figure.name})"]
    return "\n".join(out) + "\n"


def run(req: Request) -> tuple[bisect.BisectResult, str]:
    """Bisect `req.scenario` between good and bad; the result and the report (also written as bisect.md)."""
    scenario, repo = req.scenario, req.repo
    if repo:
        candidates = bisect.commits_between(repo, req.good, req.bad)
        label = lambda c: c[:10]  # noqa: E731
    else:
        available = req.versions or bisect.index_versions()
        candidates = bisect.versions_between(req.good, req.bad, [v.strip() for v in available])
        label = lambda c: c  # noqa: E731
    resolve = envs.python_resolver(req.wheelhouse, req.system_site)

    def probe_scenario(candidate: str) -> Scenario:
        axes = dict(scenario.axes) if repo else {**scenario.axes, "sglang": candidate}
        return dataclasses.replace(scenario, id=f"{scenario.id}.at-{label(candidate)}", axes=axes)

    candidate_of: dict[str, str] = {}

    def python_of(s: Scenario) -> str:
        if repo:
            return str(envs.for_commit(repo, candidate_of[s.id], req.subdir, req.wheelhouse).python)
        return resolve(s)

    sess = session.open_session(
        req.reports,
        f"bisect-{session.new_run_id()}",
        baseline="none",
        python=python_of,
        title=f"colobench bisect {scenario.id}",
    )
    run_dir = sess.run_dir

    def one(candidate: str):
        s = probe_scenario(candidate)
        candidate_of[s.id] = candidate
        try:
            python_of(s)
        except EnvError as exc:
            return bisect.Probe(candidate, bisect.SKIP, None, f"environment: {exc}"[:200])
        res = sess.run_one(s)
        print(f"probe {label(candidate)}: {res.verdict.value} {res.reason[:200]}", file=sys.stderr, flush=True)
        return res

    reference: list[float] = []
    if req.metric:
        if req.max_drop is None and req.max_rise is None:
            raise ColobenchError("bisect --metric: give --max-drop or --max-rise (e.g. 10%)")
        good = one(candidates[0])
        if isinstance(good, bisect.Probe) or not good.metrics.get(req.metric):
            raise ColobenchError(f"bisect: the good end {candidates[0]} gave no {req.metric} samples")
        reference = bisect.per_run(good, req.metric)

    def probe(candidate: str) -> bisect.Probe:
        res = one(candidate)
        if isinstance(res, bisect.Probe):
            return res
        if req.metric:
            outcome, note = bisect.classify_metric(res, req.metric, reference, req.max_drop, req.max_rise)
        else:
            outcome, note = bisect.classify_failure(res), res.reason[:120]
        return bisect.Probe(candidate, outcome, res, note)

    result = bisect.search(candidates, probe)
    first, last = result.probe_of(result.first_bad), result.probe_of(result.last_good)
    diffs = bisect.diffs(last.result if last else None, first.result if first else None)
    triage_line = ""
    if first and first.result and first.result.diagnosis:
        d = first.result.diagnosis
        triage_line = f"{d['signature']} [{d.get('layer')}] at {d.get('where')}: {str(d.get('line'))[:200]}"
    metric = req.metric or "rollout_tokens_per_s"
    probed = sorted((p for p in result.probes if p.result), key=lambda p: candidates.index(p.candidate))
    figure = plots.metric_series(
        [label(p.candidate) for p in probed],
        {metric: [stats.finite(p.result.metrics.get(metric, [])) for p in probed]},
        run_dir / "bisect.png",
        f"{scenario.id}: {metric} per probe",
        metric,
    )
    text = render(result, label, diffs, triage_line, figure, f"bisect {scenario.id}")
    (run_dir / "bisect.md").write_text(text)
    return result, text
