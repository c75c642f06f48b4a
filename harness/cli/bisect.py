"""colobench bisect: which SGLang version (or commit) broke a scenario, or dropped a metric, found by real runs."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tabulate import tabulate

from harness.cli import common
from harness.errors import ColobenchError, EnvError
from harness.judge import stats
from harness.matrix.rules import percent
from harness.matrix.scenario import Scenario
from harness.report import plots
from harness.run import envs, session
from harness.study import bisect

NAME = "bisect"
HELP = "find the first bad sglang version (or commit) of a scenario by binary search over real runs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_matrix(p)
    common.add_reports(p)
    p.add_argument("--scenario", metavar="ID", help="the scenario id (or select exactly one with -k)")
    p.add_argument("--good", required=True, help="a good version (or commit with --sglang-repo)")
    p.add_argument("--bad", required=True, help="a bad version (or commit)")
    p.add_argument("--versions", metavar="A,B,C", help="candidate versions (default: the package index)")
    p.add_argument(
        "--sglang-repo", metavar="PATH", help="bisect commits of this git repo (its package is installed per commit)"
    )
    p.add_argument(
        "--subdir", default="", help="with --sglang-repo: the package's folder inside the repo (sglang: python)"
    )
    p.add_argument(
        "--metric",
        help="bisect a change of this metric instead of a failure (judged as gates judge: give "
        "the scenario repeat >= 3, or a probe beyond the threshold but not beyond its runs' noise is skipped)",
    )
    p.add_argument("--max-drop", help="with --metric: bad when it drops more than this (e.g. 10%%)")
    p.add_argument("--max-rise", help="with --metric: bad when it rises more than this (e.g. 10%%)")
    p.add_argument("--wheelhouse", metavar="DIR", help="offline wheels for the environments")
    p.add_argument(
        "--system-site", action="store_true", help="environments see the system's packages (a GPU host's torch)"
    )


def _scenario(args: argparse.Namespace) -> Scenario:
    found = common.load_selection(args).scenarios
    if args.scenario:
        found = [s for s in found if s.id == args.scenario]
    if len(found) != 1:
        raise ColobenchError(f"bisect: select exactly one scenario (--scenario ID or -k); {len(found)} match")
    return found[0]


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


def main(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    reports = Path(args.reports_dir)
    wheelhouse = Path(args.wheelhouse) if args.wheelhouse else None
    repo = Path(args.sglang_repo) if args.sglang_repo else None
    if repo:
        candidates = bisect.commits_between(repo, args.good, args.bad)
        label = lambda c: c[:10]  # noqa: E731
    else:
        available = args.versions.split(",") if args.versions else bisect.index_versions()
        candidates = bisect.versions_between(args.good, args.bad, [v.strip() for v in available])
        label = lambda c: c  # noqa: E731
    resolve = envs.python_resolver(wheelhouse, args.system_site)

    def probe_scenario(candidate: str) -> Scenario:
        axes = dict(scenario.axes) if repo else {**scenario.axes, "sglang": candidate}
        return dataclasses.replace(scenario, id=f"{scenario.id}.at-{label(candidate)}", axes=axes)

    candidate_of: dict[str, str] = {}

    def python_of(s: Scenario) -> str:
        if repo:
            return str(envs.for_commit(repo, candidate_of[s.id], args.subdir, wheelhouse).python)
        return resolve(s)

    sess = session.open_session(
        reports,
        f"bisect-{session.new_run_id()}",
        baseline="none",
        python=python_of,
        title=f"colobench bisect {scenario.id}",
    )
    run_dir = sess.run_dir

    def run(candidate: str):
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
    if args.metric:
        drop = percent(args.max_drop) if args.max_drop else None
        rise = percent(args.max_rise) if args.max_rise else None
        if drop is None and rise is None:
            raise ColobenchError("bisect --metric: give --max-drop or --max-rise (e.g. 10%)")
        good = run(candidates[0])
        if isinstance(good, bisect.Probe) or not good.metrics.get(args.metric):
            raise ColobenchError(f"bisect: the good end {candidates[0]} gave no {args.metric} samples")
        reference = bisect.per_run(good, args.metric)

    def probe(candidate: str) -> bisect.Probe:
        res = run(candidate)
        if isinstance(res, bisect.Probe):
            return res
        if args.metric:
            outcome, note = bisect.classify_metric(res, args.metric, reference, drop, rise)
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
    metric = args.metric or "rollout_tokens_per_s"
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
    print(text)
    return 0 if result.first_bad else 1
